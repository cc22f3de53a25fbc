//! The endpoints over real HTTP on loopback: every request type with every response type,
//! `/ping`, `/execution-parameters`, request ids and model loading.

mod common;

use common::{assert_close, csv_to_json, four_block_model, TestServer};
use ntm_formats::record::{encode_dense_record, encode_sparse_record};
use ntm_formats::recordio::RecordIoWriter;
use ntm_serve::{Server, ServerConfig};

/// Three documents of the four-block corpus (sports, finance, food) and an empty one.
const CSV_ROWS: &str = "9,8,4,3,6,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n\
                        0,0,0,0,0,5,7,6,6,6,0,0,0,0,0,0,0,0,0,0\n\
                        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,7,8,4,3,8\n\
                        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n";

fn dense_rows() -> Vec<Vec<f32>> {
    CSV_ROWS
        .lines()
        .map(|line| line.split(',').map(|c| c.parse().unwrap()).collect())
        .collect()
}

/// Encodes the same documents in every request format that carries counts.
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let rows = dense_rows();
    let sparse = |row: &[f32]| -> (Vec<u64>, Vec<f32>) {
        row.iter()
            .enumerate()
            .filter(|(_, &c)| c != 0.0)
            .map(|(k, &c)| (k as u64, c))
            .unzip()
    };

    let mut sparse_json = Vec::new();
    let mut mixed_lines = String::new();
    for (i, row) in rows.iter().enumerate() {
        let (keys, values) = sparse(row);
        let instance = serde_json::json!({"data": {"features": {"keys": keys, "values": values, "shape": [20]}}});
        sparse_json.push(instance.clone());
        // JSON Lines may mix forms: alternate dense and sparse lines.
        let line = if i % 2 == 0 {
            serde_json::json!({"features": row})
        } else {
            instance
        };
        mixed_lines.push_str(&line.to_string());
        mixed_lines.push('\n');
    }
    let values_json: Vec<_> = rows
        .iter()
        .map(|row| serde_json::json!({"data": {"features": {"values": row}}}))
        .collect();

    let mut dense_records = RecordIoWriter::new(Vec::new());
    let mut sparse_records = RecordIoWriter::new(Vec::new());
    for row in &rows {
        dense_records.write(&encode_dense_record(row)).unwrap();
        let (keys, values) = sparse(row);
        sparse_records
            .write(&encode_sparse_record(&keys, &values, 20))
            .unwrap();
    }

    vec![
        ("text/csv", CSV_ROWS.as_bytes().to_vec()),
        ("application/json", csv_to_json(CSV_ROWS).into_bytes()),
        (
            "application/json",
            serde_json::json!({ "instances": values_json })
                .to_string()
                .into_bytes(),
        ),
        (
            "application/json",
            serde_json::json!({ "instances": sparse_json })
                .to_string()
                .into_bytes(),
        ),
        ("application/jsonlines", mixed_lines.into_bytes()),
        (
            "application/x-recordio-protobuf",
            dense_records.into_inner().unwrap(),
        ),
        (
            "application/x-recordio-protobuf",
            sparse_records.into_inner().unwrap(),
        ),
    ]
}

#[test]
fn every_request_and_response_type() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let reference = server.weights("text/csv", CSV_ROWS.as_bytes());
    assert_eq!(reference.len(), 4);

    for (content_type, body) in bodies() {
        for accept in [
            "application/json",
            "application/jsonlines",
            "application/x-recordio-protobuf",
        ] {
            let reply = server.invoke(Some(content_type), Some(accept), &body);
            reply.assert_status(200);
            assert_eq!(reply.content_type.as_deref(), Some(accept));
            let weights = match accept {
                "application/json" => reply.json_weights(),
                "application/jsonlines" => reply.json_lines_weights(),
                _ => reply.record_weights(),
            };
            // The JSON forms print the shortest f32 form, and RecordIO carries the f32 itself,
            // so every pair agrees exactly as f32.
            assert_close(
                &weights,
                &reference,
                1e-7,
                &format!("{content_type} -> {accept}"),
            );
        }
    }
}

#[test]
fn default_response_type_is_json() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    for accept in [None, Some("*/*"), Some("application/*")] {
        let reply = server.invoke(Some("text/csv"), accept, CSV_ROWS.as_bytes());
        reply.assert_status(200);
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/json"),
            "{accept:?}"
        );
        assert_eq!(reply.json_weights().len(), 4, "{accept:?}");
    }
}

#[test]
fn json_response_shape() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let reply = server.invoke(
        Some("text/csv"),
        Some("application/json"),
        CSV_ROWS.as_bytes(),
    );
    let json = reply.json();
    let object = json.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["predictions"]);
    for prediction in json["predictions"].as_array().unwrap() {
        let prediction = prediction.as_object().unwrap();
        assert_eq!(prediction.keys().collect::<Vec<_>>(), ["topic_weights"]);
        assert_eq!(prediction["topic_weights"].as_array().unwrap().len(), 4);
    }
}

#[test]
fn topics_follow_the_blocks() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let weights = server.weights("text/csv", CSV_ROWS.as_bytes());
    let top = |row: &[f64]| {
        (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap()
    };
    let tops: Vec<usize> = weights[..3].iter().map(|row| top(row)).collect();
    assert_ne!(
        tops[0], tops[1],
        "sports and finance share a topic: {weights:?}"
    );
    assert_ne!(
        tops[0], tops[2],
        "sports and food share a topic: {weights:?}"
    );
    assert_ne!(
        tops[1], tops[2],
        "finance and food share a topic: {weights:?}"
    );
}

