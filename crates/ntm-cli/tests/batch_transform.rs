//! `ntm infer` as an offline batch transform: every request content type of `ntm serve`,
//! agreement with the server over loopback, folders, RecordIO output, errors that name the
//! file and position, and bounded memory on a large JSON Lines file.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, ntm, prepare_newsgroups, train_small};
use ntm_formats::SparseRows;

/// Number of documents in the newsgroup test sample.
const TEST_DOCUMENTS: usize = 60;

/// A model trained on the newsgroup sample, with its test documents as dense count rows.
struct Trained {
    root: tempfile::TempDir,
    model: PathBuf,
    /// The prepared test channel file: one dense CSV line per test document.
    test_csv: PathBuf,
    rows: Vec<Vec<f32>>,
    feature_dim: usize,
}

impl Trained {
    /// Prepares the newsgroup sample as CSV channels and trains a 5-topic model for 2 epochs.
    fn new() -> Trained {
        let root = tempfile::tempdir().expect("temporary folder");
        let data = prepare_newsgroups(root.path(), "data", "csv");
        let output = root.path().join("model");
        train_small(root.path(), &data, &output, "7", "2");
        let test_csv = data.join("test").join("test.csv");
        let rows: Vec<Vec<f32>> = std::fs::read_to_string(&test_csv)
            .expect("read test.csv")
            .lines()
            .map(|line| line.split(',').map(|v| v.parse().unwrap()).collect())
            .collect();
        assert_eq!(rows.len(), TEST_DOCUMENTS);
        let feature_dim = rows[0].len();
        Trained {
            model: output.join("model.tar.gz"),
            root,
            test_csv,
            rows,
            feature_dim,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Writes `bytes` to `name` under the test folder, creating folders; returns the path.
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).expect("create folder");
        std::fs::write(&path, bytes).expect("write input file");
        path
    }

    /// Runs `ntm infer --threads 1` on `input` with extra arguments; returns the run.
    fn infer(&self, input: &Path, extra: &[&str]) -> common::Run {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"infer",
            &"--model",
            &self.model,
            &"--input",
            &input,
            &"--threads",
            &"1",
        ];
        for arg in extra {
            args.push(arg);
        }
        ntm(self.root.path(), &args)
    }

    /// Converts the given test rows to sparse rows.
    fn sparse_rows(&self, rows: std::ops::Range<usize>) -> SparseRows {
        let mut sparse = SparseRows::new(self.feature_dim);
        for row in &self.rows[rows] {
            let (keys, values) = nonzero(row);
            sparse.push_row(&keys, &values);
        }
        sparse
    }

    /// JSON Lines of the given test rows: sparse and dense forms alternate, blank lines between.
    fn json_lines(&self, rows: std::ops::Range<usize>) -> String {
        let mut text = String::new();
        for (i, row) in self.rows[rows].iter().enumerate() {
            if i % 2 == 0 {
                text.push_str(&sparse_instance(row, self.feature_dim));
            } else {
                writeln!(text, "{{\"features\": {}}}", json_list(row)).unwrap();
                text.push('\n');
            }
            text.push('\n');
        }
        text
    }

    /// Builds a JSON request body of every test row, in sparse form.
    fn json_body(&self) -> String {
        let instances: Vec<String> = self
            .rows
            .iter()
            .map(|row| sparse_instance(row, self.feature_dim).trim_end().to_owned())
            .collect();
        format!("{{\"instances\": [{}]}}", instances.join(",\n"))
    }

    /// Dense CSV of the given test rows.
    fn csv(&self, rows: std::ops::Range<usize>) -> String {
        let mut text = String::new();
        for row in &self.rows[rows] {
            let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
            writeln!(text, "{}", cells.join(",")).unwrap();
        }
        text
    }

    /// RecordIO-protobuf of the given test rows, one sparse record each.
    fn recordio(&self, rows: std::ops::Range<usize>) -> Vec<u8> {
        ntm_formats::record::write_sparse_rows(Vec::new(), &self.sparse_rows(rows))
            .expect("encode records")
    }
}

fn nonzero(row: &[f32]) -> (Vec<u32>, Vec<f32>) {
    row.iter()
        .enumerate()
        .filter(|(_, &v)| v != 0.0)
        .map(|(k, &v)| (k as u32, v))
        .unzip()
}

fn json_list<T: std::fmt::Display>(values: &[T]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
    format!("[{}]", items.join(", "))
}

