//! A failed run leaves no partial or temporary file behind, and `ntm prepare` does not mix new
//! channels with old ones unless asked to.

mod common;

use std::fs;
use std::path::Path;

use common::{csv_channels, entries, fixture, ntm, prepare_newsgroups, Run};

fn train(root: &Path, data: &Path, output: &Path) -> Run {
    ntm(
        root,
        &[
            &"train",
            &"--data",
            &data,
            &"--output",
            &output,
            &"--num-topics",
            &"4",
            &"--epochs",
            &"2",
            &"--threads",
            &"1",
        ],
    )
}

fn four_block_data(root: &Path) -> std::path::PathBuf {
    csv_channels(
        root,
        "good",
        &fixture("four-block-corpus/train.csv"),
        None,
        Some(&fixture("four-block-corpus/vocab.txt")),
    )
}

#[test]
fn failed_training_writes_nothing() {
    let root = tempfile::tempdir().expect("temporary folder");
    let bad = csv_channels(
        root.path(),
        "bad",
        &fixture("unparseable-csv-cells/nonfinite.csv"),
        None,
        None,
    );
    let output = root.path().join("model");
    fs::create_dir(&output).expect("create output folder");

    train(root.path(), &bad, &output).assert_failure();
    assert_eq!(
        entries(&output),
        Vec::<String>::new(),
        "files left in the output folder"
    );
}

#[test]
fn failed_training_keeps_earlier_model() {
    let root = tempfile::tempdir().expect("temporary folder");
    let output = root.path().join("model");
    train(root.path(), &four_block_data(root.path()), &output).assert_success();
    let earlier = fs::read(output.join("model.tar.gz")).expect("read model");

    let bad = csv_channels(
        root.path(),
        "bad",
        &fixture("csv-header-row/train.csv"),
        None,
        None,
    );
    train(root.path(), &bad, &output).assert_failure();
    assert_eq!(
        entries(&output),
        ["model.tar.gz"],
        "files in the output folder"
    );
    assert!(
        fs::read(output.join("model.tar.gz")).expect("read model") == earlier,
        "a failed run changed the earlier model.tar.gz"
    );
}

#[test]
fn unwritable_model_path_leaves_no_temporary_file() {
    let root = tempfile::tempdir().expect("temporary folder");
    let output = root.path().join("model");
    // A folder where the archive should go makes the final rename fail after the bytes are written.
    fs::create_dir_all(output.join("model.tar.gz").join("inside")).expect("create folders");

    let message = train(root.path(), &four_block_data(root.path()), &output).assert_failure();
    assert!(message.contains("model.tar.gz"), "{message}");
    assert_eq!(
        entries(&output),
        ["model.tar.gz"],
        "files in the output folder"
    );
    assert_eq!(entries(&output.join("model.tar.gz")), ["inside"]);
}

#[test]
fn failed_inference_writes_no_output() {
    let root = tempfile::tempdir().expect("temporary folder");
    let output = root.path().join("model");
    train(root.path(), &four_block_data(root.path()), &output).assert_success();

    // 1,100 valid rows, then one of 4 columns for a model of 20 words. `ntm infer` reads 1,024
    // rows at a time, so the first batch of weights is already written when the bad row is found.
    let mut rows = String::new();
    for i in 0..1100 {
        let row: Vec<String> = (0..20).map(|j| ((i + j) % 3).to_string()).collect();
        rows.push_str(&row.join(","));
        rows.push('\n');
    }
    rows.push_str("1,2,3,4\n");
    let input = root.path().join("rows.csv");
    fs::write(&input, rows).expect("write rows");

    let weights_folder = root.path().join("weights");
    fs::create_dir(&weights_folder).expect("create folder");
    let weights = weights_folder.join("weights.jsonl");
    let run = ntm(
        root.path(),
        &[
            &"infer",
            &"--model",
            &output.join("model.tar.gz"),
            &"--input",
            &input,
            &"--output",
            &weights,
        ],
    );
    let message = run.assert_failure();
    for part in ["line 1101", "4 columns", "20"] {
        assert!(
            message.contains(part),
            "the message lacks {part:?}: {message}"
        );
    }
    assert_eq!(
        entries(&weights_folder),
        Vec::<String>::new(),
        "files left next to the --output file"
    );
}

