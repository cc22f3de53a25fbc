//! The `aialgs.data.Record` decoder: the input is one record payload.
//!
//! For several `feature_dim` values, `decode_record_row` must return a valid row or an error.
//! `decode_recordio_protobuf` must agree with it on the payload framed as a whole record and
//! as a split record. A decoded row re-encoded with ntm's sparse and dense writers must decode
//! to the same row.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ntm_formats::record::{
    decode_record_row, decode_recordio_protobuf, encode_dense_record, encode_sparse_record, Record,
    ValueKind, FEATURE_KEY,
};
use ntm_formats::recordio::{write_record, write_split_record};
use ntm_formats::SparseRows;
use ntm_fuzz::{assert_same_row, check_row, check_rows};
use prost::Message;

/// Feature dimensions tried on every input, besides the ones the record itself suggests.
const FEATURE_DIMS: [usize; 6] = [1, 2, 3, 6, 1000, 1 << 20];

/// Largest `feature_dim` for which the target builds a dense copy of a row.
const MAX_DENSE_DIM: usize = 4096;

/// Largest dimension taken from the record's own shape or value count.
const MAX_SUGGESTED_DIM: u64 = 1 << 24;

/// Dimensions that the record's shape and dense length suggest, so that inputs reach the
/// success path and not only the dimension checks.
fn suggested_dims(payload: &[u8]) -> Vec<usize> {
    let Ok(record) = Record::decode(payload) else {
        return Vec::new();
    };
    let Some(value) = record.features.get(FEATURE_KEY) else {
        return Vec::new();
    };
    let (len, shape) = match &value.value {
        Some(ValueKind::Float32Tensor(t)) => (t.values.len(), t.shape.first().copied()),
        Some(ValueKind::Float64Tensor(t)) => (t.values.len(), t.shape.first().copied()),
        Some(ValueKind::Int32Tensor(t)) => (t.values.len(), t.shape.first().copied()),
        _ => return Vec::new(),
    };
    let mut dims = vec![len];
    if let Some(first) = shape.filter(|&s| s <= MAX_SUGGESTED_DIM) {
        dims.push(first as usize);
    }
    dims
}

fn check_dim(payload: &[u8], feature_dim: usize) {
    let row = decode_record_row(payload, feature_dim, 0);

    let mut whole = Vec::new();
    write_record(&mut whole, payload).expect("writing to a Vec succeeds");
    let mut split = Vec::new();
    write_split_record(&mut split, payload).expect("writing to a Vec succeeds");
    for (framing, bytes) in [("whole", &whole), ("split", &split)] {
        let rows = decode_recordio_protobuf(bytes, feature_dim);
        match (&row, &rows) {
            (Ok((indices, values)), Ok(rows)) => {
                check_rows(rows);
                assert_eq!(rows.n_rows(), 1, "{framing} framing: one record, one row");
                assert_same_row((indices, values), rows.row(0), "decode_recordio_protobuf");
            }
            (Err(a), Err(b)) => assert_eq!(
                a.to_string(),
                b.to_string(),
                "{framing} framing: errors differ"
            ),
            _ => panic!("{framing} framing: one decoder failed: {row:?} / {rows:?}"),
        }
    }

    let Ok((indices, values)) = row else {
        return;
    };
    check_row(&indices, &values, feature_dim);

    let keys: Vec<u64> = indices.iter().map(|&i| u64::from(i)).collect();
    let sparse = encode_sparse_record(&keys, &values, feature_dim);
    let again = decode_record_row(&sparse, feature_dim, 0).expect("a re-encoded row decodes");
    assert_same_row(
        (&indices, &values),
        (&again.0, &again.1),
        "sparse re-encoding",
    );

    if feature_dim <= MAX_DENSE_DIM {
        let mut matrix = SparseRows::new(feature_dim);
        matrix.push_row(&indices, &values);
        let mut dense = vec![0.0; feature_dim];
        matrix.densify_row(0, &mut dense);
        let again = decode_record_row(&encode_dense_record(&dense), feature_dim, 0)
            .expect("a dense re-encoded row decodes");
        assert_same_row(
            (&indices, &values),
            (&again.0, &again.1),
            "dense re-encoding",
        );
    }
}

fuzz_target!(|payload: &[u8]| {
    let mut dims = FEATURE_DIMS.to_vec();
    dims.extend(suggested_dims(payload));
    dims.sort_unstable();
    dims.dedup();
    for feature_dim in dims {
        check_dim(payload, feature_dim);
    }
});
