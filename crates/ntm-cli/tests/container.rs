//! `ntm train` without `--data` and `--output`: the SageMaker training-container layout.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{fixture, ntm, quality_metrics, signal_after};

/// Lays out `/opt/ml` under `root` with the four-block corpus and the given hyperparameters.
fn container_tree(root: &Path, hyperparameters: &str, input_data_config: &str) {
    let config = root.join("input/config");
    fs::create_dir_all(&config).expect("config folder");
    fs::write(config.join("hyperparameters.json"), hyperparameters).expect("hyperparameters");
    fs::write(config.join("inputdataconfig.json"), input_data_config).expect("input data config");
    fs::write(
        config.join("resourceconfig.json"),
        r#"{"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth0"}"#,
    )
    .expect("resource config");
    let data = root.join("input/data");
    for (channel, file) in [
        ("train", "train.csv"),
        ("validation", "validation.csv"),
        ("auxiliary", "vocab.txt"),
    ] {
        fs::create_dir_all(data.join(channel)).expect("channel folder");
        fs::copy(
            fixture(&format!("four-block-corpus/{file}")),
            data.join(channel).join(file),
        )
        .expect("copy");
    }
}

const CSV_CHANNELS: &str = r#"{"train": {"ContentType": "text/csv", "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
 "validation": {"ContentType": "text/csv;label_size=0", "TrainingInputMode": "File"},
 "auxiliary": {"ContentType": "text/plain", "TrainingInputMode": "File"}}"#;

#[test]
fn container_writes_unpacked_model() {
    let root = tempfile::tempdir().expect("temporary folder");
    container_tree(
        root.path(),
        r#"{"feature_dim": "20", "num_topics": "4", "epochs": "3", "_kvstore": "auto_gpu"}"#,
        CSV_CHANNELS,
    );
    // The reason of an earlier failed run in the same folder must not outlive this run.
    fs::create_dir_all(root.path().join("output")).expect("output folder");
    fs::write(root.path().join("output/failure"), "an earlier failure").expect("old failure");
    let run = ntm(root.path(), &[&"train", &"--sagemaker-root", &root.path()]);
    run.assert_success();
    for file in ["model.json", "model.safetensors", "vocab.txt"] {
        assert!(
            root.path().join("model").join(file).is_file(),
            "model/{file} missing"
        );
    }
    assert!(
        !root.path().join("model/model.tar.gz").exists(),
        "SageMaker archives the folder itself"
    );
    assert!(
        !root.path().join("output/failure").exists(),
        "failure file after success"
    );
    assert!(
        run.stderr
            .contains("#quality_metric: host=algo-2, epoch=1, validation total_loss"),
        "{}",
        run.stderr
    );
    let train_lines = run
        .stderr
        .matches("#quality_metric: host=algo-2, epoch=")
        .count();
    assert_eq!(
        train_lines, 6,
        "3 epochs of train and validation lines:\n{}",
        run.stderr
    );
    assert!(
        quality_metrics(&run.stderr, "train").is_empty(),
        "host algo-1 in a container on algo-2"
    );
}

#[test]
fn container_failure_writes_reason() {
    let root = tempfile::tempdir().expect("temporary folder");
    container_tree(
        root.path(),
        r#"{"feature_dim": "20", "num_topics": "1"}"#,
        CSV_CHANNELS,
    );
    let run = ntm(root.path(), &[&"train", &"--sagemaker-root", &root.path()]);
    let message = run.assert_failure();
    let failure = fs::read_to_string(root.path().join("output/failure")).expect("failure file");
    assert!(failure.contains("num_topics"), "{failure}");
    assert!(message.contains("num_topics"), "{message}");
    assert!(
        !root.path().join("model/model.safetensors").exists(),
        "model written after a failure"
    );
}

#[test]
fn pipe_mode_without_fifo_names_it() {
    let root = tempfile::tempdir().expect("temporary folder");
    container_tree(
        root.path(),
        r#"{"feature_dim": "20", "num_topics": "4"}"#,
        r#"{"train": {"ContentType": "text/csv", "TrainingInputMode": "Pipe"}}"#,
    );
    let run = ntm(root.path(), &[&"train", &"--sagemaker-root", &root.path()]);
    run.assert_failure();
    let failure = fs::read_to_string(root.path().join("output/failure")).expect("failure file");
    assert!(failure.contains("train_0"), "{failure}");
    assert_eq!(failure.matches("Pipe-mode").count(), 1, "{failure}");
}

#[test]
fn unknown_input_mode_is_rejected() {
    let root = tempfile::tempdir().expect("temporary folder");
    container_tree(
        root.path(),
        r#"{"feature_dim": "20", "num_topics": "4"}"#,
        r#"{"train": {"ContentType": "text/csv", "TrainingInputMode": "Stream"}}"#,
    );
    let run = ntm(root.path(), &[&"train", &"--sagemaker-root", &root.path()]);
    let message = run.assert_failure();
    assert!(message.contains("\"Stream\""), "{message}");
    assert!(message.contains("File, FastFile or Pipe"), "{message}");
}

#[test]
fn content_type_mismatch_names_channel_file() {
    let root = tempfile::tempdir().expect("temporary folder");
    container_tree(
        root.path(),
        r#"{"feature_dim": "20", "num_topics": "4"}"#,
        r#"{"train": {"ContentType": "application/x-recordio-protobuf"}}"#,
    );
    let run = ntm(root.path(), &[&"train", &"--sagemaker-root", &root.path()]);
    let message = run.assert_failure();
    assert!(message.contains("train.csv"), "{message}");
}

#[test]
fn missing_layout_writes_nothing() {
    let root = tempfile::tempdir().expect("temporary folder");
    let absent = root.path().join("no-such-root");
    let run = ntm(root.path(), &[&"train", &"--sagemaker-root", &absent]);
    let message = run.assert_failure();
    assert!(message.contains("--data"), "{message}");
    assert!(!absent.exists(), "created {}", absent.display());
}

#[test]
fn sigterm_keeps_best_finished_epoch() {
    let root = tempfile::tempdir().expect("temporary folder");
    // Patience beyond the epochs disables early stopping, so only the signal ends this run.
    container_tree(
        root.path(),
        r#"{"feature_dim": "20", "num_topics": "4", "epochs": "100000", "num_patience_epochs": "100001", "mini_batch_size": "1"}"#,
        CSV_CHANNELS,
    );
    let child = Command::new(env!("CARGO_BIN_EXE_ntm"))
        .args(["train", "--sagemaker-root"])
        .arg(root.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ntm");

    // Wait for the second epoch, then stop the run as SageMaker's StopTrainingJob does.
    let (log, code) = signal_after(child, "epoch=2, validation total_loss", &["-TERM"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("Stop requested"), "{log}");
    let metadata: serde_json::Value = serde_json::from_slice(
        &fs::read(root.path().join("model/model.json")).expect("model.json"),
    )
    .expect("JSON");
    let epochs = metadata["history"].as_array().expect("history").len();
    assert!((2..100_000).contains(&epochs), "{epochs} epochs recorded");
    assert!(metadata["best_epoch"].as_u64().expect("best epoch") >= 1);
}
