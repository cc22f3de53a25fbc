//! The error type shared by every reader and writer of this crate.
//!
//! Each variant carries the file it concerns and the position inside it (byte offset, record
//! index, line and column, key), so a message shows the user where to look and what to change.
//! Decoders that work on bytes in memory leave the path empty; the layer that opened the file
//! fills it in with [`FormatError::with_path`]. An empty path is displayed as "the input".

use std::fmt;
use std::path::{Path, PathBuf};

use crate::sniff::Sniffed;

/// Position of one value inside a document: a CSV cell or a key of a sparse record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// A CSV cell; `line` and `column` are 1-based.
    Csv {
        /// Line number in the file, 1-based.
        line: u64,
        /// Column number, 1-based, counting the label column when there is one.
        column: usize,
    },
    /// An entry of a RecordIO-protobuf record; `record` is 0-based.
    Record {
        /// Index of the record in its file, 0-based.
        record: usize,
        /// Feature index (the sparse key, or the position in a dense tensor).
        key: u64,
    },
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Csv { line, column } => write!(f, "line {line}, column {column}"),
            Cell::Record { record, key } => write!(f, "record {record}, key {key}"),
        }
    }
}

/// Position of one document in its file: a CSV line or a RecordIO record index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowPosition {
    /// Line number of a CSV row, 1-based.
    Line(u64),
    /// Index of a RecordIO record, 0-based.
    Record(usize),
}

impl fmt::Display for RowPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowPosition::Line(line) => write!(f, "line {line}"),
            RowPosition::Record(index) => write!(f, "record {index}"),
        }
    }
}

/// A document position together with the file that contains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPosition {
    /// File that contains the document.
    pub path: PathBuf,
    /// Line or record index inside `path`.
    pub row: RowPosition,
}

impl fmt::Display for DocumentPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", show(&self.path), self.row)
    }
}

