//! SageMaker CSV: accepted layouts, every rejection with its line and column, the writer.

mod common;

use ntm_formats::csv::{parse_csv, write_csv_rows, CsvReader};
use ntm_formats::{read_channel, Cell, ContentType, FormatError, SparseRows};

const CSV: Option<ContentType> = Some(ContentType::Csv { label_size: 0 });

/// Reads a fixture as a one-file channel and returns the error.
fn channel_error(relative: &str, feature_dim: usize) -> FormatError {
    read_channel(&common::data(relative), CSV, feature_dim).unwrap_err()
}

fn assert_mentions(err: &FormatError, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn width_below_feature_dim_is_rejected() {
    let err = channel_error("width/six_columns.csv", 2000);
    assert!(
        matches!(
            err,
            FormatError::CsvWidth {
                line: 1,
                columns: 6,
                feature_dim: 2000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &[
            "six_columns.csv",
            "line 1 has 6 columns but feature_dim is 2000",
        ],
    );
}

#[test]
fn width_above_feature_dim_is_rejected() {
    let err = channel_error("width/six_columns.csv", 4);
    assert!(
        matches!(
            err,
            FormatError::CsvWidth {
                line: 1,
                columns: 6,
                feature_dim: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["line 1 has 6 columns but feature_dim is 4"]);
}

#[test]
fn width_counts_label_column() {
    let err = parse_csv(b"1,2,3\n", 3, 1).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::CsvWidth {
                columns: 3,
                label_size: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["plus 1 label column"]);
    assert_eq!(parse_csv(b"9,2,3,4\n", 3, 1).unwrap().nnz(), 3);
}

#[test]
fn header_row_is_rejected_with_hint() {
    let err = channel_error("header/train.csv", 4);
    let FormatError::CsvHeader {
        line,
        column,
        value,
        ..
    } = &err
    else {
        panic!("expected CsvHeader, got {err:?}");
    };
    assert_eq!((*line, *column, value.as_str()), (1, 1, "ball"));
    assert_mentions(
        &err,
        &[
            "train.csv",
            "line 1, column 1",
            "\"ball\"",
            "must not have a header",
            "vocab.txt",
        ],
    );
}

#[test]
fn word_after_first_row_is_not_called_header() {
    let err = parse_csv(b"1,2\nx,3\n", 2, 0).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::CsvInvalidNumber {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn spark_vector_literal_is_rejected() {
    let err = channel_error("bad_cells/sparse_literal.csv", 4);
    let FormatError::CsvInvalidNumber {
        line,
        column,
        value,
        ..
    } = &err
    else {
        panic!("expected CsvInvalidNumber, got {err:?}");
    };
    assert_eq!((*line, *column, value.as_str()), (2, 1, "(4"));
    assert_mentions(
        &err,
        &[
            "sparse_literal.csv",
            "line 2, column 1",
            "\"(4\"",
            "not a number",
        ],
    );
}

#[test]
fn empty_field_is_rejected() {
    let err = channel_error("bad_cells/empty_field.csv", 4);
    assert!(
        matches!(
            err,
            FormatError::CsvEmptyField {
                line: 2,
                column: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["empty_field.csv", "line 2, column 2 is empty"]);
}

#[test]
fn nan_and_inf_are_rejected() {
    let err = channel_error("bad_cells/nonfinite.csv", 4);
    let FormatError::NonFinite { cell, value, .. } = &err else {
        panic!("expected NonFinite, got {err:?}");
    };
    assert_eq!(*cell, Cell::Csv { line: 2, column: 2 });
    assert_eq!(value, "nan");
    assert_mentions(
        &err,
        &[
            "nonfinite.csv",
            "line 2, column 2",
            "nan",
            "not a finite number",
        ],
    );

    let inf = parse_csv(b"0,1,inf,1\n", 4, 0).unwrap_err();
    assert!(
        matches!(
            inf,
            FormatError::NonFinite {
                cell: Cell::Csv { line: 1, column: 3 },
                ..
            }
        ),
        "{inf:?}"
    );
    let overflow = parse_csv(b"1e39\n", 1, 0).unwrap_err();
    assert!(
        matches!(overflow, FormatError::NonFinite { .. }),
        "{overflow:?}"
    );
}

#[test]
fn negative_count_is_rejected() {
    let err = channel_error("negative/train.csv", 4);
    let FormatError::Negative { cell, value, .. } = &err else {
        panic!("expected Negative, got {err:?}");
    };
    assert_eq!(*cell, Cell::Csv { line: 2, column: 3 });
    assert_eq!(value, "-1");
    assert_mentions(
        &err,
        &["line 2, column 3", "value -1", "counts must be >= 0"],
    );

    let body = std::fs::read(common::data("negative/inference.csv")).unwrap();
    let err = parse_csv(&body, 4, 0).unwrap_err();
    assert_mentions(
        &err,
        &[
            "the input",
            "line 1, column 3",
            "value -0.5",
            "counts must be >= 0",
        ],
    );
}

#[test]
fn non_integer_counts_are_accepted() {
    let mut reader = CsvReader::new(&b"1,2\n0.5,3\n0,1.5\n"[..], 2, 0);
    let (mut indices, mut counts) = (Vec::new(), Vec::new());
    let mut lines = Vec::new();
    while let Some(line) = reader.next_row(&mut indices, &mut counts).unwrap() {
        lines.push((line, counts.clone()));
    }
    assert_eq!(lines[1], (2, vec![0.5, 3.0]));
    assert_eq!(
        reader.first_non_integer(),
        Some((2, 1, "0.5")),
        "the first such cell is kept"
    );
}

#[test]
fn bom_spaces_and_quotes_are_accepted() {
    let rows = parse_csv("\u{feff}1, 2 ,\"3\"\r\n".as_bytes(), 3, 0).unwrap();
    assert_eq!(rows.row(0), (&[0u32, 1, 2][..], &[1.0f32, 2.0, 3.0][..]));
}

#[test]
fn rows_line_up_with_non_blank_lines() {
    let rows = parse_csv(b"\n1,0\n\n0,0\n0,2", 2, 0).unwrap();
    assert_eq!(rows.n_rows(), 3);
    assert_eq!(rows.row(2), (&[1u32][..], &[2.0f32][..]));
}

#[test]
fn writer_output_reads_back_identically() {
    let mut rows = SparseRows::new(5);
    rows.push_row(&[0, 4], &[3.0, 0.1]);
    rows.push_row(&[], &[]);
    rows.push_row(&[2], &[1e-7]);
    let text = write_csv_rows(Vec::new(), &rows).unwrap();
    assert_eq!(
        String::from_utf8(text.clone()).unwrap().lines().next(),
        Some("3,0,0,0,0.1")
    );
    assert_eq!(parse_csv(&text, 5, 0).unwrap(), rows);
}

#[test]
fn word_after_numbers_is_no_header() {
    let err = parse_csv(b"1,2,abc\n", 3, 0).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::CsvInvalidNumber {
                line: 1,
                column: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(!message.contains("header row"), "{message}");
}

#[test]
fn raw_text_points_to_prepare() {
    let err = parse_csv(b"The orbit of the moon is elliptical\n", 4, 0).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("ntm prepare"), "{message}");
    assert!(!message.contains("header row"), "{message}");
}

#[test]
fn missing_label_column_suggests_label_size_zero() {
    let err = parse_csv(b"1,2,3\n", 3, 1).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("text/csv;label_size=0"), "{message}");
    assert!(!message.contains("vocabulary that sets"), "{message}");
}

#[test]
fn one_extra_column_suggests_a_label_column() {
    let message = parse_csv(b"7,1,2,3\n", 3, 0).unwrap_err().to_string();
    assert!(message.contains("text/csv;label_size=1"), "{message}");
    let message = parse_csv(b"7,7,1,2,3\n", 3, 0).unwrap_err().to_string();
    assert!(!message.contains("label_size"), "{message}");
    assert!(
        message.contains("vocabulary that sets feature_dim"),
        "{message}"
    );
}

#[test]
fn quoted_cells_with_spaces_around_parse() {
    let rows = parse_csv(b"1, \"2\" ,3\n\"4\",5, 6 \n", 3, 0).unwrap();
    assert_eq!(rows.row(0), (&[0u32, 1, 2][..], &[1.0f32, 2.0, 3.0][..]));
    assert_eq!(rows.row(1), (&[0u32, 1, 2][..], &[4.0f32, 5.0, 6.0][..]));
    let err = parse_csv(b"1, \"\" ,3\n", 3, 0).unwrap_err();
    assert!(
        matches!(err, FormatError::CsvEmptyField { column: 2, .. }),
        "{err:?}"
    );
}
