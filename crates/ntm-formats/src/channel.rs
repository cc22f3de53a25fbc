//! Data channels: folders of CSV or RecordIO-protobuf files read as one stream of documents.
//!
//! A channel is a folder, read in full: every regular file in it and its subfolders, in byte
//! order of the path relative to the folder, skipping files and folders whose names start
//! with `.`. Symbolic links to files are followed; links to folders are not. A path to a
//! single file is a channel of that one file. Empty files contribute nothing.
//!
//! Empty documents (rows without a non-zero count) are skipped and counted, never trained
//! on; a channel in which every document is empty is an error.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::csv::CsvReader;
use crate::error::{DocumentPosition, FormatError, Result, RowPosition};
use crate::record::decode_record_row;
use crate::recordio::RecordIoReader;
use crate::sniff::{sniff, Sniffed};
use crate::sparse::SparseRows;

/// Number of empty-document positions kept for logs and errors.
pub const MAX_EMPTY_POSITIONS: usize = 5;

/// Bytes inspected to detect a file's format.
const SNIFF_LEN: usize = 64;

/// Format of a channel's files, as given by a MIME content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    /// `text/csv`, with `label_size` leading label columns (0 or 1) that are dropped.
    Csv {
        /// Number of leading label columns.
        label_size: usize,
    },
    /// `application/x-recordio-protobuf`.
    RecordIoProtobuf,
}

impl ContentType {
    /// Guesses the type from a file's first bytes: RecordIO magic or text.
    ///
    /// Returns `None` for bytes that are neither (gzip, JSON, binary, empty).
    pub fn detect(bytes: &[u8]) -> Option<ContentType> {
        match sniff(bytes) {
            Sniffed::RecordIo => Some(ContentType::RecordIoProtobuf),
            Sniffed::Csv | Sniffed::Text => Some(ContentType::Csv { label_size: 0 }),
            _ => None,
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentType::Csv { label_size } => write!(f, "text/csv;label_size={label_size}"),
            ContentType::RecordIoProtobuf => f.write_str("application/x-recordio-protobuf"),
        }
    }
}

impl FromStr for ContentType {
    type Err = FormatError;

    /// Parses a MIME type such as `text/csv`, `text/csv; label_size=1` or
    /// `application/x-recordio-protobuf`, ignoring case and unknown parameters.
    fn from_str(value: &str) -> Result<Self> {
        let reject = |reason: String| FormatError::UnsupportedContentType {
            value: value.to_owned(),
            reason,
        };
        let mut parts = value.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" => {
                let mut label_size = 0;
                for parameter in parts {
                    let Some((name, setting)) = parameter.split_once('=') else {
                        continue;
                    };
                    if !name.trim().eq_ignore_ascii_case("label_size") {
                        continue;
                    }
                    let setting = setting.trim().trim_matches('"');
                    label_size = match setting {
                        "0" => 0,
                        "1" => 1,
                        _ => {
                            return Err(reject(format!(
                                "label_size must be 0 or 1, got {setting:?}"
                            )))
                        }
                    };
                }
                Ok(ContentType::Csv { label_size })
            }
            "application/x-recordio-protobuf" => Ok(ContentType::RecordIoProtobuf),
            _ => Err(reject(format!("{essence:?} is not a training data format"))),
        }
    }
}

