//! Ctrl-C or SIGTERM ends a local `ntm train` early and keeps the best finished epoch.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{csv_channels, entries, fixture};

/// Starts a local training on the four-block corpus that only a signal ends: patience beyond
/// the epochs disables early stopping, and one-document batches make each epoch long.
fn start_endless_training(root: &Path, output: &Path) -> Child {
    let data = csv_channels(
        root,
        "data",
        &fixture("four-block-corpus/train.csv"),
        None,
        Some(&fixture("four-block-corpus/vocab.txt")),
    );
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

/// Sends `signal` to the child.
fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} failed");
}

/// Reads the child's log until a line contains `marker`, then sends each of `signals` in turn and
/// returns the whole log and the exit code.
fn signal_after(mut child: Child, marker: &str, signals: &[&str]) -> (String, Option<i32>) {
    let stderr = child.stderr.take().expect("stderr");
    let mut log = String::new();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("log line");
        log.push_str(&line);
        log.push('\n');
        if line.contains(marker) {
            for signal in signals {
                send(&child, signal);
            }
            break;
        }
    }
    for line in lines {
        log.push_str(&line.expect("log line"));
        log.push('\n');
    }
    let status = child.wait().expect("wait");
    (log, status.code())
}

#[test]
fn ctrl_c_keeps_best_finished_epoch() {
    let root = tempfile::tempdir().expect("temporary folder");
    let output = root.path().join("model");
    let child = start_endless_training(root.path(), &output);
    let (log, code) = signal_after(child, "epoch=2, train total_loss", &["-INT"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("Stop requested: ending training in epoch"),
        "{log}"
    );
    assert!(log.contains("Topics from epoch"), "{log}");
    assert_eq!(entries(&output), ["model.tar.gz"], "{log}");
}

#[test]
fn sigterm_keeps_best_finished_epoch() {
    let root = tempfile::tempdir().expect("temporary folder");
    let output = root.path().join("model");
    let child = start_endless_training(root.path(), &output);
    let (log, code) = signal_after(child, "epoch=2, train total_loss", &["-TERM"]);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("Stop requested"), "{log}");
    assert_eq!(entries(&output), ["model.tar.gz"], "{log}");
}
