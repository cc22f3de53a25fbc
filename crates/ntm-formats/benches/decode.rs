//! Decoding throughput of the two training formats on the same synthetic corpus.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ntm_formats::csv::{parse_csv, write_csv_rows};
use ntm_formats::record::{decode_recordio_protobuf, write_sparse_rows};
use ntm_formats::SparseRows;

/// 2,000 documents over 2,000 words with 40 distinct words each, from a fixed formula.
fn corpus() -> SparseRows {
    let feature_dim = 2000;
    let mut rows = SparseRows::new(feature_dim);
    for doc in 0..2000u32 {
        let mut indices: Vec<u32> = (0..40u32)
            .map(|j| (doc * 7919 + j * 1999) % feature_dim as u32)
            .collect();
        indices.sort_unstable();
        indices.dedup();
        let counts: Vec<f32> = indices.iter().map(|&k| (k % 5 + 1) as f32).collect();
        rows.push_row(&indices, &counts);
    }
    rows
}

fn decode(c: &mut Criterion) {
    let rows = corpus();
    let csv = write_csv_rows(Vec::new(), &rows).expect("writing to a Vec succeeds");
    let recordio = write_sparse_rows(Vec::new(), &rows).expect("writing to a Vec succeeds");

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(csv.len() as u64));
    group.bench_function("csv_dense", |b| {
        b.iter(|| parse_csv(&csv, rows.n_cols(), 0))
    });
    group.throughput(Throughput::Bytes(recordio.len() as u64));
    group.bench_function("recordio_sparse", |b| {
        b.iter(|| decode_recordio_protobuf(&recordio, rows.n_cols()))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
