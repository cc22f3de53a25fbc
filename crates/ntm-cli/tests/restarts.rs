//! `ntm train --restarts N`: every restart is scored by the NPMI of its topics on the training
//! channel, and the model written is the best one, the same as a single run with its seed.

mod common;

use std::path::{Path, PathBuf};

use common::{evaluate_json, tar_member, train_four_block, Run};

/// Trains for 4 epochs into `root/name` and returns the run and its archive.
fn train(root: &Path, name: &str, flags: &[&str]) -> (Run, PathBuf) {
    let (run, output) = train_four_block(root, name, "4", flags);
    (run, output.join("model.tar.gz"))
}

/// Returns the train-channel NPMI@10 values that the log reports, in order.
fn coherence_scores(run: &Run) -> Vec<f64> {
    run.log_messages()
        .into_iter()
        .filter_map(|m| m.strip_prefix("Topic coherence on the train channel: NPMI@10 "))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .and_then(|value| value.parse().ok())
                .expect("a number after NPMI@10")
        })
        .collect()
}

#[test]
fn restarts_keep_the_most_coherent_run() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, archive) = train(
        root.path(),
        "restarted",
        &["--restarts", "3", "--seed", "7"],
    );
    run.assert_success();

    let scores = coherence_scores(&run);
    assert_eq!(scores.len(), 3, "one score per restart");
    let best = (0..3)
        .reduce(|a, b| if scores[b] > scores[a] { b } else { a })
        .expect("three scores");
    let kept_seed = 7 + best as u64;
    let kept_line =
        format!("Keeping the run with seed {kept_seed}, the best score of the restarts.");
    assert!(
        run.log_messages().contains(&kept_line.as_str()),
        "missing {kept_line:?}"
    );

    let metadata: serde_json::Value =
        serde_json::from_slice(&tar_member(&archive, "model.json")).expect("model.json");
    assert_eq!(metadata["restart_seed"], kept_seed);
    assert_eq!(metadata["hyperparameters"]["restarts"], "3");
    assert_eq!(metadata["hyperparameters"]["seed"], "7");

    let seed = kept_seed.to_string();
    let (single, single_archive) = train(root.path(), "single", &["--seed", &seed]);
    single.assert_success();
    assert_eq!(
        tar_member(&archive, "model.safetensors"),
        tar_member(&single_archive, "model.safetensors"),
        "the kept run differs from a single run with its seed"
    );
}

#[test]
fn restarts_out_of_range_are_rejected() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, archive) = train(root.path(), "model", &["--restarts", "0"]);
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("restarts"), "{}", run.stderr);
    assert!(run.stderr.contains("integer 1..100"), "{}", run.stderr);
    assert!(!archive.exists());
}

#[test]
fn streamed_channel_score_matches_evaluate() {
    let root = tempfile::tempdir().expect("temporary folder");
    let flags = [
        "--restarts",
        "2",
        "--seed",
        "3",
        "--in-memory-limit-mb",
        "0",
    ];
    let (run, archive) = train(root.path(), "streamed", &flags);
    run.assert_success();
    assert!(
        run.log_messages().iter().any(|m| m.contains("streamed")),
        "the training channel was not streamed"
    );
    let kept = coherence_scores(&run)
        .into_iter()
        .reduce(f64::max)
        .expect("two scores");

    // `ntm evaluate` computes the same NPMI@10 of the kept model over the training channel.
    let reference = root.path().join("data").join("train");
    let report = evaluate_json(root.path(), &archive, &reference, &[]);
    let npmi = report["metrics"]["npmi"]["overall"]
        .as_f64()
        .expect("an overall NPMI");
    assert!(
        (npmi - kept).abs() < 1e-4,
        "evaluate {npmi}, training log {kept}"
    );
}

