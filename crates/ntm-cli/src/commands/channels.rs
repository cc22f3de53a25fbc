//! Training channels: loaded into memory when they fit a budget, else streamed from disk
//! every epoch, or read from SageMaker Pipe-mode FIFOs.
//!
//! A File-mode channel is read once in full before training, which checks every document.
//! While the decoded documents fit the remaining in-memory budget, they are kept. Past it, the
//! read goes on only to check and count, and training streams the channel from its files on
//! every pass. A Pipe-mode channel `<name>` is the series of FIFOs `<name>_0`, `<name>_1`, ...
//! in the data folder, one per pass, each read once; its documents are checked as they arrive.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ntm_formats::{ChannelReader, ContentType, SparseRows};
use ntm_model::batches::{Channel, RowStream, StreamError};
use tracing::info;

/// Documents per chunk read from a channel.
const CHUNK_ROWS: usize = 4096;

/// How long a Pipe-mode pass waits for its FIFO to appear before it fails.
const PIPE_WAIT: Duration = Duration::from_secs(600);

/// Bytes a loaded channel takes in memory: 8 per stored count (index and value) and 8 per row.
fn decoded_bytes(rows: &SparseRows) -> usize {
    rows.nnz() * 8 + (rows.n_rows() + 1) * 8
}

/// A channel ready for the trainer.
pub enum ChannelInput {
    /// Every document in memory.
    Memory(SparseRows),
    /// Streamed from its files on every pass.
    Stream(Box<dyn RowStream>),
}

impl ChannelInput {
    /// Returns the trainer's view of the channel.
    pub fn as_channel(&mut self) -> Channel<'_> {
        match self {
            ChannelInput::Memory(rows) => Channel::Memory(rows),
            ChannelInput::Stream(stream) => Channel::Stream(stream.as_mut()),
        }
    }
}

/// Reads a File-mode channel, keeping it in memory when it fits within `budget` bytes, which
/// is reduced by what the kept channel takes.
pub fn load_file_channel(
    name: &str,
    path: &Path,
    content_type: Option<ContentType>,
    feature_dim: usize,
    budget: &mut usize,
) -> Result<ChannelInput> {
    let context = || format!("cannot read the {name} channel");
    let mut reader =
        ChannelReader::open(path, content_type, feature_dim, CHUNK_ROWS).with_context(context)?;
    let mut in_memory = Some(SparseRows::new(feature_dim));
    let mut documents = 0usize;
    let mut nnz = 0usize;
    while let Some(chunk) = reader.next_chunk().with_context(context)? {
        documents += chunk.n_rows();
        nnz += chunk.nnz();
        if let Some(rows) = in_memory.as_mut() {
            rows.extend(&chunk);
            if decoded_bytes(rows) > *budget {
                info!(
                    "{name} channel: over the in-memory limit of {} MiB, so it is streamed from disk every epoch",
                    *budget >> 20
                );
                in_memory = None;
            }
        }
    }
    info!(
        "{name} channel: {documents} documents, {nnz} non-zeros, {} empty skipped",
        reader.empty_documents()
    );
    match in_memory {
        Some(rows) => {
            *budget -= decoded_bytes(&rows);
            Ok(ChannelInput::Memory(rows))
        }
        None => Ok(ChannelInput::Stream(Box::new(FileStream {
            path: path.to_path_buf(),
            content_type,
            feature_dim,
            documents,
            reader: None,
        }))),
    }
}

/// A File-mode channel reopened on every pass.
struct FileStream {
    path: PathBuf,
    content_type: Option<ContentType>,
    feature_dim: usize,
    documents: usize,
    reader: Option<ChannelReader>,
}