/// Lists the data files of a channel (see the module docs for the order and what is skipped).
///
/// # Errors
/// [`FormatError::Io`] when `path` or a subfolder cannot be read.
pub fn list_channel_files(path: &Path) -> Result<Vec<PathBuf>> {
    let metadata =
        std::fs::metadata(path).map_err(|e| FormatError::io(path, "opening the channel", e))?;
    if !metadata.is_dir() {
        // A regular file, or a FIFO of SageMaker's Pipe mode.
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    collect_files(path, Path::new(""), &mut found)?;
    found.sort_by(|a, b| {
        a.0.as_os_str()
            .as_encoded_bytes()
            .cmp(b.0.as_os_str().as_encoded_bytes())
    });
    Ok(found.into_iter().map(|(_, absolute)| absolute).collect())
}

/// Adds the files under `folder` to `found` as (path relative to the channel, full path).
fn collect_files(
    folder: &Path,
    relative: &Path,
    found: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<()> {
    let entries =
        std::fs::read_dir(folder).map_err(|e| FormatError::io(folder, "listing the folder", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| FormatError::io(folder, "listing the folder", e))?;
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let full = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| FormatError::io(&full, "reading the file type", e))?;
        let child = relative.join(&name);
        if file_type.is_dir() {
            collect_files(&full, &child, found)?;
        } else if file_type.is_file() {
            found.push((child, full));
        } else if file_type.is_symlink() {
            // Follow links to files only, so a link to a parent folder cannot loop.
            if std::fs::metadata(&full).is_ok_and(|m| m.is_file()) {
                found.push((child, full));
            }
        }
    }
    Ok(())
}

/// The open file a [`ChannelReader`] is reading.
enum Source {
    Csv(CsvReader<BufReader<File>>),
    RecordIo(RecordIoReader<BufReader<File>>),
}

/// Streaming reader of a channel's documents, in chunks of at most `chunk_rows` rows.
///
/// Only one file is open at a time and only one chunk is held, so memory does not grow with
/// the channel. Empty documents are skipped and counted. After the last file, a channel
/// without any non-empty document yields [`FormatError::NoDocuments`]; a warning lists the
/// skipped documents otherwise. The reader stops after the first error.
pub struct ChannelReader {
    root: PathBuf,
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<(PathBuf, Source)>,
    content_type: Option<ContentType>,
    feature_dim: usize,
    chunk_rows: usize,
    documents: usize,
    empty: usize,
    first_empty: Vec<DocumentPosition>,
    non_integer_warned: bool,
    keep_empty: bool,
    warn_skipped: bool,
    finished: bool,
    indices: Vec<u32>,
    counts: Vec<f32>,
}

impl fmt::Debug for ChannelReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelReader")
            .field("root", &self.root)
            .field("files", &self.files.len())
            .field("next_file", &self.next_file)
            .field("content_type", &self.content_type)
            .field("feature_dim", &self.feature_dim)
            .field("documents", &self.documents)
            .field("empty", &self.empty)
            .finish_non_exhaustive()
    }
}

impl ChannelReader {
    /// Opens the channel at `path` (a folder or one file).
    ///
    /// `content_type` `None` detects each file's format from its first bytes. Chunks hold
    /// at most `chunk_rows` rows (at least 1) with `feature_dim` columns.
    ///
    /// # Errors
    /// [`FormatError::Io`] when the channel cannot be listed, and
    /// [`FormatError::EmptyChannel`] when it has no data files.
    pub fn open(
        path: &Path,
        content_type: Option<ContentType>,
        feature_dim: usize,
        chunk_rows: usize,
    ) -> Result<Self> {
        let files = list_channel_files(path)?;
        if files.is_empty() {
            return Err(FormatError::EmptyChannel {
                path: path.to_path_buf(),
            });
        }
        tracing::debug!(channel = %path.display(), files = files.len(), "opened channel");
        Ok(Self {
            root: path.to_path_buf(),
            files,
            next_file: 0,
            current: None,
            content_type,
            feature_dim,
            chunk_rows: chunk_rows.max(1),
            documents: 0,
            empty: 0,
            first_empty: Vec::new(),
            non_integer_warned: false,
            keep_empty: false,
            warn_skipped: true,
            finished: false,
            indices: Vec::new(),
            counts: Vec::new(),
        })
    }

    /// Keeps empty documents as empty rows instead of skipping them, so that row `i` of
    /// the output is document `i` of the input, as inference needs. They are still counted
    /// in [`ChannelReader::empty_documents`], and a channel of only empty documents is
    /// then not an error.
    pub fn keep_empty(mut self, keep: bool) -> Self {
        self.keep_empty = keep;
        self
    }

