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
            let first = task * ROWS_PER_TASK;
            #[cfg(target_arch = "x86_64")]
            if avx512::available() {
                for (r, row) in rows.chunks_exact_mut(hidden).enumerate() {
                    let (indices, values) = batch.row(first + r);
                    let terms = indices.iter().zip(values).map(|(&c, &x)| (c as usize, x));
                    avx512::accumulate_rows(row, Some(bias), weight, terms);
                }
                return;
            }
            forward_rows(batch, weight, bias, first, rows);
        });
}

/// Output columns that one pass of the portable sparse loops keeps in registers: four 16-lane
/// vectors.
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
            let first = task * WORDS_PER_TASK;
            #[cfg(target_arch = "x86_64")]
            if avx512::available() {
                for (r, row) in rows.chunks_exact_mut(hidden).enumerate() {
                    let slots = index.starts[first + r]..index.starts[first + r + 1];
                    let terms = slots.map(|slot| (index.docs[slot] as usize, index.values[slot]));
                    avx512::accumulate_rows(row, None, out_grad, terms);
                }
                return;
            }
            weight_grad_rows(index, out_grad, hidden, first, rows);
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

/// AVX-512 versions of the two sparse products, which keep a whole output row (up to 160 values)
/// in registers while they run over its terms.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use crate::network::kernels::{tier_allowed, Tier};

    /// 16-lane vectors of one pass: rows up to 160 values take a single pass.
    const VECTORS: usize = 10;

    /// Returns whether the CPU and the unit tests' tier limit allow these kernels.
    pub(super) fn available() -> bool {
        tier_allowed(Tier::Avx512) && std::arch::is_x86_feature_detected!("avx512f")
    }

    /// Writes `out = init + sum_t x_t * src[row_t]` (or the sum alone without `init`), where
    /// `src[row_t]` is row `row_t` of the row-major `src` with `out.len()` columns, adding the
    /// terms in order with a separate multiply and add: the same operations in the same order
    /// as the plain loops, so the same bits.
    ///
    /// # Panics
    /// Panics when `init` is shorter than `out` or a term's row lies outside `src`.
    pub(super) fn accumulate_rows(
        out: &mut [f32],
        init: Option<&[f32]>,
        src: &[f32],
        terms: impl Iterator<Item = (usize, f32)> + Clone,
    ) {
        let width = out.len();
        if let Some(init) = init {
            assert!(init.len() >= width, "initial row too short");
        }
        let rows = src.len() / width.max(1);
        assert!(
            terms.clone().all(|(row, _)| row < rows),
            "term row outside the source"
        );
        for start in (0..width).step_by(16 * VECTORS) {
            let len = (width - start).min(16 * VECTORS);
            #[allow(unsafe_code)]
            // SAFETY: `available` checked AVX-512F; the asserts above keep the reads of columns
            // start..start + len of every term's row, of `init`, and the writes to `out`, in
            // bounds.
            unsafe {
                match len.div_ceil(16) {
                    10 => pass::<10>(out, init, src, &terms, start, len),
                    9 => pass::<9>(out, init, src, &terms, start, len),
                    8 => pass::<8>(out, init, src, &terms, start, len),
                    7 => pass::<7>(out, init, src, &terms, start, len),
                    6 => pass::<6>(out, init, src, &terms, start, len),
                    5 => pass::<5>(out, init, src, &terms, start, len),
                    4 => pass::<4>(out, init, src, &terms, start, len),
                    3 => pass::<3>(out, init, src, &terms, start, len),
                    2 => pass::<2>(out, init, src, &terms, start, len),
                    _ => pass::<1>(out, init, src, &terms, start, len),
                }
            }
        }
    }

    /// Columns `start..start + len` of [`accumulate_rows`] in `N` vectors, the last masked.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, `len <= 16 N`, and the columns must lie in every row read.
    #[target_feature(enable = "avx512f")]
    #[allow(unsafe_code)]
    unsafe fn pass<const N: usize>(
        out: &mut [f32],
        init: Option<&[f32]>,
        src: &[f32],
        terms: &(impl Iterator<Item = (usize, f32)> + Clone),
        start: usize,
        len: usize,
    ) {
        let width = out.len();
        let masks: [__mmask16; N] = std::array::from_fn(|j| {
            let lanes = len.saturating_sub(16 * j).min(16);
            ((1u32 << lanes) - 1) as __mmask16
        });
        // SAFETY: guaranteed by the caller, as stated above.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); N];
            if let Some(init) = init {
                let p = init.as_ptr().add(start);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_maskz_loadu_ps(masks[j], p.add(16 * j));
                }
            }
            for (row, x) in terms.clone() {
                let xv = _mm512_set1_ps(x);
                let p = src.as_ptr().add(row * width + start);
                for (j, a) in acc.iter_mut().enumerate() {
                    let w = _mm512_maskz_loadu_ps(masks[j], p.add(16 * j));
                    *a = _mm512_add_ps(*a, _mm512_mul_ps(xv, w));
                }
            }
            let p = out.as_mut_ptr().add(start);
            for (j, &a) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(p.add(16 * j), masks[j], a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernels::{serial, with_tier_limit, Tier};
    use super::*;

    /// A batch of `rows` documents over `cols` words with a few repeated and a few unique words.
    fn batch(rows: usize, cols: usize) -> SparseRows {
        let mut batch = SparseRows::new(cols);
        for r in 0..rows {
            let mut words: Vec<u32> = (0..9)
                .map(|i| ((r * 31 + i * i * 17) % cols) as u32)
                .collect();
            words.sort_unstable();
            words.dedup();
            let counts: Vec<f32> = words.iter().map(|&w| 1.0 + (w % 4) as f32 * 0.75).collect();
            batch.push_row(&words, &counts);
        }
        batch.push_row(&[], &[]);
        batch
    }

    #[test]
    fn every_tier_gives_the_same_bits() {
        // Widths below one vector, between vectors, of one full pass (160) and of two passes.
        for hidden in [7, 16, 150, 160, 173] {
            let (rows, cols) = (37, 60);
            let batch = batch(rows, cols);
            let n = batch.n_rows();
            let weight: Vec<f32> = (0..cols * hidden)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
                .collect();
            let bias: Vec<f32> = (0..hidden).map(|i| i as f32 * 0.01 - 0.3).collect();
            let out_grad: Vec<f32> = (0..n * hidden)
                .map(|i| ((i * 11 % 23) as f32 - 11.0) / 5.0)
                .collect();
            let run = |limit: Tier| {
                with_tier_limit(limit, || {
                    serial(|| {
                        let mut out = vec![f32::NAN; n * hidden];
                        forward(&batch, &weight, &bias, &mut out);
                        let mut grad = vec![f32::NAN; cols * hidden];
                        weight_grad(&batch, &out_grad, &mut grad, &mut ColumnIndex::default());
                        (out, grad)
                    })
                })
            };
            let (out, grad) = run(Tier::Portable);
            // Check the plain loops against the definition once, with the terms in word order.
            for r in 0..n {
                let (indices, values) = batch.row(r);
                for h in 0..hidden {
                    let mut want = bias[h];
                    for (&c, &x) in indices.iter().zip(values) {
                        want += x * weight[c as usize * hidden + h];
                    }
                    assert_eq!(
                        out[r * hidden + h].to_bits(),
                        want.to_bits(),
                        "row {r}, column {h}"
                    );
                }
            }
            for limit in [Tier::Avx2, Tier::Avx512] {
                let (wide_out, wide_grad) = run(limit);
                let same =
                    |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same(&out, &wide_out),
                    "forward differs on {limit:?}, width {hidden}"
                );
                assert!(
                    same(&grad, &wide_grad),
                    "weight gradient differs on {limit:?}, width {hidden}"
                );
            }
        }
    }
}
