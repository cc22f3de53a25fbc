//! Stop-word lists: the built-in English list and lists loaded from text files.
//!
//! A stop-word file has one word per line. Leading and trailing whitespace is
//! trimmed, blank lines are ignored, and a line whose first non-blank
//! character is `#` is a comment. Words are lowercased when loaded, because
//! the tokenizer matches stop words case-insensitively.

use std::path::{Path, PathBuf};

/// The built-in English list as a text file (see the module docs for the format).
const ENGLISH_SOURCE: &str = include_str!("stopwords_en.txt");

/// Errors raised while loading a stop-word file.
#[derive(Debug, thiserror::Error)]
pub enum StopWordsError {
    /// The file could not be opened or read.
    #[error("failed to read stop-word file {path}")]
    Io {
        /// The file that was requested.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid UTF-8.
    #[error(
        "stop-word file {path} is not valid UTF-8 (first invalid byte at offset {byte_offset})"
    )]
    InvalidUtf8 {
        /// The file that was read.
        path: PathBuf,
        /// Byte offset of the first invalid byte.
        byte_offset: usize,
    },
}

/// Returns the built-in English stop words: about 300 lowercase function
/// words, sorted by byte order and without duplicates.
pub fn english() -> Vec<String> {
    parse_stop_words(ENGLISH_SOURCE)
}

/// Parses stop words from text in the file format of this module.
///
/// The result is lowercased, sorted by byte order and free of duplicates.
pub fn parse_stop_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_lowercase)
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

/// Loads a stop-word list from a UTF-8 text file (format in the module docs).
///
/// # Errors
/// [`StopWordsError::Io`] when the file cannot be read and
/// [`StopWordsError::InvalidUtf8`] when it is not UTF-8.
pub fn load_stop_words(path: &Path) -> Result<Vec<String>, StopWordsError> {
    let bytes = std::fs::read(path).map_err(|source| StopWordsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|err| StopWordsError::InvalidUtf8 {
        path: path.to_path_buf(),
        byte_offset: err.utf8_error().valid_up_to(),
    })?;
    let words = parse_stop_words(&text);
    tracing::debug!(path = %path.display(), count = words.len(), "loaded stop words");
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_list_is_sorted_lowercase_and_unique() {
        let words = english();
        assert!(
            (250..=350).contains(&words.len()),
            "{} stop words",
            words.len()
        );
        for pair in words.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{:?} is not before {:?}",
                pair[0],
                pair[1]
            );
        }
        for word in &words {
            assert_eq!(*word, word.to_lowercase());
            assert!(word.chars().all(char::is_alphabetic), "{word:?}");
        }
    }

    #[test]
    fn english_list_holds_function_words_only() {
        let words = english();
        for word in ["the", "and", "of", "to", "is", "which", "themselves"] {
            assert!(words.binary_search(&word.to_string()).is_ok(), "{word}");
        }
        for word in ["god", "windows", "car", "game", "government"] {
            assert!(words.binary_search(&word.to_string()).is_err(), "{word}");
        }
    }

    #[test]
    fn parse_skips_comments_and_blank_lines() {
        let text = "# my list\n\n  Foo  \nbar\n   # indented comment\nfoo\n\r\nBaz\r\n";
        assert_eq!(parse_stop_words(text), vec!["bar", "baz", "foo"]);
    }

    #[test]
    fn load_reads_file() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("stop.txt");
        std::fs::write(&path, "zeta\nalpha\n# comment\n").expect("write stop words");
        let words = load_stop_words(&path).expect("load stop words");
        assert_eq!(words, vec!["alpha", "zeta"]);
    }

    #[test]
    fn load_reports_missing_file() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("absent.txt");
        let err = load_stop_words(&path).expect_err("missing file must fail");
        assert!(matches!(&err, StopWordsError::Io { path: p, .. } if *p == path));
        assert!(err.to_string().contains("absent.txt"), "{err}");
    }

    #[test]
    fn load_reports_invalid_utf8_offset() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("latin1.txt");
        std::fs::write(&path, b"ok\ncaf\xe9\n").expect("write stop words");
        let err = load_stop_words(&path).expect_err("invalid UTF-8 must fail");
        assert!(
            matches!(err, StopWordsError::InvalidUtf8 { byte_offset: 6, .. }),
            "{err:?}"
        );
    }
}
