//! Training on inputs that broke other topic-model tools, each from a public failure report:
//! sparse keys out of range, bytes that are not RecordIO, repeated sparse keys, negative counts,
//! vocabulary files in odd encodings and a million-word vocabulary.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{copy_into, fixture, ntm, tar_member, topic_block, Run};
use ntm_formats::record::encode_sparse_record;
use ntm_formats::recordio::RecordIoWriter;

fn case(name: &str) -> PathBuf {
    fixture(&format!("reported-failures/{name}"))
}

/// A sparse record as the fixtures' `records.json` describes it.
struct SparseRecord {
    keys: Vec<u64>,
    values: Vec<f32>,
    shape: u64,
}

fn records(path: &Path) -> Vec<SparseRecord> {
    let text = fs::read_to_string(path).expect("records.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    json["records"]
        .as_array()
        .expect("records array")
        .iter()
        .map(|record| SparseRecord {
            keys: record["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| k.as_u64().expect("integer key"))
                .collect(),
            values: record["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| v.as_f64().expect("number") as f32)
                .collect(),
            shape: record["shape"][0].as_u64().expect("shape"),
        })
        .collect()
}

/// Writes the given records as one RecordIO-protobuf file `data/train/<name>`.
fn write_channel(data: &Path, name: &str, records: &[&SparseRecord]) -> PathBuf {
    let folder = data.join("train");
    fs::create_dir_all(&folder).expect("train folder");
    let path = folder.join(name);
    let file = fs::File::create(&path).expect("create record file");
    let mut writer = RecordIoWriter::new(std::io::BufWriter::new(file));
    for record in records {
        let payload = encode_sparse_record(&record.keys, &record.values, record.shape as usize);
        writer.write(&payload).expect("write record");
    }
    writer
        .into_inner()
        .expect("flush")
        .flush()
        .expect("flush file");
    path
}

fn train(root: &Path, data: &Path, hyperparameters: &Path, extra: &[&str]) -> Run {
    let output = root.join("model");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"train",
        &"--data",
        &data,
        &"--output",
        &output,
        &"--hyperparameters",
        &hyperparameters,
        &"--threads",
        &"1",
    ];
    for arg in extra {
        args.push(arg);
    }
    ntm(root, &args)
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn sparse_keys_inside_range_train() {
    let root = tempfile::tempdir().expect("temporary folder");
    let all = records(&case("sparse-key-range/records.json"));
    let data = root.path().join("data");
    write_channel(&data, "part-0.rec", &[&all[0], &all[1]]);
    let run = train(
        root.path(),
        &data,
        &case("sparse-key-range/hyperparameters.json"),
        &[],
    );
    run.assert_success();
    assert!(root.path().join("model/model.tar.gz").is_file());
}

#[test]
fn sparse_key_out_of_range_names_record() {
    let root = tempfile::tempdir().expect("temporary folder");
    let all = records(&case("sparse-key-range/records.json"));
    let data = root.path().join("data");
    write_channel(&data, "part-0.rec", &[&all[0], &all[1], &all[2]]);
    let run = train(
        root.path(),
        &data,
        &case("sparse-key-range/hyperparameters.json"),
        &[],
    );
    let message = run.assert_failure();
    assert_mentions(&message, &["part-0.rec", "record 2", "700", "0..=699"]);
    assert!(!root.path().join("model/model.tar.gz").exists());
}

#[test]
fn sparse_shape_mismatch_names_record() {
    let root = tempfile::tempdir().expect("temporary folder");
    let all = records(&case("sparse-key-range/records.json"));
    let data = root.path().join("data");
    write_channel(&data, "part-0.rec", &[&all[0], &all[1], &all[3]]);
    let run = train(
        root.path(),
        &data,
        &case("sparse-key-range/hyperparameters.json"),
        &[],
    );
    let message = run.assert_failure();
    // Record numbers count from 0 in file order, so the third record of the file is record 2.
    assert_mentions(&message, &["part-0.rec", "record 2", "[800]", "700"]);
}

#[test]
fn csv_bytes_in_recordio_channel_are_named() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = root.path().join("data");
    copy_into(
        &case("not-recordio/not_recordio.rec"),
        &data.join("train"),
        "not_recordio.rec",
    );
    let run = train(
        root.path(),
        &data,
        &case("not-recordio/hyperparameters.json"),
        &["--content-type", "application/x-recordio-protobuf"],
    );
    let message = run.assert_failure();
    assert_mentions(
        &message,
        &["not_recordio.rec", "offset 0", "0xced7230a", "text/csv"],
    );
}

#[test]
fn truncated_record_is_named() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = root.path().join("data");
    copy_into(
        &case("not-recordio/truncated.rec"),
        &data.join("train"),
        "truncated.rec",
    );
    let run = train(
        root.path(),
        &data,
        &case("not-recordio/hyperparameters.json"),
        &["--content-type", "application/x-recordio-protobuf"],
    );
    let message = run.assert_failure();
    assert_mentions(
        &message,
        &["truncated.rec", "record 0", "truncated", "100", "10"],
    );
}

#[test]
fn repeated_keys_train_as_their_sum() {
    let root = tempfile::tempdir().expect("temporary folder");
    let all = records(&case("repeated-keys/records.json"));
    let hyperparameters = root.path().join("hyperparameters.json");
    fs::write(
        &hyperparameters,
        r#"{"feature_dim": "6", "num_topics": "2", "epochs": "3", "seed": "4"}"#,
    )
    .expect("hyperparameters");
    let mut weights = Vec::new();
    for (index, name) in ["duplicate", "canonical", "unsorted"].iter().enumerate() {
        let case_root = root.path().join(name);
        let data = case_root.join("data");
        // Eight copies of the one document, so every batch is the same.
        let copies: Vec<&SparseRecord> = std::iter::repeat_n(&all[index], 8).collect();
        write_channel(&data, "part-0.rec", &copies);
        let run = train(&case_root, &data, &hyperparameters, &[]);
        run.assert_success();
        weights.push(tar_member(
            &case_root.join("model/model.tar.gz"),
            "model.safetensors",
        ));
    }
    assert!(
        weights[0] == weights[1],
        "repeated keys must train as their sum"
    );
    assert!(
        weights[2] == weights[1],
        "unsorted keys must train as sorted ones"
    );
}

#[test]
fn negative_count_names_line_and_column() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = root.path().join("data");
    copy_into(
        &case("negative-counts/train.csv"),
        &data.join("train"),
        "train.csv",
    );
    let run = train(
        root.path(),
        &data,
        &case("negative-counts/hyperparameters.json"),
        &[],
    );
    let message = run.assert_failure();
    assert_mentions(&message, &["train.csv", "line 2", "column 3", "-1"]);
    assert!(!root.path().join("model/model.tar.gz").exists());
}

