//! Errors of reading evaluation inputs.

use std::io;
use std::path::PathBuf;

/// An evaluation input that cannot be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line of a word-embedding file is not `word v1 v2 ... vd` with `d` finite numbers.
    #[error("invalid word-embedding file {path}, line {line}: {message}")]
    Embedding {
        /// The embedding file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// The problem and the expected input.
        message: String,
    },
    /// A word of a tokenised-documents file is not in the model's vocabulary.
    #[error(
        "{path}, line {line}: word {word:?} is not in the model's vocabulary; a tokenised-documents \
         file holds one document per line with vocabulary words only, as `ntm prepare` writes \
         them to tokens/<split>.txt"
    )]
    UnknownToken {
        /// The tokenised-documents file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// The word.
        word: String,
    },
}
