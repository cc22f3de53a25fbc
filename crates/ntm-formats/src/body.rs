//! SageMaker's JSON and JSON Lines inference request bodies.
//!
//! An `application/json` body is an object with an `"instances"` list. Each instance is one
//! document in one of these forms:
//! - dense: `{"features": [c0, c1, ...]}`, exactly `feature_dim` counts;
//! - dense: `{"data": {"features": {"values": [c0, c1, ...]}}}`;
//! - sparse: `{"data": {"features": {"keys": [k, ...], "values": [c, ...], "shape": [feature_dim]}}}`,
//!   where `shape` is optional;
//! - a bare list of `feature_dim` counts, `[c0, c1, ...]`.
//!
//! An instance may also carry a `"configuration"` object and other members, which are
//! ignored. As an extension, the whole body may be a list of dense rows (`[[...], [...]]`)
//! or a single dense row (`[c0, c1, ...]`), which is what the SageMaker SDK's
//! `JSONSerializer` sends for a NumPy array.
//!
//! An `application/jsonlines` body contains one instance per line, in any of the forms above;
//! lines may mix forms, and blank lines are skipped. A UTF-8 byte order mark is ignored.
//!
//! Counts follow the rules of [`crate::record`]: finite, >= 0 and within the `f32` range.
//! Sparse keys are sorted and the values of a repeated key are summed through
//! [`canonical_sparse_row`], so a sparse instance is the same document here as in a
//! RecordIO-protobuf file. Errors name the instance (0-based) or the line (1-based), and the
//! offending key or value.

use std::fmt;

use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::error::{Cell, FormatError};
use crate::record::{canonical_sparse_row, dense_row};
use crate::sparse::SparseRows;

/// Position of one document in a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// Index in the `"instances"` list (or the top-level list), 0-based.
    Instance(usize),
    /// Line of a JSON Lines body, 1-based.
    Line(u64),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Instance(index) => write!(f, "instance {index}"),
            Item::Line(line) => write!(f, "line {line}"),
        }
    }
}

/// Every failure of decoding a JSON or JSON Lines request body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body, or one line of it, is not valid JSON.
    #[error("{}is not valid JSON: {message}", match .line { Some(line) => format!("line {line} "), None => "the request body ".to_owned() })]
    Syntax {
        /// Line of a JSON Lines body; `None` for a JSON body, whose message gives the position.
        line: Option<u64>,
        /// The JSON parser's message.
        message: String,
    },

    /// The JSON is valid but does not have the shape of a request.
    #[error("{}{message}", prefix(.item))]
    Structure {
        /// Document concerned; `None` for the body as a whole.
        item: Option<Item>,
        /// Description of the fault and of the accepted forms.
        message: String,
    },

    /// A dense document has a number of counts other than `feature_dim`.
    #[error(
        "{item} has {len} values but the model's feature_dim is {feature_dim}; send one count \
         per vocabulary word, or a sparse instance with keys"
    )]
    DenseLength {
        /// Document concerned.
        item: Item,
        /// Number of values sent.
        len: usize,
        /// Number of features of the model.
        feature_dim: usize,
    },

    /// A sparse document declares a shape other than `[feature_dim]`.
    #[error("{item} has shape {shape:?} but the model's feature_dim is {feature_dim}; send shape [{feature_dim}]")]
    ShapeMismatch {
        /// Document concerned.
        item: Item,
        /// The declared shape.
        shape: Vec<u64>,
        /// Number of features of the model.
        feature_dim: usize,
    },

    /// A sparse document has different numbers of keys and values.
    #[error(
        "{item} has {keys} keys but {values} values; a sparse instance needs one value per key"
    )]
    KeysValuesLength {
        /// Document concerned.
        item: Item,
        /// Number of keys.
        keys: usize,
        /// Number of values.
        values: usize,
    },

    /// A sparse key is not below `feature_dim`.
    #[error(
        "{item} has key {key}, outside the valid range 0..={} (feature_dim is {feature_dim}); \
         keys are 0-based word ids",
        .feature_dim.saturating_sub(1)
    )]
    KeyOutOfRange {
        /// Document concerned.
        item: Item,
        /// The offending key.
        key: u64,
        /// Number of features of the model.
        feature_dim: usize,
    },

    /// An entry of `keys` or `shape` is not a non-negative integer.
    #[error("{item} has {field}[{index}] = {value}, which is not a non-negative integer")]
    InvalidIndex {
        /// Document concerned.
        item: Item,
        /// `"keys"` or `"shape"`.
        field: &'static str,
        /// Position in the list, 0-based.
        index: usize,
        /// The JSON value as sent.
        value: String,
    },

    /// An entry of a count list is not a JSON number.
    #[error(
        "{item} has values[{index}] = {value}, which is not a number; counts must be numbers >= 0"
    )]
    InvalidCount {
        /// Document concerned.
        item: Item,
        /// Position in the list, 0-based.
        index: usize,
        /// The JSON value as sent.
        value: String,
    },

    /// A count is not finite as a 32-bit float.
    #[error("{item} has value {value} for key {key}, which is not a finite 32-bit number; counts must be finite and >= 0")]
    NonFinite {
        /// Document concerned.
        item: Item,
        /// Feature index (the sparse key, or the position in a dense list).
        key: u64,
        /// The value as decoded.
        value: String,
    },

    /// A count is negative.
    #[error("{item} has value {value} for key {key}, but counts must be >= 0")]
    Negative {
        /// Document concerned.
        item: Item,
        /// Feature index (the sparse key, or the position in a dense list).
        key: u64,
        /// The value as decoded.
        value: String,
    },
}

