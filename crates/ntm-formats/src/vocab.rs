//! `vocab.txt` of the auxiliary channel: line `i` is the word of feature id `i`.
//!
//! The file is UTF-8 with one word per line. A leading byte order mark is stripped, CRLF and
//! LF endings are both accepted, and a final line break is optional. Lines are kept as they
//! are otherwise: an empty line is an empty word, so the ids of later words never shift.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{FormatError, Result};

const BOM: &str = "\u{feff}";

/// Splits the bytes of a vocabulary file into words.
///
/// # Errors
/// [`FormatError::VocabEncoding`] naming the 1-based line and byte offset of the first
/// invalid UTF-8 sequence, with an empty path.
pub fn parse_vocab(bytes: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        FormatError::VocabEncoding {
            path: PathBuf::new(),
            line,
            offset: offset as u64,
        }
    })?;
    let text = text.strip_prefix(BOM).unwrap_or(text);
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    Ok(body
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned())
        .collect())
}

/// Reads the words of the vocabulary file at `path`.
///
/// # Errors
/// [`FormatError::Io`] when the file cannot be read, and the errors of [`parse_vocab`]
/// naming `path`.
pub fn read_vocab(path: &Path) -> Result<Vec<String>> {
    let bytes =
        std::fs::read(path).map_err(|e| FormatError::io(path, "reading the vocabulary", e))?;
    parse_vocab(&bytes).map_err(|e| e.with_path(path))
}

/// Logs a warning when words read from `path` include blank lines, which still take word ids
/// (the topic block then shows an empty word there).
pub fn warn_blank_words(path: &Path, words: &[String]) {
    let blank: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(_, word)| word.trim().is_empty())
        .map(|(id, _)| id + 1)
        .collect();
    if let Some(first) = blank.first() {
        tracing::warn!(
            path = %path.display(),
            "{} blank line(s) in the vocabulary, the first at line {first}; each still counts as a word id",
            blank.len()
        );
    }
}

/// Checks a vocabulary of `words` entries read from `path` against `feature_dim`.
///
/// More words than features is allowed: the extra lines are logged as a warning and ignored
/// by id lookups.
///
/// # Errors
/// [`FormatError::VocabTooShort`] naming both numbers when there are fewer words than
/// features, since word ids from `words` upward would have no name.
pub fn check_vocab_size(path: &Path, words: usize, feature_dim: usize) -> Result<()> {
    if words < feature_dim {
        return Err(FormatError::VocabTooShort {
            path: path.to_path_buf(),
            words,
            feature_dim,
        });
    }
    if words > feature_dim {
        tracing::warn!(
            path = %path.display(),
            words,
            feature_dim,
            "the vocabulary has more words than feature_dim; words after line {feature_dim} are ignored"
        );
    }
    Ok(())
}

/// Writes `words` one per line, each ending in `\n`, without a byte order mark.
///
/// Fails with [`io::ErrorKind::InvalidInput`] when a word contains a line break, since it
/// would shift the ids of every later word, and when the first word starts with U+FEFF,
/// since [`parse_vocab`] strips that character as a byte order mark.
pub fn write_vocab<W: Write>(mut out: W, words: &[String]) -> io::Result<W> {
    if let Some(first) = words.first().filter(|word| word.starts_with(BOM)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "word 0 ({first:?}) starts with U+FEFF, which readers strip as a byte order mark"
            ),
        ));
    }
    for (id, word) in words.iter().enumerate() {
        if word.contains(['\n', '\r']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("word {id} ({word:?}) contains a line break"),
            ));
        }
        out.write_all(word.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_line_keeps_later_ids() {
        let words = parse_vocab(b"a\n\nc\n").unwrap();
        assert_eq!(words, vec!["a", "", "c"]);
    }

    #[test]
    fn empty_file_has_no_words() {
        assert!(parse_vocab(b"").unwrap().is_empty());
        assert!(parse_vocab("\u{feff}".as_bytes()).unwrap().is_empty());
    }
}
