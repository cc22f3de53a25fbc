//! `ntm evaluate` on a small model trained on the newsgroup sample, and the tokenised
//! documents `ntm prepare` writes for it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{evaluate_json, ntm, prepare_newsgroups, read_lines, tar_member, train_small};
use serde_json::Value;

/// Prepares the sample and trains a 5-topic model; returns the channel folder and the model.
fn trained(root: &Path) -> (PathBuf, PathBuf) {
    let channels = prepare_newsgroups(root, "channels", "recordio");
    let model_dir = root.join("model");
    train_small(root, &channels, &model_dir, "7", "8");
    (channels, model_dir.join("model.tar.gz"))
}

fn scores(report: &Value, measure: &str) -> Vec<f64> {
    report["metrics"][measure]["per_topic"]
        .as_array()
        .unwrap_or_else(|| panic!("{measure} per_topic in {report}"))
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

#[test]
fn prepare_writes_tokens_aligned_with_ids() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "csv");
    let summary: Value =
        serde_json::from_slice(&fs::read(channels.join("summary.json")).expect("summary"))
            .expect("json");
    let vocabulary = read_lines(&channels.join("auxiliary").join("vocab.txt"));
    for split in ["train", "validation", "test"] {
        let tokens = read_lines(&channels.join("tokens").join(format!("{split}.txt")));
        let ids = read_lines(&channels.join("document-ids").join(format!("{split}.txt")));
        assert_eq!(
            tokens.len(),
            ids.len(),
            "{split}: token lines and document ids"
        );
        let words: Vec<&str> = tokens.iter().flat_map(|l| l.split(' ')).collect();
        assert_eq!(
            words.len() as u64,
            summary[split]["tokens"].as_u64().expect("token count"),
            "{split}: words in tokens/ and tokens in summary.json"
        );
        assert!(
            words
                .iter()
                .all(|w| vocabulary.binary_search_by(|v| v.as_str().cmp(w)).is_ok()),
            "{split}: a token is not in vocab.txt"
        );
        // Row i of the CSV channel counts the words of line i.
        let rows = read_lines(&channels.join(split).join(format!("{split}.csv")));
        for (row, line) in rows.iter().zip(&tokens).take(20) {
            let total: f64 = row
                .split(',')
                .map(|c| c.parse::<f64>().expect("count"))
                .sum();
            assert_eq!(
                total as usize,
                line.split(' ').count(),
                "{split}: row and token line"
            );
        }
    }
}

#[test]
fn evaluate_on_tokens_and_channel() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    let tokens = channels.join("tokens").join("test.txt");
    let by_tokens = evaluate_json(root.path(), &model, &tokens, &[]);
    let by_channel = evaluate_json(root.path(), &model, &channels.join("test"), &[]);

    let words = by_tokens["topic_words"].as_array().expect("topic_words");
    assert_eq!(words.len(), 5);
    assert!(words.iter().all(|t| t.as_array().map(Vec::len) == Some(10)));
    for measure in ["npmi", "u_mass", "c_npmi", "c_v"] {
        let values = scores(&by_tokens, measure);
        assert_eq!(values.len(), 5, "{measure}");
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{measure}: {values:?}"
        );
    }
    // The channel has the same documents, but no word order: no window measures.
    assert!(by_channel["metrics"]["c_npmi"].is_null());
    assert!(by_channel["metrics"]["c_v"].is_null());
    for measure in ["npmi", "u_mass"] {
        assert_eq!(
            scores(&by_tokens, measure),
            scores(&by_channel, measure),
            "{measure}"
        );
    }
    assert_eq!(by_tokens["perplexity"], by_channel["perplexity"]);
    let ids = read_lines(&channels.join("document-ids").join("test.txt"));
    assert_eq!(
        by_tokens["metrics"]["reference_documents"].as_u64(),
        Some(ids.len() as u64)
    );

    // One noise sample with the training seed reproduces the test loss of training.
    let metadata: Value =
        serde_json::from_slice(&tar_member(&model, "model.json")).expect("model.json");
    let test_loss = metadata["test"]["total"].as_f64().expect("test loss");
    let p = &by_tokens["perplexity"];
    let documents = p["documents"].as_f64().expect("documents");
    let words = p["words"].as_f64().expect("words");
    let expected = (test_loss * documents / words).exp();
    let value = p["value"].as_f64().expect("perplexity");
    assert!(
        ((value - expected) / expected).abs() < 1e-9,
        "perplexity {value}, from the test loss {expected}"
    );
    assert_eq!(p["seed"].as_u64(), Some(7));
    assert_eq!(p["samples"].as_u64(), Some(1));
}

