//! `ntm serve` as a process: start-up on a loopback port, the SageMaker environment variables,
//! agreement with `ntm infer`, and graceful shutdown on SIGTERM with a request in flight.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{fixture, ntm, topic_weights, train_four_block};

/// Trains a 4-topic model on the four-block corpus for 5 epochs; returns its `model.tar.gz`.
fn train_model(root: &Path) -> PathBuf {
    let (run, output) = train_four_block(root, "model", "5", &[]);
    run.assert_success();
    output.join("model.tar.gz")
}

/// A running `ntm serve` process and the lines of its log.
struct ServeProcess {
    child: Child,
    log: mpsc::Receiver<String>,
    seen: Vec<String>,
    address: SocketAddr,
}

impl ServeProcess {
    /// Starts `ntm serve --host 127.0.0.1 ARGS` with extra environment variables, and waits
    /// for the `Listening on` line and for `/ping` to return 200.
    fn start(args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ntm"));
        command
            .arg("serve")
            .args(["--host", "127.0.0.1"])
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("SAGEMAKER_BIND_TO_PORT")
            .env_remove("SAGEMAKER_MAX_PAYLOAD_IN_MB")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }

        let mut child = command.spawn().expect("start ntm serve");
        let stderr = child.stderr.take().expect("piped standard error");
        let (sender, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });

        let mut process = ServeProcess {
            child,
            log,
            seen: Vec::new(),
            address: "127.0.0.1:0".parse().unwrap(),
        };
        let line = process.wait_for_log("Listening on ");
        let rest = line.split("Listening on ").nth(1).unwrap();
        let address = rest.split_whitespace().next().unwrap();
        process.address = address
            .parse()
            .expect("a socket address after `Listening on`");
        assert!(process.address.ip().is_loopback());
        process.wait_until_ready();
        process
    }

    /// Waits up to 30 s for a log line containing `text` and returns it.
    fn wait_for_log(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|line| line.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no log line containing {text:?}; the log so far:\n{}",
            self.seen.join("\n")
        );
    }

    fn wait_until_ready(&self) {
        for _ in 0..300 {
            if let Ok(response) = ureq::get(&self.url("/ping")).call() {
                if response.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("ntm serve did not answer /ping with 200 in 3 s");
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends SIGTERM to the server process.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to 10 s for the process to exit; returns its exit code.
    fn wait_for_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll ntm serve") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "ntm serve did not exit in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn serve_matches_infer() {
    let root = tempfile::tempdir().expect("temporary folder");
    let archive = train_model(root.path());
    let input = fixture("four-block-corpus/validation.csv");
    let infer = ntm(
        root.path(),
        &[
            &"infer",
            &"--model",
            &archive,
            &"--input",
            &input,
            &"--threads",
            &"1",
        ],
    );
    infer.assert_success();
    let expected = topic_weights(&infer.stdout);

    let server = ServeProcess::start(
        &[
            "--model",
            archive.to_str().unwrap(),
            "--port",
            "0",
            "--threads",
            "1",
        ],
        &[],
    );
    let body = std::fs::read(&input).expect("read validation.csv");
    let response = ureq::post(&server.url("/invocations"))
        .set("Content-Type", "text/csv")
        .set("Accept", "application/jsonlines")
        .send_bytes(&body)
        .expect("invocation succeeds");
    assert_eq!(response.status(), 200);
    let text = response.into_string().expect("response text");
    let served = topic_weights(text.as_bytes());
    assert_eq!(served.len(), expected.len());
    assert_eq!(served, expected, "ntm serve and ntm infer differ");
}

#[test]
fn sagemaker_environment_variables() {
    let root = tempfile::tempdir().expect("temporary folder");
    let archive = train_model(root.path());
    // Port 0 through SAGEMAKER_BIND_TO_PORT: the system picks a free loopback port.
    let server = ServeProcess::start(
        &["--model", archive.to_str().unwrap()],
        &[
            ("SAGEMAKER_BIND_TO_PORT", "0"),
            ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1"),
        ],
    );
    assert_ne!(server.address.port(), 8080);
    let parameters = ureq::get(&server.url("/execution-parameters"))
        .call()
        .expect("execution parameters")
        .into_string()
        .expect("response text");
    let parameters: serde_json::Value = serde_json::from_str(&parameters).expect("JSON body");
    assert_eq!(parameters["MaxPayloadInMB"], 1);
    assert_eq!(parameters["BatchStrategy"], "MULTI_RECORD");

    let line = "9,8,4,3,6,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n";
    let big = line.repeat(1024 * 1024 / line.len() + 1);
    match ureq::post(&server.url("/invocations"))
        .set("Content-Type", "text/csv")
        .send_string(&big)
    {
        Err(ureq::Error::Status(413, response)) => {
            let text = response.into_string().expect("error body");
            assert!(text.contains("1048576 bytes"), "{text}");
        }
        other => panic!("expected 413, got {other:?}"),
    }
}

#[test]
fn invalid_payload_limit_is_rejected() {
    let root = tempfile::tempdir().expect("temporary folder");
    let output = Command::new(env!("CARGO_BIN_EXE_ntm"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--model"])
        .arg(root.path())
        .env("SAGEMAKER_MAX_PAYLOAD_IN_MB", "500")
        .output()
        .expect("run ntm serve");
    assert_ne!(output.status.code(), Some(0), "a bad limit was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"500\""), "{stderr}");
    // The variable is named, not a flag the user never gave.
    assert!(stderr.contains("SAGEMAKER_MAX_PAYLOAD_IN_MB"), "{stderr}");
    assert!(stderr.contains("from 0 to 100"), "{stderr}");
    assert!(!stderr.contains("--max-payload-mb"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_ntm"))
        .args(["serve", "--host", "127.0.0.1", "--model"])
        .arg(root.path())
        .env("SAGEMAKER_BIND_TO_PORT", "eighty")
        .env_remove("SAGEMAKER_MAX_PAYLOAD_IN_MB")
        .output()
        .expect("run ntm serve");
    assert_ne!(output.status.code(), Some(0), "a bad port was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SAGEMAKER_BIND_TO_PORT"), "{stderr}");
    assert!(stderr.contains("\"eighty\""), "{stderr}");
    assert!(!stderr.contains("--port"), "{stderr}");

    // A flag wins over the variable.
    let output = Command::new(env!("CARGO_BIN_EXE_ntm"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--max-payload-mb",
            "500",
            "--model",
        ])
        .arg(root.path())
        .env_remove("SAGEMAKER_MAX_PAYLOAD_IN_MB")
        .output()
        .expect("run ntm serve");
    assert_eq!(output.status.code(), Some(2), "clap's usage error code");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("0..=100"), "{stderr}");
}

#[test]
fn missing_model_exits_with_error() {
    let root = tempfile::tempdir().expect("temporary folder");
    let missing = root.path().join("no-model");
    let run = ntm(
        root.path(),
        &[
            &"serve",
            &"--host",
            &"127.0.0.1",
            &"--port",
            &"0",
            &"--model",
            &missing,
        ],
    );
    let message = run.assert_failure();
    assert!(message.contains("cannot load the model"), "{message}");
    assert!(message.contains("no-model"), "{message}");
}

#[test]
fn sigterm_finishes_request_in_flight() {
    let root = tempfile::tempdir().expect("temporary folder");
    let archive = train_model(root.path());
    let mut server = ServeProcess::start(
        &[
            "--model",
            archive.to_str().unwrap(),
            "--port",
            "0",
            "--threads",
            "1",
        ],
        &[],
    );

    // Send the headers and half of the body, so the request is in flight when SIGTERM comes.
    let body =
        b"9,8,4,3,6,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,7,8,4,3,8\n";
    let (first, second) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(server.address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /invocations HTTP/1.1\r\nHost: {}\r\nContent-Type: text/csv\r\n\
         Accept: application/jsonlines\r\nContent-Length: {}\r\n\r\n",
        server.address,
        body.len()
    )
    .unwrap();
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    server.terminate();
    server.wait_for_log("Received SIGTERM");
    server.wait_for_log("Shutting down");

    // New connections are refused once shutdown has begun.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(server.address).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server still accepts connections 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The request in flight completes.
    stream.write_all(second).unwrap();
    stream.flush().unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, payload) = response.split_once("\r\n\r\n").expect("headers end");
    let weights = topic_weights(payload.as_bytes());
    assert_eq!(weights.len(), 2, "{payload}");

    assert_eq!(server.wait_for_exit(), Some(0), "exit code after SIGTERM");
    server.wait_for_log("Server stopped");
}

#[test]
fn million_word_model_serves_sparse_instance() {
    let root = tempfile::tempdir().expect("temporary folder");
    let data = root.path().join("data");
    std::fs::create_dir_all(data.join("train")).expect("train folder");
    // 100 documents of 50 distinct words each, spread over a vocabulary of 1,000,000 words.
    let documents: Vec<Vec<u64>> = (0..100u64)
        .map(|i| {
            let mut keys: Vec<u64> = (0..50u64)
                .map(|j| (i * 7919 + j * 19997) % 1_000_000)
                .collect();
            keys.sort_unstable();
            keys
        })
        .collect();
    let output = root.path().join("model");
    let hyperparameters = fixture("reported-failures/large-vocabulary/hyperparameters.json");
    write_sparse_records(&documents, &data.join("train/part-0.rec"));
    ntm(
        root.path(),
        &[
            &"train",
            &"--data",
            &data,
            &"--output",
            &output,
            &"--hyperparameters",
            &hyperparameters,
            &"--threads",
            &"1",
        ],
    )
    .assert_success();

    let archive = output.join("model.tar.gz");
    let server = ServeProcess::start(
        &[
            "--model",
            archive.to_str().unwrap(),
            "--port",
            "0",
            "--threads",
            "1",
        ],
        &[],
    );
    let body = r#"{"instances": [{"data": {"features": {"keys": [0, 999999], "values": [1, 1], "shape": [1000000]}}}]}"#;
    let response = ureq::post(&server.url("/invocations"))
        .set("Content-Type", "application/json")
        .send_string(body)
        .expect("invocation succeeds");
    assert_eq!(response.status(), 200);
    let json: serde_json::Value =
        serde_json::from_str(&response.into_string().expect("response text")).expect("JSON");
    let weights = json["predictions"][0]["topic_weights"]
        .as_array()
        .expect("topic weights");
    assert_eq!(weights.len(), 2);
    let sum: f64 = weights.iter().map(|w| w.as_f64().expect("number")).sum();
    assert!((sum - 1.0).abs() < 1e-5, "weights sum to {sum}");
}

/// Writes documents, each a list of words counted once, as one RecordIO-protobuf file of
/// sparse records over a 1,000,000-word vocabulary.
fn write_sparse_records(documents: &[Vec<u64>], target: &Path) {
    let file = std::fs::File::create(target).expect("record file");
    let mut writer = ntm_formats::recordio::RecordIoWriter::new(std::io::BufWriter::new(file));
    for keys in documents {
        let values = vec![1.0f32; keys.len()];
        let payload = ntm_formats::record::encode_sparse_record(keys, &values, 1_000_000);
        writer.write(&payload).expect("write record");
    }
    writer
        .into_inner()
        .expect("flush")
        .flush()
        .expect("flush file");
}

#[test]
fn serves_model_from_training_container() {
    // The SageMaker layout: training writes the model's files unpacked into <root>/model, and
    // hosting serves that folder.
    let root = tempfile::tempdir().expect("temporary folder");
    let config = root.path().join("input/config");
    std::fs::create_dir_all(&config).expect("config folder");
    std::fs::write(
        config.join("hyperparameters.json"),
        r#"{"num_topics": "4", "epochs": "3"}"#,
    )
    .expect("hyperparameters");
    let data = root.path().join("input/data");
    common::copy_into(
        &fixture("four-block-corpus/train.csv"),
        &data.join("train"),
        "train.csv",
    );
    common::copy_into(
        &fixture("four-block-corpus/vocab.txt"),
        &data.join("auxiliary"),
        "vocab.txt",
    );
    ntm(root.path(), &[&"train", &"--sagemaker-root", &root.path()]).assert_success();

    let model = root.path().join("model");
    let server = ServeProcess::start(
        &["--model", model.to_str().unwrap()],
        &[("SAGEMAKER_BIND_TO_PORT", "0")],
    );
    let body = std::fs::read(fixture("four-block-corpus/validation.csv")).expect("validation rows");
    let response = ureq::post(&server.url("/invocations"))
        .set("Content-Type", "text/csv")
        .set("Accept", "application/jsonlines")
        .send_bytes(&body)
        .expect("invocation succeeds");
    assert_eq!(response.status(), 200);
    let text = response.into_string().expect("response text");
    let rows = topic_weights(text.as_bytes());
    assert_eq!(rows.len(), 40);
    for row in &rows {
        assert_eq!(row.len(), 4);
        let sum: f64 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "weights sum to {sum}");
    }
}