/// Trains on the vocabulary-encoding corpus with `vocab` as `auxiliary/vocab.txt`.
fn train_with_vocabulary(root: &Path, vocab: &str) -> Run {
    let data = root.join("data");
    copy_into(
        &case("vocab-encoding/train.csv"),
        &data.join("train"),
        "train.csv",
    );
    copy_into(
        &case(&format!("vocab-encoding/{vocab}")),
        &data.join("auxiliary"),
        "vocab.txt",
    );
    train(
        root,
        &data,
        &case("vocab-encoding/hyperparameters.json"),
        &[],
    )
}

#[test]
fn vocabulary_with_bom_and_crlf_reads_clean() {
    let root = tempfile::tempdir().expect("temporary folder");
    let run = train_with_vocabulary(root.path(), "vocab_ok.txt");
    run.assert_success();
    let (_, topics) = topic_block(&run.stderr);
    let mut words: Vec<String> = topics.into_iter().flatten().collect();
    words.sort();
    words.dedup();
    let mut expected: Vec<String> = ["apple", "café", "naïve", "東京", "Straße"]
        .iter()
        .map(|w| (*w).to_owned())
        .collect();
    expected.sort();
    assert_eq!(words, expected);
    let stored = tar_member(&root.path().join("model/model.tar.gz"), "vocab.txt");
    let stored = String::from_utf8(stored).expect("UTF-8 vocabulary");
    assert_eq!(
        stored.lines().collect::<Vec<_>>(),
        ["apple", "café", "naïve", "東京", "Straße"]
    );
}

#[test]
fn vocabulary_with_invalid_utf8_names_line() {
    let root = tempfile::tempdir().expect("temporary folder");
    let run = train_with_vocabulary(root.path(), "vocab_bad.txt");
    let message = run.assert_failure();
    assert_mentions(&message, &["vocab.txt", "line 2"]);
}

#[test]
fn short_vocabulary_names_both_sizes() {
    let root = tempfile::tempdir().expect("temporary folder");
    let run = train_with_vocabulary(root.path(), "vocab_short.txt");
    let message = run.assert_failure();
    assert_mentions(&message, &["vocab.txt", "4", "5"]);
}

#[test]
fn million_word_vocabulary_trains_in_bounded_memory() {
    let root = tempfile::tempdir().expect("temporary folder");
    let documents: Vec<SparseRecord> = (0..100u64)
        .map(|i| {
            let mut keys: Vec<u64> = (0..50u64)
                .map(|j| (i * 7919 + j * 19997) % 1_000_000)
                .collect();
            keys.sort_unstable();
            SparseRecord {
                values: vec![1.0; keys.len()],
                keys,
                shape: 1_000_000,
            }
        })
        .collect();
    let data = root.path().join("data");
    let refs: Vec<&SparseRecord> = documents.iter().collect();
    write_channel(&data, "part-0.rec", &refs);
    let run = train(
        root.path(),
        &data,
        &case("large-vocabulary/hyperparameters.json"),
        &[],
    );
    run.assert_success();
    let peak_mib: u64 = run
        .log_messages()
        .iter()
        .find_map(|line| line.strip_prefix("Peak resident memory: "))
        .and_then(|rest| rest.strip_suffix(" MiB"))
        .expect("peak memory line")
        .parse()
        .expect("peak memory in MiB");
    assert!(peak_mib < 2048, "peak resident memory {peak_mib} MiB");
}

#[test]
fn vocabulary_over_million_is_rejected_first() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = root.path().join("data");
    fs::create_dir_all(data.join("train")).expect("train folder");
    let run = train(
        root.path(),
        &data,
        &case("large-vocabulary/hyperparameters_over_max.json"),
        &[],
    );
    let message = run.assert_failure();
    assert_mentions(&message, &["feature_dim", "1000001", "1000000"]);
}
