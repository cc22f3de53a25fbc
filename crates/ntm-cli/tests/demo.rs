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
    // The demo adds the coherence of the topics on its training posts, where the words of a
    // topic meet often enough for NPMI@10 to be clearly above zero even after three epochs.
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("training posts: NPMI@10"))
        .unwrap_or_else(|| panic!("no training-post coherence line:\n{}", run.stderr));
    let npmi: f64 = line
        .split("NPMI@10 ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no NPMI@10 value in {line}"));
    assert!(npmi > 0.1, "{line}");
    assert!(npmi <= 1.0, "{line}");
    assert!(line.contains("on the 2675 training posts"), "{line}");
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
