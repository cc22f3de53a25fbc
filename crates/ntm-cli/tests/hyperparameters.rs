//! Hyperparameters from a SageMaker `hyperparameters.json` and from flags: every invalid value is
//! rejected before any data is read, string values are accepted, and flags override the file.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{csv_channels, entries, fixture, ntm, quality_metrics, tar_member, Run};

/// Builds a data folder whose train channel is valid, so that any failure comes from the
/// hyperparameters.
fn valid_data(root: &Path) -> PathBuf {
    csv_channels(
        root,
        "data",
        &fixture("four-block-corpus/train.csv"),
        None,
        Some(&fixture("four-block-corpus/vocab.txt")),
    )
}

fn train(root: &Path, hyperparameters: &Path, flags: &[&str]) -> (Run, PathBuf) {
    let data = valid_data(root);
    let output = root.join("model");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"train",
        &"--data",
        &data,
        &"--output",
        &output,
        &"--hyperparameters",
        &hyperparameters,
        &"--threads",
        &"1",
    ];
    for flag in flags {
        args.push(flag);
    }
    (ntm(root, &args), output)
}

fn write_json(path: &Path, value: &serde_json::Value) {
    fs::write(path, serde_json::to_vec_pretty(value).expect("JSON")).expect("write JSON");
}

/// Asserts that a run failed on its hyperparameters before reading any channel.
fn assert_rejected_before_data(run: &Run, output: &Path, case: &str) -> String {
    let message = run.assert_failure();
    assert!(
        !run.stderr.contains("train channel:"),
        "{case}: the train channel was read before the hyperparameters were rejected:\n{}",
        run.stderr
    );
    assert!(
        !output.exists(),
        "{case}: the output folder was created: {:?}",
        entries(output)
    );
    message
}

#[test]
fn invalid_values_rejected_before_data() {
    let cases: Vec<serde_json::Value> = serde_json::from_slice(
        &fs::read(fixture("hyperparameter-validation/bad_cases.json")).expect("read cases"),
    )
    .expect("cases are JSON");
    assert!(cases.len() >= 14, "the case table lost entries");
    for case in &cases {
        let key = case["parameter"].as_str().expect("parameter");
        let value = case["value"].as_str().expect("value");
        let allowed = case["allowed"].as_str().expect("allowed");
        let name = format!("{key}={value}");

        let root = tempfile::tempdir().expect("temporary folder");
        let file = root.path().join("hyperparameters.json");
        write_json(&file, &case["hyperparameters"]);
        let (run, output) = train(root.path(), &file, &[]);
        let message = assert_rejected_before_data(&run, &output, &name);

        assert!(
            message.contains(key),
            "{name}: message lacks the key: {message}"
        );
        assert!(
            message.contains(&format!("\"{value}\"")),
            "{name}: message lacks the value: {message}"
        );
        assert!(
            message.contains(&format!("`{key}` comes from {}", file.display())),
            "{name}: message does not name the file: {message}"
        );
        if key == "num_topic" {
            // An unknown key: the message suggests the known key it resembles.
            assert!(
                message.contains("unknown") && message.contains("num_topics"),
                "{name}: message lacks the suggestion: {message}"
            );
        } else {
            assert!(
                message.contains(allowed),
                "{name}: message lacks the allowed values {allowed:?}: {message}"
            );
        }
    }
}

#[test]
fn all_string_values_train() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train(
        root.path(),
        &fixture("hyperparameter-validation/valid_all_strings.json"),
        &[],
    );
    run.assert_success();
    let configuration = run
        .log_messages()
        .into_iter()
        .find(|m| m.starts_with("Final configuration: "))
        .expect("a Final configuration line");
    for expected in [
        "'encoder_layers': '12,8'",
        "'clip_gradient': 'Inf'",
        "'epochs': '10'",
    ] {
        assert!(
            configuration.contains(expected),
            "{expected} missing from {configuration}"
        );
    }
    assert!(!quality_metrics(&run.stderr, "train").is_empty());
    assert_eq!(entries(&output), ["model.tar.gz"]);
}

#[test]
fn flags_override_file() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train(
        root.path(),
        &fixture("four-block-corpus/hyperparameters.json"),
        &["--epochs", "3", "--num-topics", "3"],
    );
    run.assert_success();
    let configuration = run
        .log_messages()
        .into_iter()
        .find(|m| m.starts_with("Final configuration: "))
        .expect("a Final configuration line")
        .to_owned();
    assert!(configuration.contains("'epochs': '3'"), "{configuration}");
    assert!(
        configuration.contains("'num_topics': '3'"),
        "{configuration}"
    );
    // Keys that no flag sets keep the file's value.
    assert!(
        configuration.contains("'mini_batch_size': '32'"),
        "{configuration}"
    );
    assert_eq!(quality_metrics(&run.stderr, "train").len(), 3, "epochs run");
    let (header, topics) = common::topic_block(&run.stderr);
    assert!(header.contains("(num_topics:3)"), "{header}");
    assert_eq!(topics.len(), 3);

    let metadata: serde_json::Value =
        serde_json::from_slice(&tar_member(&output.join("model.tar.gz"), "model.json"))
            .expect("model.json is JSON");
    assert_eq!(metadata["hyperparameters"]["epochs"], "3");
    assert_eq!(metadata["hyperparameters"]["num_topics"], "3");
}