    /// Sets whether the end of the channel logs a warning that lists the skipped empty
    /// documents, on by default. A caller that reads the same channel again turns it off.
    pub fn warn_skipped(mut self, warn: bool) -> Self {
        self.warn_skipped = warn;
        self
    }

    /// Returns the data files of the channel, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Number of non-empty documents returned so far.
    pub fn documents_read(&self) -> usize {
        self.documents
    }

    /// Number of empty documents skipped so far.
    pub fn empty_documents(&self) -> usize {
        self.empty
    }

    /// Positions of the first [`MAX_EMPTY_POSITIONS`] empty documents skipped.
    pub fn first_empty(&self) -> &[DocumentPosition] {
        &self.first_empty
    }

    /// Reads the next chunk of non-empty documents, or `None` after the last one.
    ///
    /// # Errors
    /// Any error of the file formats, naming the file, and [`FormatError::NoDocuments`]
    /// at the end of a channel whose documents are all empty.
    pub fn next_chunk(&mut self) -> Result<Option<SparseRows>> {
        if self.finished {
            return Ok(None);
        }
        let result = self.fill_chunk();
        if result.is_err() {
            self.finished = true;
        }
        result
    }

    fn fill_chunk(&mut self) -> Result<Option<SparseRows>> {
        let mut chunk = SparseRows::new(self.feature_dim);
        while chunk.n_rows() < self.chunk_rows {
            if self.current.is_none() && !self.open_next_file()? {
                self.finish()?;
                break;
            }
            let Some(row) = self.read_row()? else {
                self.current = None;
                continue;
            };
            if self.indices.is_empty() {
                self.record_empty(row);
                if self.keep_empty {
                    chunk.push_row(&[], &[]);
                }
            } else {
                chunk.push_row(&self.indices, &self.counts);
                self.documents += 1;
            }
        }
        Ok((chunk.n_rows() > 0).then_some(chunk))
    }

    /// Reads one row of the open file into the scratch buffers; `None` at its end.
    fn read_row(&mut self) -> Result<Option<RowPosition>> {
        let Some((path, source)) = self.current.as_mut() else {
            return Ok(None);
        };
        match source {
            Source::Csv(reader) => {
                let line = reader
                    .next_row(&mut self.indices, &mut self.counts)
                    .map_err(|e| e.with_path(path))?;
                if reader.first_non_integer().is_some() {
                    self.non_integer_warned = true;
                }
                Ok(line.map(RowPosition::Line))
            }
            Source::RecordIo(reader) => {
                let Some(payload) = reader.next_record().map_err(|e| e.with_path(path))? else {
                    return Ok(None);
                };
                let record = reader.records_read() - 1;
                let (indices, counts) = decode_record_row(&payload, self.feature_dim, record)
                    .map_err(|e| e.with_path(path))?;
                self.indices = indices;
                self.counts = counts;
                Ok(Some(RowPosition::Record(record)))
            }
        }
    }

    fn record_empty(&mut self, row: RowPosition) {
        self.empty += 1;
        if self.first_empty.len() < MAX_EMPTY_POSITIONS {
            if let Some((path, _)) = &self.current {
                self.first_empty.push(DocumentPosition {
                    path: path.clone(),
                    row,
                });
            }
        }
    }