#[test]
fn top_n_beyond_the_vocabulary_lists_every_word() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    let words = read_lines(&channels.join("auxiliary").join("vocab.txt")).len();
    let top_n = (words + 5).to_string();
    let run = ntm(
        root.path(),
        &[
            &"evaluate",
            &"--model",
            &model,
            &"--reference",
            &channels.join("test"),
            &"--top-n",
            &top_n,
            &"--json",
        ],
    );
    run.assert_success();
    assert!(
        run.stderr.contains(&format!(
            "--top-n {top_n} is more than the model's {words} words"
        )),
        "{}",
        run.stderr
    );

    let report: Value = serde_json::from_slice(&run.stdout).expect("JSON report");
    for topic in report["topic_words"].as_array().expect("topic words") {
        assert_eq!(topic.as_array().expect("words").len(), words);
    }
}

#[test]
fn perplexity_samples_are_repeatable() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    let test = channels.join("test");
    let args = ["--perplexity-samples", "4", "--seed", "3"];
    let first = evaluate_json(root.path(), &model, &test, &args);
    let second = evaluate_json(root.path(), &model, &test, &args);
    assert_eq!(first, second, "same seed and samples, same report");
    let one = evaluate_json(root.path(), &model, &test, &[]);
    let (four, single) = (
        first["perplexity"]["value"].as_f64().expect("value"),
        one["perplexity"]["value"].as_f64().expect("value"),
    );
    assert_eq!(first["perplexity"]["samples"].as_u64(), Some(4));
    assert_ne!(four, single, "four noise draws give another estimate");
    assert!(
        (four / single - 1.0).abs() < 0.05,
        "estimates far apart: {four} and {single}"
    );
}

#[test]
fn training_output_folder_stands_for_its_archive() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    let folder = model.parent().expect("model folder");
    let test = channels.join("test");
    let mut from_folder = evaluate_json(root.path(), folder, &test, &[]);
    let mut from_archive = evaluate_json(root.path(), &model, &test, &[]);
    // The report names the path it was given; everything else must agree.
    assert_eq!(from_folder["model"].as_str(), folder.to_str());
    for report in [&mut from_folder, &mut from_archive] {
        report["model"] = Value::Null;
    }
    assert_eq!(
        from_folder, from_archive,
        "the folder ntm train wrote and its model.tar.gz give the same report"
    );

    let infer = |model: &Path| {
        let run = ntm(
            root.path(),
            &[&"infer", &"--model", &model, &"--input", &test],
        );
        run.assert_success();
        run.stdout
    };
    assert_eq!(infer(folder), infer(&model));

    // A folder with neither the artifact's files nor the archive is still an error.
    let empty = root.path().join("empty");
    fs::create_dir(&empty).expect("folder");
    let run = ntm(
        root.path(),
        &[&"infer", &"--model", &empty, &"--input", &test],
    );
    let message = run.assert_failure();
    assert!(message.contains("has no model.json"), "{message}");
}