#[test]
fn flag_replaces_invalid_file_value() {
    let root = tempfile::tempdir().expect("temporary folder");
    let file = root.path().join("hyperparameters.json");
    write_json(
        &file,
        &serde_json::json!({"num_topics": "4", "epochs": "2", "tolerance": "0.5"}),
    );

    let (run, output) = train(root.path(), &file, &[]);
    let message = assert_rejected_before_data(&run, &output, "tolerance=0.5 from the file");
    assert!(message.contains("tolerance"), "{message}");

    let (run, _) = train(root.path(), &file, &["--tolerance", "0.01"]);
    run.assert_success();

    let other = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train(
        other.path(),
        &file,
        &["--tolerance", "0.01", "--epochs", "0"],
    );
    let message = assert_rejected_before_data(&run, &output, "--epochs 0");
    assert!(
        message.contains("epochs") && message.contains("\"0\""),
        "{message}"
    );
}

#[test]
fn invalid_flag_is_named_as_the_source() {
    let root = tempfile::tempdir().expect("temporary folder");
    let file = root.path().join("hyperparameters.json");
    write_json(&file, &serde_json::json!({"num_topics": "4"}));
    let (run, output) = train(root.path(), &file, &["--learning-rate", "3"]);
    let message = assert_rejected_before_data(&run, &output, "flag");
    assert!(
        message.contains("`learning_rate` comes from --learning-rate"),
        "{message}"
    );
}

#[test]
fn negative_flag_value_gets_the_range_error() {
    let root = tempfile::tempdir().expect("temporary folder");
    let file = root.path().join("hyperparameters.json");
    write_json(&file, &serde_json::json!({"num_topics": "4"}));
    // Written with a space, as most users do, the value must still reach the range check.
    let (run, output) = train(root.path(), &file, &["--clip-gradient", "-1"]);
    let message = assert_rejected_before_data(&run, &output, "negative flag");
    assert!(message.contains("clip_gradient"), "{message}");
    assert!(message.contains("-1"), "{message}");
    assert!(!message.contains("unexpected argument"), "{message}");
}

#[test]
fn vocabulary_size_is_announced_only_for_valid_hyperparameters() {
    // Without feature_dim, the size comes from auxiliary/vocab.txt. A failed run ends with the
    // hyperparameter error, not with a line about the vocabulary that reads like progress.
    let root = tempfile::tempdir().expect("temporary folder");
    let file = root.path().join("hyperparameters.json");
    write_json(
        &file,
        &serde_json::json!({"num_topics": "0", "epochs": "1"}),
    );
    let (run, output) = train(root.path(), &file, &[]);
    let message = assert_rejected_before_data(&run, &output, "num_topics=0");
    assert!(message.contains("num_topics"), "{message}");
    assert!(
        !run.stderr.contains("feature_dim not given"),
        "the vocabulary line came before the error:\n{}",
        run.stderr
    );

    let root = tempfile::tempdir().expect("temporary folder");
    let file = root.path().join("hyperparameters.json");
    write_json(
        &file,
        &serde_json::json!({"num_topics": "2", "epochs": "1"}),
    );
    let (run, _) = train(root.path(), &file, &[]);
    run.assert_success();
    assert!(
        run.stderr
            .contains("feature_dim not given: using the 20 words of"),
        "{}",
        run.stderr
    );
}

#[test]
fn training_without_a_vocabulary_says_what_it_costs() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = csv_channels(
        root.path(),
        "data",
        &fixture("four-block-corpus/train.csv"),
        None,
        None,
    );
    let output = root.path().join("model");
    let train = |extra: &[&str]| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"train",
            &"--data",
            &data,
            &"--output",
            &output,
            &"--num-topics",
            &"2",
            &"--epochs",
            &"1",
        ];
        for flag in extra {
            args.push(flag);
        }
        ntm(root.path(), &args)
    };
    // Without feature_dim, the error names the file the size would have come from.
    let message = assert_rejected_before_data(&train(&[]), &output, "no feature_dim");
    assert!(
        message.contains("feature_dim")
            && message.contains("auxiliary/vocab.txt")
            && message.contains("does not exist"),
        "{message}"
    );
    // With it, training works and warns that the topics will be word ids.
    let run = train(&["--feature-dim", "20"]);
    run.assert_success();
    assert!(run.stderr.contains("No vocabulary at"), "{}", run.stderr);
}
