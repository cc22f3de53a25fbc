//! `ntm report` on a small model trained on the newsgroup sample, checked against what
//! `ntm evaluate` and `ntm infer` compute for the same model and reference.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{
    entries, evaluate_json, ntm, prepare_newsgroups, read_lines, topic_weights, train_small,
};
use serde_json::Value;

/// A prepared channel folder and a 5-topic model trained on it, shared by the tests.
struct Trained {
    root: PathBuf,
    channels: PathBuf,
    model: PathBuf,
}

/// Prepares the sample and trains once per test binary. The folder is kept under Cargo's
/// temporary folder for integration tests, because every test of the binary reads it.
fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temporary folder")
            .keep();
        let channels = prepare_newsgroups(&root, "channels", "recordio");
        let model_dir = root.join("model");
        train_small(&root, &channels, &model_dir, "11", "6");
        Trained {
            model: model_dir.join("model.tar.gz"),
            root,
            channels,
        }
    })
}

/// Runs `ntm report` into a fresh folder and returns the page.
fn report(name: &str, extra: &[&dyn AsRef<std::ffi::OsStr>]) -> (PathBuf, String) {
    let t = trained();
    let output = t.root.join(name).join("nested").join("report.html");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"report",
        &"--model",
        &t.model,
        &"--output",
        &output,
        &"--threads",
        &"1",
    ];
    args.extend_from_slice(extra);
    ntm(&t.root, &args).assert_success();
    let page = fs::read_to_string(&output)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", output.display()));
    (output, page)
}

fn evaluate_trained(reference: &Path) -> Value {
    let t = trained();
    evaluate_json(&t.root, &t.model, reference, &["--threads", "1"])
}

/// Counts the `<svg` elements whose id is `id`, or ends with `suffix` when `id` ends in `*`.
fn count_charts(page: &str, pattern: &str) -> usize {
    page.split("<svg ")
        .skip(1)
        .filter(|svg| {
            let id = svg
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("");
            match pattern.strip_prefix('*') {
                Some(suffix) => id.ends_with(suffix),
                None => id == pattern,
            }
        })
        .count()
}

/// Formats a share as the report does: two decimals below 10%, one above.
fn percent(share: f64) -> String {
    let value = share * 100.0;
    if value.abs() >= 10.0 {
        format!("{value:.1}%")
    } else {
        format!("{value:.2}%")
    }
}

#[test]
fn report_with_tokens_reference_draws_every_chart() {
    let t = trained();
    let tokens = t.channels.join("tokens").join("test.txt");
    let (output, page) = report("tokens", &[&"--reference", &tokens]);

    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(count_charts(&page, "loss-chart"), 1);
    assert_eq!(
        count_charts(&page, "*-words"),
        5,
        "one word chart per topic"
    );
    assert_eq!(count_charts(&page, "prevalence-chart"), 1);
    assert_eq!(count_charts(&page, "topic-map"), 1);
    assert_eq!(page.matches("<rect class=\"bar\"").count(), 5 * 10 + 5);
    assert!(!page.contains("NaN"));
    assert!(page.contains(">c_v</th>"), "tokenised reference adds c_v");

    // No temporary file is left beside the report.
    let names = entries(output.parent().expect("folder"));
    assert_eq!(names, ["report.html"]);

    // Top words and overall metrics agree with `ntm evaluate` on the same reference.
    let evaluated = evaluate_trained(&tokens);
    for (k, words) in evaluated["topic_words"]
        .as_array()
        .expect("topic_words")
        .iter()
        .enumerate()
    {
        let words: Vec<&str> = words
            .as_array()
            .expect("words")
            .iter()
            .map(|w| w.as_str().expect("word"))
            .collect();
        let row = format!("{k}</th><td>{}</td>", words.join(" "));
        assert!(page.contains(&row), "table row of topic {k}: {row}");
    }
    for measure in ["npmi", "u_mass", "c_npmi", "c_v"] {
        let overall = evaluated["metrics"][measure]["overall"]
            .as_f64()
            .expect("overall");
        let cell = format!("<td class=\"num\">{overall:.4}</td>");
        let footer = page.split("<tfoot>").nth(1).expect("table footer");
        assert!(footer.contains(&cell), "{measure} overall {cell}");
    }
    let perplexity = evaluated["perplexity"]["value"]
        .as_f64()
        .expect("perplexity");
    assert!(
        page.contains(&format!("<dd>{perplexity:.2}</dd>")),
        "perplexity {perplexity:.2}"
    );
}

