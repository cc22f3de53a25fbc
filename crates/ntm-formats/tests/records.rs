//! `aialgs.data.Record` payloads: tensor types, key rules, SDK golden files.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use ntm_formats::record::{
    decode_record_row, decode_recordio_protobuf, encode_dense_record, encode_sparse_record,
    write_sparse_rows, Bytes, Float32Tensor, Float64Tensor, Int32Tensor, Record, Value, ValueKind,
};
use ntm_formats::recordio::{decode_records, write_record};
use ntm_formats::{Cell, ChannelReader, ContentType, FormatError, SparseRows};
use prost::Message;

fn payload_with(kind: ValueKind) -> Vec<u8> {
    let mut features = BTreeMap::new();
    features.insert("values".to_owned(), Value { value: Some(kind) });
    Record {
        features,
        ..Record::default()
    }
    .encode_to_vec()
}

type Row = (Vec<u32>, Vec<f32>);

fn row(indices: &[u32], values: &[f32]) -> Row {
    (indices.to_vec(), values.to_vec())
}

#[test]
fn each_tensor_type_dense() {
    let expected = row(&[0, 2], &[3.0, 1.0]);
    let f32_payload = encode_dense_record(&[3.0, 0.0, 1.0]);
    let f64_payload = payload_with(ValueKind::Float64Tensor(Float64Tensor {
        values: vec![3.0, 0.0, 1.0],
        ..Float64Tensor::default()
    }));
    let i32_payload = payload_with(ValueKind::Int32Tensor(Int32Tensor {
        values: vec![3, 0, 1],
        ..Int32Tensor::default()
    }));
    for payload in [f32_payload, f64_payload, i32_payload] {
        assert_eq!(decode_record_row(&payload, 3, 0).unwrap(), expected);
    }
}

#[test]
fn each_tensor_type_sparse() {
    let expected = row(&[1, 4], &[2.0, 5.0]);
    let f32_payload = encode_sparse_record(&[4, 1], &[5.0, 2.0], 5);
    let f64_payload = payload_with(ValueKind::Float64Tensor(Float64Tensor {
        values: vec![5.0, 2.0],
        keys: vec![4, 1],
        shape: vec![5],
    }));
    let i32_payload = payload_with(ValueKind::Int32Tensor(Int32Tensor {
        values: vec![5, 2],
        keys: vec![4, 1],
        shape: vec![5],
    }));
    for payload in [f32_payload, f64_payload, i32_payload] {
        assert_eq!(decode_record_row(&payload, 5, 0).unwrap(), expected);
    }
}

#[test]
fn sparse_without_shape_is_accepted() {
    let payload = payload_with(ValueKind::Float32Tensor(Float32Tensor {
        values: vec![1.0],
        keys: vec![3],
        shape: vec![],
    }));
    assert_eq!(
        decode_record_row(&payload, 4, 0).unwrap(),
        row(&[3], &[1.0])
    );
}

#[test]
fn empty_sparse_row_decodes_to_no_entries() {
    let payload = encode_sparse_record(&[], &[], 6);
    assert_eq!(decode_record_row(&payload, 6, 0).unwrap(), row(&[], &[]));
}

#[test]
fn explicit_zeros_are_dropped() {
    let payload = encode_sparse_record(&[0, 1, 2], &[0.0, 4.0, 0.0], 3);
    assert_eq!(
        decode_record_row(&payload, 3, 0).unwrap(),
        row(&[1], &[4.0])
    );
}

#[test]
fn repeated_and_unsorted_keys_match_canonical() {
    let (feature_dim, records) = common::json_records("duplicate_keys/records.json");
    let rows: Vec<Row> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let payload = encode_sparse_record(&r.keys, &r.values, r.shape[0] as usize);
            decode_record_row(&payload, feature_dim, i).unwrap()
        })
        .collect();
    let canonical = row(&[2, 5], &[2.0, 3.0]);
    assert_eq!(rows[0], canonical, "repeated key 2 is summed");
    assert_eq!(rows[1], canonical);
    assert_eq!(rows[2], canonical, "unsorted keys are sorted");
}

