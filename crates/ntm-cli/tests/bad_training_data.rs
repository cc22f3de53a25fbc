//! CSV training channels that SageMaker users get wrong: rows of the wrong width, a header row,
//! cells that are not counts, and empty documents.

mod common;

use std::path::Path;

use common::{csv_channels, entries, fixture, ntm, Run};

/// Trains on a data folder whose train channel holds only `csv`, with `hyperparameters`.
fn train_on(root: &Path, csv: &Path, hyperparameters: &Path) -> (Run, std::path::PathBuf) {
    let data = csv_channels(root, "data", csv, None, None);
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
            &hyperparameters,
            &"--threads",
            &"1",
        ],
    );
    (run, output)
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "error message does not mention {part:?}: {message}"
        );
    }
}

#[test]
fn row_width_must_equal_feature_dim() {
    let csv = fixture("feature-dim-mismatch/train.csv");
    for (hyperparameters, feature_dim) in [
        ("feature-dim-mismatch/hyperparameters.json", "2000"),
        ("feature-dim-mismatch/hyperparameters_too_small.json", "4"),
    ] {
        let root = tempfile::tempdir().expect("temporary folder");
        let (run, output) = train_on(root.path(), &csv, &fixture(hyperparameters));
        let message = run.assert_failure();
        assert_mentions(&message, &["train.csv", "line 1", "6 columns", feature_dim]);
        assert!(
            !run.stderr.contains("# Starting training for epoch"),
            "feature_dim {feature_dim}: training started:\n{}",
            run.stderr
        );
        assert!(
            !output.join("model.tar.gz").exists(),
            "feature_dim {feature_dim}: a model was written"
        );
    }
}

#[test]
fn csv_header_row_is_rejected() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train_on(
        root.path(),
        &fixture("csv-header-row/train.csv"),
        &fixture("csv-header-row/hyperparameters.json"),
    );
    let message = run.assert_failure();
    assert_mentions(
        &message,
        &[
            "train.csv",
            "line 1",
            "column 1",
            "ball",
            "header",
            "vocab.txt",
        ],
    );
    assert!(
        !run.stderr.contains("4 documents"),
        "the header row was counted as a document:\n{}",
        run.stderr
    );
    assert!(!output.join("model.tar.gz").exists(), "a model was written");
}

#[test]
fn unparseable_csv_cells_are_located() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "sparse_literal.csv",
            &[
                "sparse_literal.csv",
                "line 2",
                "column 1",
                "(4",
                "not a number",
            ],
        ),
        (
            "empty_field.csv",
            &["empty_field.csv", "line 2", "column 2", "empty"],
        ),
        (
            "nonfinite.csv",
            &["nonfinite.csv", "line 2", "column 2", "nan", "finite"],
        ),
    ];
    for (file, parts) in cases {
        let root = tempfile::tempdir().expect("temporary folder");
        let (run, output) = train_on(
            root.path(),
            &fixture(&format!("unparseable-csv-cells/{file}")),
            &fixture("unparseable-csv-cells/hyperparameters.json"),
        );
        let message = run.assert_failure();
        assert_mentions(&message, parts);
        assert!(
            !run.stderr.contains("# Starting training for epoch"),
            "{file}: training started:\n{}",
            run.stderr
        );
        assert!(
            !output.join("model.tar.gz").exists(),
            "{file}: a model was written"
        );
    }
}

#[test]
fn empty_row_is_skipped_and_logged() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train_on(
        root.path(),
        &fixture("empty-documents/train.csv"),
        &fixture("empty-documents/hyperparameters.json"),
    );
    run.assert_success();

    let messages = run.log_messages();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("1 empty document skipped") && m.contains("train.csv line 3")),
        "no log line names the empty document at line 3:\n{}",
        run.stderr
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("train channel: 4 documents")),
        "the train channel should count the 4 non-empty documents:\n{}",
        run.stderr
    );

    // The skip warning carries structured fields; a log that is not a terminal gets them as
    // plain text, without terminal colour codes.
    assert!(
        !run.stderr.contains('\x1b'),
        "the log holds terminal escape codes:\n{}",
        run.stderr.escape_debug()
    );

    let losses = common::quality_metrics(&run.stderr, "train");
    assert_eq!(losses.len(), 5, "hyperparameters ask for 5 epochs");
    for (epoch, loss) in losses {
        assert!(loss.is_finite(), "epoch {epoch}: training loss {loss}");
    }
    assert_eq!(entries(&output), ["model.tar.gz"]);
}

#[test]
fn all_empty_channel_fails_clearly() {
    let root = tempfile::tempdir().expect("temporary folder");
    let (run, output) = train_on(
        root.path(),
        &fixture("empty-documents/all_empty.csv"),
        &fixture("empty-documents/hyperparameters.json"),
    );
    let message = run.assert_failure();
    assert_mentions(
        &message,
        &["no non-empty documents", "all_empty.csv", "train"],
    );
    assert!(!output.join("model.tar.gz").exists(), "a model was written");
}