/// Asserts that the log line on the topics chosen across runs reports `evaluated` after
/// `label`: their train-channel `NPMI@10` or their `TD@25`.
fn assert_logged_selection(run: &Run, label: &str, evaluated: f64) {
    let logged: f64 = run
        .log_messages()
        .into_iter()
        .find_map(|m| m.strip_prefix("Chose "))
        .and_then(|rest| rest.split(&format!("{label} ")).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("missing {label} in the log line on the chosen topics"));
    assert!(
        (evaluated - logged).abs() < 1e-4,
        "{label}: evaluate {evaluated}, selection log {logged}"
    );
}

/// Trains with topics chosen across three restarts, checks the log and `model.json`, and that
/// `ntm evaluate` finds the logged NPMI@10 of the chosen topics in the written model.
fn check_topic_selection(extra: &[&str], streamed: bool) {
    let root = tempfile::tempdir().expect("temporary folder");
    let mut flags = vec![
        "--restarts",
        "3",
        "--seed",
        "5",
        "--restart-selection",
        "topics",
    ];
    flags.extend_from_slice(extra);
    let (run, archive) = train(root.path(), "pooled", &flags);
    run.assert_success();
    assert_eq!(
        run.log_messages().iter().any(|m| m.contains("streamed")),
        streamed,
        "the training channel was not read as expected"
    );
    assert_eq!(coherence_scores(&run).len(), 3, "one score per restart");
    assert!(
        run.log_messages()
            .iter()
            .any(|m| m.starts_with("Keeping 4 topics from")),
        "no refit line in {:?}",
        run.log_messages()
    );

    let metadata: serde_json::Value =
        serde_json::from_slice(&tar_member(&archive, "model.json")).expect("model.json");
    assert_eq!(metadata["hyperparameters"]["restart_selection"], "topics");
    let sources = metadata["topic_sources"]
        .as_array()
        .expect("topic_sources in model.json");
    assert_eq!(sources.len(), 4);
    // The log maps the refit's best epoch to the history's number, which model.json keeps.
    let best_epoch = metadata["best_epoch"].as_u64().expect("best_epoch");
    assert!(
        run.log_messages().iter().any(|m| {
            m.starts_with("The refit's epoch")
                && m.contains(&format!("is epoch {best_epoch} of the model's history"))
        }),
        "no line maps the refit to epoch {best_epoch}: {:?}",
        run.log_messages()
    );
    for source in sources {
        let seed = source["seed"].as_u64().expect("a seed");
        let topic = source["topic"].as_u64().expect("a topic");
        assert!((5..8).contains(&seed), "seed out of the restarts: {source}");
        assert!(topic < 4, "topic out of range: {source}");
    }

    // The written model's decoder contains the chosen topics, so `ntm evaluate` over the
    // training channel gives the NPMI@10 that the selection logged.
    let reference = root.path().join("data").join("train");
    let report = evaluate_json(root.path(), &archive, &reference, &[]);
    let npmi = report["metrics"]["npmi"]["overall"]
        .as_f64()
        .expect("an overall NPMI");
    assert_logged_selection(&run, "NPMI@10", npmi);

    // So do the chosen topics' top 25 words: the diversity the selection logged is the model's.
    let report = evaluate_json(root.path(), &archive, &reference, &["--top-n", "25"]);
    let diversity = report["metrics"]["topic_diversity"]
        .as_f64()
        .expect("a topic diversity");
    assert_logged_selection(&run, "TD@25", diversity);
}

#[test]
fn topic_selection_in_memory() {
    check_topic_selection(&[], false);
}

#[test]
fn topic_selection_over_a_streamed_channel() {
    check_topic_selection(&["--in-memory-limit-mb", "0"], true);
}

#[test]
fn topic_selection_needs_restarts() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, archive) = train(root.path(), "model", &["--restart-selection", "topics"]);
    let message = run.assert_failure();
    assert!(message.contains("restart_selection"), "{message}");
    assert!(message.contains("restarts is 1"), "{message}");
    assert!(!archive.exists());
}