#[test]
fn key_equal_to_feature_dim_is_rejected() {
    let (feature_dim, records) = common::json_records("keys/records.json");
    assert_eq!(feature_dim, 700);
    let file = common::recordio_of(&[&records[0], &records[1]]);
    let rows = decode_recordio_protobuf(&file, feature_dim).unwrap();
    assert_eq!(rows.n_rows(), 2);
    assert_eq!(rows.row(0).0, &[0, 3, 699], "key 699 is the last valid one");

    let file = common::recordio_of(&[&records[0], &records[1], &records[2]]);
    let err = decode_recordio_protobuf(&file, feature_dim).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::KeyOutOfRange {
                record: 2,
                key: 700,
                feature_dim: 700,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("record 2"), "{message}");
    assert!(message.contains("key 700"), "{message}");
    assert!(message.contains("0..=699"), "{message}");
}

#[test]
fn shape_mismatch_is_rejected() {
    let (feature_dim, records) = common::json_records("keys/records.json");
    let file = common::recordio_of(&[&records[0], &records[1], &records[3]]);
    let err = decode_recordio_protobuf(&file, feature_dim).unwrap_err();
    let FormatError::ShapeMismatch { record, shape, .. } = &err else {
        panic!("expected ShapeMismatch, got {err:?}");
    };
    assert_eq!((*record, shape.as_slice()), (2, &[800u64][..]));
    let message = err.to_string();
    assert!(message.contains("[800]"), "{message}");
    assert!(message.contains("feature_dim is 700"), "{message}");
}