#[test]
fn csv_label_column_is_skipped() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let labelled: String = CSV_ROWS.lines().map(|line| format!("7,{line}\n")).collect();
    let plain = server.weights("text/csv", CSV_ROWS.as_bytes());
    let skipped = server.weights("text/csv; label_size=1", labelled.as_bytes());
    assert_close(&skipped, &plain, 0.0, "label_size=1");
}

#[test]
fn text_plain_counts_with_model_vocabulary() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let text = "Goal, goal! The team and the coach.\r\n\nRain and SNOW, then wind.\n";
    let from_text = server.weights("text/plain; charset=utf-8", text.as_bytes());
    // goal x2, team, coach; an empty line; rain, snow, wind. "The", "and", "then" are
    // stop words or outside the vocabulary.
    let counts = "0,2,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n\
                  0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n\
                  0,0,0,0,0,0,0,0,0,0,1,1,1,0,0,0,0,0,0,0\n";
    let from_counts = server.weights("application/json", csv_to_json(counts).as_bytes());
    assert_eq!(from_text.len(), 3);
    assert_close(&from_text, &from_counts, 0.0, "text/plain vs counts");
}

#[test]
fn text_plain_needs_tokenizer() {
    let folder = common::small_model(20);
    let server = TestServer::start(&folder);
    let reply = server.invoke(Some("text/plain"), None, b"goal team coach\n");
    reply.assert_status(400);
    let message = reply.error_message();
    assert!(message.contains("text/plain"), "{message}");
    assert!(message.contains("no tokenizer settings"), "{message}");
}

#[test]
fn text_plain_invalid_utf8_names_line() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let reply = server.invoke(Some("text/plain"), None, b"goal team\ncaf\xe9 rain\n");
    reply.assert_status(400);
    let message = reply.error_message();
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("UTF-8"), "{message}");
}

#[test]
fn archive_and_folder_give_same_weights() {
    let (folder, archive) = four_block_model();
    let from_folder = TestServer::start(folder).weights("text/csv", CSV_ROWS.as_bytes());
    let from_archive = TestServer::start(archive).weights("text/csv", CSV_ROWS.as_bytes());
    assert_close(&from_archive, &from_folder, 0.0, "model.tar.gz vs folder");

    // A folder that contains model.tar.gz, as `ntm train --output` writes it.
    let holder = tempfile::tempdir().unwrap();
    std::fs::copy(archive, holder.path().join("model.tar.gz")).unwrap();
    let from_holder = TestServer::start(holder.path()).weights("text/csv", CSV_ROWS.as_bytes());
    assert_close(&from_holder, &from_folder, 0.0, "folder with model.tar.gz");
}

#[test]
fn ping_and_execution_parameters() {
    let (folder, _) = four_block_model();
    let mut config = ServerConfig::new(folder.clone());
    config.threads = 3;
    config.max_payload_bytes = 20 * 1024 * 1024;
    let server = TestServer::start_with(config);

    let ping = server.get("/ping");
    ping.assert_status(200);

    let reply = server.get("/execution-parameters");
    reply.assert_status(200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let json = reply.json();
    assert_eq!(json["MaxConcurrentTransforms"], 3);
    assert_eq!(json["BatchStrategy"], "MULTI_RECORD");
    assert_eq!(json["MaxPayloadInMB"], 20);
}

#[test]
fn request_ids_are_unique() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..5 {
        let reply = server.invoke(Some("text/csv"), None, CSV_ROWS.as_bytes());
        reply.assert_status(200);
        ids.insert(reply.request_id.clone().expect("x-request-id on success"));
        let reply = server.invoke(Some("application/octet-stream"), None, b"x");
        reply.assert_status(415);
        // error_message checks that the body names the id of the header.
        reply.error_message();
        ids.insert(reply.request_id.clone().expect("x-request-id on error"));
    }
    assert_eq!(ids.len(), 10, "{ids:?}");
}

#[test]
fn missing_model_stops_server() {
    let missing = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(missing.path().join("absent"));
    config.threads = 1;
    let server = TestServer::start_loading(config);
    let error = server.wait_for_exit().unwrap_err();
    let message = error.to_string();
    assert!(message.contains("cannot load the model"), "{message}");
    assert!(message.contains("absent"), "{message}");
    // The reason the file cannot be opened is part of the message.
    let reason = std::io::Error::from_raw_os_error(2).to_string();
    assert!(message.contains(&reason), "{message}");
}

#[test]
fn busy_port_error_prints_its_cause_once() {
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = occupied.local_addr().expect("local address");
    let (folder, _) = four_block_model();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let error = match runtime.block_on(Server::bind(
        address,
        ServerConfig::new(folder.to_path_buf()),
    )) {
        Ok(_) => panic!("binding a port in use succeeded"),
        Err(error) => error,
    };
    let message = error.to_string();
    assert!(message.contains(&address.to_string()), "{message}");
    assert!(message.contains("os error"), "{message}");
    // The cause is in the message and not chained as well, so a printed chain shows it once.
    assert!(std::error::Error::source(&error).is_none(), "{error:?}");
}

#[test]
fn unknown_path_and_method() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let reply = server.get("/predict");
    reply.assert_status(404);
    let message = reply.error_message();
    assert!(message.contains("/predict"), "{message}");
    assert!(message.contains("POST /invocations"), "{message}");

    let reply = server.get("/invocations");
    reply.assert_status(405);
    let message = reply.error_message();
    assert!(message.contains("GET"), "{message}");
    assert!(message.contains("use POST"), "{message}");
}