fn prefix(item: &Option<Item>) -> String {
    match item {
        Some(item) => format!("{item}: "),
        None => String::new(),
    }
}

/// Result type of this module.
pub type Result<T, E = BodyError> = std::result::Result<T, E>;

/// The accepted instance forms, for structure errors.
const INSTANCE_FORMS: &str = "an instance must be {\"features\": [counts]}, \
     {\"data\": {\"features\": {\"values\": [counts]}}}, \
     {\"data\": {\"features\": {\"keys\": [ids], \"values\": [counts], \"shape\": [feature_dim]}}} \
     or a list of counts";

/// Decodes an `application/json` body into one row per instance, in order.
///
/// # Errors
/// [`BodyError::Syntax`] for invalid JSON, [`BodyError::Structure`] when the body is not an
/// object with an `"instances"` list (or a list of rows), and the per-document errors of
/// this module.
pub fn decode_json(bytes: &[u8], feature_dim: usize) -> Result<SparseRows> {
    match decode_sparse_json(strip_bom(bytes), feature_dim) {
        Some(rows) => Ok(rows),
        None => decode_json_tree(bytes, feature_dim),
    }
}

/// Returns the parser's message without the position it appends (` at line L column C`).
fn error_kind_text(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// Decodes an `application/json` body through a [`Value`] tree: every form, and every error.
fn decode_json_tree(bytes: &[u8], feature_dim: usize) -> Result<SparseRows> {
    let value: Value =
        serde_json::from_slice(strip_bom(bytes)).map_err(|error| BodyError::Syntax {
            line: None,
            message: error.to_string(),
        })?;
    let mut rows = SparseRows::new(feature_dim);
    match value {
        Value::Object(mut object) => {
            let Some(instances) = object.remove("instances") else {
                return Err(BodyError::Structure {
                    item: None,
                    message: format!(
                        "the request body has no \"instances\" member (members present: {}); \
                         send {{\"instances\": [...]}}",
                        member_list(&object)
                    ),
                });
            };
            let Value::Array(instances) = instances else {
                return Err(BodyError::Structure {
                    item: None,
                    message: format!("\"instances\" must be a list, got {}", kind_of(&instances)),
                });
            };
            for (index, instance) in instances.iter().enumerate() {
                push_instance(&mut rows, instance, Item::Instance(index))?;
            }
        }
        // A single dense row, as JSONSerializer writes a one-dimensional array.
        Value::Array(values) if values.first().is_some_and(Value::is_number) => {
            push_dense(&mut rows, &values, Item::Instance(0))?;
        }
        Value::Array(instances) => {
            for (index, instance) in instances.iter().enumerate() {
                push_instance(&mut rows, instance, Item::Instance(index))?;
            }
        }
        other => {
            return Err(BodyError::Structure {
                item: None,
                message: format!(
                    "the request body must be a JSON object with an \"instances\" list, got {}",
                    kind_of(&other)
                ),
            })
        }
    }
    Ok(rows)
}

/// Decodes the common body of sparse instances,
/// `{"instances": [{"data": {"features": {"keys": [...], "values": [...], "shape": [...]}}}]}`,
/// straight into rows without building a [`Value`] tree, which costs an allocation per number.
///
/// Returns `None` for any other body, including every invalid one, so that [`decode_json`]
/// decodes it in full and reports the error. The rows equal those of the full decoder.
fn decode_sparse_json(bytes: &[u8], feature_dim: usize) -> Option<SparseRows> {
    let body: SparseBody = serde_json::from_slice(bytes).ok()?;
    let mut rows = SparseRows::new(feature_dim);
    for instance in body.instances {
        // An instance with both members is an error of the full decoder.
        if instance.features {
            return None;
        }
        let features = instance.data?.features;
        let keys = features.keys?;
        if let Some(shape) = &features.shape {
            if shape.first() != Some(&(feature_dim as u64)) {
                return None;
            }
        }
        let (indices, counts) =
            canonical_sparse_row(&keys, &features.values, feature_dim, 0).ok()?;
        rows.push_row(&indices, &counts);
    }
    Some(rows)
}

/// A body of sparse instances, for [`decode_sparse_json`]. Unknown members are ignored, as
/// the full decoder ignores them.
#[derive(serde::Deserialize)]
struct SparseBody {
    instances: Vec<SparseInstance>,
}

#[derive(serde::Deserialize)]
struct SparseInstance {
    /// Whether the instance has a `"features"` member, whatever its value (even `null`).
    #[serde(default, deserialize_with = "is_present")]
    features: bool,
    #[serde(default, deserialize_with = "required_value")]
    data: Option<SparseData>,
}

#[derive(serde::Deserialize)]
struct SparseData {
    features: SparseFeatures,
}

#[derive(serde::Deserialize)]
struct SparseFeatures {
    values: Vec<f64>,
    #[serde(default, deserialize_with = "required_value")]
    keys: Option<Vec<u64>>,
    #[serde(default, deserialize_with = "required_value")]
    shape: Option<Vec<u64>>,
}

/// Accepts any value of a member that is present, `null` included.
fn is_present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// Reads a member that may be absent but, when present, must not be `null`, since the full
/// decoder rejects a `null` list or object.
fn required_value<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Decodes an `application/jsonlines` body into one row per non-blank line, in order.
///
/// # Errors
/// [`BodyError::Syntax`] naming the first line that is not valid JSON, and the per-document
/// errors of this module naming the line.
pub fn decode_json_lines(bytes: &[u8], feature_dim: usize) -> Result<SparseRows> {
    let mut rows = SparseRows::new(feature_dim);
    for (index, line) in strip_bom(bytes).split(|&b| b == b'\n').enumerate() {
        push_json_line(&mut rows, line, index as u64 + 1)?;
    }
    Ok(rows)
}

/// Decodes one line of an `application/jsonlines` body and appends its row to `rows`, as
/// [`decode_json_lines`] does for each line. `number` (1-based) names the line in errors.
///
/// Returns `false`, adding no row, for a blank line. A UTF-8 byte order mark at the start
/// of `line` is skipped, so a reader that streams a file line by line may pass its first
/// line as it is.
///
/// # Errors
/// [`BodyError::Syntax`] when the line is not valid JSON, and the per-document errors of
/// this module.
pub fn push_json_line(rows: &mut SparseRows, line: &[u8], number: u64) -> Result<bool> {
    let line = strip_bom(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let value: Value = serde_json::from_slice(line).map_err(|error| BodyError::Syntax {
        line: Some(number),
        // The parser counts lines within this one line; only its column means anything here.
        message: format!("{} at column {}", error_kind_text(&error), error.column()),
    })?;
    push_instance(rows, &value, Item::Line(number))?;
    Ok(true)
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Decodes one instance in any of the module's forms and appends it to `rows`.
fn push_instance(rows: &mut SparseRows, instance: &Value, item: Item) -> Result<()> {
    let object = match instance {
        Value::Array(values) => return push_dense(rows, values, item),
        Value::Object(object) => object,
        other => {
            return Err(structure(
                item,
                format!("got {}; {INSTANCE_FORMS}", kind_of(other)),
            ))
        }
    };
    match (object.get("features"), object.get("data")) {
        (Some(Value::Array(values)), None) => push_dense(rows, values, item),
        (Some(other), None) => Err(structure(
            item,
            format!(
                "\"features\" must be a list of counts, got {}",
                kind_of(other)
            ),
        )),
        (None, Some(data)) => push_data(rows, data, item),
        (Some(_), Some(_)) => Err(structure(
            item,
            "has both \"features\" and \"data\"; send one of them".to_owned(),
        )),
        (None, None) => Err(structure(
            item,
            format!(
                "has neither \"features\" nor \"data\" (members present: {}); {INSTANCE_FORMS}",
                member_list(object)
            ),
        )),
    }
}

/// Decodes `{"features": {"values": [...], "keys": [...], "shape": [...]}}`.
fn push_data(rows: &mut SparseRows, data: &Value, item: Item) -> Result<()> {
    let Some(features) = data.get("features") else {
        return Err(structure(
            item,
            format!("\"data\" has no \"features\" object; {INSTANCE_FORMS}"),
        ));
    };
    let Value::Object(features) = features else {
        return Err(structure(
            item,
            format!(
                "\"data\".\"features\" must be an object with \"values\", got {}",
                kind_of(features)
            ),
        ));
    };

    let values = match features.get("values") {
        Some(Value::Array(values)) => values.as_slice(),
        Some(other) => {
            return Err(structure(
                item,
                format!(
                    "\"values\" must be a list of counts, got {}",
                    kind_of(other)
                ),
            ))
        }
        None => &[],
    };

    let keys = optional_index_list(features, "keys", item)?;
    let shape = optional_index_list(features, "shape", item)?;
    if keys.is_none() && !values.is_empty() {
        return push_dense(rows, values, item);
    }
    if keys.is_none() && shape.is_none() {
        return Err(structure(
            item,
            format!("\"data\".\"features\" has no \"values\"; {INSTANCE_FORMS}"),
        ));
    }

    let feature_dim = rows.n_cols();
    if let Some(shape) = &shape {
        if shape.first() != Some(&(feature_dim as u64)) {
            return Err(BodyError::ShapeMismatch {
                item,
                shape: shape.clone(),
                feature_dim,
            });
        }
    }

    let keys = keys.unwrap_or_default();
    let counts = count_list(values, item)?;
    let (indices, counts) = canonical_sparse_row(&keys, &counts, feature_dim, 0)
        .map_err(|error| from_format_error(error, item))?;
    rows.push_row(&indices, &counts);
    Ok(())
}

fn push_dense(rows: &mut SparseRows, values: &[Value], item: Item) -> Result<()> {
    let counts = count_list(values, item)?;
    let (indices, counts) =
        dense_row(&counts, rows.n_cols(), 0).map_err(|error| from_format_error(error, item))?;
    rows.push_row(&indices, &counts);
    Ok(())
}

/// Reads a list of JSON numbers as `f64`; range and sign are checked later.
fn count_list(values: &[Value], item: Item) -> Result<Vec<f64>> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            value.as_f64().ok_or_else(|| BodyError::InvalidCount {
                item,
                index,
                value: value.to_string(),
            })
        })
        .collect()
}