#[test]
fn prepare_refuses_existing_channels_without_force() {
    let root = tempfile::tempdir().expect("temporary folder");
    let channels = prepare_newsgroups(root.path(), "channels", "csv");
    let train_file = channels.join("train/train.csv");
    let before = fs::read(&train_file).expect("read channel");

    let posts = root.path().join("posts");
    fs::create_dir(&posts).expect("create folder");
    for (i, body) in ["rain snow wind cloud storm", "bread soup rice salad cake"]
        .iter()
        .enumerate()
    {
        fs::write(posts.join(format!("{i}.txt")), body).expect("write post");
    }

    // A second run into the same folder, from other text, must not touch the channels.
    let run = ntm(
        root.path(),
        &[
            &"prepare",
            &posts,
            &"--output",
            &channels,
            &"--format",
            &"csv",
        ],
    );
    let message = run.assert_failure();
    assert!(
        message.contains("--force"),
        "the message should suggest --force: {message}"
    );
    assert!(
        fs::read(&train_file).expect("read channel") == before,
        "the refused run changed train/train.csv"
    );
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

    // With --force the earlier channels are replaced, not mixed with the new ones.
    let run = ntm(
        root.path(),
        &[
            &"prepare",
            &posts,
            &"--output",
            &channels,
            &"--format",
            &"csv",
            &"--force",
        ],
    );
    run.assert_success();
    assert_eq!(
        entries(&channels),
        [
            "auxiliary",
            "document-ids",
            "summary.json",
            "tokens",
            "train"
        ]
    );
    assert_eq!(
        common::read_lines(&train_file).len(),
        2,
        "rows of the new train channel"
    );
}

#[test]
fn prepare_rejects_missing_training_documents() {
    let root = tempfile::tempdir().expect("temporary folder");
    let empty = root.path().join("empty.jsonl");
    fs::write(&empty, "").expect("write input");
    let channels = root.path().join("channels");
    let message = ntm(root.path(), &[&"prepare", &empty, &"--output", &channels]).assert_failure();
    assert!(message.contains("no training documents"), "{message}");
    assert!(message.contains("empty.jsonl"), "{message}");
    assert!(
        !channels.exists(),
        "a failed run left {}",
        channels.display()
    );

    let posts = root.path().join("posts.jsonl");
    fs::write(
        &posts,
        "{\"text\": \"alpha beta\"}\n{\"text\": \"beta gamma\"}\n",
    )
    .expect("write input");
    // Runs prepare on the two posts with one more option, which must make it fail and write
    // nothing, and returns the error.
    let expect_rejection = |option: &str, value: &str| {
        let message = ntm(
            root.path(),
            &[&"prepare", &posts, &"--output", &channels, &option, &value],
        )
        .assert_failure();
        assert!(
            !channels.exists(),
            "a failed run left {}",
            channels.display()
        );
        message
    };
    let message = expect_rejection("--validation-fraction", "0.9");
    assert!(
        message.contains("--validation-fraction 0.9") && message.contains("all 2 documents"),
        "{message}"
    );

    // Every word shorter than the minimum: the error names the option that would help.
    let chinese = root.path().join("chinese.jsonl");
    fs::write(
        &chinese,
        "{\"text\": \"\u{6211}\u{559c}\u{6b22}\u{5b66}\u{4e60}\"}\n",
    )
    .expect("write input");
    let message =
        ntm(root.path(), &[&"prepare", &chinese, &"--output", &channels]).assert_failure();
    assert!(message.contains("no token is left"), "{message}");
    assert!(message.contains("--min-token-len 1"), "{message}");
    assert!(
        !channels.exists(),
        "a failed run left {}",
        channels.display()
    );

    // A misspelt stop-word list is neither a built-in name nor a file.
    let message = expect_rejection("--stop-words", "englsh");
    assert!(
        message.contains("--stop-words \"englsh\"") && message.contains("`english`, `none`"),
        "{message}"
    );
}

#[test]
fn channel_folder_given_as_data_folder_is_named() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = four_block_data(root.path());
    let output = root.path().join("model");
    // Without --feature-dim and without the auxiliary vocabulary next to it, the train channel
    // given as the data folder must be reported as such, not as a missing feature_dim.
    let run = train(root.path(), &data.join("train"), &output);
    let message = run.assert_failure();
    assert!(message.contains("has no train channel"), "{message}");
    assert!(message.contains("give its parent folder"), "{message}");
    assert!(!output.exists(), "created {}", output.display());
    // An empty folder is named the same way, without the hint.
    let empty = root.path().join("empty");
    fs::create_dir(&empty).expect("folder");
    let message = train(root.path(), &empty, &output).assert_failure();
    assert!(message.contains("has no train channel"), "{message}");
    assert!(!message.contains("parent folder"), "{message}");
}