/// Formats one sparse JSON instance and a newline.
fn sparse_instance(row: &[f32], feature_dim: usize) -> String {
    let (keys, values) = nonzero(row);
    format!(
        "{{\"data\": {{\"features\": {{\"keys\": {}, \"values\": {}, \"shape\": [{feature_dim}]}}}}}}\n",
        json_list(&keys),
        json_list(&values)
    )
}

/// Raw test documents, one per line: the body of each post after its header, on one line.
fn text_lines() -> String {
    let file = std::fs::File::open(fixture("newsgroups-test.jsonl.gz")).expect("open fixture");
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("read fixture");
    let mut lines = String::new();
    for line in text.lines() {
        let document: serde_json::Value = serde_json::from_str(line).expect("fixture JSON");
        let body = document["text"].as_str().expect("text field");
        let body = body.split_once("\n\n").map_or(body, |(_, rest)| rest);
        lines.push_str(&body.replace(['\n', '\r'], " "));
        lines.push('\n');
    }
    lines
}

/// A running `ntm serve` on a loopback port, stopped on drop.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    fn start(model: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ntm"))
            .args([
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--threads",
                "1",
            ])
            .arg("--model")
            .arg(model)
            .env_remove("RUST_LOG")
            .env_remove("SAGEMAKER_BIND_TO_PORT")
            .env_remove("SAGEMAKER_MAX_PAYLOAD_IN_MB")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ntm serve");
        let stderr = BufReader::new(child.stderr.take().expect("piped standard error"));
        let mut address = None;
        let mut lines = stderr.lines();
        for line in lines.by_ref() {
            let line = line.expect("read the server log");
            if let Some(rest) = line.split("Listening on ").nth(1) {
                address = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        // Keep reading the log, so the server never writes to a closed pipe.
        std::thread::spawn(move || for _ in lines {});
        let address: SocketAddr = address
            .expect("a `Listening on` log line")
            .parse()
            .expect("a socket address");
        let server = Server { child, address };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ureq::get(&server.url("/ping"))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "/ping did not return 200 in 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Posts `body` to `/invocations` and returns the response body.
    fn invoke(&self, content_type: &str, accept: &str, body: &[u8]) -> Vec<u8> {
        let response = ureq::post(&self.url("/invocations"))
            .set("Content-Type", content_type)
            .set("Accept", accept)
            .send_bytes(body)
            .unwrap_or_else(|e| panic!("{content_type} request failed: {e}"));
        let mut bytes = Vec::new();
        response
            .into_reader()
            .read_to_end(&mut bytes)
            .expect("read the response");
        bytes
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_content_type_matches_serve() {
    let trained = Trained::new();
    let labelled: String = trained
        .csv(0..TEST_DOCUMENTS)
        .lines()
        .map(|line| format!("3,{line}\n"))
        .collect();
    let inputs = [
        (
            "test.csv",
            "text/csv",
            trained.csv(0..TEST_DOCUMENTS).into_bytes(),
        ),
        (
            "labelled.csv",
            "text/csv;label_size=1",
            labelled.into_bytes(),
        ),
        (
            "test.jsonl",
            "application/jsonlines",
            trained.json_lines(0..TEST_DOCUMENTS).into_bytes(),
        ),
        (
            "test.json",
            "application/json",
            trained.json_body().into_bytes(),
        ),
        (
            "test.recordio",
            "application/x-recordio-protobuf",
            trained.recordio(0..TEST_DOCUMENTS),
        ),
        ("test.txt", "text/plain", text_lines().into_bytes()),
    ];
    let server = Server::start(&trained.model);
    let mut counts_output = None;
    for (name, content_type, bytes) in &inputs {
        let path = trained.write(name, bytes);
        let run = trained.infer(&path, &["--content-type", content_type]);
        run.assert_success();
        let served = server.invoke(content_type, "application/jsonlines", bytes);
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&served),
            "{content_type}: ntm infer and ntm serve differ"
        );
        let lines = run.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        assert_eq!(lines.count(), TEST_DOCUMENTS, "{content_type}");

        // Without --content-type the format is detected from the bytes and the extension.
        if *name != "labelled.csv" {
            let detected = trained.infer(&path, &[]);
            detected.assert_success();
            assert_eq!(detected.stdout, run.stdout, "{name} detected");
        }

        // Every counts format carries the same documents, so the weights are the same.
        if *content_type != "text/plain" {
            let first = counts_output.get_or_insert_with(|| run.stdout.clone());
            assert_eq!(*first, run.stdout, "{content_type} against text/csv");
        }
    }

    // text/plain lines are counted as `--text` counts the same documents.
    let documents: String = text_lines()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            format!(
                "{}\n",
                serde_json::json!({"id": i.to_string(), "text": line})
            )
        })
        .collect();
    let documents = trained.write("documents.jsonl", documents.as_bytes());
    let text_run = trained.infer(&documents, &["--text"]);
    text_run.assert_success();
    let plain_run = trained.infer(&trained.path("test.txt"), &[]);
    assert_eq!(
        common::topic_weights(&plain_run.stdout),
        common::topic_weights(&text_run.stdout),
        "text/plain against --text"
    );
}

