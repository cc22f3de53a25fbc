//! Batch transform: the documents of whole files in any request format, read in chunks.
//!
//! SageMaker batch transform splits each input file into records (`SplitType` `Line` for CSV
//! and JSON Lines, `RecordIO` for RecordIO-protobuf) and posts them in mini-batches to
//! `/invocations`. [`BatchReader`] does the same job offline: it reads a file or a folder
//! of files and yields the documents in chunks of at most `chunk_rows` rows. The request
//! body decoders decode them, so each document gets the same row as in a request.
//!
//! CSV, JSON Lines, RecordIO-protobuf and `text/plain` files are streamed: one file is open
//! at a time and one chunk is held in memory. An `application/json` file is one document
//! (an `"instances"` list), so it is read whole, as a request body would be.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use ntm_formats::body::{self, BodyError};
use ntm_formats::sniff::{sniff, Sniffed};
use ntm_formats::{list_channel_files, ChannelReader, ContentType, FormatError, SparseRows};

use crate::codec;
use crate::media::RequestFormat;
use crate::model::{Model, TextCounter};

/// Bytes examined to detect a file's format.
const SNIFF_LEN: usize = 64;

/// Failures of reading batch input, each naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A CSV or RecordIO-protobuf file is invalid; the message names the file and position.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A JSON or JSON Lines document is invalid; the message names the line or instance.
    /// The decoder's error is part of the message, not a separate source, so that a printed
    /// chain of causes shows it once.
    #[error("{}: {error}{}", .path.display(), raw_text_hint(.error))]
    Body {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        error: BodyError,
    },
    /// A `text/plain` line is not UTF-8.
    #[error(
        "{}: line {line} is not valid UTF-8 (invalid byte at byte offset {offset} of the \
         line); text/plain input must be UTF-8",
        .path.display()
    )]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// Line number, 1-based.
        line: u64,
        /// Offset of the first invalid byte within the line.
        offset: usize,
    },
    /// `text/plain` input for a model that cannot count raw text.
    #[error("{}: text/plain is not available for this model: {reason}", .path.display())]
    NoTextCounter {
        /// The file.
        path: PathBuf,
        /// The reason the model has no text counter.
        reason: String,
    },
    /// The format of a file was not given and its first bytes match no input format.
    #[error(
        "{}: cannot detect the content type: the file starts like {looks_like}. Pass \
         --content-type with one of text/csv, application/json, application/jsonlines, \
         application/x-recordio-protobuf or text/plain",
        .path.display()
    )]
    Undetected {
        /// The file.
        path: PathBuf,
        /// The format the first bytes resemble.
        looks_like: Sniffed,
    },
    /// A file is gzip-compressed; batch input is read uncompressed.
    #[error(
        "{}: the file is gzip-compressed, and batch input is read uncompressed: decompress it \
         first, or pass --text to count raw documents, which reads .gz files",
        .path.display()
    )]
    Compressed {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be opened or read.
    #[error("{}: {action} failed: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operation, for example "reading the file".
        action: &'static str,
        /// The underlying error, part of the message.
        error: io::Error,
    },
}

/// Returns a hint for JSON documents that hold raw text in place of counts.
fn raw_text_hint(error: &BodyError) -> &'static str {
    if error.to_string().contains("\"text\"") {
        ". These look like raw documents: pass --text to count them with the model's vocabulary"
    } else {
        ""
    }
}

/// Documents read from one file, in file order.
#[derive(Debug)]
pub struct Chunk {
    /// The file the documents come from.
    pub path: PathBuf,
    /// The documents, one row each.
    pub rows: SparseRows,
    /// Index in the file of the chunk's first document, 0-based.
    pub first_document: usize,
    /// Line number (1-based) of each row, for line-based formats; empty otherwise.
    pub lines: Vec<u64>,
}

impl Chunk {
    /// Describes the position of row `row` of the chunk in its file, for error messages.
    pub fn position(&self, row: usize) -> String {
        match self.lines.get(row) {
            Some(line) => format!("line {line}"),
            None => format!("document {} (0-based)", self.first_document + row),
        }
    }
}

/// A file being read.
enum Open {
    /// CSV or RecordIO-protobuf, through the channel reader.
    Channel(Box<ChannelReader>),
    /// JSON Lines or `text/plain`, one line at a time.
    Lines {
        reader: BufReader<File>,
        text: bool,
        line: u64,
    },
    /// A whole `application/json` file, decoded when opened.
    Whole(Option<SparseRows>),
}

