//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ntm_formats::record::encode_sparse_record;
use ntm_formats::recordio::write_record;

/// Path of a fixture under `tests/data`.
pub fn data(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

/// A sparse record described in a fixture's `records.json`.
pub struct JsonRecord {
    pub keys: Vec<u64>,
    pub values: Vec<f32>,
    pub shape: Vec<u64>,
}

/// Reads the `records` array of a fixture's `records.json`.
pub fn json_records(relative: &str) -> (usize, Vec<JsonRecord>) {
    let text = std::fs::read_to_string(data(relative)).expect("fixture is readable");
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    let feature_dim = json["feature_dim"].as_u64().expect("feature_dim") as usize;
    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|n| n.as_f64().expect("number"))
            .collect()
    };
    let records = json["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| JsonRecord {
            keys: numbers(&r["keys"]).into_iter().map(|k| k as u64).collect(),
            values: numbers(&r["values"])
                .into_iter()
                .map(|v| v as f32)
                .collect(),
            shape: numbers(&r["shape"]).into_iter().map(|s| s as u64).collect(),
        })
        .collect();
    (feature_dim, records)
}

/// Encodes sparse Float32 records with their own shapes into a RecordIO buffer.
pub fn recordio_of(records: &[&JsonRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        let payload = encode_sparse_record(&record.keys, &record.values, record.shape[0] as usize);
        write_record(&mut out, &payload).expect("writing to a Vec succeeds");
    }
    out
}
