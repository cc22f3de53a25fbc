//! SageMaker CSV training and inference data: one dense document per line.
//!
//! Each line has `label_size` label columns (0 by default, 1 for `text/csv;label_size=1`)
//! followed by exactly `feature_dim` counts, one per vocabulary word. There is no header.
//! CRLF line endings, a missing final newline, blank lines and a UTF-8 byte order mark are
//! accepted, and white space around a cell is ignored. Label columns are skipped unchecked.
//!
//! Every count must be a finite number >= 0. Non-integer counts are accepted, with one
//! warning per reader naming the first such cell. Cells are checked left to right before
//! the width of the line, so a Spark vector literal such as `(262144,[1,2],[3,4])` is
//! reported as a cell that is not a number rather than as a line of the wrong width.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use crate::error::{Cell, FormatError, Result};
use crate::sparse::SparseRows;

/// Streaming reader of SageMaker CSV rows from any [`Read`] source.
///
/// Errors leave the path empty; the caller adds it with [`FormatError::with_path`].
#[derive(Debug)]
pub struct CsvReader<R> {
    inner: ::csv::Reader<R>,
    record: ::csv::ByteRecord,
    feature_dim: usize,
    label_size: usize,
    rows_read: usize,
    first_non_integer: Option<(u64, usize, String)>,
    warn_non_integer: bool,
}

impl<R: Read> CsvReader<R> {
    /// Wraps `inner`, which contains rows of `label_size` labels and `feature_dim` counts.
    pub fn new(inner: R, feature_dim: usize, label_size: usize) -> Self {
        let inner = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(::csv::Trim::All)
            .from_reader(inner);
        Self {
            inner,
            record: ::csv::ByteRecord::new(),
            feature_dim,
            label_size,
            rows_read: 0,
            first_non_integer: None,
            warn_non_integer: true,
        }
    }

    /// Turns off the warning about non-integer counts, for a caller that already warned
    /// about an earlier file of the same channel.
    pub fn without_non_integer_warning(mut self) -> Self {
        self.warn_non_integer = false;
        self
    }

    /// Line, column and text of the first non-integer count read so far.
    pub fn first_non_integer(&self) -> Option<(u64, usize, &str)> {
        self.first_non_integer
            .as_ref()
            .map(|(line, column, text)| (*line, *column, text.as_str()))
    }

    /// Reads the next non-blank line into `indices` and `counts` (cleared first), keeping
    /// only non-zero counts; returns its 1-based line number, or `None` at the end.
    ///
    /// # Errors
    /// [`FormatError::CsvHeader`] (a non-numeric cell on the first row),
    /// [`FormatError::CsvInvalidNumber`], [`FormatError::CsvEmptyField`],
    /// [`FormatError::NonFinite`], [`FormatError::Negative`], [`FormatError::CsvWidth`],
    /// [`FormatError::CsvSyntax`] and [`FormatError::Io`], all with an empty path.
    pub fn next_row(
        &mut self,
        indices: &mut Vec<u32>,
        counts: &mut Vec<f32>,
    ) -> Result<Option<u64>> {
        indices.clear();
        counts.clear();
        loop {
            let more = self
                .inner
                .read_byte_record(&mut self.record)
                .map_err(csv_error)?;
            if !more {
                return Ok(None);
            }
            // A line of only white space parses as one empty field; treat it as blank.
            if self.record.len() == 1 && self.record[0].is_empty() {
                continue;
            }
            break;
        }
        let line = self.record.position().map_or(0, |p| p.line());
        let first_row = self.rows_read == 0;
        self.rows_read += 1;
        for (i, field) in self.record.iter().enumerate() {
            let column = i + 1;
            if i < self.label_size {
                continue;
            }
            let count = parse_count(field, line, column, first_row)?;
            if count.fract() != 0.0 && self.first_non_integer.is_none() {
                let text = String::from_utf8_lossy(field).into_owned();
                if self.warn_non_integer {
                    tracing::warn!(
                        line,
                        column,
                        value = %text,
                        "non-integer count accepted; NTM expects word counts, and later \
                         non-integer cells are not reported"
                    );
                }
                self.first_non_integer = Some((line, column, text));
            }
            let feature = i - self.label_size;
            if count != 0.0 && feature < self.feature_dim {
                indices.push(feature as u32);
                counts.push(count);
            }
        }
        let columns = self.record.len();
        if columns != self.feature_dim + self.label_size {
            return Err(FormatError::CsvWidth {
                path: PathBuf::new(),
                line,
                columns,
                feature_dim: self.feature_dim,
                label_size: self.label_size,
            });
        }
        Ok(Some(line))
    }
}

