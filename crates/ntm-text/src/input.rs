//! Document sources: JSON Lines files, folders of text files and CSV files.
//!
//! Every source yields [`Document`]s (an id and the raw text) in a stable
//! order. A file whose name ends in `.gz` (any case), or whose first bytes are
//! the gzip magic number, is decompressed while it is read, including
//! concatenated gzip members.
//!
//! - **JSON Lines** ([`SourceKind::JsonLines`]): one JSON object per line; the
//!   text is the string field named by [`SourceOptions::text_field`]. The id
//!   is the `id` field when present (a string, or a number written as JSON
//!   writes it), else the 1-based line number. Blank lines are skipped.
//! - **Text folder** ([`SourceKind::TextFolder`]): one document per file, for
//!   every file in the folder and its subfolders, ordered by relative path
//!   (compared component by component). Files and folders whose names start
//!   with `.` are skipped, and so are symbolic links to folders (links to
//!   files are read). The id is the relative path with `/` separators. Bytes
//!   that are not UTF-8 are replaced by U+FFFD, with one warning for the first
//!   such file.
//! - **CSV** ([`SourceKind::Csv`]): a header row, then one document per
//!   record; the text is the column named by [`SourceOptions::text_field`].
//!   The id is the `id` column when the header has one, else the 1-based line
//!   on which the record starts.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use csv_quotes::QuoteTracker;
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

/// Name of the field or column that gives a document id, when present.
pub const ID_FIELD: &str = "id";

/// Default name of the field or column that contains the text.
pub const DEFAULT_TEXT_FIELD: &str = "text";

/// One raw document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Identifier, unique within a well-formed source (see the module docs).
    pub id: String,
    /// The raw text.
    pub text: String,
}

/// The format of a document source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceKind {
    /// A JSON Lines file (`.jsonl`, `.json`, `.ndjson`, optionally `.gz`).
    #[serde(rename = "jsonl")]
    JsonLines,
    /// A folder of plain-text files.
    #[serde(rename = "folder")]
    TextFolder,
    /// A CSV file with a header row (`.csv`, optionally `.gz`).
    #[serde(rename = "csv")]
    Csv,
}

impl SourceKind {
    /// The names [`FromStr`] accepts, first name canonical.
    pub const NAMES: [&'static str; 3] = ["jsonl", "folder", "csv"];
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::JsonLines => "jsonl",
            Self::TextFolder => "folder",
            Self::Csv => "csv",
        };
        f.write_str(name)
    }
}

/// Failure to parse a [`SourceKind`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source kind {name:?}: expected one of jsonl, folder, csv")]
pub struct ParseSourceKindError {
    /// The rejected name.
    pub name: String,
}

impl FromStr for SourceKind {
    type Err = ParseSourceKindError;

    /// Parses `jsonl` (or `ndjson`, `json`), `folder` (or `dir`) and `csv`,
    /// ignoring ASCII case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" | "json-lines" => Ok(Self::JsonLines),
            "folder" | "dir" | "text-folder" => Ok(Self::TextFolder),
            "csv" => Ok(Self::Csv),
            _ => Err(ParseSourceKindError {
                name: name.to_string(),
            }),
        }
    }
}

/// How to read a document source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    /// The source kind; `None` detects it from the path ([`detect_source_kind`]).
    pub kind: Option<SourceKind>,
    /// The JSON field or CSV column that contains the text. Default `text`.
    pub text_field: String,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            kind: None,
            text_field: DEFAULT_TEXT_FIELD.to_string(),
        }
    }
}

