//! Raw newsgroup posts to channels, channels to a model, model to topic weights, all through the
//! `ntm` binary.

mod common;

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use common::{
    entries, fixture, ntm, prepare_newsgroups, quality_metrics, read_lines, tar_member,
    topic_block, topic_weights, train_small,
};

/// Posts in the training and test fixtures.
const TRAIN_POSTS: u64 = 200;
const TEST_POSTS: u64 = 60;

fn read_summary(channels: &Path) -> serde_json::Value {
    let text = fs::read_to_string(channels.join("summary.json")).expect("read summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

fn count(summary: &serde_json::Value, split: &str, field: &str) -> u64 {
    summary[split][field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary.json has no {split}.{field} count: {summary}"))
}

/// Rows and token total of a channel, read back with the library's channel reader.
fn channel_rows(channel: &Path, feature_dim: usize) -> (usize, f64) {
    let data = ntm_formats::read_channel(channel, None, feature_dim)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", channel.display()));
    let tokens = data.rows.values().iter().map(|&v| f64::from(v)).sum();
    (data.rows.n_rows(), tokens)
}

#[test]
fn prepare_writes_channel_layout_and_counts() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "recordio");

    assert_eq!(
        entries(&channels),
        [
            "auxiliary",
            "document-ids",
            "summary.json",
            "test",
            "tokens",
            "train",
            "validation"
        ]
    );
    assert_eq!(entries(&channels.join("train")), ["train.rec"]);
    assert_eq!(entries(&channels.join("validation")), ["validation.rec"]);
    assert_eq!(entries(&channels.join("test")), ["test.rec"]);
    assert_eq!(
        entries(&channels.join("auxiliary")),
        ["tokenizer.json", "vocab.txt"]
    );

    let vocab = read_lines(&channels.join("auxiliary/vocab.txt"));
    let distinct: HashSet<&String> = vocab.iter().collect();
    assert_eq!(distinct.len(), vocab.len(), "vocab.txt repeats a word");
    assert!(
        (100..=500).contains(&vocab.len()),
        "--max-features 500 on 180 posts should keep between 100 and 500 words, kept {}",
        vocab.len()
    );
    for word in &vocab {
        assert!(
            word.chars().count() >= 2 && word.chars().all(|c| !c.is_uppercase()),
            "vocabulary word {word:?} is shorter than 2 characters or not lowercased"
        );
    }

    let tokenizer: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(channels.join("auxiliary/tokenizer.json")).expect("read tokenizer"),
    )
    .expect("tokenizer.json is JSON");
    assert_eq!(tokenizer["strip_newsgroup"], serde_json::Value::Bool(true));

    let summary = read_summary(&channels);
    assert_eq!(
        summary["vocabulary_size"].as_u64(),
        Some(vocab.len() as u64)
    );
    assert_eq!(summary["format"], "recordio");
    assert_eq!(
        count(&summary, "train", "documents_read")
            + count(&summary, "validation", "documents_read"),
        TRAIN_POSTS,
        "training and validation posts must add up to the 200 posts read"
    );
    assert_eq!(
        count(&summary, "validation", "documents_read"),
        TRAIN_POSTS / 10,
        "--validation-fraction 0.1 of 200 posts"
    );
    assert_eq!(count(&summary, "test", "documents_read"), TEST_POSTS);

    for split in ["train", "validation", "test"] {
        let read = count(&summary, split, "documents_read");
        let written = count(&summary, split, "documents_written");
        let empty = count(&summary, split, "documents_empty");
        assert_eq!(written + empty, read, "{split}: written + empty != read");

        let (rows, tokens) = channel_rows(&channels.join(split), vocab.len());
        assert_eq!(rows as u64, written, "{split}: rows in the channel file");
        assert_eq!(
            tokens,
            count(&summary, split, "tokens") as f64,
            "{split}: token total of the channel file"
        );
    }
}