#[test]
fn reference_counted_with_another_vocabulary_is_refused() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    // The same counts beside a vocabulary whose first two words are swapped: every feature id
    // still fits the model, but ids 0 and 1 would stand for other words.
    let other = root.path().join("other");
    fs::create_dir_all(other.join("auxiliary")).expect("folder");
    fs::create_dir_all(other.join("test")).expect("folder");
    for entry in fs::read_dir(channels.join("test")).expect("test channel") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), other.join("test").join(entry.file_name())).expect("copy");
    }
    let mut words = read_lines(&channels.join("auxiliary").join("vocab.txt"));
    words.swap(0, 1);
    fs::write(
        other.join("auxiliary").join("vocab.txt"),
        words.join("\n") + "\n",
    )
    .expect("write vocabulary");

    let run = ntm(
        root.path(),
        &[
            &"evaluate",
            &"--model",
            &model,
            &"--reference",
            &other.join("test"),
        ],
    );
    let message = run.assert_failure();
    assert!(message.contains("another vocabulary"), "{message}");
    assert!(message.contains("word 1 is"), "{message}");
    assert!(message.contains("--vocabulary MODEL"), "{message}");
    let output = root.path().join("report.html");
    let run = ntm(
        root.path(),
        &[
            &"report",
            &"--model",
            &model,
            &"--output",
            &output,
            &"--reference",
            &other.join("test"),
        ],
    );
    let message = run.assert_failure();
    assert!(message.contains("another vocabulary"), "{message}");
    assert!(!output.exists(), "wrote {}", output.display());

    // Inference keeps SageMaker's leniency but warns about the mismatch.
    let run = ntm(
        root.path(),
        &[
            &"infer",
            &"--model",
            &model,
            &"--input",
            &other.join("test"),
        ],
    );
    run.assert_success();
    assert!(
        run.stderr.contains("differs from the model's vocabulary"),
        "{}",
        run.stderr
    );
    // The channels the model was trained with pass without a word.
    let run = ntm(
        root.path(),
        &[
            &"infer",
            &"--model",
            &model,
            &"--input",
            &channels.join("test"),
        ],
    );
    run.assert_success();
    assert!(!run.stderr.contains("differs"), "{}", run.stderr);
}

#[test]
fn prepare_with_model_vocabulary_gives_a_reference() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    let text = common::fixture("newsgroups-test.jsonl.gz");
    let model_words = read_lines(&channels.join("auxiliary").join("vocab.txt"));
    let prepare = |name: &str, vocabulary: &Path, extra: &[&str]| {
        let output = root.path().join(name);
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"prepare",
            &text,
            &"--output",
            &output,
            &"--vocabulary",
            &vocabulary,
        ];
        for flag in extra {
            args.push(flag);
        }
        (ntm(root.path(), &args), output)
    };

    // From the model itself, with the tokenizer flags of its training text: the channel has the
    // model's words in the model's order, and evaluate accepts it as a reference.
    let (run, from_model) = prepare("from-model", &model, &["--strip-newsgroup"]);
    run.assert_success();
    assert!(!run.stderr.contains("tokenised with"), "{}", run.stderr);
    assert_eq!(
        read_lines(&from_model.join("auxiliary").join("vocab.txt")),
        model_words
    );
    let report = evaluate_json(root.path(), &model, &from_model.join("train"), &[]);
    assert!(
        report["metrics"]["reference_documents"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{report}"
    );

    // From a vocab.txt file, the same words.
    let file = channels.join("auxiliary").join("vocab.txt");
    let (run, from_file) = prepare("from-file", &file, &["--strip-newsgroup"]);
    run.assert_success();
    assert_eq!(
        read_lines(&from_file.join("auxiliary").join("vocab.txt")),
        model_words
    );

    // Other tokenizer flags than the model's get a warning; vocabulary limits are refused.
    let (run, _) = prepare("other-flags", &model, &[]);
    run.assert_success();
    assert!(run.stderr.contains("tokenised with"), "{}", run.stderr);
    let (run, limited) = prepare("limited", &model, &["--max-features", "10"]);
    let message = run.assert_failure();
    assert!(message.contains("--max-features"), "{message}");
    assert!(!limited.exists(), "wrote {}", limited.display());
}