#[test]
fn folder_keeps_file_order() {
    let trained = Trained::new();
    let folder = trained.path("input");
    trained.write("input/a.csv", trained.csv(0..20).as_bytes());
    trained.write("input/b/c.jsonl", trained.json_lines(20..45).as_bytes());
    trained.write("input/d.recordio", &trained.recordio(45..TEST_DOCUMENTS));
    trained.write("input/.hidden.csv", b"not,read\n");
    trained.write("input/e.csv", b"");

    let output = trained.path("out/weights.jsonl");
    let run = trained.infer(&folder, &["--output", output.to_str().unwrap()]);
    run.assert_success();
    let whole = trained.infer(&trained.test_csv, &[]);
    whole.assert_success();
    assert_eq!(std::fs::read(&output).expect("read output"), whole.stdout);
}

#[test]
fn recordio_output_matches_json_lines() {
    let trained = Trained::new();
    let output = trained.path("weights.recordio");
    trained
        .infer(
            &trained.test_csv,
            &[
                "--accept",
                "application/x-recordio-protobuf",
                "--output",
                output.to_str().unwrap(),
            ],
        )
        .assert_success();
    let bytes = std::fs::read(&output).expect("read output");
    let records = ntm_formats::recordio::decode_records(&bytes).expect("RecordIO output");
    let json = trained.infer(&trained.test_csv, &[]);
    let expected = common::topic_weights(&json.stdout);
    assert_eq!(records.len(), expected.len());
    for (i, (record, expected)) in records.iter().zip(&expected).enumerate() {
        let weights = ntm_formats::record::decode_topic_weights(record, i).expect("a record");
        let expected: Vec<f32> = expected.iter().map(|&w| w as f32).collect();
        assert_eq!(weights, expected, "record {i}");
    }

    let server = Server::start(&trained.model);
    let body = std::fs::read(&trained.test_csv).expect("read test.csv");
    let served = server.invoke("text/csv", "application/x-recordio-protobuf", &body);
    assert_eq!(served, bytes, "RecordIO from ntm serve");

    let run = trained.infer(&trained.test_csv, &["--accept", "application/json"]);
    let message = run.assert_failure();
    assert!(message.contains("application/jsonlines"), "{message}");
}

