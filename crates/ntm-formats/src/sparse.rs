//! Compressed sparse rows: the in-memory form of a batch of bag-of-words documents.

/// A matrix of documents in compressed sparse row (CSR) layout.
///
/// Row `i` holds the non-zero counts of document `i`: its column indices are
/// `indices[indptr[i]..indptr[i + 1]]`, strictly increasing, each below `n_cols`,
/// and its values the matching slice of `values`. Every row pushed through
/// [`SparseRows::push_row`] keeps these invariants, so consumers may rely on them.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRows {
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl SparseRows {
    /// Creates an empty matrix with `n_cols` columns and no rows.
    pub fn new(n_cols: usize) -> Self {
        Self {
            n_cols,
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Creates an empty matrix with room for `rows` rows and `nnz` non-zeros.
    pub fn with_capacity(n_cols: usize, rows: usize, nnz: usize) -> Self {
        let mut indptr = Vec::with_capacity(rows + 1);
        indptr.push(0);
        Self {
            n_cols,
            indptr,
            indices: Vec::with_capacity(nnz),
            values: Vec::with_capacity(nnz),
        }
    }

    /// Removes every row and sets the number of columns, keeping the allocated capacity.
    pub fn clear(&mut self, n_cols: usize) {
        self.n_cols = n_cols;
        self.indptr.clear();
        self.indptr.push(0);
        self.indices.clear();
        self.values.clear();
    }

    /// Appends one row given as parallel slices of column indices and values.
    ///
    /// # Panics
    /// Panics when the slices differ in length, when an index is not below
    /// `n_cols`, or when the indices are not strictly increasing. Readers
    /// validate and normalise untrusted input before calling this.
    pub fn push_row(&mut self, indices: &[u32], values: &[f32]) {
        assert_eq!(
            indices.len(),
            values.len(),
            "indices and values differ in length"
        );
        for pair in indices.windows(2) {
            assert!(
                pair[0] < pair[1],
                "column indices must be strictly increasing"
            );
        }
        if let Some(&last) = indices.last() {
            assert!(
                (last as usize) < self.n_cols,
                "column index {last} >= {}",
                self.n_cols
            );
        }
        self.indices.extend_from_slice(indices);
        self.values.extend_from_slice(values);
        self.indptr.push(self.indices.len());
    }

    /// Appends row `row` of `other`, which must have the same number of columns.
    pub fn push_row_from(&mut self, other: &SparseRows, row: usize) {
        assert_eq!(self.n_cols, other.n_cols, "column counts differ");
        let (indices, values) = other.row(row);
        self.indices.extend_from_slice(indices);
        self.values.extend_from_slice(values);
        self.indptr.push(self.indices.len());
    }

    /// Number of columns (the vocabulary size).
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Number of rows (documents).
    pub fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of stored non-zeros over all rows.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Returns the column indices and values of row `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[i]..self.indptr[i + 1];
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Row offsets into [`SparseRows::indices`] and [`SparseRows::values`], `n_rows + 1` long.
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Column indices of all rows, concatenated.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Values of all rows, concatenated.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Sum of the values of row `i` (the document length in tokens for counts), added in `f64`
    /// so that finite counts near `f32::MAX` cannot overflow to infinity.
    pub fn row_sum(&self, i: usize) -> f64 {
        self.row(i).1.iter().map(|&x| f64::from(x)).sum()
    }

    /// Copies the given rows, in the given order, into a new matrix.
    pub fn select(&self, rows: &[usize]) -> SparseRows {
        let nnz = rows
            .iter()
            .map(|&r| self.indptr[r + 1] - self.indptr[r])
            .sum();
        let mut out = SparseRows::with_capacity(self.n_cols, rows.len(), nnz);
        for &r in rows {
            out.push_row_from(self, r);
        }
        out
    }

    /// Appends every row of `other`, which must have the same number of columns.
    pub fn extend(&mut self, other: &SparseRows) {
        for r in 0..other.n_rows() {
            self.push_row_from(other, r);
        }
    }

    /// Writes row `i` densely into `out`, which must be `n_cols` long.
    pub fn densify_row(&self, i: usize, out: &mut [f32]) {
        out.fill(0.0);
        let (indices, values) = self.row(i);
        for (&c, &v) in indices.iter().zip(values) {
            out[c as usize] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let mut m = SparseRows::new(5);
        m.push_row(&[0, 3], &[1.0, 2.0]);
        m.push_row(&[], &[]);
        m.push_row(&[4], &[7.0]);
        assert_eq!(m.n_rows(), 3);
        assert_eq!(m.nnz(), 3);
        assert_eq!(m.row(0), (&[0u32, 3][..], &[1.0f32, 2.0][..]));
        assert_eq!(m.row(1).0.len(), 0);
        assert_eq!(m.row_sum(2), 7.0);
        let s = m.select(&[2, 0]);
        assert_eq!(s.row(0), (&[4u32][..], &[7.0f32][..]));
        let mut dense = vec![9.0; 5];
        s.densify_row(1, &mut dense);
        assert_eq!(dense, vec![1.0, 0.0, 0.0, 2.0, 0.0]);
    }

    #[test]
    fn clear_empties_and_changes_width() {
        let mut m = SparseRows::new(5);
        m.push_row(&[1, 4], &[1.0, 2.0]);
        m.clear(3);
        assert_eq!((m.n_rows(), m.nnz(), m.n_cols()), (0, 0, 3));
        m.push_row(&[2], &[5.0]);
        assert_eq!(m.row(0), (&[2u32][..], &[5.0f32][..]));
        assert_eq!(m.indptr(), &[0, 1]);
    }

    #[test]
    #[should_panic(expected = "strictly increasing")]
    fn unsorted_row_panics() {
        SparseRows::new(5).push_row(&[3, 1], &[1.0, 1.0]);
    }
}