#[test]
fn document_frequency_lookalikes_warn() {
    let root = tempfile::tempdir().expect("temporary folder");
    let input = fixture("newsgroups-train.jsonl.gz");
    let prepare = |name: &str, flag: &str, value: &str| {
        ntm(
            root.path(),
            &[
                &"prepare",
                &input,
                &"--output",
                &root.path().join(name),
                &flag,
                &value,
            ],
        )
    };

    let max_count = prepare("max_count", "--max-df", "1");
    max_count.assert_success();
    assert!(
        max_count.stderr.contains("--max-df 1 is a count"),
        "{}",
        max_count.stderr
    );
    let max_fraction = prepare("max_fraction", "--max-df", "1.0");
    max_fraction.assert_success();
    assert!(
        !max_fraction.stderr.contains("is a count"),
        "{}",
        max_fraction.stderr
    );

    let min_fraction = prepare("min_fraction", "--min-df", "1.0");
    assert!(
        min_fraction.stderr.contains("--min-df 1.0 is a fraction"),
        "{}",
        min_fraction.stderr
    );
    let min_count = prepare("min_count", "--min-df", "1");
    min_count.assert_success();
    assert!(
        !min_count.stderr.contains("is a fraction"),
        "{}",
        min_count.stderr
    );
}

#[test]
fn train_logs_sagemaker_lines_and_learns() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "recordio");
    let model = root.path().join("model");
    let run = train_small(root.path(), &channels, &model, "0", "6");

    assert_eq!(entries(&model), ["model.tar.gz"]);
    let log = &run.stderr;
    let messages = run.log_messages();
    for line in [
        "#quality_metric: host=algo-1, epoch=1, train total_loss <loss>=",
        "#quality_metric: host=algo-1, epoch=1, validation total_loss <loss>=",
        "Best model based on early stopping at epoch",
        "Final configuration: {",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(line)),
            "no log line starts with {line:?}:\n{log}"
        );
    }

    let train = quality_metrics(log, "train");
    let validation = quality_metrics(log, "validation");
    assert!(train.len() >= 2, "fewer than 2 epochs ran:\n{log}");
    assert_eq!(
        train.len(),
        validation.len(),
        "one validation loss per epoch"
    );
    for (epoch, loss) in train.iter().chain(&validation) {
        assert!(loss.is_finite(), "epoch {epoch}: loss {loss}");
        assert!(*loss > 0.0, "epoch {epoch}: loss {loss}");
    }
    let (first, last) = (train[0].1, train[train.len() - 1].1);
    assert!(
        last < first,
        "training loss of the last epoch ({last}) is not below the first ({first})"
    );

    let (header, topics) = topic_block(log);
    assert!(
        header.starts_with("Topics from epoch:final (num_topics:5)"),
        "topic header: {header}"
    );
    assert_eq!(topics.len(), 5, "topic lines:\n{log}");
    let vocab: HashSet<String> = read_lines(&channels.join("auxiliary/vocab.txt"))
        .into_iter()
        .collect();
    for words in &topics {
        assert_eq!(words.len(), 20, "a topic line lists the top 20 words");
        for word in words {
            assert!(
                vocab.contains(word) && word.chars().any(char::is_alphabetic),
                "topic word {word:?} is not a word of vocab.txt"
            );
        }
    }
    let top10: Vec<HashSet<&String>> = topics.iter().map(|t| t[..10].iter().collect()).collect();
    assert!(
        top10.iter().any(|t| *t != top10[0]),
        "all 5 topics have the same top-10 words: {topics:?}"
    );

    let archive = model.join("model.tar.gz");
    let metadata: serde_json::Value =
        serde_json::from_slice(&tar_member(&archive, "model.json")).expect("model.json is JSON");
    assert_eq!(metadata["hyperparameters"]["num_topics"], "5");
    let archived_vocab = String::from_utf8(tar_member(&archive, "vocab.txt")).expect("UTF-8");
    assert_eq!(
        archived_vocab.lines().collect::<Vec<_>>(),
        read_lines(&channels.join("auxiliary/vocab.txt"))
    );
}