/// Parses one count cell; on the first row, a word-like first cell is a header error.
fn parse_count(field: &[u8], line: u64, column: usize, first_row: bool) -> Result<f32> {
    // The CSV parser unquotes a cell only when the quote comes first, so ` "2" ` arrives here
    // trimmed but still quoted.
    let field = match field {
        [b'"', inner @ .., b'"'] => inner,
        _ => field,
    };
    // Dense rows are mostly zeros, so skip the float parser for them.
    if field == b"0" {
        return Ok(0.0);
    }
    if field.is_empty() {
        return Err(FormatError::CsvEmptyField {
            path: PathBuf::new(),
            line,
            column,
        });
    }
    let text = String::from_utf8_lossy(field);
    let Ok(value) = text.parse::<f32>() else {
        // A header row starts with a word; a row whose earlier cells parsed as numbers is data.
        let wordlike = text.chars().any(char::is_alphabetic);
        if first_row && column == 1 && wordlike {
            return Err(FormatError::CsvHeader {
                path: PathBuf::new(),
                line,
                column,
                value: text.into_owned(),
            });
        }
        return Err(FormatError::CsvInvalidNumber {
            path: PathBuf::new(),
            line,
            column,
            value: text.into_owned(),
        });
    };
    let cell = Cell::Csv { line, column };
    if !value.is_finite() {
        return Err(FormatError::NonFinite {
            path: PathBuf::new(),
            cell,
            value: text.into_owned(),
        });
    }
    if value < 0.0 {
        return Err(FormatError::Negative {
            path: PathBuf::new(),
            cell,
            value: text.into_owned(),
        });
    }
    Ok(value)
}

fn csv_error(error: ::csv::Error) -> FormatError {
    let line = error.position().map_or(0, |p| p.line());
    match error.into_kind() {
        ::csv::ErrorKind::Io(source) => {
            FormatError::io(std::path::Path::new(""), "reading CSV data", source)
        }
        other => FormatError::CsvSyntax {
            path: PathBuf::new(),
            line,
            message: format!("{other:?}"),
        },
    }
}

/// Parses a whole CSV buffer (a file or a request body) into rows, one per non-blank line.
///
/// Empty documents are kept, so the rows line up with the non-blank lines.
///
/// # Errors
/// The errors of [`CsvReader::next_row`], with an empty path.
pub fn parse_csv(bytes: &[u8], feature_dim: usize, label_size: usize) -> Result<SparseRows> {
    let mut reader = CsvReader::new(bytes, feature_dim, label_size);
    let mut rows = SparseRows::new(feature_dim);
    let mut indices = Vec::new();
    let mut counts = Vec::new();
    while reader.next_row(&mut indices, &mut counts)?.is_some() {
        rows.push_row(&indices, &counts);
    }
    Ok(rows)
}

/// Writes every row of `rows` as a dense CSV line of `n_cols` counts, without a label
/// column, ending each line with `\n`.
///
/// Counts use Rust's shortest round-trip formatting, so integers print without a decimal
/// point and reading the file back gives bit-identical `f32` values.
pub fn write_csv_rows<W: Write>(out: W, rows: &SparseRows) -> io::Result<W> {
    let mut out = io::BufWriter::new(out);
    let mut dense = vec![0.0f32; rows.n_cols()];
    let mut line = String::new();
    for i in 0..rows.n_rows() {
        rows.densify_row(i, &mut dense);
        line.clear();
        for (column, value) in dense.iter().enumerate() {
            if column > 0 {
                line.push(',');
            }
            line.push_str(&value.to_string());
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.into_inner().map_err(io::IntoInnerError::into_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_blank_lines_and_missing_newline() {
        let rows = parse_csv(b"1,0,2\r\n\r\n   \n0,0,0\r\n0,3,0", 3, 0).unwrap();
        assert_eq!(rows.n_rows(), 3);
        assert_eq!(rows.row(0), (&[0u32, 2][..], &[1.0f32, 2.0][..]));
        assert_eq!(rows.row(1).0.len(), 0);
        assert_eq!(rows.row(2), (&[1u32][..], &[3.0f32][..]));
    }

    #[test]
    fn label_column_is_dropped() {
        let rows = parse_csv(b"7,1,0\n-3,0,2\n", 2, 1).unwrap();
        assert_eq!(rows.row(0), (&[0u32][..], &[1.0f32][..]));
        assert_eq!(rows.row(1), (&[1u32][..], &[2.0f32][..]));
    }

    #[test]
    fn non_integer_count_is_recorded_once() {
        let mut reader = CsvReader::new(&b"1,0.5\n0.25,1\n"[..], 2, 0);
        let (mut indices, mut counts) = (Vec::new(), Vec::new());
        while reader
            .next_row(&mut indices, &mut counts)
            .unwrap()
            .is_some()
        {}
        assert_eq!(reader.first_non_integer(), Some((1, 2, "0.5")));
    }
}