/// Streaming reader of batch input: a file or a folder of files in request formats.
pub struct BatchReader<'m> {
    model: &'m Model,
    format: Option<RequestFormat>,
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<(PathBuf, Open, usize)>,
    chunk_rows: usize,
    buffer: Vec<u8>,
}

impl<'m> BatchReader<'m> {
    /// Lists the files at `path` (one file, or a folder read recursively in byte order of
    /// the relative paths, hidden entries skipped).
    ///
    /// `format` `None` detects each file's format: RecordIO-protobuf by its magic number,
    /// CSV by its characters, JSON by a leading `{` or `[` (`application/json` for a
    /// `.json` file, JSON Lines otherwise), and `text/plain` for other text in a `.txt`
    /// file. Other text is read as CSV, whose errors then name the offending cell.
    ///
    /// # Errors
    /// [`BatchError::Format`] when `path` cannot be listed or contains no file.
    pub fn open(
        path: &Path,
        format: Option<RequestFormat>,
        model: &'m Model,
        chunk_rows: usize,
    ) -> Result<Self, BatchError> {
        let files = list_channel_files(path)?;
        if files.is_empty() {
            return Err(FormatError::EmptyChannel {
                path: path.to_path_buf(),
            }
            .into());
        }
        Ok(Self {
            model,
            format,
            files,
            next_file: 0,
            current: None,
            chunk_rows: chunk_rows.max(1),
            buffer: Vec::new(),
        })
    }

    /// Returns the input files, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Reads the next chunk of at most `chunk_rows` documents of one file; `None` after the
    /// last file. An `application/json` file gives all its documents in one chunk.
    ///
    /// # Errors
    /// A [`BatchError`] naming the file, and the line, record or instance where it applies.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, BatchError> {
        loop {
            if self.current.is_none() {
                if self.next_file >= self.files.len() {
                    return Ok(None);
                }
                let path = self.files[self.next_file].clone();
                self.next_file += 1;
                if let Some(open) = self.open_file(&path)? {
                    self.current = Some((path, open, 0));
                }
                continue;
            }
            let chunk = self.read_current()?;
            match chunk {
                Some(chunk) => return Ok(Some(chunk)),
                None => self.current = None,
            }
        }
    }

    /// Opens one file; `None` for an empty file, which has no documents.
    fn open_file(&self, path: &Path) -> Result<Option<Open>, BatchError> {
        let io_error = |action| {
            move |error| BatchError::Io {
                path: path.to_path_buf(),
                action,
                error,
            }
        };
        let file = File::open(path).map_err(io_error("opening the file"))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let head = reader.fill_buf().map_err(io_error("reading the file"))?;
        let looks_like = sniff(&head[..head.len().min(SNIFF_LEN)]);
        if looks_like == Sniffed::Empty {
            tracing::debug!(file = %path.display(), "skipping empty file");
            return Ok(None);
        }
        if looks_like == Sniffed::Gzip {
            // No decoder reads compressed bytes, so report them before a decoder fails on them.
            return Err(BatchError::Compressed {
                path: path.to_path_buf(),
            });
        }
        let format = match self.format {
            Some(format) => format,
            None => detect(path, looks_like, &head[..head.len().min(SNIFF_LEN)])?,
        };
        tracing::debug!(file = %path.display(), ?format, "reading file");
        let feature_dim = self.model.feature_dim();
        let open = match format {
            RequestFormat::Csv { label_size } => {
                self.channel(path, ContentType::Csv { label_size })?
            }
            RequestFormat::RecordIo => self.channel(path, ContentType::RecordIoProtobuf)?,
            RequestFormat::Json => {
                drop(reader);
                let bytes = std::fs::read(path).map_err(io_error("reading the file"))?;
                let rows =
                    body::decode_json(&bytes, feature_dim).map_err(|error| BatchError::Body {
                        path: path.to_path_buf(),
                        error,
                    })?;
                Open::Whole(Some(rows))
            }
            RequestFormat::JsonLines => Open::Lines {
                reader,
                text: false,
                line: 0,
            },
            RequestFormat::Text => {
                self.text_counter(path)?;
                Open::Lines {
                    reader,
                    text: true,
                    line: 0,
                }
            }
        };
        Ok(Some(open))
    }

    fn channel(&self, path: &Path, content_type: ContentType) -> Result<Open, BatchError> {
        let reader = ChannelReader::open(
            path,
            Some(content_type),
            self.model.feature_dim(),
            self.chunk_rows,
        )?
        .keep_empty(true)
        .warn_skipped(false);
        Ok(Open::Channel(Box::new(reader)))
    }

    fn text_counter(&self, path: &Path) -> Result<&'m TextCounter, BatchError> {
        self.model
            .text_counter()
            .map_err(|reason| BatchError::NoTextCounter {
                path: path.to_path_buf(),
                reason: reason.to_owned(),
            })
    }

    /// Reads the next chunk of the open file; `None` at its end.
    fn read_current(&mut self) -> Result<Option<Chunk>, BatchError> {
        let feature_dim = self.model.feature_dim();
        let chunk_rows = self.chunk_rows;
        let counter = match &self.current {
            Some((path, Open::Lines { text: true, .. }, _)) => Some(self.text_counter(path)?),
            _ => None,
        };
        let Some((path, open, documents)) = self.current.as_mut() else {
            return Ok(None);
        };
        let mut lines = Vec::new();
        let rows = match open {
            Open::Channel(reader) => ChannelReader::next_chunk(reader)?,
            Open::Whole(rows) => rows.take(),
            Open::Lines { reader, text, line } => {
                let mut rows = SparseRows::new(feature_dim);
                while rows.n_rows() < chunk_rows {
                    self.buffer.clear();
                    let read = reader
                        .read_until(b'\n', &mut self.buffer)
                        .map_err(|error| BatchError::Io {
                            path: path.clone(),
                            action: "reading the file",
                            error,
                        })?;
                    if read == 0 {
                        break;
                    }
                    *line += 1;
                    let bytes = self.buffer.strip_suffix(b"\n").unwrap_or(&self.buffer);
                    let added = if let (true, Some(counter)) = (*text, counter) {
                        push_text(&mut rows, counter, bytes, *line, path)?;
                        true
                    } else {
                        body::push_json_line(&mut rows, bytes, *line).map_err(|error| {
                            BatchError::Body {
                                path: path.clone(),
                                error,
                            }
                        })?
                    };
                    if added {
                        lines.push(*line);
                    }
                }
                (rows.n_rows() > 0).then_some(rows)
            }
        };
        let Some(rows) = rows else {
            return Ok(None);
        };
        let chunk = Chunk {
            path: path.clone(),
            first_document: *documents,
            lines,
            rows,
        };
        *documents += chunk.rows.n_rows();
        Ok(Some(chunk))
    }
}