#[test]
fn prevalence_is_mean_of_infer_weights() {
    let t = trained();
    let tokens = t.channels.join("tokens").join("test.txt");
    let (_, page) = report("prevalence", &[&"--reference", &tokens]);

    let run = ntm(
        &t.root,
        &[
            &"infer",
            &"--model",
            &t.model,
            &"--input",
            &t.channels.join("test"),
            &"--threads",
            &"1",
        ],
    );
    run.assert_success();
    let weights = topic_weights(&run.stdout);
    // The channel keeps documents without vocabulary words; prevalence leaves them out.
    let lines = read_lines(&tokens);
    assert_eq!(
        weights.len(),
        lines.len(),
        "one weight row per tokenised line"
    );
    let kept: Vec<&Vec<f64>> = weights
        .iter()
        .zip(&lines)
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(w, _)| w)
        .collect();
    assert!(page.contains(&format!("over the {} documents", kept.len())));
    let mut total = 0.0;
    for k in 0..5 {
        let mean = kept.iter().map(|w| w[k]).sum::<f64>() / kept.len() as f64;
        total += mean;
        let title = format!("<title>topic {k}: mean weight {}</title>", percent(mean));
        assert!(page.contains(&title), "prevalence of topic {k}: {title}");
    }
    assert!((total - 1.0).abs() < 1e-4, "mean weights sum to {total}");
}

#[test]
fn report_with_channel_reference_omits_window_measures() {
    let t = trained();
    let (_, page) = report("channel", &[&"--reference", &t.channels.join("test")]);
    assert_eq!(count_charts(&page, "prevalence-chart"), 1);
    assert!(page.contains(">NPMI</th>"));
    assert!(!page.contains(">c_v</th>"));
    assert!(page.contains("need a tokenised-documents reference"));
}

#[test]
fn report_without_reference_says_what_is_missing() {
    let (_, page) = report("alone", &[&"--top-n", &"7"]);
    assert!(page.contains("Prevalence needs a reference corpus"));
    assert_eq!(count_charts(&page, "prevalence-chart"), 0);
    assert_eq!(count_charts(&page, "*-words"), 5);
    assert_eq!(page.matches("<rect class=\"bar\"").count(), 5 * 7);
    assert!(!page.contains(">NPMI</th>"));
    assert!(page.contains(">TU</th>"));
    assert!(page.contains("Inverted RBO"));
}

#[test]
fn report_is_byte_identical_across_runs() {
    let t = trained();
    let tokens = t.channels.join("tokens").join("test.txt");
    let (_, first) = report("repeat-1", &[&"--reference", &tokens]);
    let (_, second) = report("repeat-2", &[&"--reference", &tokens]);
    assert!(first == second, "two runs wrote different pages");
}

#[test]
fn report_rejects_bad_arguments() {
    let t = trained();
    let output = t.root.join("rejected").join("report.html");

    let run = ntm(
        &t.root,
        &[
            &"report",
            &"--model",
            &t.model,
            &"--output",
            &output,
            &"--top-n",
            &"0",
        ],
    );
    let message = run.assert_failure();
    assert!(message.contains("invalid --top-n 0"), "{message}");

    let missing = t.root.join("no-such-model.tar.gz");
    let run = ntm(
        &t.root,
        &[&"report", &"--model", &missing, &"--output", &output],
    );
    let message = run.assert_failure();
    assert!(message.contains("no-such-model.tar.gz"), "{message}");

    let bad_words = t.root.join("bad-tokens.txt");
    let vocabulary = read_lines(&t.channels.join("auxiliary").join("vocab.txt"));
    let known = format!("{} {}\nqqqqunknownword\n", vocabulary[0], vocabulary[1]);
    fs::write(&bad_words, known).expect("write tokens");
    let run = ntm(
        &t.root,
        &[
            &"report",
            &"--model",
            &t.model,
            &"--output",
            &output,
            &"--reference",
            &bad_words,
        ],
    );
    let message = run.assert_failure();
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("qqqqunknownword"), "{message}");
    assert!(!output.exists(), "a failed run leaves no report");
}
