//! The `aialgs.data.Record` protobuf of SageMaker's built-in algorithms, and its mapping to
//! bag-of-words rows.
//!
//! The message types are written out as `prost` derives with the field numbers of the
//! SageMaker SDK's `record.proto` (proto2, package `aialgs.data`), so no `protoc` is needed.
//!
//! # How a record becomes a document row
//! The feature vector is `features["values"]`, a [`Float32Tensor`], [`Float64Tensor`] or
//! [`Int32Tensor`]; the label map is ignored.
//! - Dense (no `keys`): `values` must hold exactly `feature_dim` numbers.
//! - Sparse (`keys` given, or no keys and no values but a `shape`, which is how
//!   `write_spmatrix_to_sparse_tensor` writes an all-zero row). `keys` and `values` must have
//!   equal length, `shape[0]` must equal
//!   `feature_dim` when `shape` is set, and every key must lie in `0..feature_dim`.
//! - Every value must be finite as a 32-bit float and >= 0.
//! - Unsorted keys are sorted, and the values of a repeated key are summed in the order they
//!   appear. Entries whose value is zero are dropped. Training and inference both go through
//!   [`canonical_sparse_row`], so a record with keys `[2, 2, 5]` and values `[1, 1, 3]` is the
//!   same document as keys `[2, 5]` and values `[2, 3]` everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost::Message;

use crate::error::{Cell, FormatError, Result};
use crate::recordio::{RecordIoSlices, RecordIoWriter};
use crate::sparse::SparseRows;

/// `aialgs.data.Float32Tensor`: 32-bit float values, optionally sparse.
#[derive(Clone, PartialEq, Message)]
pub struct Float32Tensor {
    /// The values; all entries when dense, one per key when sparse.
    #[prost(float, repeated, tag = "1")]
    pub values: Vec<f32>,
    /// Indices of the values in a sparse tensor; empty for a dense one.
    #[prost(uint64, repeated, tag = "2")]
    pub keys: Vec<u64>,
    /// Shape of the full tensor; for a document vector, `[feature_dim]`.
    #[prost(uint64, repeated, tag = "3")]
    pub shape: Vec<u64>,
}

/// `aialgs.data.Float64Tensor`: 64-bit float values, optionally sparse.
#[derive(Clone, PartialEq, Message)]
pub struct Float64Tensor {
    /// The values; all entries when dense, one per key when sparse.
    #[prost(double, repeated, tag = "1")]
    pub values: Vec<f64>,
    /// Indices of the values in a sparse tensor; empty for a dense one.
    #[prost(uint64, repeated, tag = "2")]
    pub keys: Vec<u64>,
    /// Shape of the full tensor.
    #[prost(uint64, repeated, tag = "3")]
    pub shape: Vec<u64>,
}

/// `aialgs.data.Int32Tensor`: 32-bit integer values, optionally sparse.
#[derive(Clone, PartialEq, Message)]
pub struct Int32Tensor {
    /// The values; all entries when dense, one per key when sparse.
    #[prost(int32, repeated, tag = "1")]
    pub values: Vec<i32>,
    /// Indices of the values in a sparse tensor; empty for a dense one.
    #[prost(uint64, repeated, tag = "2")]
    pub keys: Vec<u64>,
    /// Shape of the full tensor.
    #[prost(uint64, repeated, tag = "3")]
    pub shape: Vec<u64>,
}

/// `aialgs.data.Bytes`: opaque byte strings with an optional MIME type.
#[derive(Clone, PartialEq, Message)]
pub struct Bytes {
    /// The byte strings.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub value: Vec<Vec<u8>>,
    /// MIME type of the bytes, if known.
    #[prost(string, optional, tag = "2")]
    pub content_type: Option<String>,
}

/// `aialgs.data.Value`: one of the tensor types or bytes.
#[derive(Clone, PartialEq, Message)]
pub struct Value {
    /// The stored value; `None` when the message sets no field of the oneof.
    #[prost(oneof = "ValueKind", tags = "2, 3, 7, 9")]
    pub value: Option<ValueKind>,
}

/// The `value` oneof of [`Value`], with the protobuf field numbers 2, 3, 7 and 9.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ValueKind {
    /// Field 2.
    #[prost(message, tag = "2")]
    Float32Tensor(Float32Tensor),
    /// Field 3.
    #[prost(message, tag = "3")]
    Float64Tensor(Float64Tensor),
    /// Field 7.
    #[prost(message, tag = "7")]
    Int32Tensor(Int32Tensor),
    /// Field 9.
    #[prost(message, tag = "9")]
    Bytes(Bytes),
}

