//! Training on RecordIO-protobuf files written by the SageMaker Python SDK v2: dense and sparse,
//! float32, float64 and integer tensors. The files are the golden files of ntm-formats.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_into, ntm, tar_member};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ntm-formats/tests/golden")
        .join(name)
}

#[test]
fn every_sdk_variant_trains() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(golden("expected.json")).expect("expected.json"),
    )
    .expect("valid JSON");
    let files = expected.as_object().expect("one entry per file");
    assert_eq!(files.len(), 6, "three tensor types, dense and sparse");
    let mut weights = Vec::new();
    for (name, entry) in files {
        let root = tempfile::tempdir().expect("temporary folder");
        let data = root.path().join("data");
        copy_into(&golden(name), &data.join("train"), name);
        let feature_dim = entry["feature_dim"]
            .as_u64()
            .expect("feature_dim")
            .to_string();
        let output = root.path().join("model");
        let run = ntm(
            root.path(),
            &[
                &"train",
                &"--data",
                &data,
                &"--output",
                &output,
                &"--feature-dim",
                &feature_dim,
                &"--num-topics",
                &"2",
                &"--epochs",
                &"2",
                &"--threads",
                &"1",
            ],
        );
        run.assert_success();
        let rows = entry["rows"].as_array().expect("rows");
        let empty = rows
            .iter()
            .filter(|row| {
                row.as_array()
                    .expect("row")
                    .iter()
                    .all(|v| v.as_f64() == Some(0.0))
            })
            .count();
        let documents = format!("train channel: {} documents, ", rows.len() - empty);
        assert!(run.stderr.contains(&documents), "{name}:\n{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("{empty} empty skipped")),
            "{name}:\n{}",
            run.stderr
        );
        weights.push((
            entry["rows"].clone(),
            name.clone(),
            tar_member(&output.join("model.tar.gz"), "model.safetensors"),
        ));
    }
    // Files that hold the same matrix train the same model with the same seed, whatever the
    // tensor type or layout.
    let mut compared = 0;
    for (i, (rows_a, name_a, bytes_a)) in weights.iter().enumerate() {
        for (rows_b, name_b, bytes_b) in &weights[i + 1..] {
            if rows_a == rows_b {
                compared += 1;
                assert!(
                    bytes_a == bytes_b,
                    "{name_a} and {name_b} trained different models"
                );
            }
        }
    }
    assert!(compared > 0, "no two golden files hold the same matrix");
}
