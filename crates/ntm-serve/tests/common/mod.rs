//! Helpers shared by the server tests: train small models, run a server on a loopback port
//! and send it requests over real HTTP.

// Each test binary compiles this module and uses only some of its helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ntm_formats::SparseRows;
use ntm_model::artifact::ModelArtifact;
use ntm_model::hyperparams::HyperparameterBuilder;
use ntm_model::trainer::{self, TrainConfig, TrainControl, TrainData};
use ntm_serve::{ServeError, Server, ServerConfig};
use serde_json::Value;
use tokio::sync::oneshot;

/// Returns the path of a fixture under `tests/data/`.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(relative)
}

/// Creates and returns a folder for this test process's models, under Cargo's temporary
/// folder for tests.
fn model_root() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("ntm-serve-models")
        .join(std::process::id().to_string());
    std::fs::create_dir_all(&root).expect("create the model folder");
    root
}

/// Trains a model on `rows` with the given hyperparameters (as SageMaker strings) and one
/// rayon thread, so the weights are the same on every run.
fn train(rows: &SparseRows, hyperparameters: &[(&str, &str)]) -> ntm_model::network::Network {
    let mut builder = HyperparameterBuilder::new();
    for (key, value) in hyperparameters {
        builder.set(key, value).expect("valid hyperparameter");
    }
    let hp = builder.check().expect("complete hyperparameters");
    let config = TrainConfig::from_hyperparameters(&hp, "algo-1");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one training thread");
    pool.install(|| {
        let data = TrainData::in_memory(rows, None, None);
        trainer::train(&config, data, TrainControl::default())
    })
    .expect("training succeeds")
    .network
}

/// Trains the four-block corpus model (feature_dim 20, 4 topics, 100 epochs) once per test
/// process, with its vocabulary and the default tokenizer settings so it also scores
/// `text/plain`. Returns the folder of its unpacked files and its `model.tar.gz`.
pub fn four_block_model() -> &'static (PathBuf, PathBuf) {
    static MODEL: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let csv = std::fs::read(fixture("four-block/train.csv")).expect("read train.csv");
        let rows = ntm_formats::csv::parse_csv(&csv, 20, 0).expect("parse train.csv");
        let network = train(
            &rows,
            &[
                ("feature_dim", "20"),
                ("num_topics", "4"),
                ("epochs", "100"),
                ("mini_batch_size", "32"),
                ("num_patience_epochs", "10"),
                ("tolerance", "0.0001"),
            ],
        );
        let words: Vec<String> = std::fs::read_to_string(fixture("four-block/vocab.txt"))
            .expect("read vocab.txt")
            .lines()
            .map(str::to_owned)
            .collect();
        let mut artifact =
            ModelArtifact::new(network, BTreeMap::new(), Vec::new(), Some(100), Some(words));
        artifact.metadata.tokenizer =
            Some(serde_json::to_value(ntm_text::TokenizerSettings::default()).expect("settings"));
        let root = model_root().join("four-block");
        artifact.write_dir(&root).expect("write the model folder");
        let archive = model_root().join("four-block.tar.gz");
        artifact.write_tar_gz(&archive).expect("write model.tar.gz");
        (root, archive)
    })
}

/// Trains a model for `feature_dim` words and 3 topics for 2 epochs on 64 synthetic
/// documents, without a vocabulary. Returns its folder.
pub fn small_model(feature_dim: usize) -> PathBuf {
    small_model_with(feature_dim, "sigmoid")
}

/// As [`small_model`], with the given encoder activation.
pub fn small_model_with(feature_dim: usize, activation: &str) -> PathBuf {
    let mut rows = SparseRows::new(feature_dim);
    for doc in 0..64usize {
        let mut keys: Vec<u32> = (0..5)
            .map(|j| ((doc * 7 + j * 3) % feature_dim) as u32)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let counts: Vec<f32> = keys.iter().map(|&k| 1.0 + (k % 3) as f32).collect();
        rows.push_row(&keys, &counts);
    }
    let dim = feature_dim.to_string();
    let network = train(
        &rows,
        &[
            ("feature_dim", &dim),
            ("num_topics", "3"),
            ("epochs", "2"),
            ("mini_batch_size", "16"),
            ("encoder_layers_activation", activation),
        ],
    );
    let artifact = ModelArtifact::new(network, BTreeMap::new(), Vec::new(), Some(2), None);
    let root = model_root().join(format!("small-{feature_dim}-{activation}"));
    artifact.write_dir(&root).expect("write the model folder");
    root
}

/// A server running on 127.0.0.1 with an ephemeral port, on its own runtime.
pub struct TestServer {
    runtime: tokio::runtime::Runtime,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ServeError>>>,
    agent: ureq::Agent,
}

impl TestServer {
    /// Starts a server for the model at `model` with one scoring thread and the default limit,
    /// and waits until `/ping` returns 200.
    pub fn start(model: &Path) -> TestServer {
        let mut config = ServerConfig::new(model.to_path_buf());
        config.threads = 1;
        TestServer::start_with(config)
    }

    /// Starts a server with `config` and waits until `/ping` returns 200.
    pub fn start_with(config: ServerConfig) -> TestServer {
        let server = TestServer::start_loading(config);
        server.wait_until_ready();
        server
    }