#[test]
fn text_table_with_embeddings() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    // Vectors for all but the first 3 vocabulary words, from a fixed pseudo-random sequence.
    let vocabulary = read_lines(&channels.join("auxiliary").join("vocab.txt"));
    let mut state = 1u64;
    let mut glove = String::new();
    for word in vocabulary.iter().skip(3) {
        glove.push_str(word);
        for _ in 0..4 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            glove.push_str(&format!(
                " {:.3}",
                (state >> 40) as f64 / (1u64 << 24) as f64 - 0.5
            ));
        }
        glove.push('\n');
    }
    let vectors = root.path().join("vectors.txt");
    fs::write(&vectors, glove).expect("write vectors");

    let tokens = channels.join("tokens").join("test.txt");
    let run = ntm(
        root.path(),
        &[
            &"evaluate",
            &"--model",
            &model,
            &"--reference",
            &tokens,
            &"--embeddings",
            &vectors,
        ],
    );
    run.assert_success();
    let out = String::from_utf8(run.stdout.clone()).expect("UTF-8 output");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[1]
        .split_whitespace()
        .eq(["topic", "TU", "NPMI", "u_mass", "c_npmi", "c_v", "WETC", "top", "words"]));
    for k in 0..5 {
        let cells: Vec<&str> = lines[2 + k].split_whitespace().collect();
        assert_eq!(cells[0], k.to_string());
        assert_eq!(cells.len(), 7 + 10, "topic line {k}: {}", lines[2 + k]);
        for cell in &cells[1..7] {
            assert!(cell.parse::<f64>().is_ok(), "topic line {k}: cell {cell}");
        }
    }
    assert!(lines[7].starts_with("  all"), "{}", lines[7]);
    assert!(out.contains("inverted RBO (p = 0.9): "), "{out}");
    assert!(out.contains("perplexity: "), "{out}");
    let warning = format!(
        "3 out of {} in vocabulary do not have embeddings!",
        vocabulary.len()
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
}

#[test]
fn bad_evaluate_input_is_reported() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    let tokens = root.path().join("odd.txt");
    fs::write(&tokens, "zzznotaword\n").expect("write tokens");
    let message = ntm(
        root.path(),
        &[&"evaluate", &"--model", &model, &"--reference", &tokens],
    )
    .assert_failure();
    assert!(
        message.contains("line 1") && message.contains("\"zzznotaword\""),
        "{message}"
    );

    let test = channels.join("test");
    let message = ntm(
        root.path(),
        &[
            &"evaluate",
            &"--model",
            &model,
            &"--reference",
            &test,
            &"--top-n",
            &"0",
        ],
    )
    .assert_failure();
    assert!(message.contains("--top-n 0"), "{message}");
    let message = ntm(
        root.path(),
        &[
            &"evaluate",
            &"--model",
            &model,
            &"--reference",
            &test,
            &"--rbo-weight",
            &"1.5",
        ],
    )
    .assert_failure();
    assert!(message.contains("--rbo-weight 1.5"), "{message}");
    let absent = root.path().join("absent");
    let message = ntm(
        root.path(),
        &[&"evaluate", &"--model", &model, &"--reference", &absent],
    )
    .assert_failure();
    assert!(message.contains("absent"), "{message}");
}

#[test]
fn huge_counts_keep_a_finite_word_total() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (channels, model) = trained(root.path());
    let vocabulary = read_lines(&channels.join("auxiliary").join("vocab.txt"));
    // Each count fits in f32, but their sum does not.
    let mut cells = vec!["0"; vocabulary.len()];
    cells[..3].fill("3e38");
    let reference = root.path().join("huge.csv");
    fs::write(&reference, format!("{}\n", cells.join(","))).expect("write reference");
    let report = evaluate_json(root.path(), &model, &reference, &[]);
    let words = report["perplexity"]["words"]
        .as_f64()
        .unwrap_or_else(|| panic!("word total in {report}"));
    assert!((words - 9e38).abs() <= 9e38 * 1e-6, "words {words}");
    let value = report["perplexity"]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("perplexity in {report}"));
    assert!(value.is_finite(), "perplexity {value}");
    assert!(value > 1.0, "perplexity {value}");
}