/// Counts one `text/plain` line as the server counts a line of a request body.
fn push_text(
    rows: &mut SparseRows,
    counter: &TextCounter,
    bytes: &[u8],
    line: u64,
    path: &Path,
) -> Result<(), BatchError> {
    let bytes = if line == 1 {
        bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
    } else {
        bytes
    };
    let text = std::str::from_utf8(bytes).map_err(|error| BatchError::Utf8 {
        path: path.to_path_buf(),
        line,
        offset: error.valid_up_to(),
    })?;
    codec::push_text_line(rows, counter, text);
    Ok(())
}

/// Picks the format of a file from its first bytes and its extension. A `.txt` file is
/// `text/plain` unless its first bytes are only numbers and separators, since raw text with
/// a comma also looks like CSV.
fn detect(path: &Path, looks_like: Sniffed, head: &[u8]) -> Result<RequestFormat, BatchError> {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match (looks_like, extension.as_deref()) {
        (Sniffed::RecordIo, _) => Ok(RequestFormat::RecordIo),
        (Sniffed::Text | Sniffed::Csv, Some("txt")) if !is_numeric(head) => Ok(RequestFormat::Text),
        (Sniffed::Csv, _) => Ok(RequestFormat::Csv { label_size: 0 }),
        (Sniffed::Json, Some("json")) => Ok(RequestFormat::Json),
        (Sniffed::Json, _) => Ok(RequestFormat::JsonLines),
        (Sniffed::Text, _) => Ok(RequestFormat::Csv { label_size: 0 }),
        (looks_like, _) => Err(BatchError::Undetected {
            path: path.to_path_buf(),
            looks_like,
        }),
    }
}

/// Returns whether `head` holds only digits, number signs, separators and white space.
fn is_numeric(head: &[u8]) -> bool {
    head.iter()
        .all(|byte| byte.is_ascii_digit() || byte.is_ascii_whitespace() || b",.-+eE".contains(byte))
}