    /// Starts a server with `config` without waiting for the model.
    pub fn start_loading(config: ServerConfig) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
        let server = runtime
            .block_on(Server::bind(loopback, config))
            .expect("bind 127.0.0.1:0");
        let address = server.local_addr();
        assert!(address.ip().is_loopback());
        assert_ne!(address.port(), 0);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = runtime.spawn(server.run(async {
            let _ = stopped.await;
        }));
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(60))
            .build();
        TestServer {
            runtime,
            address,
            stop: Some(stop),
            task: Some(task),
            agent,
        }
    }

    fn wait_until_ready(&self) {
        for _ in 0..500 {
            if self.get("/ping").status == 200 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the server at {} did not become ready in 5 s", self.address);
    }

    /// Returns the bound loopback address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Sends `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        let url = format!("http://{}{path}", self.address);
        Reply::from(self.agent.get(&url).call())
    }

    /// Sends `POST /invocations` with the given headers (`None` leaves a header out).
    pub fn invoke(&self, content_type: Option<&str>, accept: Option<&str>, body: &[u8]) -> Reply {
        let url = format!("http://{}/invocations", self.address);
        let mut request = self.agent.post(&url);
        if let Some(content_type) = content_type {
            request = request.set("Content-Type", content_type);
        }
        if let Some(accept) = accept {
            request = request.set("Accept", accept);
        }
        Reply::from(request.send_bytes(body))
    }

    /// Sends a request that must succeed and returns its JSON topic weights.
    pub fn weights(&self, content_type: &str, body: &[u8]) -> Vec<Vec<f64>> {
        let reply = self.invoke(Some(content_type), Some("application/json"), body);
        reply.assert_status(200);
        reply.json_weights()
    }

    /// Stops the server and returns what `Server::run` returned.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.shutdown()
    }

    /// Waits for `Server::run` to return without asking it to stop, as after a failed load.
    pub fn wait_for_exit(mut self) -> Result<(), ServeError> {
        let task = self.task.take().expect("server task");
        self.runtime.block_on(task).expect("server task ends")
    }

    fn shutdown(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => self.runtime.block_on(task).expect("server task ends"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Status, headers and body of one response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub request_id: Option<String>,
    pub body: Vec<u8>,
}

impl From<Result<ureq::Response, ureq::Error>> for Reply {
    fn from(result: Result<ureq::Response, ureq::Error>) -> Reply {
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("the request failed without a response: {error}"),
        };
        let status = response.status();
        let content_type = response.header("content-type").map(str::to_owned);
        let request_id = response.header("x-request-id").map(str::to_owned);
        let mut body = Vec::new();
        response
            .into_reader()
            .take(512 * 1024 * 1024)
            .read_to_end(&mut body)
            .expect("read the response body");
        Reply {
            status,
            content_type,
            request_id,
            body,
        }
    }
}

impl Reply {
    /// Returns the body as text, for failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Panics with the body unless the status is `expected`.
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "expected status {expected}, got {}: {}",
            self.status,
            self.text()
        );
        self
    }

    /// Parses the body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text()))
    }

    /// Returns the `"error"` message of an error response, after checking that the body also
    /// names the request id of the `x-request-id` header.
    pub fn error_message(&self) -> String {
        let json = self.json();
        let request_id = self.request_id.as_deref().expect("x-request-id header");
        assert_eq!(json["request_id"], request_id, "{}", self.text());
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {}", self.text()))
            .to_owned()
    }

    /// Extracts the topic weights of a JSON response, one list per document.
    pub fn json_weights(&self) -> Vec<Vec<f64>> {
        let json = self.json();
        let predictions = json["predictions"]
            .as_array()
            .unwrap_or_else(|| panic!("no predictions list: {}", self.text()));
        predictions
            .iter()
            .map(|prediction| number_list(&prediction["topic_weights"]))
            .collect()
    }

    /// Extracts the topic weights of a JSON Lines response, one list per line.
    pub fn json_lines_weights(&self) -> Vec<Vec<f64>> {
        self.text()
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("line is not JSON ({e}): {line}"));
                number_list(&value["topic_weights"])
            })
            .collect()
    }

    /// Extracts the topic weights of a RecordIO-protobuf response, one list per record.
    pub fn record_weights(&self) -> Vec<Vec<f64>> {
        let payloads =
            ntm_formats::recordio::decode_records(&self.body).expect("valid RecordIO framing");
        payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| {
                ntm_formats::record::decode_topic_weights(payload, i)
                    .expect("topic_weights record")
                    .into_iter()
                    .map(f64::from)
                    .collect()
            })
            .collect()
    }
}

fn number_list(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|w| w.as_f64().expect("a number"))
        .collect()
}

/// Rewrites the rows of a dense CSV body as JSON `{"features": [...]}` instances.
pub fn csv_to_json(csv: &str) -> String {
    let instances: Vec<String> = csv
        .lines()
        .map(|line| format!("{{\"features\": [{line}]}}"))
        .collect();
    format!("{{\"instances\": [{}]}}", instances.join(", "))
}

/// Asserts that two weight tables agree within `tolerance` in every entry.
pub fn assert_close(actual: &[Vec<f64>], expected: &[Vec<f64>], tolerance: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: number of documents");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a.len(), e.len(), "{what}: document {i} number of topics");
        for (k, (x, y)) in a.iter().zip(e).enumerate() {
            assert!(
                (x - y).abs() <= tolerance,
                "{what}: document {i}, topic {k}: {x} vs {y}"
            );
        }
    }
}