/// Reads `features[field]` as a list of non-negative integers, if present.
fn optional_index_list(
    features: &Map<String, Value>,
    field: &'static str,
    item: Item,
) -> Result<Option<Vec<u64>>> {
    let Some(value) = features.get(field) else {
        return Ok(None);
    };
    let Value::Array(entries) = value else {
        return Err(structure(
            item,
            format!(
                "\"{field}\" must be a list of non-negative integers, got {}",
                kind_of(value)
            ),
        ));
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            entry.as_u64().ok_or_else(|| BodyError::InvalidIndex {
                item,
                field,
                index,
                value: entry.to_string(),
            })
        })
        .collect::<Result<Vec<u64>>>()
        .map(Some)
}

/// Restates an error of the shared record checks with the request position.
fn from_format_error(error: FormatError, item: Item) -> BodyError {
    match error {
        FormatError::DenseLength {
            len, feature_dim, ..
        } => BodyError::DenseLength {
            item,
            len,
            feature_dim,
        },
        FormatError::KeysValuesLength { keys, values, .. } => {
            BodyError::KeysValuesLength { item, keys, values }
        }
        FormatError::KeyOutOfRange {
            key, feature_dim, ..
        } => BodyError::KeyOutOfRange {
            item,
            key,
            feature_dim,
        },
        FormatError::NonFinite {
            cell: Cell::Record { key, .. },
            value,
            ..
        } => BodyError::NonFinite { item, key, value },
        FormatError::Negative {
            cell: Cell::Record { key, .. },
            value,
            ..
        } => BodyError::Negative { item, key, value },
        other => structure(item, other.to_string()),
    }
}