/// Errors of reading documents.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file or folder could not be opened or read (including corrupt gzip data).
    #[error("failed to read {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The source kind cannot be detected from the path.
    #[error(
        "cannot tell the format of {path} from its name: expected a folder or a file \
         ending in .jsonl, .json, .ndjson or .csv (each optionally followed by .gz); \
         name the kind with --input-format (jsonl, csv or folder), or put text files in a \
         folder, one document per file"
    )]
    UnknownSourceKind {
        /// The path given.
        path: PathBuf,
    },
    /// A folder was expected but the path is a file.
    #[error("{path} is not a folder, but the text-folder source kind needs one")]
    NotAFolder {
        /// The path given.
        path: PathBuf,
    },
    /// A JSON Lines line is not valid JSON.
    #[error("{path}, line {line}: invalid JSON")]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parser error (its column is relative to the line).
        source: serde_json::Error,
    },
    /// A JSON Lines line is valid JSON but not an object.
    #[error("{path}, line {line}: expected a JSON object, found {found}")]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The JSON type found.
        found: &'static str,
    },
    /// A JSON object lacks the text field.
    #[error(
        "{path}, line {line}: missing text field {field:?}; the object has {}; choose the field \
         with --text-field",
        field_list(present)
    )]
    MissingField {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field name.
        field: String,
        /// The object's fields, sorted.
        present: Vec<String>,
    },
    /// A JSON field has the wrong type.
    #[error("{path}, line {line}: field {field:?} must be {expected}, found {found}")]
    WrongFieldType {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The field name.
        field: String,
        /// The allowed types.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// The CSV header has no column with the text field's name.
    #[error("{path}: the CSV header has no column {column:?} (columns: {available:?})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The requested column.
        column: String,
        /// The columns of the header.
        available: Vec<String>,
    },
    /// The CSV reader failed (malformed record, invalid UTF-8, I/O).
    #[error("{path}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV error, which includes the record position.
        source: csv::Error,
    },
    /// A quoted CSV field is still open at the end of the file.
    #[error(
        "{path}, line {line}: a quoted field opens here and is never closed, so every later \
         row would be read as its text; close the quote, or write a quote inside a quoted \
         field as \"\""
    )]
    UnclosedQuote {
        /// The file.
        path: PathBuf,
        /// 1-based line of the opening quote.
        line: u64,
    },
}

