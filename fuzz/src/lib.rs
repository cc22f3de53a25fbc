//! Invariant checks shared by the fuzz targets in `fuzz_targets/`.
//!
//! Each check panics with a message naming the broken invariant, so libFuzzer reports the
//! input as a crash.

use std::io::{self, Read};

use ntm_formats::SparseRows;

/// Asserts the row invariants every decoder promises: as many values as indices, indices
/// strictly increasing and below `n_cols`, and values finite and greater than zero (decoders
/// drop zero counts).
pub fn check_row(indices: &[u32], values: &[f32], n_cols: usize) {
    assert_eq!(
        indices.len(),
        values.len(),
        "indices and values differ in length"
    );
    for pair in indices.windows(2) {
        assert!(
            pair[0] < pair[1],
            "indices not strictly increasing: {indices:?}"
        );
    }
    for &index in indices {
        assert!(
            (index as usize) < n_cols,
            "index {index} >= n_cols {n_cols}"
        );
    }
    for &value in values {
        assert!(value.is_finite(), "value {value} is not finite");
        assert!(value > 0.0, "value {value} is not greater than zero");
    }
}

/// Asserts [`check_row`] for every row of `rows`, and that the CSR offsets are consistent.
pub fn check_rows(rows: &SparseRows) {
    let indptr = rows.indptr();
    assert_eq!(indptr.len(), rows.n_rows() + 1, "indptr length");
    assert_eq!(indptr[0], 0, "indptr does not start at 0");
    assert_eq!(
        indptr[rows.n_rows()],
        rows.nnz(),
        "indptr does not end at nnz"
    );
    assert_eq!(
        rows.indices().len(),
        rows.values().len(),
        "indices and values lengths"
    );
    for i in 0..rows.n_rows() {
        let (indices, values) = rows.row(i);
        check_row(indices, values, rows.n_cols());
    }
}

/// Asserts that two rows are equal, comparing values bit for bit.
pub fn assert_same_row(left: (&[u32], &[f32]), right: (&[u32], &[f32]), context: &str) {
    assert_eq!(left.0, right.0, "{context}: indices differ");
    let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(left.1), bits(right.1), "{context}: values differ");
}

/// Asserts that two matrices have the same shape and the same rows, bit for bit.
pub fn assert_same_rows(left: &SparseRows, right: &SparseRows, context: &str) {
    assert_eq!(left.n_cols(), right.n_cols(), "{context}: n_cols differ");
    assert_eq!(left.n_rows(), right.n_rows(), "{context}: n_rows differ");
    for i in 0..left.n_rows() {
        assert_same_row(left.row(i), right.row(i), context);
    }
}

/// A reader that returns at most `chunk` bytes per call, so streaming readers see their
/// input cut at every possible place.
pub struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl<'a> Trickle<'a> {
    /// Serves `data` in reads of at most `chunk` bytes (at least 1).
    pub fn new(data: &'a [u8], chunk: usize) -> Self {
        Self {
            data,
            chunk: chunk.max(1),
        }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