fn structure(item: Item, message: String) -> BodyError {
    BodyError::Structure {
        item: Some(item),
        message,
    }
}

/// Names the JSON type of a value, for structure errors.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn member_list(object: &Map<String, Value>) -> String {
    if object.is_empty() {
        return "none".to_owned();
    }
    object
        .keys()
        .map(|key| format!("{key:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms_give_the_same_rows() {
        let body = br#"{"instances": [
            {"features": [0, 2, 0, 1]},
            {"data": {"features": {"values": [0, 2, 0, 1]}}},
            {"data": {"features": {"keys": [3, 1], "values": [1, 2], "shape": [4]}}},
            {"data": {"features": {"keys": [1, 1, 3], "values": [1.5, 0.5, 1]}}, "configuration": {}},
            [0, 2, 0, 1]
        ]}"#;
        let rows = decode_json(body, 4).unwrap();
        assert_eq!(rows.n_rows(), 5);
        for i in 0..5 {
            assert_eq!(rows.row(i), (&[1u32, 3][..], &[2.0f32, 1.0][..]), "row {i}");
        }
    }

    #[test]
    fn sparse_fast_path_matches_tree() {
        let bodies: [&[u8]; 4] = [
            br#"{"instances": [{"data": {"features": {"keys": [3, 1, 3], "values": [1, 2.5, 4], "shape": [4]}}}]}"#,
            br#"{"instances": [{"data": {"features": {"keys": [], "values": []}}, "configuration": {}}], "x": 1}"#,
            br#"{"instances": []}"#,
            br#"{"instances": [{"data": {"features": {"keys": [0], "values": [1e-3], "shape": [4, 9]}}},
                {"data": {"features": {"keys": [2, 0], "values": [7, 1]}}}]}"#,
        ];
        for body in bodies {
            let fast = decode_sparse_json(body, 4).expect("a sparse body");
            let tree = decode_json_tree(body, 4).expect("a valid body");
            assert_eq!(fast, tree, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn sparse_fast_path_leaves_other_bodies() {
        let bodies: [&[u8]; 9] = [
            br#"{"instances": [{"features": [0, 1, 0, 0]}]}"#,
            br#"{"instances": [{"features": null, "data": {"features": {"keys": [1], "values": [1]}}}]}"#,
            br#"{"instances": [{"data": {"features": {"keys": [1], "values": [1], "shape": null}}}]}"#,
            br#"{"instances": [{"data": {"features": {"keys": null, "values": [1]}}}]}"#,
            br#"{"instances": [{"data": {"features": {"keys": [1], "values": [1], "shape": [5]}}}]}"#,
            br#"{"instances": [{"data": {"features": {"keys": [9], "values": [1]}}}]}"#,
            br#"{"instances": [{"data": {"features": {"keys": [1], "values": [-1]}}}]}"#,
            br#"{"instances": [{"data": {"features": {"keys": [1.5], "values": [1]}}}]}"#,
            br#"[[0, 1, 0, 0]]"#,
        ];
        for body in bodies {
            assert!(
                decode_sparse_json(body, 4).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn empty_sparse_instance_is_an_empty_row() {
        let body =
            br#"{"instances": [{"data": {"features": {"keys": [], "values": [], "shape": [3]}}}]}"#;
        let rows = decode_json(body, 3).unwrap();
        assert_eq!(rows.n_rows(), 1);
        assert_eq!(rows.row(0).0.len(), 0);
    }

    #[test]
    fn top_level_lists_are_dense_rows() {
        let rows = decode_json(b"[[1, 0], [0, 3]]", 2).unwrap();
        assert_eq!(rows.n_rows(), 2);
        assert_eq!(rows.row(1), (&[1u32][..], &[3.0f32][..]));
        let rows = decode_json(b"[1, 0]", 2).unwrap();
        assert_eq!(rows.n_rows(), 1);
        assert_eq!(rows.row(0), (&[0u32][..], &[1.0f32][..]));
    }

    #[test]
    fn json_lines_skip_blank_lines_and_name_lines() {
        let body = b"\xEF\xBB\xBF{\"features\": [1, 0]}\r\n\n[0, 1]\n{\"features\": [1]}\n";
        let error = decode_json_lines(body, 2).unwrap_err();
        assert_eq!(
            error,
            BodyError::DenseLength {
                item: Item::Line(4),
                len: 1,
                feature_dim: 2
            }
        );
        assert!(error.to_string().starts_with("line 4 has 1 values"));
        let rows = decode_json_lines(&body[..body.len() - 18], 2).unwrap();
        assert_eq!(rows.n_rows(), 2);
    }

    #[test]
    fn key_out_of_range_names_instance_and_range() {
        let body = br#"{"instances": [{"data": {"features": {"keys": [0, 20], "values": [1, 1], "shape": [20]}}}]}"#;
        let error = decode_json(body, 20).unwrap_err();
        assert_eq!(
            error,
            BodyError::KeyOutOfRange {
                item: Item::Instance(0),
                key: 20,
                feature_dim: 20
            }
        );
        assert!(error.to_string().contains("0..=19"), "{error}");
    }

    #[test]
    fn shape_mismatch_is_rejected() {
        let body = br#"{"instances": [{"data": {"features": {"keys": [0], "values": [1], "shape": [25]}}}]}"#;
        let error = decode_json(body, 20).unwrap_err();
        assert!(matches!(error, BodyError::ShapeMismatch { ref shape, .. } if shape == &[25]));
        assert!(error.to_string().contains("[25]"), "{error}");
    }

    #[test]
    fn bad_counts_are_named() {
        let error = decode_json(br#"{"instances": [{"features": [1, "2"]}]}"#, 2).unwrap_err();
        assert!(
            matches!(error, BodyError::InvalidCount { index: 1, .. }),
            "{error}"
        );
        let error = decode_json(br#"{"instances": [{}, {"features": [1, -0.5]}]}"#, 2);
        assert!(matches!(
            error,
            Err(BodyError::Structure {
                item: Some(Item::Instance(0)),
                ..
            })
        ));
        let error = decode_json(br#"{"instances": [{"features": [1, -0.5]}]}"#, 2).unwrap_err();
        assert_eq!(
            error,
            BodyError::Negative {
                item: Item::Instance(0),
                key: 1,
                value: "-0.5".to_owned()
            }
        );
        let error = decode_json(br#"{"instances": [{"features": [1, 1e300]}]}"#, 2).unwrap_err();
        assert!(
            matches!(error, BodyError::NonFinite { key: 1, .. }),
            "{error}"
        );
        let error = decode_json_lines(
            b"{\"data\": {\"features\": {\"keys\": [-1], \"values\": [1]}}}",
            2,
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                BodyError::InvalidIndex {
                    field: "keys",
                    index: 0,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let error = decode_json_lines(b"[1, 0]\n1,0\n", 2).unwrap_err();
        assert!(
            matches!(error, BodyError::Syntax { line: Some(2), .. }),
            "{error}"
        );
        // One position only: the line of the body and the column within it.
        let message = error.to_string();
        assert!(message.contains("at column 2"), "{message}");
        assert!(!message.contains("line 1"), "{message}");
        let error = decode_json(b"1,0,2\n", 3).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the request body is not valid JSON"),
            "{error}"
        );
        let error = decode_json(br#"{"rows": []}"#, 3).unwrap_err();
        assert!(error.to_string().contains("\"rows\""), "{error}");
    }
}
