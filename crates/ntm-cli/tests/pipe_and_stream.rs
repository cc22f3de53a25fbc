//! Channels that are not held in memory: SageMaker Pipe-mode FIFOs, read once per epoch, and
//! File-mode channels over the in-memory limit, streamed from disk every epoch.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{csv_channels, fixture, ntm, quality_metrics, tar_member};

fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Starts a `cat` process that writes `source` into the FIFO at `fifo` once a reader opens it.
fn cat_into_fifo(source: &Path, fifo: &Path) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg("cat \"$1\" > \"$2\"")
        .arg("sh")
        .arg(source)
        .arg(fifo)
        .spawn()
        .expect("start the writer process")
}

/// Opens every FIFO in `fifos` for reading without blocking and drains it, so that a writer
/// left waiting by a failed run can finish.
fn release_writers(fifos: &[PathBuf]) {
    for fifo in fifos {
        if let Ok(mut file) = fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblocking()
            .open(fifo)
        {
            let _ = std::io::copy(&mut file, &mut std::io::sink());
        }
    }
}

/// Non-blocking open for FIFOs, which otherwise block until the other end opens.
trait NonBlocking {
    fn custom_flags_nonblocking(&mut self) -> &mut Self;
}

impl NonBlocking for fs::OpenOptions {
    fn custom_flags_nonblocking(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK on Linux.
        self.custom_flags(0o4000)
    }
}

/// Lays out a SageMaker container tree whose train and validation channels are in Pipe mode.
fn pipe_container(root: &Path, epochs: usize) {
    let config = root.join("input/config");
    fs::create_dir_all(&config).expect("config folder");
    fs::write(
        config.join("hyperparameters.json"),
        format!(
            r#"{{"feature_dim": "20", "num_topics": "4", "epochs": "{epochs}",
                "num_patience_epochs": "{}", "mini_batch_size": "16"}}"#,
            epochs + 1
        ),
    )
    .expect("hyperparameters");
    fs::write(
        config.join("inputdataconfig.json"),
        r#"{"train": {"ContentType": "text/csv", "TrainingInputMode": "Pipe"},
            "validation": {"ContentType": "text/csv", "TrainingInputMode": "Pipe"},
            "auxiliary": {"ContentType": "text/plain", "TrainingInputMode": "File"}}"#,
    )
    .expect("input data config");
    let data = root.join("input/data");
    fs::create_dir_all(data.join("auxiliary")).expect("auxiliary folder");
    fs::copy(
        fixture("four-block-corpus/vocab.txt"),
        data.join("auxiliary/vocab.txt"),
    )
    .expect("copy vocabulary");
}

#[test]
fn pipe_mode_reads_one_fifo_per_epoch() {
    let root = tempfile::tempdir().expect("temporary folder");
    let epochs = 3;
    pipe_container(root.path(), epochs);
    let data = root.path().join("input/data");

    // Validation FIFOs all exist up front, each fed by its own writer process.
    let validation_source = fixture("four-block-corpus/validation.csv");
    let mut fifos = Vec::new();
    let mut writers = Vec::new();
    for epoch in 0..epochs {
        let fifo = data.join(format!("validation_{epoch}"));
        make_fifo(&fifo);
        writers.push(cat_into_fifo(&validation_source, &fifo));
        fifos.push(fifo);
    }

    // Train FIFOs appear one at a time, each after the previous one was read, as SageMaker
    // delivers them; the first exists before training starts.
    let train_source = fs::read(fixture("four-block-corpus/train.csv")).expect("train data");
    let train_fifos: Vec<PathBuf> = (0..epochs)
        .map(|epoch| data.join(format!("train_{epoch}")))
        .collect();
    make_fifo(&train_fifos[0]);
    let abort = Arc::new(AtomicBool::new(false));
    let feeder = {
        let train_fifos = train_fifos.clone();
        let abort = Arc::clone(&abort);
        thread::spawn(move || -> usize {
            let mut delivered = 0;
            for (epoch, fifo) in train_fifos.iter().enumerate() {
                if abort.load(Ordering::SeqCst) {
                    break;
                }
                if epoch > 0 {
                    // Give the trainer time to look for the FIFO before it exists.
                    thread::sleep(Duration::from_millis(100));
                    make_fifo(fifo);
                }
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .open(fifo)
                    .expect("open the FIFO for writing");
                if file.write_all(&train_source).is_ok() {
                    delivered += 1;
                }
            }
            delivered
        })
    };

    let run = ntm(root.path(), &[&"train", &"--sagemaker-root", &root.path()]);
    abort.store(true, Ordering::SeqCst);
    let mut all_fifos = fifos.clone();
    all_fifos.extend(train_fifos.iter().cloned());
    release_writers(&all_fifos);
    run.assert_success();

    let delivered = feeder.join().expect("feeder thread");
    assert_eq!(delivered, epochs, "every train FIFO read once");
    for mut writer in writers {
        let status = writer.wait().expect("writer process");
        assert!(status.success(), "a validation writer failed: {status}");
    }
    let train_losses = quality_metrics(&run.stderr, "train");
    assert_eq!(train_losses.len(), epochs, "{}", run.stderr);
    assert_eq!(
        quality_metrics(&run.stderr, "validation").len(),
        epochs,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("on 160 examples"),
        "each epoch reads all 160 training documents:\n{}",
        run.stderr
    );
    assert!(
        train_losses.last().unwrap().1 < train_losses[0].1,
        "the training loss falls: {train_losses:?}"
    );
    for file in ["model.json", "model.safetensors", "vocab.txt"] {
        assert!(
            root.path().join("model").join(file).is_file(),
            "model/{file} missing"
        );
    }
}

