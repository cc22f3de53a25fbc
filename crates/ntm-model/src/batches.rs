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

/// Documents held by a shuffle buffer, stored in two shared pools rather than one allocation
/// per document, which under a long stream of replacements would fragment the heap to many
/// times the live size.
///
/// A replaced or removed document leaves a gap in the pools. Once the gaps outweigh the live
/// counts, the live documents move down in place, so the pools stay under about twice the
/// live size.
struct ShuffleBuffer {
    indices: Vec<u32>,
    values: Vec<f32>,
    /// Start and length of each buffered document in the pools.
    slots: Vec<(usize, usize)>,
    /// Counts stored by the buffered documents, without the gaps.
    live: usize,
}

impl ShuffleBuffer {
    fn new() -> Self {
        Self {
            indices: Vec::new(),
            values: Vec::new(),
            slots: Vec::new(),
            live: 0,
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn push(&mut self, indices: &[u32], values: &[f32]) {
        let slot = self.append(indices, values);
        self.slots.push(slot);
    }

    /// Moves buffered document `slot` into `batch` and stores the given document in its place.
    fn replace(&mut self, slot: usize, indices: &[u32], values: &[f32], batch: &mut SparseRows) {
        self.move_out(slot, batch);
        self.slots[slot] = self.append(indices, values);
        self.compact_if_sparse();
    }

    /// Moves buffered document `slot` into `batch`; the last slot takes its place.
    fn take(&mut self, slot: usize, batch: &mut SparseRows) {
        self.move_out(slot, batch);
        self.slots.swap_remove(slot);
        self.compact_if_sparse();
    }

    fn append(&mut self, indices: &[u32], values: &[f32]) -> (usize, usize) {
        let start = self.indices.len();
        self.indices.extend_from_slice(indices);
        self.values.extend_from_slice(values);
        self.live += indices.len();
        (start, indices.len())
    }

    fn move_out(&mut self, slot: usize, batch: &mut SparseRows) {
        let (start, len) = self.slots[slot];
        batch.push_row(
            &self.indices[start..start + len],
            &self.values[start..start + len],
        );
        self.live -= len;
    }

    fn compact_if_sparse(&mut self) {
        if self.indices.len() <= 2 * self.live + 4096 {
            return;
        }
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_unstable_by_key(|&slot| self.slots[slot].0);
        let mut write = 0;
        for slot in order {
            let (start, len) = self.slots[slot];
            self.indices.copy_within(start..start + len, write);
            self.values.copy_within(start..start + len, write);
            self.slots[slot].0 = write;
            write += len;
        }
        self.indices.truncate(write);
        self.values.truncate(write);
    }
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
    buffer: ShuffleBuffer,
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
            buffer: ShuffleBuffer::new(),
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
            if self.next_kept_row(rng)? {
                let chunk = self.chunk.as_ref().expect("a kept row comes from a chunk");
                let (indices, values) = chunk.row(self.next_row - 1);
                if self.buffer.len() < self.capacity {
                    self.buffer.push(indices, values);
                } else {
                    let slot = rng.random_range(0..self.buffer.len());
                    self.buffer.replace(slot, indices, values, &mut batch);
                }
            } else if self.buffer.len() == 0 {
                break;
            } else {
                let slot = rng.random_range(0..self.buffer.len());
                self.buffer.take(slot, &mut batch);
            }
        }
        Ok((batch.n_rows() > 0).then_some(batch))
    }

    /// Advances to the next document that the sub-sample keeps, row `next_row - 1` of the
    /// current chunk; returns `false` after the last one.
    fn next_kept_row(&mut self, rng: &mut ChaCha8Rng) -> Result<bool, BatchError> {
        loop {
            if self.exhausted {
                return Ok(false);
            }
            let rows_left = self
                .chunk
                .as_ref()
                .is_some_and(|chunk| self.next_row < chunk.n_rows());
            if !rows_left {
                self.chunk = self.stream.next_chunk().map_err(BatchError::Stream)?;
                self.next_row = 0;
                match &self.chunk {
                    None => self.exhausted = true,
                    Some(chunk) if chunk.n_cols() != self.feature_dim => {
                        return Err(BatchError::FeatureDim {
                            found: chunk.n_cols(),
                        });
                    }
                    Some(_) => {}
                }
                continue;
            }
            self.next_row += 1;
            if self.sub_sample < 1.0 && rng.random::<f64>() >= self.sub_sample {
                continue;
            }
            return Ok(true);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Row `i` of the test stream: `1 + i % 7` counts on ids starting at `i % 13`.
    fn row(i: usize) -> (Vec<u32>, Vec<f32>) {
        let len = 1 + i % 7;
        let ids = (0..len).map(|k| ((i % 13) + k) as u32).collect();
        let values = (0..len).map(|k| (i * 10 + k) as f32).collect();
        (ids, values)
    }

    #[test]
    fn shuffle_buffer_keeps_rows_through_compaction() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut buffer = ShuffleBuffer::new();
        let mut expected: Vec<(Vec<u32>, Vec<f32>)> = Vec::new();
        let mut batch = SparseRows::new(32);
        let mut moved_out = Vec::new();
        for i in 0..5000 {
            let (ids, values) = row(i);
            if buffer.len() < 300 {
                buffer.push(&ids, &values);
                expected.push((ids, values));
            } else {
                let slot = rng.random_range(0..buffer.len());
                buffer.replace(slot, &ids, &values, &mut batch);
                moved_out.push(std::mem::replace(&mut expected[slot], (ids, values)));
            }
        }
        while buffer.len() > 0 {
            let slot = rng.random_range(0..buffer.len());
            buffer.take(slot, &mut batch);
            moved_out.push(expected.swap_remove(slot));
        }
        assert_eq!(batch.n_rows(), 5000);
        for (i, (ids, values)) in moved_out.iter().enumerate() {
            assert_eq!(batch.row(i), (ids.as_slice(), values.as_slice()), "row {i}");
        }
        assert!(
            buffer.indices.len() <= 4096,
            "pools emptied: {}",
            buffer.indices.len()
        );
    }
}