/// Detects the source kind of a path.
///
/// A folder is a text folder. For a file, the name without a final `.gz`
/// must end in `.jsonl`, `.json`, `.ndjson` or `.csv`, ignoring ASCII case.
///
/// # Errors
/// [`InputError::Io`] when the path does not exist, and
/// [`InputError::UnknownSourceKind`] for any other file name.
pub fn detect_source_kind(path: &Path) -> Result<SourceKind, InputError> {
    let metadata = std::fs::metadata(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if metadata.is_dir() {
        return Ok(SourceKind::TextFolder);
    }

    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if [".jsonl", ".json", ".ndjson"]
        .iter()
        .any(|extension| name.ends_with(extension))
    {
        Ok(SourceKind::JsonLines)
    } else if name.ends_with(".csv") {
        Ok(SourceKind::Csv)
    } else {
        Err(InputError::UnknownSourceKind {
            path: path.to_path_buf(),
        })
    }
}

/// Returns `kind` when given, else the kind detected from `path`.
///
/// # Errors
/// As [`detect_source_kind`], only when `kind` is `None`.
pub fn resolve_source_kind(
    path: &Path,
    kind: Option<SourceKind>,
) -> Result<SourceKind, InputError> {
    match kind {
        Some(kind) => Ok(kind),
        None => detect_source_kind(path),
    }
}

/// Opens a document source for streaming.
///
/// Errors that concern the whole source (missing path, unknown kind, missing
/// CSV column) are returned here. Errors in single documents come from the
/// iterator, which ends after the first error.
///
/// # Errors
/// See [`InputError`].
pub fn open_documents(path: &Path, options: &SourceOptions) -> Result<Documents, InputError> {
    let kind = resolve_source_kind(path, options.kind)?;
    let inner = match kind {
        SourceKind::JsonLines => {
            Inner::JsonLines(JsonLinesReader::open(path, &options.text_field)?)
        }
        SourceKind::TextFolder => Inner::TextFolder(TextFolderReader::open(path)?),
        SourceKind::Csv => Inner::Csv(CsvDocumentReader::open(path, &options.text_field)?),
    };
    tracing::debug!(path = %path.display(), %kind, "opened document source");
    Ok(Documents {
        inner,
        failed: false,
    })
}

/// Reads every document of a source into memory.
///
/// # Errors
/// The first error of [`open_documents`] or of the iteration.
pub fn read_documents(path: &Path, options: &SourceOptions) -> Result<Vec<Document>, InputError> {
    open_documents(path, options)?.collect()
}

/// Iterator over the documents of a source, from [`open_documents`].
///
/// Yields `Ok(document)` in the source's order and ends after the first `Err`.
pub struct Documents {
    inner: Inner,
    failed: bool,
}

enum Inner {
    JsonLines(JsonLinesReader),
    TextFolder(TextFolderReader),
    Csv(CsvDocumentReader),
}

impl Iterator for Documents {
    type Item = Result<Document, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match &mut self.inner {
            Inner::JsonLines(reader) => reader.next_document(),
            Inner::TextFolder(reader) => reader.next_document(),
            Inner::Csv(reader) => reader.next_document(),
        };
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

fn is_gzip_path(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().to_ascii_lowercase().ends_with(".gz"))
}

/// Opens a file for buffered reading, decompressing `.gz` files and any file that starts
/// with the gzip magic bytes, whatever its name.
fn open_reader(path: &Path) -> Result<Box<dyn BufRead + Send>, InputError> {
    let io_error = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let mut buffered = BufReader::new(file);
    let starts_with_gzip_magic = buffered
        .fill_buf()
        .map_err(io_error)?
        .starts_with(&[0x1f, 0x8b]);
    if is_gzip_path(path) || starts_with_gzip_magic {
        let decoder = MultiGzDecoder::new(buffered);
        Ok(Box::new(BufReader::new(decoder)))
    } else {
        Ok(Box::new(buffered))
    }
}

fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

struct JsonLinesReader {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    text_field: String,
    line: usize,
    buffer: Vec<u8>,
}

impl JsonLinesReader {
    fn open(path: &Path, text_field: &str) -> Result<Self, InputError> {
        Ok(Self {
            path: path.to_path_buf(),
            reader: open_reader(path)?,
            text_field: text_field.to_string(),
            line: 0,
            buffer: Vec::new(),
        })
    }

    fn next_document(&mut self) -> Option<Result<Document, InputError>> {
        loop {
            self.buffer.clear();
            match self.reader.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(InputError::Io {
                        path: self.path.clone(),
                        source,
                    }))
                }
            }
            self.line += 1;
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(self.parse_line());
        }
    }

    fn parse_line(&self) -> Result<Document, InputError> {
        let value: serde_json::Value =
            serde_json::from_slice(&self.buffer).map_err(|source| InputError::InvalidJson {
                path: self.path.clone(),
                line: self.line,
                source,
            })?;
        let serde_json::Value::Object(mut object) = value else {
            return Err(InputError::NotAnObject {
                path: self.path.clone(),
                line: self.line,
                found: json_type_name(&value),
            });
        };

        let text = match object.remove(&self.text_field) {
            Some(serde_json::Value::String(text)) => text,
            Some(other) => {
                return Err(InputError::WrongFieldType {
                    path: self.path.clone(),
                    line: self.line,
                    field: self.text_field.clone(),
                    expected: "a string",
                    found: json_type_name(&other),
                })
            }
            None => {
                return Err(InputError::MissingField {
                    path: self.path.clone(),
                    line: self.line,
                    field: self.text_field.clone(),
                    present: object.keys().cloned().collect(),
                })
            }
        };

        // A null id counts as absent, as pandas writes missing values.
        let id = match object.get(ID_FIELD) {
            None | Some(serde_json::Value::Null) => self.line.to_string(),
            Some(serde_json::Value::String(id)) => id.clone(),
            Some(serde_json::Value::Number(id)) => id.to_string(),
            Some(other) => {
                return Err(InputError::WrongFieldType {
                    path: self.path.clone(),
                    line: self.line,
                    field: ID_FIELD.to_string(),
                    expected: "a string or a number",
                    found: json_type_name(other),
                })
            }
        };
        Ok(Document { id, text })
    }
}

struct TextFolderReader {
    /// Files as (relative id, full path), sorted by relative path.
    files: std::vec::IntoIter<(String, PathBuf)>,
    warned_invalid_utf8: bool,
}