#[test]
fn pipe_mode_bad_row_fails_without_model() {
    let root = tempfile::tempdir().expect("temporary folder");
    pipe_container(root.path(), 2);
    let data = root.path().join("input/data");
    let bad = root.path().join("bad.csv");
    let mut text = fs::read_to_string(fixture("four-block-corpus/train.csv")).expect("train data");
    text.push_str("1,2,3\n");
    fs::write(&bad, text).expect("bad train file");
    let fifo = data.join("train_0");
    make_fifo(&fifo);
    let mut writer = cat_into_fifo(&bad, &fifo);

    let run = ntm(root.path(), &[&"train", &"--sagemaker-root", &root.path()]);
    release_writers(&[fifo]);
    let message = run.assert_failure();
    let _ = writer.wait();
    assert!(message.contains("train_0"), "{message}");
    assert!(message.contains("line 161"), "{message}");
    assert!(
        !root.path().join("model/model.safetensors").exists(),
        "model written after a failure"
    );
    let failure = fs::read_to_string(root.path().join("output/failure")).expect("failure file");
    assert!(failure.contains("line 161"), "{failure}");
}

/// Trains on the four-block corpus with the channels streamed from disk.
fn train_streamed(root: &Path, data: &Path, output: &str, extra: &[&str]) -> common::Run {
    let output = root.join(output);
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"train",
        &"--data",
        &data,
        &"--output",
        &output,
        &"--num-topics",
        &"4",
        &"--epochs",
        &"4",
        &"--mini-batch-size",
        &"16",
        &"--threads",
        &"1",
    ];
    for arg in extra {
        args.push(arg);
    }
    ntm(root, &args)
}

#[test]
fn streamed_channels_train_deterministically() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = csv_channels(
        root.path(),
        "data",
        &fixture("four-block-corpus/train.csv"),
        Some(&fixture("four-block-corpus/validation.csv")),
        Some(&fixture("four-block-corpus/vocab.txt")),
    );
    let limit = ["--in-memory-limit-mb", "0", "--shuffle-buffer", "50"];
    let first = train_streamed(root.path(), &data, "first", &limit);
    first.assert_success();

    assert!(
        first
            .stderr
            .contains("train channel: over the in-memory limit"),
        "{}",
        first.stderr
    );
    assert!(
        first
            .stderr
            .contains("validation channel: over the in-memory limit"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("on 160 examples"), "{}", first.stderr);

    let second = train_streamed(root.path(), &data, "second", &limit);
    second.assert_success();
    let weights = |name: &str| {
        tar_member(
            &root.path().join(name).join("model.tar.gz"),
            "model.safetensors",
        )
    };
    assert!(
        weights("first") == weights("second"),
        "two streamed runs with the same seed wrote different weights"
    );
}

#[test]
fn streamed_channel_is_checked_before_training() {
    let root = tempfile::tempdir().expect("temporary folder");
    let bad = root.path().join("train.csv");
    let mut text = fs::read_to_string(fixture("four-block-corpus/train.csv")).expect("train data");
    text.push_str(&"0,".repeat(19));
    text.push_str("-2\n");
    fs::write(&bad, text).expect("bad train file");
    let data = csv_channels(root.path(), "data", &bad, None, None);
    let run = train_streamed(
        root.path(),
        &data,
        "model",
        &["--in-memory-limit-mb", "0", "--feature-dim", "20"],
    );
    let message = run.assert_failure();
    assert!(message.contains("line 161"), "{message}");
    assert!(message.contains("-2"), "{message}");
    assert!(
        !run.stderr.contains("Starting training for epoch"),
        "training started before the check:\n{}",
        run.stderr
    );
    assert!(!root.path().join("model/model.tar.gz").exists());
}
