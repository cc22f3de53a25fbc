//! Channels the trainer reads and the mini-batches it draws from them.
//!
//! A channel is either held in memory, where each epoch shuffles all of its documents, or
//! streamed pass by pass through a [`RowStream`], where a bounded shuffle buffer mixes the
//! documents. Streaming keeps memory independent of the corpus size: only the buffer, one
//! chunk and one batch are held at a time.

use ntm_formats::SparseRows;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Error of a [`RowStream`]: any reader error, shown to the user as it is.
pub type StreamError = Box<dyn std::error::Error + Send + Sync>;

/// Documents of a channel read from the start once per pass, in chunks.
///
/// File-mode channels reopen their files on every pass. Pipe-mode channels open the next
/// FIFO (`train_0`, `train_1`, ...) on every pass, so a pass can be read only once.
pub trait RowStream: Send {
    /// Starts the next pass at the first document.
    ///
    /// # Errors
    /// When the channel cannot be opened.
    fn start_pass(&mut self) -> Result<(), StreamError>;

    /// Returns the next chunk of non-empty documents of the current pass, or `None` at its end.
    ///
    /// # Errors
    /// Any format or I/O error of the channel, with its position.
    fn next_chunk(&mut self) -> Result<Option<SparseRows>, StreamError>;

    /// Returns the number of documents per pass when it is known before reading.
    fn documents(&self) -> Option<usize>;
}

/// A channel given to the trainer.
pub enum Channel<'a> {
    /// Every document, in memory.
    Memory(&'a SparseRows),
    /// Documents read pass by pass.
    Stream(&'a mut dyn RowStream),
}

impl Channel<'_> {
    /// Returns the number of documents when it is known before reading.
    pub fn documents(&self) -> Option<usize> {
        match self {
            Channel::Memory(rows) => Some(rows.n_rows()),
            Channel::Stream(stream) => stream.documents(),
        }
    }
}

/// Shuffled order of an in-memory channel, kept across epochs.
pub(crate) struct MemoryOrder {
    indices: Vec<usize>,
}

impl MemoryOrder {
    pub(crate) fn new(documents: usize) -> Self {
        Self {
            indices: (0..documents).collect(),
        }
    }

    /// Draws the documents of one epoch: a random `epoch_size` of them, in random order.
    pub(crate) fn draw(&mut self, epoch_size: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
        self.indices.shuffle(rng);
        let mut chosen = self.indices[..epoch_size].to_vec();
        if epoch_size < self.indices.len() {
            // Keep the file order within the drawn subset for locality; the batches are still random.
            chosen.sort_unstable();
            chosen.shuffle(rng);
        }
        chosen
    }
}

/// One document held in a shuffle buffer.
struct BufferedRow {
    indices: Box<[u32]>,
    values: Box<[f32]>,
}

/// Mini-batches of one pass over a streamed channel, mixed by a bounded shuffle buffer.
///
/// Each document read is kept with probability `sub_sample`. While the buffer is not full,
/// kept documents fill it; after that, each new document replaces a uniformly chosen
/// buffered one, which joins the batch. At the end of the pass the buffer empties in
/// random order. Every document read therefore lands in exactly one batch.
pub(crate) struct StreamBatches<'s> {
    stream: &'s mut dyn RowStream,
    feature_dim: usize,
    batch_size: usize,
    sub_sample: f64,
    buffer: Vec<BufferedRow>,
    capacity: usize,
    chunk: Option<SparseRows>,
    next_row: usize,
    exhausted: bool,
}

impl<'s> StreamBatches<'s> {
    /// Starts a pass over `stream`.
    pub(crate) fn start(
        stream: &'s mut dyn RowStream,
        feature_dim: usize,
        batch_size: usize,
        sub_sample: f64,
        capacity: usize,
    ) -> Result<Self, StreamError> {
        stream.start_pass()?;
        Ok(Self {
            stream,
            feature_dim,
            batch_size: batch_size.max(1),
            sub_sample,
            buffer: Vec::new(),
            capacity: capacity.max(1),
            chunk: None,
            next_row: 0,
            exhausted: false,
        })
    }

