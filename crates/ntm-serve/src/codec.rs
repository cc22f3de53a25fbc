//! Request bodies to document rows, and topic weights to response bodies.

use std::fmt::Write as _;
use std::path::Path;

use ntm_formats::record::encode_topic_weights_record;
use ntm_formats::recordio::RecordIoWriter;
use ntm_formats::{body, csv, record, FormatError, SparseRows};

use crate::media::{RequestFormat, ResponseFormat};
use crate::model::{Model, TextCounter};

/// Name given to the request body in decoder errors, in place of a file name.
const BODY_NAME: &str = "request body";

/// Decodes a request body into one row per document, in request order.
///
/// # Errors
/// A message naming the line, instance or record and the offending value; the caller
/// responds to it with 400.
pub fn decode(format: RequestFormat, bytes: &[u8], model: &Model) -> Result<SparseRows, String> {
    let feature_dim = model.feature_dim();
    let body_name = Path::new(BODY_NAME);
    match format {
        RequestFormat::Csv { label_size } => csv::parse_csv(bytes, feature_dim, label_size)
            .map_err(|error| match error {
                FormatError::CsvWidth { line, columns, .. } => {
                    csv_width_message(line, columns, feature_dim, label_size)
                }
                other => other.with_path(body_name).to_string(),
            }),
        RequestFormat::RecordIo => record::decode_recordio_protobuf(bytes, feature_dim)
            .map_err(|error| error.with_path(body_name).to_string()),
        RequestFormat::Json => {
            body::decode_json(bytes, feature_dim).map_err(|error| format!("{BODY_NAME}: {error}"))
        }
        RequestFormat::JsonLines => body::decode_json_lines(bytes, feature_dim)
            .map_err(|error| format!("{BODY_NAME}: {error}")),
        RequestFormat::Text => decode_text(bytes, model),
    }
}

/// Describes a CSV line of the wrong width in terms of the model, since the training
/// message's advice (change feature_dim) does not apply to a trained model.
fn csv_width_message(line: u64, columns: usize, feature_dim: usize, label_size: usize) -> String {
    let expected = feature_dim + label_size;
    let label_note = if label_size == 0 {
        "; a leading label column needs content type text/csv;label_size=1"
    } else {
        " after the label column"
    };
    format!(
        "{BODY_NAME}: line {line} has {columns} columns but the model expects {expected}: \
         one count for each of its feature_dim {feature_dim} vocabulary words{label_note}"
    )
}

/// Counts raw documents, one per line, with the model's tokenizer and vocabulary.
///
/// Every line is a document, blank lines included (they give all-zero rows), except the
/// empty piece after a final newline. A carriage return before a newline is dropped.
fn decode_text(bytes: &[u8], model: &Model) -> Result<SparseRows, String> {
    let counter = model
        .text_counter()
        .map_err(|reason| format!("text/plain is not available for this model: {reason}"))?;
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let offset = error.valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        format!(
            "{BODY_NAME}: line {line} is not valid UTF-8 (invalid byte at byte offset {offset}); \
             send text/plain as UTF-8"
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut rows = SparseRows::new(model.feature_dim());
    for line in text.split('\n') {
        push_text_line(&mut rows, counter, line);
    }
    Ok(rows)
}

/// Counts one `text/plain` line (without its newline) and appends it to `rows`. A final
/// carriage return is dropped, and a blank line gives an all-zero row.
pub fn push_text_line(rows: &mut SparseRows, counter: &TextCounter, line: &str) {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (indices, counts) = counter.count(line);
    rows.push_row(&indices, &counts);
}

/// Returns the index of the first document whose topic weights (N x K, row-major) are not
/// all finite. Counts near the `f32` maximum can overflow the first layer, and JSON cannot
/// represent the resulting NaN.
pub fn first_non_finite_row(weights: &[f32], num_topics: usize) -> Option<usize> {
    weights
        .chunks_exact(num_topics.max(1))
        .position(|row| row.iter().any(|w| !w.is_finite()))
}

/// Encodes N x K topic weights (row-major) as a response body.
pub fn encode(format: ResponseFormat, weights: &[f32], num_topics: usize) -> Vec<u8> {
    let rows = weights.chunks_exact(num_topics.max(1));
    match format {
        ResponseFormat::Json => {
            let mut out = String::with_capacity(20 + weights.len() * 12);
            out.push_str("{\"predictions\": [");
            for (i, row) in rows.enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_weights_object(&mut out, row);
            }
            out.push_str("]}");
            out.into_bytes()
        }
        ResponseFormat::JsonLines => {
            let mut out = String::with_capacity(weights.len() * 12);
            for row in rows {
                push_weights_object(&mut out, row);
                out.push('\n');
            }
            out.into_bytes()
        }
        ResponseFormat::RecordIo => {
            let mut writer = RecordIoWriter::new(Vec::with_capacity(weights.len() * 4 + 32));
            for row in rows {
                // `io::Write` for `Vec<u8>` never returns an error.
                let _ = writer.write(&encode_topic_weights_record(row));
            }
            writer.into_inner().unwrap_or_default()
        }
    }
}

/// Appends `{"topic_weights": [w0, w1, ...]}` with the shortest decimal form of each `f32`
/// that reads back to the same value, as `ntm infer` writes it.
fn push_weights_object(out: &mut String, row: &[f32]) {
    out.push_str("{\"topic_weights\": [");
    for (k, weight) in row.iter().enumerate() {
        if k > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{weight}");
    }
    out.push_str("]}");
}
