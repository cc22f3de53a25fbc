//! Reading word vectors and tokenised documents from real files, and WETC on them.

use std::io::Write;
use std::path::{Path, PathBuf};

use ntm_eval::{read_token_documents, wetc, EvalError, VocabularyEmbeddings};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| (*w).to_owned()).collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

#[test]
fn glove_fixture_gives_wetc_by_hand() {
    let vocabulary = words(&["car", "engine", "god", "jesus", "unknown", "zero"]);
    let embeddings =
        VocabularyEmbeddings::load(&data("tiny-glove.txt"), &vocabulary).expect("load");
    assert_eq!(embeddings.dimension(), 3);
    // "unknown" has no line and "zero" has no direction.
    assert_eq!(embeddings.missing_words(), 2);
    let scores = wetc(&[vec![2, 3], vec![0, 1, 4]], &embeddings);
    let god_jesus = 0.9 / (0.81f64 + 0.01).sqrt();
    assert!((scores.per_topic[0].unwrap() - god_jesus).abs() < 1e-6);
    assert!((scores.per_topic[1].unwrap() - 0.8).abs() < 1e-6);
    assert_eq!(scores.missing_top_words, 1);
    assert!((scores.overall.unwrap() - (god_jesus + 0.8) / 2.0).abs() < 1e-6);
}

#[test]
fn gzip_glove_and_word2vec_header() {
    let dir = tempfile::tempdir().expect("temporary folder");
    // The name says nothing of gzip; the magic bytes do.
    let path = dir.path().join("vectors.txt");
    let file = std::fs::File::create(&path).expect("create");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(b"2 2\ncar 1 0\nengine 1 1\n").expect("write");
    gz.finish().expect("finish gzip");
    let embeddings = VocabularyEmbeddings::load(&path, &words(&["car", "engine"])).expect("load");
    assert_eq!(embeddings.missing_words(), 0);
    let scores = wetc(&[vec![0, 1]], &embeddings);
    assert!((scores.overall.unwrap() - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6);
}

#[test]
fn glove_errors_name_line_and_value() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let vocabulary = words(&["a", "b"]);
    let cases = [
        ("a 1 2\nb 1 x\n", 2, "\"x\", not a number"),
        (
            "a 1 2\nb 1 2 3\n",
            2,
            "3 values, but the first vector read has 2",
        ),
        ("a 1 inf\n", 1, "not a finite number"),
        ("a\n", 1, "no vector values"),
    ];
    for (i, (text, line, expected)) in cases.into_iter().enumerate() {
        let path = write(dir.path(), &format!("bad-{i}.txt"), text);
        let error = VocabularyEmbeddings::load(&path, &vocabulary).expect_err(text);
        match &error {
            EvalError::Embedding { line: l, .. } => assert_eq!(*l, line, "{text:?}"),
            other => panic!("{text:?}: expected an embedding error, got {other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains(expected), "{text:?}: {message}");
        assert!(message.contains(&format!("bad-{i}.txt")), "{message}");
    }
    let missing = VocabularyEmbeddings::load(&dir.path().join("absent.txt"), &vocabulary);
    assert!(matches!(missing, Err(EvalError::Io { .. })));
}

#[test]
fn token_documents_keep_order_and_empty_lines() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = write(dir.path(), "tokens.txt", "b a b\n\na\r\n");
    let docs = read_token_documents(&path, &words(&["a", "b"])).expect("read");
    assert_eq!(docs, vec![vec![1, 0, 1], vec![], vec![0]]);
}

#[test]
fn unknown_token_is_an_error_with_line() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = write(dir.path(), "tokens.txt", "a b\nb zebra\n");
    let error = read_token_documents(&path, &words(&["a", "b"])).expect_err("unknown word");
    let message = error.to_string();
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("\"zebra\""), "{message}");
}

/// Reads GloVe 6B 50d when `NTM_GLOVE_50D` names the file (plain or gzip); skipped otherwise.
#[test]
fn real_glove_when_available() {
    let Some(path) = std::env::var_os("NTM_GLOVE_50D").map(PathBuf::from) else {
        eprintln!("NTM_GLOVE_50D is not set; skipping the GloVe 6B 50d check");
        return;
    };
    let vocabulary = words(&[
        "god", "jesus", "christ", "car", "engine", "wheel", "qqqzzzxx",
    ]);
    let embeddings = VocabularyEmbeddings::load(&path, &vocabulary).expect("load GloVe");
    assert_eq!(embeddings.dimension(), 50);
    assert_eq!(embeddings.missing_words(), 1);
    let scores = wetc(&[vec![0, 1, 2], vec![3, 4, 5], vec![0, 3, 5]], &embeddings);
    let [religion, cars, mixed] = [0, 1, 2].map(|k| scores.per_topic[k].expect("score"));
    assert!(religion > 0.6, "god jesus christ: {religion}");
    assert!(cars > 0.5, "car engine wheel: {cars}");
    assert!(mixed < religion, "mixed topic {mixed}, religion {religion}");
    assert!(mixed < cars, "mixed topic {mixed}, cars {cars}");
}