#[test]
fn dense_length_mismatch_is_rejected() {
    let err = decode_record_row(&encode_dense_record(&[1.0, 2.0]), 3, 5).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::DenseLength {
                record: 5,
                len: 2,
                feature_dim: 3,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn keys_values_length_mismatch_is_rejected() {
    let payload = payload_with(ValueKind::Float32Tensor(Float32Tensor {
        values: vec![1.0],
        keys: vec![0, 1],
        shape: vec![3],
    }));
    let err = decode_record_row(&payload, 3, 0).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::KeysValuesLength {
                keys: 2,
                values: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn negative_and_nan_counts_are_rejected() {
    let negative =
        decode_record_row(&encode_sparse_record(&[1, 3], &[1.0, -2.0], 4), 4, 7).unwrap_err();
    assert!(
        matches!(
            negative,
            FormatError::Negative {
                cell: Cell::Record { record: 7, key: 3 },
                ..
            }
        ),
        "{negative:?}"
    );
    assert!(negative.to_string().contains("counts must be >= 0"));
    let nan = decode_record_row(&encode_dense_record(&[f32::NAN, 1.0]), 2, 0).unwrap_err();
    assert!(
        matches!(
            nan,
            FormatError::NonFinite {
                cell: Cell::Record { key: 0, .. },
                ..
            }
        ),
        "{nan:?}"
    );
    let infinite = payload_with(ValueKind::Float64Tensor(Float64Tensor {
        values: vec![f64::INFINITY],
        keys: vec![0],
        shape: vec![2],
    }));
    assert!(matches!(
        decode_record_row(&infinite, 2, 0),
        Err(FormatError::NonFinite { .. })
    ));
}

#[test]
fn repeated_key_sum_overflow_is_rejected() {
    // Each value is finite, but summing the two values of key 2 overflows f32 to infinity.
    let payload = encode_sparse_record(&[2, 5, 2], &[3.0e38, 1.0, 3.0e38], 6);
    let err = decode_record_row(&payload, 6, 4).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::NonFinite {
                cell: Cell::Record { record: 4, key: 2 },
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("record 4, key 2"), "{message}");
    assert!(message.contains("sum"), "{message}");

    let mut file = Vec::new();
    write_record(&mut file, &payload).unwrap();
    assert!(matches!(
        decode_recordio_protobuf(&file, 6),
        Err(FormatError::NonFinite { .. })
    ));

    let largest = encode_sparse_record(&[2, 2], &[f32::MAX / 2.0, f32::MAX / 2.0], 6);
    assert_eq!(
        decode_record_row(&largest, 6, 0).unwrap(),
        row(&[2], &[f32::MAX]),
        "a sum that reaches f32::MAX is still finite"
    );
}

#[test]
fn missing_values_feature_names_present_ones() {
    let mut features = BTreeMap::new();
    features.insert("counts".to_owned(), Value::default());
    let payload = Record {
        features,
        ..Record::default()
    }
    .encode_to_vec();
    let err = decode_record_row(&payload, 3, 1).unwrap_err();
    assert!(err.to_string().contains("\"counts\""), "{err}");
    assert!(matches!(err, FormatError::MissingValues { record: 1, .. }));
}

#[test]
fn bytes_value_is_unsupported() {
    let payload = payload_with(ValueKind::Bytes(Bytes {
        value: vec![b"abc".to_vec()],
        content_type: None,
    }));
    let err = decode_record_row(&payload, 3, 0).unwrap_err();
    assert!(
        matches!(err, FormatError::UnsupportedTensor { .. }),
        "{err:?}"
    );
}

#[test]
fn garbage_payload_is_invalid_protobuf() {
    let err = decode_record_row(&[0xff, 0xff, 0xff], 3, 9).unwrap_err();
    assert!(
        matches!(err, FormatError::InvalidProtobuf { record: 9, .. }),
        "{err:?}"
    );
}

#[test]
fn sparse_rows_round_trip_through_recordio() {
    let mut rows = SparseRows::new(8);
    rows.push_row(&[0, 7], &[1.0, 2.5]);
    rows.push_row(&[], &[]);
    rows.push_row(&[3], &[9.0]);
    let file = write_sparse_rows(Vec::new(), &rows).unwrap();
    assert_eq!(decode_recordio_protobuf(&file, 8).unwrap(), rows);
}

/// Expected matrices the SDK script stored next to its files.
fn golden_expected() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn sdk_golden_files_decode_to_their_matrices() {
    let expected = golden_expected();
    let files = expected.as_object().unwrap();
    assert_eq!(files.len(), 6, "three dense and three sparse files");
    for (name, case) in files {
        let feature_dim = case["feature_dim"].as_u64().unwrap() as usize;
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        let rows = decode_recordio_protobuf(&std::fs::read(&path).unwrap(), feature_dim)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = case["rows"].as_array().unwrap();
        assert_eq!(rows.n_rows(), want.len(), "{name}");
        let mut dense = vec![0.0f32; feature_dim];
        for (i, want_row) in want.iter().enumerate() {
            rows.densify_row(i, &mut dense);
            let want_row: Vec<f32> = want_row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(dense, want_row, "{name} row {i}");
        }
    }
}

#[test]
fn sdk_golden_files_use_whole_records() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sparse_float32.rec");
    let bytes = std::fs::read(path).unwrap();
    let mut ntm_written = Vec::new();
    for payload in decode_records(&bytes).unwrap() {
        write_record(&mut ntm_written, &payload).unwrap();
    }
    assert_eq!(
        ntm_written, bytes,
        "ntm's writer frames records byte for byte like the SDK"
    );
}

/// Writes the file that `tests/golden/make_golden.py --check` reads with the SDK's
/// `read_records`; the result of that run is recorded at the top of the script.
#[test]
fn sdk_reads_ntm_writer_output() {
    let mut rows = SparseRows::new(6);
    rows.push_row(&[1, 4], &[2.0, 1.0]);
    rows.push_row(&[0], &[7.0]);
    rows.push_row(&[2, 3, 5], &[1.0, 1.0, 3.5]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ntm_written.rec");
    write_sparse_rows(std::fs::File::create(&path).unwrap(), &rows).unwrap();
    if let Some(keep) = std::env::var_os("NTM_GOLDEN_OUT") {
        std::fs::copy(&path, keep).unwrap();
    }
    assert_eq!(
        decode_recordio_protobuf(&std::fs::read(&path).unwrap(), 6).unwrap(),
        rows
    );
}

#[test]
fn million_features_stream_sparse_records() {
    let feature_dim = 1_000_000usize;
    let mut file = Vec::new();
    for i in 0..100u64 {
        let keys: Vec<u64> = (0..50u64)
            .map(|j| (i * 7919 + j * 19997) % 1_000_000)
            .collect();
        write_record(
            &mut file,
            &encode_sparse_record(&keys, &[1.0; 50], feature_dim),
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("part-0.rec"), &file).unwrap();
    let mut reader = ChannelReader::open(
        dir.path(),
        Some(ContentType::RecordIoProtobuf),
        feature_dim,
        32,
    )
    .unwrap();
    let mut documents = 0;
    let mut chunks = 0;
    while let Some(chunk) = reader.next_chunk().unwrap() {
        assert!(chunk.n_rows() <= 32);
        assert_eq!(chunk.n_cols(), feature_dim);
        for r in 0..chunk.n_rows() {
            assert_eq!(chunk.row(r).0.len(), 50, "keys are distinct");
            assert_eq!(chunk.row_sum(r), 50.0);
        }
        documents += chunk.n_rows();
        chunks += 1;
    }
    assert_eq!((documents, chunks), (100, 4));
}
