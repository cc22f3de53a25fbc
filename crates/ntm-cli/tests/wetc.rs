//! Word-embedding topic coherence (WETC) in the final topic block of `ntm train`.

mod common;

use std::fs;
use std::path::Path;

use common::{csv_channels, fixture, ntm, topic_block, Run};

/// Writes GloVe-format vectors for the four-block vocabulary: each block's words point along
/// their own axis, so two words are at cosine 1 within a block and 0 across blocks. The last
/// word, `cake`, has no vector.
fn write_vectors(path: &Path) {
    let words = fs::read_to_string(fixture("four-block-corpus/vocab.txt")).expect("vocabulary");
    let mut text = String::from("unrelated 0.5 0.5 0.5 0.5\n");
    for (index, word) in words.lines().enumerate().take(19) {
        let mut vector = [0.0f32; 4];
        vector[index / 5] = 2.0;
        let values: Vec<String> = vector.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("{word} {}\n", values.join(" ")));
    }
    fs::write(path, text).expect("vectors file");
}

fn train(root: &Path, extra: &[&dyn AsRef<std::ffi::OsStr>]) -> Run {
    let data = root.join("data");
    if !data.exists() {
        csv_channels(
            root,
            "data",
            &fixture("four-block-corpus/train.csv"),
            None,
            Some(&fixture("four-block-corpus/vocab.txt")),
        );
    }
    let output = root.join("model");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
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
    ];
    args.extend_from_slice(extra);
    ntm(root, &args)
}

#[test]
fn wetc_joins_topic_block_with_vectors() {
    let root = tempfile::tempdir().expect("temporary folder");
    let vectors = root.path().join("vectors.txt");
    write_vectors(&vectors);
    let run = train(root.path(), &[&"--embeddings", &vectors]);
    run.assert_success();

    // Every topic lists all 20 words; 19 have vectors, in blocks of 5, 5, 5 and 4, so 36 of
    // the 171 pairs have cosine 1 and the rest 0: WETC = 36 / 171 = 0.21 for every topic.
    let (header, topics) = topic_block(&run.stderr);
    assert!(header.contains("[wetc 0.21, tu "), "{header}");
    assert_eq!(topics.len(), 4);
    let messages = run.log_messages();
    let topic_lines: Vec<&&str> = messages
        .iter()
        .filter(|m| m.starts_with("[0.21, "))
        .collect();
    assert_eq!(topic_lines.len(), 4, "{}", run.stderr);
    // SageMaker's warning for the word without a vector, once.
    assert_eq!(
        run.stderr
            .matches("1 out of 20 in vocabulary do not have embeddings!")
            .count(),
        1,
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("have no vector in"), "{}", run.stderr);
}

#[test]
fn auxiliary_vectors_are_found() {
    let root = tempfile::tempdir().expect("temporary folder");
    let run = train(root.path(), &[]);
    run.assert_success();
    let (header, _) = topic_block(&run.stderr);
    assert!(!header.contains("wetc"), "{header}");

    write_vectors(&root.path().join("data/auxiliary/embeddings.txt"));
    let run = train(root.path(), &[]);
    run.assert_success();
    let (header, _) = topic_block(&run.stderr);
    assert!(header.contains("[wetc 0.21, tu "), "{header}");
}

#[test]
fn bad_vectors_fail_before_training() {
    let root = tempfile::tempdir().expect("temporary folder");
    let vectors = root.path().join("vectors.txt");
    fs::write(&vectors, "ball 1 2 3\ngoal 1 x 3\n").expect("vectors file");
    let run = train(root.path(), &[&"--embeddings", &vectors]);
    let message = run.assert_failure();
    assert!(message.contains("vectors.txt"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    assert!(
        !run.stderr.contains("Starting training for epoch"),
        "{}",
        run.stderr
    );
}

#[test]
fn blank_vocabulary_line_is_warned() {
    let root = tempfile::tempdir().expect("temporary folder");
    let mut words = common::read_lines(&fixture("four-block-corpus/vocab.txt"));
    words[2] = String::new();
    let vocab = root.path().join("vocab.txt");
    fs::write(&vocab, format!("{}\n", words.join("\n"))).expect("write vocabulary");
    csv_channels(
        root.path(),
        "data",
        &fixture("four-block-corpus/train.csv"),
        None,
        Some(&vocab),
    );
    let run = train(root.path(), &[]);
    run.assert_success();
    assert_eq!(
        run.stderr
            .matches("1 blank line(s) in the vocabulary, the first at line 3")
            .count(),
        1,
        "{}",
        run.stderr
    );
}