    /// Opens the next non-empty file; returns `false` when none is left.
    fn open_next_file(&mut self) -> Result<bool> {
        while self.next_file < self.files.len() {
            let path = self.files[self.next_file].clone();
            self.next_file += 1;
            let file =
                File::open(&path).map_err(|e| FormatError::io(&path, "opening the file", e))?;
            let mut reader = BufReader::with_capacity(1 << 16, file);
            let head = reader
                .fill_buf()
                .map_err(|e| FormatError::io(&path, "reading the file", e))?;
            let looks_like = sniff(&head[..head.len().min(SNIFF_LEN)]);
            if looks_like == Sniffed::Empty {
                tracing::debug!(file = %path.display(), "skipping empty file");
                continue;
            }
            let content_type = self.resolve_type(&path, looks_like)?;
            tracing::debug!(file = %path.display(), %content_type, "reading file");
            let source = match content_type {
                ContentType::Csv { label_size } => {
                    let csv = CsvReader::new(reader, self.feature_dim, label_size);
                    Source::Csv(if self.non_integer_warned {
                        csv.without_non_integer_warning()
                    } else {
                        csv
                    })
                }
                ContentType::RecordIoProtobuf => Source::RecordIo(RecordIoReader::new(reader)),
            };
            self.current = Some((path, source));
            return Ok(true);
        }
        Ok(false)
    }

    /// Picks the content type of one file from the declared type and its first bytes.
    fn resolve_type(&self, path: &Path, looks_like: Sniffed) -> Result<ContentType> {
        let mismatch = |declared: String| FormatError::ContentMismatch {
            path: path.to_path_buf(),
            declared,
            looks_like,
        };
        match self.content_type {
            // The RecordIO reader reports a missing magic number with the offset and a hint.
            Some(ContentType::RecordIoProtobuf) => Ok(ContentType::RecordIoProtobuf),
            Some(csv @ ContentType::Csv { .. }) => match looks_like {
                Sniffed::Csv | Sniffed::Text => Ok(csv),
                _ => Err(mismatch(csv.to_string())),
            },
            None => match looks_like {
                Sniffed::RecordIo => Ok(ContentType::RecordIoProtobuf),
                Sniffed::Csv | Sniffed::Text => Ok(ContentType::Csv { label_size: 0 }),
                _ => Err(mismatch(
                    "not given, so it is detected from each file".to_owned(),
                )),
            },
        }
    }

    /// Ends the stream: fails when no document was non-empty, else logs the skipped ones.
    fn finish(&mut self) -> Result<()> {
        self.finished = true;
        if self.keep_empty {
            return Ok(());
        }
        if self.documents == 0 {
            return Err(FormatError::NoDocuments {
                path: self.root.clone(),
                empty: self.empty,
                first_empty: self.first_empty.clone(),
            });
        }
        if self.empty > 0 && self.warn_skipped {
            let positions: Vec<String> = self.first_empty.iter().map(ToString::to_string).collect();
            tracing::warn!(
                channel = %self.root.display(),
                skipped = self.empty,
                documents = self.documents,
                "{} empty document{} skipped ({}{})",
                self.empty,
                if self.empty == 1 { "" } else { "s" },
                positions.join(", "),
                if self.empty > self.first_empty.len() { ", ..." } else { "" }
            );
        }
        Ok(())
    }
}

impl Iterator for ChannelReader {
    type Item = Result<SparseRows>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

/// All documents of a channel, loaded into memory by [`read_channel`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelData {
    /// The non-empty documents, in file order.
    pub rows: SparseRows,
    /// Number of empty documents skipped.
    pub empty_documents: usize,
    /// Positions of the first [`MAX_EMPTY_POSITIONS`] empty documents.
    pub first_empty: Vec<DocumentPosition>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
}

/// Reads every document of the channel at `path` into memory (see [`ChannelReader`]).
///
/// # Errors
/// The errors of [`ChannelReader::open`] and [`ChannelReader::next_chunk`].
pub fn read_channel(
    path: &Path,
    content_type: Option<ContentType>,
    feature_dim: usize,
) -> Result<ChannelData> {
    let mut reader = ChannelReader::open(path, content_type, feature_dim, 4096)?;
    let mut rows = SparseRows::new(feature_dim);
    while let Some(chunk) = reader.next_chunk()? {
        rows.extend(&chunk);
    }
    Ok(ChannelData {
        rows,
        empty_documents: reader.empty,
        first_empty: reader.first_empty,
        files: reader.files,
    })
}