#[test]
fn infer_writes_normalised_weights_per_document() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "recordio");
    let model = root.path().join("model");
    train_small(root.path(), &channels, &model, "0", "4");
    let archive = model.join("model.tar.gz");
    let test = channels.join("test");

    let first = ntm(
        root.path(),
        &[&"infer", &"--model", &archive, &"--input", &test],
    );
    first.assert_success();
    let weights = topic_weights(&first.stdout);
    let documents = count(&read_summary(&channels), "test", "documents_written");
    assert_eq!(
        weights.len() as u64,
        documents,
        "one line per test document"
    );
    let ids = common::read_lines(&channels.join("document-ids").join("test.txt"));
    assert_eq!(ids.len(), weights.len(), "one document id per output line");
    assert!(
        ids.iter().all(|id| id.contains('/')),
        "ids are newsgroup/file names: {ids:?}"
    );
    for (i, row) in weights.iter().enumerate() {
        assert_eq!(row.len(), 5, "document {i}: one weight per topic");
        for w in row {
            assert!(w.is_finite(), "document {i}: weight {w}");
            assert!(*w >= 0.0, "document {i}: weight {w}");
        }
        let sum: f64 = row.iter().sum();
        assert!(
            (sum - 1.0).abs() <= 1e-5,
            "document {i}: weights sum to {sum}"
        );
    }
    let spread = weights
        .iter()
        .flatten()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &w| (lo.min(w), hi.max(w)));
    assert!(spread.0 < spread.1, "every weight is the same value");

    let second = ntm(
        root.path(),
        &[&"infer", &"--model", &archive, &"--input", &test],
    );
    second.assert_success();
    assert!(first.stdout == second.stdout, "two inference runs differ");

    let output = root.path().join("weights.jsonl");
    ntm(
        root.path(),
        &[
            &"infer",
            &"--model",
            &archive,
            &"--input",
            &test,
            &"--output",
            &output,
        ],
    )
    .assert_success();
    let written = fs::read(&output).expect("read --output file");
    assert!(
        written == first.stdout,
        "--output file differs from standard output"
    );
}

#[test]
fn csv_channels_train_same_model_as_recordio() {
    let root = tempfile::tempdir().expect("temporary folder");
    let csv = prepare_newsgroups(root.path(), "csv", "csv");
    let recordio = prepare_newsgroups(root.path(), "recordio", "recordio");

    let summary = read_summary(&csv);
    assert_eq!(summary["format"], "csv");
    let feature_dim = summary["vocabulary_size"]
        .as_u64()
        .expect("vocabulary size") as usize;
    for split in ["train", "validation", "test"] {
        let file = format!("{split}.csv");
        assert_eq!(entries(&csv.join(split)), [file.as_str()]);
        let lines = read_lines(&csv.join(split).join(&file));
        assert_eq!(
            lines.len() as u64,
            count(&summary, split, "documents_written"),
            "{split}: one CSV line per document"
        );
        let mut tokens = 0.0;
        for (i, line) in lines.iter().enumerate() {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), feature_dim, "{file} line {}: columns", i + 1);
            for cell in cells {
                tokens += cell
                    .parse::<f64>()
                    .unwrap_or_else(|e| panic!("{file} line {}: {cell:?}: {e}", i + 1));
            }
        }
        assert_eq!(
            tokens,
            count(&summary, split, "tokens") as f64,
            "{split}: tokens"
        );
    }
    assert_eq!(
        fs::read(csv.join("auxiliary/vocab.txt")).expect("vocab"),
        fs::read(recordio.join("auxiliary/vocab.txt")).expect("vocab"),
        "the channel format changes the vocabulary"
    );

    let csv_model = root.path().join("csv-model");
    let recordio_model = root.path().join("recordio-model");
    let csv_run = train_small(root.path(), &csv, &csv_model, "3", "4");
    train_small(root.path(), &recordio, &recordio_model, "3", "4");
    assert!(
        quality_metrics(&csv_run.stderr, "train").len() >= 2,
        "training on CSV channels ran fewer than 2 epochs"
    );
    let csv_weights = tar_member(&csv_model.join("model.tar.gz"), "model.safetensors");
    let recordio_weights = tar_member(&recordio_model.join("model.tar.gz"), "model.safetensors");
    assert!(
        csv_weights == recordio_weights,
        "the same documents as CSV and as RecordIO trained different weights"
    );

    let infer = |channel: &Path| {
        let run = ntm(
            root.path(),
            &[
                &"infer",
                &"--model",
                &csv_model.join("model.tar.gz"),
                &"--input",
                &channel,
            ],
        );
        run.assert_success();
        run.stdout
    };
    let from_csv = infer(&csv.join("test"));
    assert_eq!(
        topic_weights(&from_csv).len() as u64,
        count(&summary, "test", "documents_written")
    );
    assert!(
        from_csv == infer(&recordio.join("test")),
        "inference on the CSV and RecordIO test channels differs"
    );
}
