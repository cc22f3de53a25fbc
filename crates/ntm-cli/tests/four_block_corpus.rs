//! Training on a synthetic corpus of 4 disjoint 5-word blocks must recover the blocks as topics
//! without posterior collapse, and early stopping must follow its documented rules there.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use common::{csv_channels, fixture, named_losses, ntm, quality_metrics, read_lines, Run};

/// Number of word blocks in the corpus, and of topics trained on it.
const BLOCKS: usize = 4;
/// Words per block.
const BLOCK_WORDS: usize = 5;

/// Builds the data folder: train, optionally validation, and the vocabulary.
fn corpus(root: &Path, with_validation: bool) -> PathBuf {
    let validation = fixture("four-block-corpus/validation.csv");
    csv_channels(
        root,
        "data",
        &fixture("four-block-corpus/train.csv"),
        with_validation.then_some(validation.as_path()),
        Some(&fixture("four-block-corpus/vocab.txt")),
    )
}

fn train(root: &Path, data: &Path, hyperparameters: &str) -> (Run, PathBuf) {
    let output = root.join("model");
    let run = ntm(
        root,
        &[
            &"train",
            &"--data",
            &data,
            &"--output",
            &output,
            &"--hyperparameters",
            &fixture(hyperparameters),
            &"--threads",
            &"1",
        ],
    );
    run.assert_success();
    (run, output.join("model.tar.gz"))
}

/// Topic uniqueness: the mean over topics of `(1/N) Σ_i 1/cnt(w_i)`, where `cnt(w)` counts the
/// topics whose list contains `w`.
fn topic_uniqueness(topics: &[Vec<String>]) -> f64 {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for topic in topics {
        for word in topic {
            *counts.entry(word).or_default() += 1;
        }
    }
    let per_topic = topics.iter().map(|topic| {
        topic
            .iter()
            .map(|w| 1.0 / counts[w.as_str()] as f64)
            .sum::<f64>()
            / topic.len() as f64
    });
    per_topic.sum::<f64>() / topics.len() as f64
}

#[test]
fn recovers_blocks_without_collapse() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = corpus(root.path(), true);
    let (run, model) = train(root.path(), &data, "four-block-corpus/hyperparameters.json");
    let log = &run.stderr;

    // Every epoch's losses are finite.
    for channel in ["train", "validation"] {
        let losses = quality_metrics(log, channel);
        assert!(!losses.is_empty(), "no {channel} losses in the log:\n{log}");
        for (epoch, loss) in losses {
            assert!(loss.is_finite(), "epoch {epoch}: {channel} loss {loss}");
        }
    }

    // Topics: the top-5 words of most topics are exactly one block.
    let vocab = read_lines(&fixture("four-block-corpus/vocab.txt"));
    let blocks: Vec<BTreeSet<&str>> = vocab
        .chunks(BLOCK_WORDS)
        .map(|block| block.iter().map(String::as_str).collect())
        .collect();
    let (header, topics) = common::topic_block(log);
    assert!(header.contains("(num_topics:4)"), "topic header: {header}");
    assert_eq!(topics.len(), BLOCKS, "topic lines:\n{log}");
    let top5: Vec<Vec<String>> = topics.iter().map(|t| t[..BLOCK_WORDS].to_vec()).collect();
    let matching = top5
        .iter()
        .filter(|words| {
            let set: BTreeSet<&str> = words.iter().map(String::as_str).collect();
            blocks.contains(&set)
        })
        .count();
    assert!(
        matching >= 3,
        "{matching} of 4 topics have a top-5 set equal to one block: {top5:?}"
    );
    let tu = topic_uniqueness(&top5);
    assert!(tu >= 0.75, "TU of the top-5 lists is {tu:.3}: {top5:?}");

    // Validation documents: a clear largest topic, shared within each block.
    let validation = data.join("validation");
    let inference = ntm(
        root.path(),
        &[&"infer", &"--model", &model, &"--input", &validation],
    );
    inference.assert_success();
    let weights = common::topic_weights(&inference.stdout);
    let truth: Vec<usize> = read_lines(&fixture("four-block-corpus/validation_blocks.txt"))
        .iter()
        .map(|line| line.trim().parse().expect("block number"))
        .collect();
    assert_eq!(
        weights.len(),
        truth.len(),
        "one weight row per validation document"
    );
    let argmax = |row: &Vec<f64>| {
        (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .expect("non-empty row")
    };
    let confident = weights
        .iter()
        .filter(|row| row.iter().copied().fold(f64::MIN, f64::max) >= 0.5)
        .count();
    let share = confident as f64 / weights.len() as f64;
    assert!(
        share >= 0.9,
        "only {confident} of {} validation documents have a topic weight >= 0.5",
        weights.len()
    );
    let mut agreeing = 0;
    for block in 0..BLOCKS {
        let mut votes = [0usize; BLOCKS];
        for (row, _) in weights.iter().zip(&truth).filter(|(_, &b)| b == block) {
            votes[argmax(row)] += 1;
        }
        agreeing += votes.iter().max().copied().unwrap_or(0);
    }
    let agreement = agreeing as f64 / weights.len() as f64;
    assert!(
        agreement >= 0.9,
        "documents of the same block share their largest topic in only {:.0}% of cases",
        agreement * 100.0
    );

    // No posterior collapse: the KL term stays above 0.01 nats per document.
    for prefix in ["", "validation "] {
        let kld = named_losses(log, prefix, "kld");
        let last = *kld
            .last()
            .unwrap_or_else(|| panic!("no {prefix}kld lines:\n{log}"));
        assert!(
            last > 0.01,
            "final {prefix}KL term {last} nats per document"
        );
    }
}

#[test]
fn patience_beyond_epochs_runs_every_epoch() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = corpus(root.path(), true);
    let (run, _) = train(
        root.path(),
        &data,
        "four-block-corpus/hyperparameters_patience_beyond_epochs.json",
    );
    let started: Vec<&str> = run
        .log_messages()
        .into_iter()
        .filter(|m| m.starts_with("# Starting training for epoch"))
        .collect();
    assert_eq!(
        started.len(),
        5,
        "epochs=5 with num_patience_epochs=6 must run exactly 5 epochs:\n{}",
        run.stderr
    );
    assert_eq!(quality_metrics(&run.stderr, "validation").len(), 5);
}

#[test]
fn without_validation_training_loss_is_monitored() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = corpus(root.path(), false);
    let (run, _) = train(
        root.path(),
        &data,
        "four-block-corpus/hyperparameters_patience_beyond_epochs.json",
    );
    assert!(
        run.log_messages()
            .iter()
            .any(|m| m.contains("No validation channel") && m.contains("training loss")),
        "the log does not say that early stopping monitors the training loss:\n{}",
        run.stderr
    );
    assert!(quality_metrics(&run.stderr, "validation").is_empty());
    assert_eq!(quality_metrics(&run.stderr, "train").len(), 5);
}
