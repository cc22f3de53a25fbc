//! The first encoder layer, whose input is a sparse CSR batch of word counts.
//!
//! The weight is stored `[V, H]`, so the weights of word `v` are one contiguous row. The forward
//! product `X W` and the weight gradient `X^T G` both cost O(nnz * H), and the gradient is
//! non-zero only in the rows of words present in the batch.

use ntm_formats::SparseRows;
use rayon::prelude::*;

use super::kernels::simd_fn;

/// Rows handled per rayon task. Each row is computed independently and in a fixed order, so the
/// chunking never changes the result.
const ROWS_PER_TASK: usize = 16;
/// Weight-gradient rows (vocabulary entries) handled per rayon task.
const WORDS_PER_TASK: usize = 256;

/// The batch transposed: for each word, the documents that contain it, in document order.
#[derive(Debug, Default, Clone)]
pub(crate) struct ColumnIndex {
    /// `starts[v]..starts[v + 1]` indexes `docs` and `values` for word `v`.
    starts: Vec<usize>,
    docs: Vec<u32>,
    values: Vec<f32>,
    /// Sorted ids of the words present in the batch.
    pub words: Vec<u32>,
}

impl ColumnIndex {
    /// Rebuilds the index for `batch` with a counting sort over the columns.
    fn rebuild(&mut self, batch: &SparseRows) {
        let n_cols = batch.n_cols();
        self.starts.clear();
        self.starts.resize(n_cols + 1, 0);
        for &c in batch.indices() {
            self.starts[c as usize + 1] += 1;
        }
        self.words.clear();
        for v in 0..n_cols {
            if self.starts[v + 1] > 0 {
                self.words.push(v as u32);
            }
            self.starts[v + 1] += self.starts[v];
        }
        self.docs.clear();
        self.docs.resize(batch.nnz(), 0);
        self.values.clear();
        self.values.resize(batch.nnz(), 0.0);
        // `starts[c]` serves as the write cursor of word `c`, so afterwards every offset has moved
        // to the start of the next word and is shifted back by one.
        for doc in 0..batch.n_rows() {
            let (indices, values) = batch.row(doc);
            for (&c, &x) in indices.iter().zip(values) {
                let slot = self.starts[c as usize];
                self.docs[slot] = doc as u32;
                self.values[slot] = x;
                self.starts[c as usize] += 1;
            }
        }
        for v in (1..=n_cols).rev() {
            self.starts[v] = self.starts[v - 1];
        }
        self.starts[0] = 0;
    }
}

/// Computes `out = X W + bias` for the CSR batch `X` (B x V) and the `[V, H]` weight `W`.
pub(crate) fn forward(batch: &SparseRows, weight: &[f32], bias: &[f32], out: &mut [f32]) {
    let hidden = bias.len();
    out.par_chunks_mut(hidden * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(task, rows)| {
            forward_rows(batch, weight, bias, task * ROWS_PER_TASK, rows);
        });
}

/// Output columns one pass of the sparse kernels keeps in registers: four 16-lane vectors.
const COLUMN_BLOCK: usize = 64;

simd_fn! {
fn forward_rows(batch: &SparseRows, weight: &[f32], bias: &[f32], first: usize, rows: &mut [f32]) {
    let hidden = bias.len();
    for (r, row) in rows.chunks_exact_mut(hidden).enumerate() {
        let (indices, values) = batch.row(first + r);
        // Each block of output columns is summed in registers over all of the document's words,
        // then stored once: the sum is `bias + x_1 w_1 + x_2 w_2 + ...` in word order.
        let mut blocks = row.chunks_exact_mut(COLUMN_BLOCK);
        let mut start = 0;
        for out in &mut blocks {
            let mut acc = [0.0f32; COLUMN_BLOCK];
            acc.copy_from_slice(&bias[start..start + COLUMN_BLOCK]);
            for (&c, &x) in indices.iter().zip(values) {
                let w = &weight[c as usize * hidden + start..][..COLUMN_BLOCK];
                for (a, &wv) in acc.iter_mut().zip(w) {
                    *a += x * wv;
                }
            }
            out.copy_from_slice(&acc);
            start += COLUMN_BLOCK;
        }
        let out = blocks.into_remainder();
        if !out.is_empty() {
            out.copy_from_slice(&bias[start..]);
            for (&c, &x) in indices.iter().zip(values) {
                let w = &weight[c as usize * hidden + start..][..out.len()];
                for (o, &wv) in out.iter_mut().zip(w) {
                    *o += x * wv;
                }
            }
        }
    }
}
}

/// Writes the weight gradient `X^T G` into `grad` (`[V, H]`, every value overwritten), where
/// `G` is the B x H gradient of the layer output. Rows of absent words are zero.
///
/// Each row sums its documents in document order, so the result does not depend on scheduling.
pub(crate) fn weight_grad(
    batch: &SparseRows,
    out_grad: &[f32],
    grad: &mut [f32],
    index: &mut ColumnIndex,
) {
    let hidden = grad.len() / batch.n_cols().max(1);
    index.rebuild(batch);
    let index = &*index;
    grad.par_chunks_mut(hidden * WORDS_PER_TASK)
        .enumerate()
        .for_each(|(task, rows)| {
            weight_grad_rows(index, out_grad, hidden, task * WORDS_PER_TASK, rows);
        });
}

simd_fn! {
fn weight_grad_rows(
    index: &ColumnIndex,
    out_grad: &[f32],
    hidden: usize,
    first: usize,
    rows: &mut [f32],
) {
    for (r, row) in rows.chunks_exact_mut(hidden).enumerate() {
        let v = first + r;
        let slots = index.starts[v]..index.starts[v + 1];
        if slots.is_empty() {
            row.fill(0.0);
            continue;
        }
        // As in the forward pass, each block of columns is summed in registers, in document
        // order starting from zero, and stored once.
        let mut blocks = row.chunks_exact_mut(COLUMN_BLOCK);
        let mut start = 0;
        for out in &mut blocks {
            let mut acc = [0.0f32; COLUMN_BLOCK];
            for slot in slots.clone() {
                let x = index.values[slot];
                let g = &out_grad[index.docs[slot] as usize * hidden + start..][..COLUMN_BLOCK];
                for (a, &gv) in acc.iter_mut().zip(g) {
                    *a += x * gv;
                }
            }
            out.copy_from_slice(&acc);
            start += COLUMN_BLOCK;
        }
        let out = blocks.into_remainder();
        if !out.is_empty() {
            out.fill(0.0);
            for slot in slots {
                let x = index.values[slot];
                let g = &out_grad[index.docs[slot] as usize * hidden + start..][..out.len()];
                for (o, &gv) in out.iter_mut().zip(g) {
                    *o += x * gv;
                }
            }
        }
    }
}
}