impl TextFolderReader {
    fn open(root: &Path) -> Result<Self, InputError> {
        let metadata = std::fs::metadata(root).map_err(|source| InputError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        if !metadata.is_dir() {
            return Err(InputError::NotAFolder {
                path: root.to_path_buf(),
            });
        }

        let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
        collect_files(root, Path::new(""), &mut files)?;
        files.sort_by(|a, b| a.0.cmp(&b.0));

        let files: Vec<(String, PathBuf)> = files
            .into_iter()
            .map(|(relative, full)| (relative_id(&relative), full))
            .collect();
        tracing::debug!(path = %root.display(), files = files.len(), "listed text folder");
        Ok(Self {
            files: files.into_iter(),
            warned_invalid_utf8: false,
        })
    }

    fn next_document(&mut self) -> Option<Result<Document, InputError>> {
        let (id, path) = self.files.next()?;
        let mut bytes = Vec::new();
        let read = open_reader(&path).and_then(|mut reader| {
            reader
                .read_to_end(&mut bytes)
                .map_err(|source| InputError::Io {
                    path: path.clone(),
                    source,
                })
        });
        if let Err(err) = read {
            return Some(Err(err));
        }

        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                if !self.warned_invalid_utf8 {
                    self.warned_invalid_utf8 = true;
                    tracing::warn!(
                        path = %path.display(),
                        byte_offset = err.utf8_error().valid_up_to(),
                        "file is not valid UTF-8; invalid bytes are replaced by U+FFFD \
                         (reported for the first such file only)"
                    );
                }
                String::from_utf8_lossy(err.as_bytes()).into_owned()
            }
        };
        Some(Ok(Document { id, text }))
    }
}

/// Builds the id of a file from its relative path, components joined with `/`.
fn relative_id(relative: &Path) -> String {
    let parts: Vec<String> = relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Appends every non-hidden file under `folder` as (relative path, full path).
fn collect_files(
    folder: &Path,
    relative: &Path,
    files: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), InputError> {
    let io_error = |source| InputError::Io {
        path: folder.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(folder).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let full = entry.path();
        let child_relative = relative.join(&name);
        let file_type = entry.file_type().map_err(|source| InputError::Io {
            path: full.clone(),
            source,
        })?;

        if file_type.is_dir() {
            collect_files(&full, &child_relative, files)?;
        } else if file_type.is_symlink() {
            match std::fs::metadata(&full) {
                Ok(target) if target.is_file() => files.push((child_relative, full)),
                Ok(_) => {
                    tracing::warn!(path = %full.display(), "skipping symbolic link that is not a file")
                }
                Err(source) => return Err(InputError::Io { path: full, source }),
            }
        } else {
            files.push((child_relative, full));
        }
    }
    Ok(())
}

struct CsvDocumentReader {
    path: PathBuf,
    reader: csv::Reader<QuoteTracker<Box<dyn BufRead + Send>>>,
    text_column: usize,
    id_column: Option<usize>,
    record: csv::StringRecord,
}

impl CsvDocumentReader {
    fn open(path: &Path, text_field: &str) -> Result<Self, InputError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(QuoteTracker::new(open_reader(path)?));
        let headers = reader
            .headers()
            .map_err(|source| InputError::Csv {
                path: path.to_path_buf(),
                source,
            })?
            .clone();

        let text_column = headers
            .iter()
            .position(|name| name == text_field)
            .ok_or_else(|| InputError::MissingColumn {
                path: path.to_path_buf(),
                column: text_field.to_string(),
                available: headers.iter().map(str::to_string).collect(),
            })?;
        let id_column = headers.iter().position(|name| name == ID_FIELD);
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            text_column,
            id_column,
            record: csv::StringRecord::new(),
        })
    }

    fn next_document(&mut self) -> Option<Result<Document, InputError>> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => {
                // The last record contains the rest of the file, so fail instead of keeping
                // every later row as one document's text.
                let line = self.reader.get_mut().take_unclosed()?;
                return Some(Err(InputError::UnclosedQuote {
                    path: self.path.clone(),
                    line,
                }));
            }
            Ok(true) => {}
            Err(source) => {
                return Some(Err(InputError::Csv {
                    path: self.path.clone(),
                    source,
                }))
            }
        }
        // The reader rejects records whose length differs from the header's,
        // so both columns exist.
        let text = self
            .record
            .get(self.text_column)
            .unwrap_or_default()
            .to_string();
        let id = match self.id_column.and_then(|column| self.record.get(column)) {
            Some(id) => id.to_string(),
            None => self
                .record
                .position()
                .map_or(0, csv::Position::line)
                .to_string(),
        };
        Some(Ok(Document { id, text }))
    }
}

mod csv_quotes;

/// Lists JSON field names for a message: `no fields`, or the names quoted and comma-separated.
fn field_list(fields: &[String]) -> String {
    if fields.is_empty() {
        "no fields".to_owned()
    } else {
        let quoted: Vec<String> = fields.iter().map(|f| format!("{f:?}")).collect();
        format!("the fields {}", quoted.join(", "))
    }
}
#[cfg(test)]
mod tests;
