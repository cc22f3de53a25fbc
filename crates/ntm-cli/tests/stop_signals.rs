//! Ctrl-C or SIGTERM ends a local `ntm train` early and keeps the best finished epoch.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{entries, four_block_data, signal_after};

/// Starts a local training on the four-block corpus that only a signal ends: patience beyond
/// the epochs disables early stopping, and one-document batches make each epoch long.
fn start_endless_training(root: &Path, output: &Path) -> Child {
    let data = four_block_data(root);
    Command::new(env!("CARGO_BIN_EXE_ntm"))
        .args(["train", "--num-topics", "4", "--threads", "1"])
        .args(["--epochs", "100000", "--num-patience-epochs", "100001"])
        .args(["--mini-batch-size", "1", "--data"])
        .arg(&data)
        .arg("--output")
        .arg(output)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ntm")
}

#[test]
fn signal_keeps_best_finished_epoch() {
    // Ctrl-C sends SIGINT; a service manager or `kill` sends SIGTERM.
    for signal in ["-INT", "-TERM"] {
        let root = tempfile::tempdir().expect("temporary folder");
        let output = root.path().join("model");
        let child = start_endless_training(root.path(), &output);
        let (log, code) = signal_after(child, "epoch=2, train total_loss", &[signal]);
        assert_eq!(code, Some(0), "{signal}: {log}");
        assert!(
            log.contains("Stop requested: ending training in epoch"),
            "{signal}: {log}"
        );
        assert!(log.contains("Topics from epoch"), "{signal}: {log}");
        assert_eq!(entries(&output), ["model.tar.gz"], "{signal}: {log}");
    }
}