/// Displays a path, or "the input" for the empty path of in-memory data.
fn show(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        "the input".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Formats the list of rows for the all-empty channel error.
fn list_positions(positions: &[DocumentPosition]) -> String {
    let shown: Vec<String> = positions.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

/// Says why a channel has no document: its files hold no rows, or every row is empty.
fn describe_empty(empty: usize, first_empty: &[DocumentPosition]) -> String {
    if empty == 0 {
        "its files hold no rows. Upload the data or fix the channel path.".to_owned()
    } else {
        format!(
            "all {empty} rows are empty (first: {}). Check the preprocessing that built the \
             counts.",
            list_positions(first_empty)
        )
    }
}

/// Every failure of reading or writing a data file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The operating system failed to open, list or read a file.
    #[error("{}: {action} failed", show(.path))]
    Io {
        /// File or folder concerned.
        path: PathBuf,
        /// Attempted operation, for example "opening the file".
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The bytes at a record boundary are not the RecordIO magic number.
    #[error(
        "{}: the RecordIO magic number 0xced7230a was not found at byte offset {offset} \
         (record {record}); found bytes {found}. {}",
        show(.path), .looks_like.hint()
    )]
    BadMagic {
        /// File concerned.
        path: PathBuf,
        /// Index of the record that should start here, 0-based.
        record: usize,
        /// Byte offset of the expected magic number.
        offset: u64,
        /// The bytes found instead, in hex.
        found: String,
        /// Format that the bytes at the offset resemble.
        looks_like: Sniffed,
    },

    /// The file ends inside a RecordIO header, payload or split record.
    #[error(
        "{}: record {record} at byte offset {offset} is truncated: the {part} needs \
         {expected} bytes but only {available} remain. The file was cut short or is not \
         RecordIO; upload it again or regenerate it.",
        show(.path)
    )]
    Truncated {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// Byte offset where the incomplete part starts.
        offset: u64,
        /// Incomplete part: "header", "payload" or "split record".
        part: &'static str,
        /// Bytes the part needs.
        expected: u64,
        /// Bytes left in the file.
        available: u64,
    },

    /// A RecordIO continuation flag appears out of order.
    #[error(
        "{}: record {record} at byte offset {offset} has continuation flag {cflag}, but {expected}. \
         The file mixes parts of split records; regenerate it with an MXNet or SageMaker writer.",
        show(.path)
    )]
    BadContinuation {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// Byte offset of the part header.
        offset: u64,
        /// The flag found (0 to 7).
        cflag: u32,
        /// Flags the sequence allows at this point.
        expected: &'static str,
    },

    /// A RecordIO payload is not a valid `aialgs.data.Record` protobuf message.
    #[error(
        "{}: record {record} is not a valid aialgs.data.Record protobuf message ({message}). \
         Write records with the SageMaker SDK's write_spmatrix_to_sparse_tensor or \
         write_numpy_to_dense_tensor.",
        show(.path)
    )]
    InvalidProtobuf {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// The protobuf decoder's message.
        message: String,
    },

    /// A record has no `features["values"]` tensor.
    #[error(
        "{}: record {record} has no feature named \"values\" (features present: {present:?}). \
         The feature vector must be stored under the key \"values\".",
        show(.path)
    )]
    MissingValues {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// Feature names the record does have.
        present: Vec<String>,
    },

    /// `features["values"]` contains something other than a numeric tensor.
    #[error(
        "{}: record {record} stores its \"values\" feature as {kind}; expected a Float32Tensor, \
         Float64Tensor or Int32Tensor.",
        show(.path)
    )]
    UnsupportedTensor {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// Kind of value found, for example "a Bytes value".
        kind: &'static str,
    },

    /// A dense record has a length other than `feature_dim`.
    #[error(
        "{}: record {record} is a dense tensor of {len} values but feature_dim is {feature_dim}. \
         Set feature_dim to the vocabulary size of the data.",
        show(.path)
    )]
    DenseLength {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// Number of values in the record.
        len: usize,
        /// The expected length.
        feature_dim: usize,
    },

    /// A sparse record declares a shape whose first entry is not `feature_dim`.
    #[error(
        "{}: record {record} has shape {shape:?} but feature_dim is {feature_dim}. \
         Set feature_dim to the vocabulary size of the data.",
        show(.path)
    )]
    ShapeMismatch {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// The declared shape.
        shape: Vec<u64>,
        /// The expected first entry.
        feature_dim: usize,
    },

    /// A sparse record has different numbers of keys and values.
    #[error(
        "{}: record {record} has {keys} keys but {values} values; a sparse tensor needs one \
         value per key.",
        show(.path)
    )]
    KeysValuesLength {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// Number of keys.
        keys: usize,
        /// Number of values.
        values: usize,
    },

    /// A sparse key is not below `feature_dim`.
    #[error(
        "{}: record {record} has key {key}, outside the valid range 0..={} (feature_dim is \
         {feature_dim}). Keys are 0-based word ids and must be below feature_dim.",
        show(.path), .feature_dim.saturating_sub(1)
    )]
    KeyOutOfRange {
        /// File concerned.
        path: PathBuf,
        /// Index of the record, 0-based.
        record: usize,
        /// The offending key.
        key: u64,
        /// Number of features.
        feature_dim: usize,
    },

    /// A count is NaN or infinite (or too large for 32-bit floats).
    #[error(
        "{}: {cell} has value {value}, which is not a finite number. Counts must be finite and \
         >= 0.",
        show(.path)
    )]
    NonFinite {
        /// File concerned.
        path: PathBuf,
        /// Position of the value.
        cell: Cell,
        /// The value as written (CSV text or the decoded number).
        value: String,
    },

    /// A count is negative.
    #[error("{}: {cell} has value {value}, but counts must be >= 0.", show(.path))]
    Negative {
        /// File concerned.
        path: PathBuf,
        /// Position of the value.
        cell: Cell,
        /// The value as written (CSV text or the decoded number).
        value: String,
    },

    /// A CSV row has a number of columns other than `feature_dim` (plus the label column).
    #[error(
        "{}: line {line} has {columns} columns but feature_dim is {feature_dim}{}. {}",
        show(.path),
        if *.label_size == 0 { String::new() } else { format!(" (plus {label_size} label column)") },
        csv_width_hint(*.columns, *.feature_dim, *.label_size)
    )]
    CsvWidth {
        /// File concerned.
        path: PathBuf,
        /// Line number, 1-based.
        line: u64,
        /// Columns found on the line.
        columns: usize,
        /// Expected number of feature columns.
        feature_dim: usize,
        /// Number of leading label columns the content type declares.
        label_size: usize,
    },

    /// The first line of a CSV file is not numeric, so it is most likely a header.
    #[error(
        "{}: line {line}, column {column} has value {value:?}, which is not a number. {}",
        show(.path),
        csv_header_hint(.value)
    )]
    CsvHeader {
        /// File concerned.
        path: PathBuf,
        /// Line number, 1-based.
        line: u64,
        /// Column number, 1-based.
        column: usize,
        /// The cell text.
        value: String,
    },

    /// A CSV cell is empty.
    #[error(
        "{}: line {line}, column {column} is empty. Write 0 for words that do not occur.",
        show(.path)
    )]
    CsvEmptyField {
        /// File concerned.
        path: PathBuf,
        /// Line number, 1-based.
        line: u64,
        /// Column number, 1-based.
        column: usize,
    },

    /// A CSV cell is not a number.
    #[error(
        "{}: line {line}, column {column} has value {value:?}, which is not a number. Each cell \
         must be a plain decimal count such as 0, 3 or 1.5.",
        show(.path)
    )]
    CsvInvalidNumber {
        /// File concerned.
        path: PathBuf,
        /// Line number, 1-based.
        line: u64,
        /// Column number, 1-based.
        column: usize,
        /// The cell text (lossily decoded when it is not UTF-8).
        value: String,
    },

    /// The CSV parser rejected the file (for example an unterminated quote).
    #[error("{}: line {line} is not valid CSV: {message}.", show(.path))]
    CsvSyntax {
        /// File concerned.
        path: PathBuf,
        /// Line number, 1-based.
        line: u64,
        /// The parser's message.
        message: String,
    },

    /// A file of one format is on a channel declared as another.
    #[error(
        "{}: the channel's content type is {declared}, but the file does not start like one. {}",
        show(.path), .looks_like.hint()
    )]
    ContentMismatch {
        /// File concerned.
        path: PathBuf,
        /// The declared content type.
        declared: String,
        /// Format that the first bytes resemble.
        looks_like: Sniffed,
    },

    /// A content type string names no supported format.
    #[error(
        "content type {value:?} is not supported: {reason}. Supported types: text/csv, \
         text/csv;label_size=0, text/csv;label_size=1 and application/x-recordio-protobuf."
    )]
    UnsupportedContentType {
        /// The string given.
        value: String,
        /// Reason for the rejection.
        reason: String,
    },

    /// A channel folder holds no data files.
    #[error(
        "{}: the channel has no data files (hidden files, whose names start with '.', are \
         skipped). Upload the data or fix the channel path.",
        show(.path)
    )]
    EmptyChannel {
        /// The channel folder.
        path: PathBuf,
    },

    /// Every document in a channel is empty, or its files hold no rows at all.
    #[error("{}: no non-empty documents in the channel: {}", show(.path), describe_empty(*.empty, .first_empty))]
    NoDocuments {
        /// The channel folder or file.
        path: PathBuf,
        /// Number of empty rows read.
        empty: usize,
        /// Positions of the first few empty rows.
        first_empty: Vec<DocumentPosition>,
    },

    /// A vocabulary file is not valid UTF-8.
    #[error(
        "{}: line {line} is not valid UTF-8 (invalid byte at byte offset {offset}). Save \
         vocab.txt as UTF-8.",
        show(.path)
    )]
    VocabEncoding {
        /// File concerned.
        path: PathBuf,
        /// Line number, 1-based.
        line: u64,
        /// Byte offset of the first invalid byte in the file.
        offset: u64,
    },

    /// A vocabulary has fewer words than `feature_dim`.
    #[error(
        "{}: the vocabulary has {words} words but feature_dim is {feature_dim}. Line i of \
         vocab.txt names word id i, so it needs at least feature_dim lines.",
        show(.path)
    )]
    VocabTooShort {
        /// File concerned.
        path: PathBuf,
        /// Number of words read.
        words: usize,
        /// Number of features.
        feature_dim: usize,
    },
}