#[test]
fn errors_name_file_and_position() {
    let trained = Trained::new();
    let dim = trained.feature_dim;
    let valid = sparse_instance(&trained.rows[1], dim);
    let mut bad_records = trained.recordio(0..2);
    bad_records.extend_from_slice(b"garbage!");
    let cases: Vec<(&str, Vec<u8>, &str, Vec<String>)> = vec![
        (
            "bad-length.jsonl",
            format!("{valid}\n{valid}{{\"features\": [1, 2]}}\n").into_bytes(),
            "application/jsonlines",
            vec!["line 4".into(), "2 values".into(), format!("feature_dim is {dim}")],
        ),
        (
            "bad-syntax.jsonl",
            format!("{valid}{{\"features\": [1,\n").into_bytes(),
            "application/jsonlines",
            vec!["line 2".into(), "not valid JSON".into()],
        ),
        (
            "bad-key.json",
            format!(
                "{{\"instances\": [{}, {{\"data\": {{\"features\": {{\"keys\": [{dim}], \"values\": [1]}}}}}}]}}",
                valid.trim_end()
            )
            .into_bytes(),
            "application/json",
            vec!["instance 1".into(), format!("key {dim}")],
        ),
        (
            "bad-width.csv",
            format!("{}1,2,3\n", trained.csv(0..1)).into_bytes(),
            "text/csv",
            vec!["line 2".into(), "3 columns".into()],
        ),
        (
            "bad.recordio",
            bad_records,
            "application/x-recordio-protobuf",
            vec!["byte offset".into()],
        ),
        (
            "bad-utf8.txt",
            b"god and faith\nspace \xff shuttle\n".to_vec(),
            "text/plain",
            vec!["line 2".into(), "not valid UTF-8".into()],
        ),
        (
            "negative.jsonl",
            b"{\"features\": [-1]}\n".to_vec(),
            "application/jsonlines",
            vec!["line 1".into()],
        ),
    ];
    for (name, bytes, content_type, expected) in cases {
        let path = trained.write(name, &bytes);
        let output = trained.path(&format!("{name}.out"));
        let run = trained.infer(
            &path,
            &[
                "--content-type",
                content_type,
                "--output",
                output.to_str().unwrap(),
            ],
        );
        let message = run.assert_failure();
        assert!(message.contains(name), "{name}: {message}");
        for part in expected {
            assert_eq!(
                message.matches(part.as_str()).count(),
                1,
                "{name}: {part:?} not once in {message}"
            );
        }
        assert!(
            !output.exists(),
            "{name}: a failed run left {}",
            output.display()
        );
    }

    let gzip = trained.write("counts.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    let message = trained.infer(&gzip, &[]).assert_failure();
    assert!(message.contains("counts.gz"), "{message}");
    assert!(message.contains("decompress it first"), "{message}");
    assert!(message.contains("--text"), "{message}");
    // A content type does not make compressed bytes readable.
    let message = trained
        .infer(&gzip, &["--content-type", "application/jsonlines"])
        .assert_failure();
    assert!(message.contains("gzip-compressed"), "{message}");
    assert!(!message.contains("not valid JSON"), "{message}");

    let raw = trained.write(
        "raw.jsonl",
        b"{\"id\": \"a\", \"text\": \"god and faith\"}\n",
    );
    let message = trained.infer(&raw, &[]).assert_failure();
    assert!(message.contains("raw.jsonl: line 1"), "{message}");
    assert!(message.contains("pass --text"), "{message}");

    let csv = trained.test_csv.clone();
    let message = trained
        .infer(&csv, &["--content-type", "text/html"])
        .assert_failure();
    assert!(message.contains("text/html"), "{message}");
}

/// Peak resident memory (`VmHWM`) of a running process in KiB, from `/proc`.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn large_json_lines_use_bounded_memory() {
    let trained = Trained::new();
    // About 80 MB of JSON Lines: the 60 test documents over and over.
    let block = trained.json_lines(0..TEST_DOCUMENTS).replace("\n\n", "\n");
    let repeats = 80_000_000 / block.len() + 1;
    let path = trained.path("large.jsonl");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for _ in 0..repeats {
            file.write_all(block.as_bytes()).expect("write");
        }
        file.flush().expect("flush");
    }
    let input_bytes = std::fs::metadata(&path).expect("input size").len();

    let output = trained.path("large.out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ntm"))
        .args(["infer", "--threads", "1", "--model"])
        .arg(&trained.model)
        .arg("--input")
        .arg(&path)
        .arg("--output")
        .arg(&output)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ntm infer");
    let mut peak_kib = 0;
    let status = loop {
        if let Some(peak) = peak_rss_kib(child.id()) {
            peak_kib = peak_kib.max(peak);
        }
        if let Some(status) = child.try_wait().expect("poll ntm infer") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "ntm infer failed on the large file");
    assert!(peak_kib > 0, "no /proc reading of ntm infer");
    eprintln!("ntm infer peaked at {peak_kib} KiB for a {input_bytes}-byte input");
    let peak_bytes = peak_kib * 1024;
    assert!(
        peak_bytes < 48 * 1024 * 1024 && peak_bytes < input_bytes / 2,
        "ntm infer peaked at {peak_kib} KiB for a {input_bytes}-byte input"
    );

    let small = trained.infer(&trained.test_csv, &[]);
    let expected = String::from_utf8(small.stdout).expect("UTF-8 output");
    let written = std::fs::read_to_string(&output).expect("read output");
    assert_eq!(written.lines().count(), repeats * TEST_DOCUMENTS);
    assert_eq!(written, expected.repeat(repeats));
}
