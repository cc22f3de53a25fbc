//! SageMaker's default hyperparameters on 20 Newsgroups, through the `ntm` binary: the shipped
//! sample in every run, and the full bydate split when its files are given.
//!
//! The full-corpus test is ignored by default. Run it with the paths of both splits:
//!
//! ```text
//! NTM_20NEWS_TRAIN=/path/to/20news-bydate-train.jsonl.gz \
//! NTM_20NEWS_TEST=/path/to/20news-bydate-test.jsonl.gz \
//!     cargo test --release -p ntm-cli --test newsgroups_defaults -- --ignored
//! ```

mod common;

use std::path::{Path, PathBuf};

use common::{log_messages, ntm, topic_block, topic_weights};

/// Prepares channels of 2,000 words from a training and a test file, as docs/quality.md does.
fn prepare(root: &Path, train: &Path, test: &Path) -> PathBuf {
    let channels = root.join("channels");
    let run = ntm(
        root,
        &[
            &"prepare",
            &train,
            &"--test",
            &test,
            &"--output",
            &channels,
            &"--strip-newsgroup",
            &"--max-features",
            &"2000",
            &"--min-df",
            &"5",
            &"--max-df",
            &"0.5",
        ],
    );
    run.assert_success();
    channels
}

/// Trains 20 topics with every other hyperparameter at SageMaker's default; returns the log.
fn train_defaults(root: &Path, channels: &Path) -> String {
    let run = ntm(
        root,
        &[
            &"train",
            &"--data",
            &channels,
            &"--output",
            &root.join("model"),
            &"--num-topics",
            &"20",
            &"--seed",
            &"0",
        ],
    );
    run.assert_success();
    run.stderr
}

/// Reads a number that follows `label` in the final log lines, such as `TU@10 `.
fn logged_metric(log: &str, label: &str) -> f64 {
    log_messages(log)
        .iter()
        .rev()
        .find_map(|message| {
            let rest = &message[message.find(label)? + label.len()..];
            let end = rest.find([',', ' ']).unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .unwrap_or_else(|| panic!("no `{label}` value in the log:\n{log}"))
}

#[test]
fn defaults_on_shipped_sample_give_distinct_topics() {
    // With the decoder started in Glorot's range, most of the 20 topics were mixtures of the
    // same frequent words (TU@10 about 0.17). From its unit-variance start they separate (about
    // 0.7). NPMI@10 is not checked, because the sample's 1,000 test posts are too few for the
    // specific top words to co-occur.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare(
        root.path(),
        &data.join("20news-sample-train.jsonl.gz"),
        &data.join("20news-sample-test.jsonl.gz"),
    );
    let log = train_defaults(root.path(), &channels);

    let (_, topics) = topic_block(&log);
    assert_eq!(topics.len(), 20, "topic lines:\n{log}");
    let tu = logged_metric(&log, "TU@10 ");
    assert!(tu >= 0.4, "TU@10 {tu} on the shipped sample:\n{log}");
}

#[test]
#[ignore = "needs the 20 Newsgroups bydate splits; set NTM_20NEWS_TRAIN and NTM_20NEWS_TEST"]
fn defaults_on_full_corpus_meet_targets() {
    let split = |name: &str| {
        PathBuf::from(
            std::env::var_os(name)
                .unwrap_or_else(|| panic!("set {name} to a 20news-bydate .jsonl.gz file")),
        )
    };
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare(
        root.path(),
        &split("NTM_20NEWS_TRAIN"),
        &split("NTM_20NEWS_TEST"),
    );
    let log = train_defaults(root.path(), &channels);

    assert!(
        log.contains("#quality_metric: host=algo-1, epoch="),
        "no SageMaker metric lines:\n{log}"
    );
    let (_, topics) = topic_block(&log);
    assert_eq!(topics.len(), 20, "topic lines:\n{log}");
    let tu = logged_metric(&log, "TU@10 ");
    assert!(tu >= 0.5, "TU@10 {tu}:\n{log}");
    let npmi = logged_metric(&log, "NPMI@10 ");
    assert!(npmi >= 0.05, "NPMI@10 {npmi}:\n{log}");

    let infer = ntm(
        root.path(),
        &[
            &"infer",
            &"--model",
            &root.path().join("model/model.tar.gz"),
            &"--input",
            &channels.join("test"),
        ],
    );
    infer.assert_success();
    let weights = topic_weights(&infer.stdout);
    assert_eq!(weights.len(), 7_454, "one line per test document");
    for (line, row) in weights.iter().enumerate() {
        let sum: f64 = row.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-5,
            "line {}: topic weights sum to {sum}",
            line + 1
        );
    }
}