/// Matches every variant that names a file, so `path` and `path_mut` list them once.
/// Binding by reference or by mutable reference follows the expression's type.
macro_rules! path_field {
    ($error:expr) => {{
        use FormatError::*;
        match $error {
            Io { path, .. }
            | BadMagic { path, .. }
            | Truncated { path, .. }
            | BadContinuation { path, .. }
            | InvalidProtobuf { path, .. }
            | MissingValues { path, .. }
            | UnsupportedTensor { path, .. }
            | DenseLength { path, .. }
            | ShapeMismatch { path, .. }
            | KeysValuesLength { path, .. }
            | KeyOutOfRange { path, .. }
            | NonFinite { path, .. }
            | Negative { path, .. }
            | CsvWidth { path, .. }
            | CsvHeader { path, .. }
            | CsvEmptyField { path, .. }
            | CsvInvalidNumber { path, .. }
            | CsvSyntax { path, .. }
            | ContentMismatch { path, .. }
            | EmptyChannel { path }
            | NoDocuments { path, .. }
            | VocabEncoding { path, .. }
            | VocabTooShort { path, .. } => Some(path),
            UnsupportedContentType { .. } => None,
        }
    }};
}

impl FormatError {
    /// Sets the file path of an error built by an in-memory decoder.
    ///
    /// Errors that already name a file keep it.
    pub fn with_path(mut self, file: &Path) -> Self {
        if let Some(slot) = self.path_mut() {
            if slot.as_os_str().is_empty() {
                *slot = file.to_path_buf();
            }
        }
        self
    }

