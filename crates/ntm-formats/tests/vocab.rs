//! `vocab.txt`: encodings, line endings and the size check.

mod common;

use ntm_formats::vocab::{check_vocab_size, parse_vocab, read_vocab, write_vocab};
use ntm_formats::FormatError;

#[test]
fn bom_crlf_accents_and_cjk_are_read_exactly() {
    let words = read_vocab(&common::data("vocab/vocab_ok.txt")).unwrap();
    assert_eq!(words, vec!["apple", "café", "naïve", "東京", "Straße"]);
    check_vocab_size(&common::data("vocab/vocab_ok.txt"), words.len(), 5).unwrap();
}

#[test]
fn invalid_utf8_names_its_line() {
    let path = common::data("vocab/vocab_bad.txt");
    let err = read_vocab(&path).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::VocabEncoding {
                line: 2,
                offset: 9,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("vocab_bad.txt"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn short_vocabulary_names_both_sizes() {
    let path = common::data("vocab/vocab_short.txt");
    let words = read_vocab(&path).unwrap();
    assert_eq!(words.len(), 4);
    let err = check_vocab_size(&path, words.len(), 5).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::VocabTooShort {
                words: 4,
                feature_dim: 5,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("4 words but feature_dim is 5"),
        "{message}"
    );
}

#[test]
fn long_vocabulary_is_allowed() {
    check_vocab_size(&common::data("vocab/vocab_ok.txt"), 5, 3).unwrap();
}

#[test]
fn missing_final_newline_keeps_last_word() {
    assert_eq!(parse_vocab(b"a\r\nb").unwrap(), vec!["a", "b"]);
}

#[test]
fn writer_round_trips_unicode() {
    let words: Vec<String> = ["apple", "café", "東京", ""]
        .iter()
        .map(|w| w.to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vocab.txt");
    write_vocab(std::fs::File::create(&path).unwrap(), &words).unwrap();
    assert_eq!(read_vocab(&path).unwrap(), words);
}

#[test]
fn writer_rejects_line_breaks() {
    let words = vec!["ok".to_owned(), "two\nlines".to_owned()];
    let err = write_vocab(Vec::new(), &words).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn writer_rejects_leading_byte_order_mark() {
    // The file starts with two byte order marks. The reader strips one, so the first word
    // keeps the other, and writing that word first would lose it on the next read.
    let words = parse_vocab(b"\xef\xbb\xbf\xef\xbb\xbfapple\ncafe\n").unwrap();
    assert_eq!(words, vec!["\u{feff}apple", "cafe"]);
    let err = write_vocab(Vec::new(), &words).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("U+FEFF"), "{err}");
}

#[test]
fn writer_keeps_later_byte_order_mark() {
    let words = vec!["apple".to_owned(), "\u{feff}cafe".to_owned()];
    let written = write_vocab(Vec::new(), &words).unwrap();
    assert_eq!(parse_vocab(&written).unwrap(), words);
}
