//! `ntm infer --text`: raw documents counted with the model's own tokenizer and vocabulary.

mod common;

use std::collections::HashMap;

use common::{fixture, ntm, prepare_newsgroups, read_lines, topic_weights, train_small};

#[test]
fn raw_text_matches_channel_weights() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "recordio");
    let model = root.path().join("model");
    train_small(root.path(), &channels, &model, "0", "3");
    let archive = model.join("model.tar.gz");

    // Counts prepared by `ntm prepare`, named by document-ids/test.txt.
    let from_channel = ntm(
        root.path(),
        &[
            &"infer",
            &"--model",
            &archive,
            &"--input",
            &channels.join("test"),
        ],
    );
    from_channel.assert_success();
    let ids = read_lines(&channels.join("document-ids").join("test.txt"));
    let channel_weights = topic_weights(&from_channel.stdout);
    assert_eq!(ids.len(), channel_weights.len());
    let by_id: HashMap<&str, &Vec<f64>> = ids
        .iter()
        .map(String::as_str)
        .zip(&channel_weights)
        .collect();

    // The same raw posts, tokenised by the model.
    let raw = fixture("newsgroups-test.jsonl.gz");
    let from_text = ntm(
        root.path(),
        &[&"infer", &"--model", &archive, &"--input", &raw, &"--text"],
    );
    from_text.assert_success();
    let text = String::from_utf8(from_text.stdout.clone()).expect("UTF-8 output");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        lines.len(),
        60,
        "one line per raw post, empty ones included"
    );
    let text_weights = topic_weights(&from_text.stdout);

    let mut compared = 0;
    for (line, weights) in lines.iter().zip(&text_weights) {
        let id = line["id"].as_str().expect("an id on every line");
        let sum: f64 = weights.iter().sum();
        assert!((sum - 1.0).abs() <= 1e-5, "{id}: weights sum to {sum}");
        if let Some(expected) = by_id.get(id) {
            for (a, b) in weights.iter().zip(expected.iter()) {
                assert!((a - b).abs() <= 1e-5, "{id}: {weights:?} vs {expected:?}");
            }
            compared += 1;
        }
    }
    assert_eq!(
        compared,
        ids.len(),
        "every written test document is in the raw input"
    );
}

#[test]
fn text_file_without_known_ending_needs_input_format() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "csv");
    let model = root.path().join("model");
    train_small(root.path(), &channels, &model, "0", "2");
    let posts = root.path().join("posts.jsonl");
    std::fs::write(
        &posts,
        "{\"text\": \"the space shuttle launch was delayed\"}\n{\"text\": \"zzzz qqqq\"}\n\
         {\"text\": \"hockey season\"}\n",
    )
    .expect("write posts");
    let unnamed = root.path().join("posts.data");
    std::fs::copy(&posts, &unnamed).expect("copy posts");

    let infer = |input: &std::path::Path, extra: &[&str]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"infer", &"--model", &model, &"--input", &input, &"--text"];
        for flag in extra {
            args.push(flag);
        }
        ntm(root.path(), &args)
    };

    let message = infer(&unnamed, &[]).assert_failure();
    assert!(message.contains("--input-format"), "{message}");
    let named = infer(&posts, &[]);
    named.assert_success();
    let chosen = infer(&unnamed, &["--input-format", "jsonl"]);
    chosen.assert_success();
    assert_eq!(topic_weights(&chosen.stdout), topic_weights(&named.stdout));
    assert_eq!(topic_weights(&chosen.stdout).len(), 3);
    // The post without a vocabulary word keeps its line and is named in a warning.
    assert!(
        named
            .stderr
            .contains("1 of 3 documents have no word of the model's vocabulary"),
        "{}",
        named.stderr
    );
    let message = infer(&unnamed, &["--input-format", "pdf"]).assert_failure();
    assert!(message.contains("invalid --input-format"), "{message}");
}

#[test]
fn text_needs_tokenizer_settings() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "csv");
    std::fs::remove_file(channels.join("auxiliary").join("tokenizer.json"))
        .expect("remove tokenizer.json");
    let model = root.path().join("model");
    train_small(root.path(), &channels, &model, "0", "1");
    let raw = fixture("newsgroups-test.jsonl.gz");
    let run = ntm(
        root.path(),
        &[
            &"infer",
            &"--model",
            &model.join("model.tar.gz"),
            &"--input",
            &raw,
            &"--text",
        ],
    );
    let message = run.assert_failure();
    assert!(message.contains("tokenizer"), "{message}");
}