    /// Returns the file or folder the error concerns, if it names one.
    pub fn path(&self) -> Option<&Path> {
        path_field!(self).map(PathBuf::as_path)
    }

    fn path_mut(&mut self) -> Option<&mut PathBuf> {
        path_field!(self)
    }

    /// Builds an [`FormatError::Io`] for `path`.
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Suggests the fix for a CSV row of the wrong width.
fn csv_width_hint(columns: usize, feature_dim: usize, label_size: usize) -> &'static str {
    if label_size > 0 && columns == feature_dim {
        "The rows hold no label column, but the content type declares one: use text/csv or \
         text/csv;label_size=0."
    } else if label_size == 0 && columns == feature_dim + 1 {
        "If the first column is a label, declare it with the content type \
         text/csv;label_size=1."
    } else {
        "Each row must hold one count per vocabulary word: check that the file was counted with \
         the vocabulary that sets feature_dim (the model's, or the training hyperparameters')."
    }
}

/// Suggests the fix for a non-numeric first CSV line: a header row, or raw text.
fn csv_header_hint(value: &str) -> &'static str {
    if value.split_whitespace().nth(2).is_some() {
        "It looks like raw text, but channels hold word counts: turn documents into channels \
         with `ntm prepare`."
    } else {
        "It looks like a header row, but CSV input must not have a header: remove the line and \
         put the words in vocab.txt on the auxiliary channel."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_path_fills_only_empty_path() {
        let err = FormatError::CsvEmptyField {
            path: PathBuf::new(),
            line: 2,
            column: 3,
        };
        assert!(err.to_string().starts_with("the input: line 2, column 3"));
        let err = err.with_path(Path::new("a.csv"));
        assert_eq!(err.path(), Some(Path::new("a.csv")));
        let err = err.with_path(Path::new("b.csv"));
        assert_eq!(err.path(), Some(Path::new("a.csv")));
        assert!(err
            .to_string()
            .starts_with("a.csv: line 2, column 3 is empty."));
    }
}