/// `aialgs.data.Record`: one example with named features and labels.
#[derive(Clone, PartialEq, Message)]
pub struct Record {
    /// Named inputs; the document vector is under `"values"`.
    #[prost(btree_map = "string, message", tag = "1")]
    pub features: BTreeMap<String, Value>,
    /// Named labels; NTM ignores them on input and returns `"topic_weights"` here.
    #[prost(btree_map = "string, message", tag = "2")]
    pub label: BTreeMap<String, Value>,
    /// Optional record id.
    #[prost(string, optional, tag = "3")]
    pub uid: Option<String>,
    /// Optional free-form metadata.
    #[prost(string, optional, tag = "4")]
    pub metadata: Option<String>,
    /// Optional per-record configuration.
    #[prost(string, optional, tag = "5")]
    pub configuration: Option<String>,
}

/// Feature name of the document vector.
pub const FEATURE_KEY: &str = "values";

/// Label name of NTM's inference output.
pub const TOPIC_WEIGHTS_KEY: &str = "topic_weights";

/// A document vector taken from any of the three tensor types, before validation. Values are
/// widened to `f64` so that one check covers all of them.
struct RawTensor {
    values: Vec<f64>,
    keys: Vec<u64>,
    shape: Vec<u64>,
}

fn raw_tensor(value: &Value, record: usize) -> Result<RawTensor> {
    let unsupported = |kind| FormatError::UnsupportedTensor {
        path: PathBuf::new(),
        record,
        kind,
    };
    match &value.value {
        Some(ValueKind::Float32Tensor(t)) => Ok(RawTensor {
            values: t.values.iter().map(|&v| f64::from(v)).collect(),
            keys: t.keys.clone(),
            shape: t.shape.clone(),
        }),
        Some(ValueKind::Float64Tensor(t)) => Ok(RawTensor {
            values: t.values.clone(),
            keys: t.keys.clone(),
            shape: t.shape.clone(),
        }),
        Some(ValueKind::Int32Tensor(t)) => Ok(RawTensor {
            values: t.values.iter().map(|&v| f64::from(v)).collect(),
            keys: t.keys.clone(),
            shape: t.shape.clone(),
        }),
        Some(ValueKind::Bytes(_)) => Err(unsupported("a Bytes value")),
        None => Err(unsupported("an empty Value")),
    }
}

/// Converts one count to `f32`, rejecting NaN, infinities, values beyond the `f32` range
/// and negative values.
fn checked_count(value: f64, cell: Cell) -> Result<f32> {
    let narrowed = value as f32;
    if !narrowed.is_finite() {
        return Err(FormatError::NonFinite {
            path: PathBuf::new(),
            cell,
            value: value.to_string(),
        });
    }
    if narrowed < 0.0 {
        return Err(FormatError::Negative {
            path: PathBuf::new(),
            cell,
            value: value.to_string(),
        });
    }
    Ok(narrowed)
}

/// Validates a sparse document and brings it to canonical form: keys sorted, the values of a
/// repeated key summed in input order, zero entries dropped.
///
/// `record` is the record (or request instance) index used in errors. Returns the column
/// indices and values ready for [`SparseRows::push_row`].
///
/// # Errors
/// [`FormatError::KeysValuesLength`], [`FormatError::KeyOutOfRange`] (the first bad key in
/// input order), [`FormatError::NonFinite`] (also when the sum of a repeated key overflows
/// `f32`) or [`FormatError::Negative`], with an empty path.
pub fn canonical_sparse_row(
    keys: &[u64],
    values: &[f64],
    feature_dim: usize,
    record: usize,
) -> Result<(Vec<u32>, Vec<f32>)> {
    if keys.len() != values.len() {
        return Err(FormatError::KeysValuesLength {
            path: PathBuf::new(),
            record,
            keys: keys.len(),
            values: values.len(),
        });
    }
    let mut pairs = Vec::with_capacity(keys.len());
    for (&key, &value) in keys.iter().zip(values) {
        if key >= feature_dim as u64 || key > u64::from(u32::MAX) {
            return Err(FormatError::KeyOutOfRange {
                path: PathBuf::new(),
                record,
                key,
                feature_dim,
            });
        }
        let count = checked_count(value, Cell::Record { record, key })?;
        pairs.push((key as u32, count));
    }
    // A stable sort keeps repeated keys in input order, so their sum is reproducible.
    pairs.sort_by_key(|&(key, _)| key);
    let mut indices: Vec<u32> = Vec::with_capacity(pairs.len());
    let mut counts: Vec<f32> = Vec::with_capacity(pairs.len());
    for (key, count) in pairs {
        if indices.last() == Some(&key) {
            if let Some(last) = counts.last_mut() {
                *last += count;
                // Each value is finite, but their sum can exceed the f32 range.
                if !last.is_finite() {
                    return Err(FormatError::NonFinite {
                        path: PathBuf::new(),
                        cell: Cell::Record {
                            record,
                            key: u64::from(key),
                        },
                        value: format!("{last} (the sum of the values of this repeated key)"),
                    });
                }
            }
        } else {
            indices.push(key);
            counts.push(count);
        }
    }
    let mut kept = 0;
    for i in 0..indices.len() {
        if counts[i] != 0.0 {
            indices[kept] = indices[i];
            counts[kept] = counts[i];
            kept += 1;
        }
    }
    indices.truncate(kept);
    counts.truncate(kept);
    Ok((indices, counts))
}