    /// Returns the next mini-batch, or `None` at the end of the pass.
    pub(crate) fn next_batch(
        &mut self,
        rng: &mut ChaCha8Rng,
    ) -> Result<Option<SparseRows>, BatchError> {
        let mut batch = SparseRows::new(self.feature_dim);
        while batch.n_rows() < self.batch_size {
            match self.next_kept_row(rng)? {
                Some(row) if self.buffer.len() < self.capacity => self.buffer.push(row),
                Some(row) => {
                    let slot = rng.random_range(0..self.buffer.len());
                    let out = std::mem::replace(&mut self.buffer[slot], row);
                    batch.push_row(&out.indices, &out.values);
                }
                None if self.buffer.is_empty() => break,
                None => {
                    let slot = rng.random_range(0..self.buffer.len());
                    let out = self.buffer.swap_remove(slot);
                    batch.push_row(&out.indices, &out.values);
                }
            }
        }
        Ok((batch.n_rows() > 0).then_some(batch))
    }

    /// Reads the next document that the sub-sample keeps; `None` after the last one.
    fn next_kept_row(&mut self, rng: &mut ChaCha8Rng) -> Result<Option<BufferedRow>, BatchError> {
        loop {
            if self.exhausted {
                return Ok(None);
            }
            let chunk = match &self.chunk {
                Some(chunk) if self.next_row < chunk.n_rows() => chunk,
                _ => {
                    self.chunk = self.stream.next_chunk().map_err(BatchError::Stream)?;
                    self.next_row = 0;
                    match &self.chunk {
                        None => {
                            self.exhausted = true;
                            return Ok(None);
                        }
                        Some(chunk) if chunk.n_cols() != self.feature_dim => {
                            return Err(BatchError::FeatureDim {
                                found: chunk.n_cols(),
                            });
                        }
                        Some(_) => continue,
                    }
                }
            };
            let row = self.next_row;
            self.next_row += 1;
            if self.sub_sample < 1.0 && rng.random::<f64>() >= self.sub_sample {
                continue;
            }
            let (indices, values) = chunk.row(row);
            return Ok(Some(BufferedRow {
                indices: indices.into(),
                values: values.into(),
            }));
        }
    }
}

/// Failure to draw a batch from a stream.
#[derive(Debug)]
pub(crate) enum BatchError {
    /// The stream failed.
    Stream(StreamError),
    /// A chunk has another width than the network's `feature_dim`.
    FeatureDim { found: usize },
}

/// Splits a channel into consecutive batches of `batch_size` rows, in channel order, the
/// same partition for a channel in memory and for the same documents streamed in any chunks.
pub(crate) struct OrderedBatches<'c, 'a> {
    channel: &'c mut Channel<'a>,
    batch_size: usize,
    next_row: usize,
    pending: Option<SparseRows>,
    pending_row: usize,
    exhausted: bool,
}

impl<'c, 'a> OrderedBatches<'c, 'a> {
    /// Starts a pass over `channel`.
    pub(crate) fn start(
        channel: &'c mut Channel<'a>,
        batch_size: usize,
    ) -> Result<Self, StreamError> {
        if let Channel::Stream(stream) = channel {
            stream.start_pass()?;
        }
        Ok(Self {
            channel,
            batch_size: batch_size.max(1),
            next_row: 0,
            pending: None,
            pending_row: 0,
            exhausted: false,
        })
    }

    /// Returns the next batch, or `None` at the end of the channel.
    pub(crate) fn next_batch(
        &mut self,
        feature_dim: usize,
    ) -> Result<Option<SparseRows>, BatchError> {
        match self.channel {
            Channel::Memory(rows) => {
                let start = self.next_row;
                let end = (start + self.batch_size).min(rows.n_rows());
                if start >= end {
                    return Ok(None);
                }
                self.next_row = end;
                let chosen: Vec<usize> = (start..end).collect();
                Ok(Some(rows.select(&chosen)))
            }
            Channel::Stream(_) => self.next_streamed_batch(feature_dim),
        }
    }

    fn next_streamed_batch(
        &mut self,
        feature_dim: usize,
    ) -> Result<Option<SparseRows>, BatchError> {
        let Channel::Stream(stream) = &mut *self.channel else {
            unreachable!("called for streamed channels only");
        };
        let mut batch = SparseRows::new(feature_dim);
        while batch.n_rows() < self.batch_size && !self.exhausted {
            match &self.pending {
                Some(chunk) if self.pending_row < chunk.n_rows() => {
                    batch.push_row_from(chunk, self.pending_row);
                    self.pending_row += 1;
                }
                _ => {
                    self.pending = stream.next_chunk().map_err(BatchError::Stream)?;
                    self.pending_row = 0;
                    match &self.pending {
                        None => self.exhausted = true,
                        Some(chunk) if chunk.n_cols() != feature_dim => {
                            return Err(BatchError::FeatureDim {
                                found: chunk.n_cols(),
                            });
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Ok((batch.n_rows() > 0).then_some(batch))
    }
}
