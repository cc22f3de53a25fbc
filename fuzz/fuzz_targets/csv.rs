//! The SageMaker CSV reader, with `label_size` 0 and 1 and several `feature_dim` values.
//!
//! `parse_csv` must return valid rows or an error, `CsvReader` fed in short reads must agree
//! with it, and rows written back with `write_csv_rows` must parse to the same rows bit for
//! bit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ntm_formats::csv::{parse_csv, write_csv_rows, CsvReader};
use ntm_formats::{FormatError, SparseRows};
use ntm_fuzz::{assert_same_rows, check_rows, Trickle};

/// Feature dimensions tried on every input, besides the width of its first line.
const FEATURE_DIMS: [usize; 3] = [1, 3, 6];

/// Largest width taken from the first line. Wider lines are still parsed with the fixed
/// dimensions.
const MAX_SUGGESTED_DIM: usize = 100_000;

/// Number of comma-separated cells on the first line that is not blank, an estimate that
/// ignores quoting.
fn first_line_width(data: &[u8]) -> Option<usize> {
    let line = data
        .split(|&b| b == b'\n')
        .find(|line| line.iter().any(|b| !b.is_ascii_whitespace()))?;
    Some(line.iter().filter(|&&b| b == b',').count() + 1)
}

/// Reads every row with `CsvReader`, as the channel reader does.
fn stream(
    data: &[u8],
    chunk: usize,
    feature_dim: usize,
    label_size: usize,
) -> Result<SparseRows, FormatError> {
    let mut reader = CsvReader::new(Trickle::new(data, chunk), feature_dim, label_size)
        .without_non_integer_warning();
    let mut rows = SparseRows::new(feature_dim);
    let mut indices = Vec::new();
    let mut counts = Vec::new();
    let mut previous_line = 0;
    while let Some(line) = reader.next_row(&mut indices, &mut counts)? {
        assert!(
            line >= previous_line,
            "line numbers go back: {line} after {previous_line}"
        );
        previous_line = line;
        rows.push_row(&indices, &counts);
    }
    Ok(rows)
}

fn check(data: &[u8], feature_dim: usize, label_size: usize) {
    let parsed = parse_csv(data, feature_dim, label_size);
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 13);
    let streamed = stream(data, chunk, feature_dim, label_size);
    let rows = match (parsed, streamed) {
        (Ok(rows), Ok(streamed)) => {
            assert_same_rows(&rows, &streamed, "CsvReader over short reads");
            rows
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "CsvReader: errors differ");
            return;
        }
        (a, b) => panic!("one reader failed and the other did not: {a:?} / {b:?}"),
    };
    check_rows(&rows);
    assert_eq!(rows.n_cols(), feature_dim, "n_cols");
    // The csv crate ends a record at `\n`, `\r` or `\r\n`.
    let lines = data.split(|&b| b == b'\n' || b == b'\r').count();
    assert!(
        rows.n_rows() <= lines,
        "{} rows from {lines} lines",
        rows.n_rows()
    );

    let written = write_csv_rows(Vec::new(), &rows).expect("writing to a Vec succeeds");
    let reread = parse_csv(&written, feature_dim, 0).expect("written rows parse");
    assert_same_rows(&rows, &reread, "write_csv_rows round trip");
}

fuzz_target!(|data: &[u8]| {
    let width = first_line_width(data);
    for label_size in [0, 1] {
        let mut dims = FEATURE_DIMS.to_vec();
        if let Some(width) =
            width.filter(|&w| w > label_size && w - label_size <= MAX_SUGGESTED_DIM)
        {
            dims.push(width - label_size);
        }
        dims.sort_unstable();
        dims.dedup();
        for feature_dim in dims {
            check(data, feature_dim, label_size);
        }
    }
});