/// Validates a dense document of exactly `feature_dim` values and keeps its non-zeros.
///
/// # Errors
/// [`FormatError::DenseLength`], [`FormatError::NonFinite`] or [`FormatError::Negative`],
/// with an empty path.
pub fn dense_row(
    values: &[f64],
    feature_dim: usize,
    record: usize,
) -> Result<(Vec<u32>, Vec<f32>)> {
    if values.len() != feature_dim {
        return Err(FormatError::DenseLength {
            path: PathBuf::new(),
            record,
            len: values.len(),
            feature_dim,
        });
    }
    let mut indices = Vec::new();
    let mut counts = Vec::new();
    for (column, &value) in values.iter().enumerate() {
        let key = column as u64;
        let count = checked_count(value, Cell::Record { record, key })?;
        if count != 0.0 {
            indices.push(column as u32);
            counts.push(count);
        }
    }
    Ok((indices, counts))
}

/// Decodes one RecordIO payload into its document row (see the module docs).
///
/// `record` is the record index used in errors. Returns sorted column indices and their
/// non-zero counts.
///
/// # Errors
/// [`FormatError::InvalidProtobuf`], [`FormatError::MissingValues`],
/// [`FormatError::UnsupportedTensor`], [`FormatError::ShapeMismatch`] and the errors of
/// [`canonical_sparse_row`] and [`dense_row`], all with an empty path.
pub fn decode_record_row(
    payload: &[u8],
    feature_dim: usize,
    record: usize,
) -> Result<(Vec<u32>, Vec<f32>)> {
    let message = Record::decode(payload).map_err(|e| FormatError::InvalidProtobuf {
        path: PathBuf::new(),
        record,
        message: e.to_string(),
    })?;
    let Some(value) = message.features.get(FEATURE_KEY) else {
        return Err(FormatError::MissingValues {
            path: PathBuf::new(),
            record,
            present: message.features.keys().cloned().collect(),
        });
    };
    let tensor = raw_tensor(value, record)?;
    // The SDK's sparse writer encodes an all-zero row as a tensor with a shape but no keys.
    let sparse = !tensor.keys.is_empty() || (tensor.values.is_empty() && !tensor.shape.is_empty());
    if !sparse {
        return dense_row(&tensor.values, feature_dim, record);
    }
    if let Some(&first) = tensor.shape.first() {
        if first != feature_dim as u64 {
            return Err(FormatError::ShapeMismatch {
                path: PathBuf::new(),
                record,
                shape: tensor.shape,
                feature_dim,
            });
        }
    }
    canonical_sparse_row(&tensor.keys, &tensor.values, feature_dim, record)
}

/// Decodes a whole RecordIO-protobuf buffer (a file or a request body) into rows.
///
/// Empty documents are kept, so row `i` is record `i`.
///
/// # Errors
/// The framing errors of [`crate::recordio::decode_records`] and the errors of
/// [`decode_record_row`], with an empty path.
pub fn decode_recordio_protobuf(bytes: &[u8], feature_dim: usize) -> Result<SparseRows> {
    let mut rows = SparseRows::new(feature_dim);
    for (record, payload) in RecordIoSlices::new(bytes).enumerate() {
        let (indices, counts) = decode_record_row(&payload?, feature_dim, record)?;
        rows.push_row(&indices, &counts);
    }
    Ok(rows)
}

