//! `ntm demo` prepares the shipped sample, trains on it and prints the topics.

mod common;

use common::{entries, ntm, quality_metrics, topic_block};

#[test]
fn demo_prints_twenty_topics() {
    let root = tempfile::tempdir().expect("temporary folder");
    let output = root.path().join("demo");
    let run = ntm(
        root.path(),
        &[
            &"demo",
            &"--output",
            &output,
            &"--epochs",
            &"3",
            &"--threads",
            &"2",
        ],
    );
    run.assert_success();
    // The shipped sample fits the default in-memory limit, so it is shuffled in full.
    assert!(
        !run.stderr.contains("over the in-memory limit"),
        "{}",
        run.stderr
    );

    assert_eq!(quality_metrics(&run.stderr, "train").len(), 3, "epochs run");
    let (header, topics) = topic_block(&run.stderr);
    assert!(header.contains("(num_topics:20)"), "{header}");
    assert_eq!(topics.len(), 20, "topic lines:\n{}", run.stderr);
    for words in &topics {
        assert_eq!(words.len(), 20, "words of a topic line: {words:?}");
        assert!(
            words.iter().all(|w| w.chars().all(char::is_alphanumeric)),
            "a topic line holds something other than words: {words:?}"
        );
    }
    assert_eq!(entries(&output.join("model")), ["model.tar.gz"]);
    assert_eq!(
        entries(&output.join("channels")),
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
}