impl RowStream for FileStream {
    fn start_pass(&mut self) -> Result<(), StreamError> {
        let reader =
            ChannelReader::open(&self.path, self.content_type, self.feature_dim, CHUNK_ROWS)?
                // The first full read already reported the skipped documents.
                .warn_skipped(false);
        self.reader = Some(reader);
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<SparseRows>, StreamError> {
        next_chunk_of_pass(self.reader.as_mut())
    }

    fn documents(&self) -> Option<usize> {
        Some(self.documents)
    }
}

/// Reads the next chunk of the pass that `reader` reads; `None` means no pass has started.
fn next_chunk_of_pass(
    reader: Option<&mut ChannelReader>,
) -> Result<Option<SparseRows>, StreamError> {
    match reader {
        Some(reader) => Ok(reader.next_chunk()?),
        None => Err("the channel was read before a pass started".into()),
    }
}

/// Compares the vocabulary that `ntm prepare` wrote beside a channel folder (`DIR/auxiliary/vocab.txt`
/// for the channel `DIR/test`) with a model's words. Returns the vocabulary file and a description
/// of the first difference, or `None` when the words agree or there is nothing to compare.
pub fn vocabulary_mismatch(
    channel: &Path,
    model_words: Option<&[String]>,
) -> Result<Option<(PathBuf, String)>> {
    let (Some(model_words), Some(parent)) = (model_words, channel.parent()) else {
        return Ok(None);
    };
    let path = parent.join("auxiliary").join("vocab.txt");
    if !channel.is_dir() || !path.is_file() {
        return Ok(None);
    }
    let words = ntm_formats::vocab::read_vocab(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if words.len() != model_words.len() {
        let difference = format!(
            "it has {} words and the model {}",
            words.len(),
            model_words.len()
        );
        return Ok(Some((path, difference)));
    }
    Ok(words
        .iter()
        .zip(model_words)
        .position(|(a, b)| a != b)
        .map(|i| {
            let difference = format!(
                "word {} is {:?} there and {:?} in the model",
                i + 1,
                words[i],
                model_words[i]
            );
            (path, difference)
        }))
}

/// Returns whether the data folder contains the first Pipe-mode FIFO of channel `name`.
pub fn has_pipe(data: &Path, name: &str) -> bool {
    data.join(format!("{name}_0")).exists()
}

/// A Pipe-mode channel: one FIFO per pass, `<name>_<pass>`, each read once.
pub struct PipeStream {
    data: PathBuf,
    name: String,
    content_type: Option<ContentType>,
    feature_dim: usize,
    next_pass: usize,
    reader: Option<ChannelReader>,
    stop: Option<Arc<AtomicBool>>,
}

impl PipeStream {
    /// Reads channel `name` from the FIFOs in `data`; a set `stop` ends the wait for a FIFO.
    pub fn new(
        data: &Path,
        name: &str,
        content_type: Option<ContentType>,
        feature_dim: usize,
        stop: Option<Arc<AtomicBool>>,
    ) -> Self {
        info!(
            "{name} channel: Pipe mode, reading {}_0, {}_1, ... in {}",
            name,
            name,
            data.display()
        );
        Self {
            data: data.to_path_buf(),
            name: name.to_owned(),
            content_type,
            feature_dim,
            next_pass: 0,
            reader: None,
            stop,
        }
    }

    /// Waits until the FIFO at `path` exists, as SageMaker creates each one after the
    /// previous pass has been read.
    fn wait_for(&self, path: &Path) -> Result<(), StreamError> {
        let started = Instant::now();
        let mut announced = false;
        while !path.exists() {
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Err(format!("stop requested while waiting for {}", path.display()).into());
            }
            let waited = started.elapsed();
            if waited >= PIPE_WAIT {
                return Err(format!(
                    "{} did not appear within {} seconds; in Pipe mode every pass reads the next FIFO {}_<pass>",
                    path.display(),
                    PIPE_WAIT.as_secs(),
                    self.name
                )
                .into());
            }
            if !announced && waited >= Duration::from_secs(1) {
                info!("Waiting for {}", path.display());
                announced = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl RowStream for PipeStream {
    fn start_pass(&mut self) -> Result<(), StreamError> {
        let path = self.data.join(format!("{}_{}", self.name, self.next_pass));
        if self.next_pass == 0 && !path.exists() {
            // SageMaker creates the first FIFO of every Pipe-mode channel before training starts.
            return Err(format!(
                "{} does not exist: a Pipe-mode channel {} needs the FIFOs {}_0, {}_1, ... in {}",
                path.display(),
                self.name,
                self.name,
                self.name,
                self.data.display()
            )
            .into());
        }
        self.next_pass += 1;
        self.wait_for(&path)?;
        self.reader = Some(ChannelReader::open(
            &path,
            self.content_type,
            self.feature_dim,
            CHUNK_ROWS,
        )?);
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<SparseRows>, StreamError> {
        next_chunk_of_pass(self.reader.as_mut())
    }

    fn documents(&self) -> Option<usize> {
        None
    }
}