fn encode_record(features: BTreeMap<String, Value>, label: BTreeMap<String, Value>) -> Vec<u8> {
    Record {
        features,
        label,
        ..Record::default()
    }
    .encode_to_vec()
}

fn single(key: &str, tensor: Float32Tensor) -> BTreeMap<String, Value> {
    BTreeMap::from([(
        key.to_owned(),
        Value {
            value: Some(ValueKind::Float32Tensor(tensor)),
        },
    )])
}

/// Encodes a sparse document as a Record payload with `features["values"]` a Float32Tensor
/// of `keys`, `values` and `shape = [feature_dim]`, as `write_spmatrix_to_sparse_tensor` does.
pub fn encode_sparse_record(keys: &[u64], values: &[f32], feature_dim: usize) -> Vec<u8> {
    let tensor = Float32Tensor {
        values: values.to_vec(),
        keys: keys.to_vec(),
        shape: vec![feature_dim as u64],
    };
    encode_record(single(FEATURE_KEY, tensor), BTreeMap::new())
}

/// Encodes a dense document as a Record payload with `features["values"]` a Float32Tensor
/// without keys or shape, as `write_numpy_to_dense_tensor` does for float32 input.
pub fn encode_dense_record(values: &[f32]) -> Vec<u8> {
    let tensor = Float32Tensor {
        values: values.to_vec(),
        ..Float32Tensor::default()
    };
    encode_record(single(FEATURE_KEY, tensor), BTreeMap::new())
}

/// Encodes NTM's inference output for one document: empty `features` and
/// `label["topic_weights"]` a dense Float32Tensor of the `num_topics` weights.
pub fn encode_topic_weights_record(weights: &[f32]) -> Vec<u8> {
    let tensor = Float32Tensor {
        values: weights.to_vec(),
        ..Float32Tensor::default()
    };
    encode_record(BTreeMap::new(), single(TOPIC_WEIGHTS_KEY, tensor))
}

/// Reads the topic weights back from a payload written by [`encode_topic_weights_record`].
///
/// # Errors
/// [`FormatError::InvalidProtobuf`], [`FormatError::MissingValues`] (naming the labels
/// present) or [`FormatError::UnsupportedTensor`] when the label is not a Float32Tensor.
pub fn decode_topic_weights(payload: &[u8], record: usize) -> Result<Vec<f32>> {
    let message = Record::decode(payload).map_err(|e| FormatError::InvalidProtobuf {
        path: PathBuf::new(),
        record,
        message: e.to_string(),
    })?;
    match message
        .label
        .get(TOPIC_WEIGHTS_KEY)
        .and_then(|v| v.value.as_ref())
    {
        Some(ValueKind::Float32Tensor(t)) => Ok(t.values.clone()),
        Some(_) => Err(FormatError::UnsupportedTensor {
            path: PathBuf::new(),
            record,
            kind: "a tensor other than Float32Tensor",
        }),
        None => Err(FormatError::MissingValues {
            path: PathBuf::new(),
            record,
            present: message.label.keys().cloned().collect(),
        }),
    }
}

/// Writes every row of `rows` as a sparse Float32 record in whole-record RecordIO framing.
pub fn write_sparse_rows<W: std::io::Write>(out: W, rows: &SparseRows) -> std::io::Result<W> {
    let mut writer = RecordIoWriter::new(out);
    for i in 0..rows.n_rows() {
        let (indices, values) = rows.row(i);
        let keys: Vec<u64> = indices.iter().map(|&k| u64::from(k)).collect();
        writer.write(&encode_sparse_record(&keys, values, rows.n_cols()))?;
    }
    writer.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_sum_in_input_order() {
        let (indices, values) =
            canonical_sparse_row(&[5, 2, 2, 0], &[3.0, 1.0, 1.5, 0.0], 6, 0).unwrap();
        assert_eq!(indices, vec![2, 5]);
        assert_eq!(values, vec![2.5, 3.0]);
    }

    #[test]
    fn float64_overflowing_f32_is_not_finite() {
        let err = dense_row(&[1e300, 0.0], 2, 4).unwrap_err();
        assert!(matches!(
            err,
            FormatError::NonFinite {
                cell: Cell::Record { record: 4, key: 0 },
                ..
            }
        ));
    }

    #[test]
    fn topic_weights_round_trip() {
        let payload = encode_topic_weights_record(&[0.25, 0.75]);
        let message = Record::decode(payload.as_slice()).unwrap();
        assert!(message.features.is_empty());
        assert_eq!(decode_topic_weights(&payload, 0).unwrap(), vec![0.25, 0.75]);
    }
}
