//! Bad requests get a 4xx status with a message that names the position and the value, and
//! the server keeps serving: width and key errors, bad cells, bad RecordIO, content types,
//! `Accept` and the payload limit.

mod common;

use common::{four_block_model, small_model, Reply, TestServer};
use ntm_formats::record::encode_sparse_record;
use ntm_formats::recordio::RecordIoWriter;
use ntm_serve::ServerConfig;

/// A valid four-block document.
const VALID_CSV: &[u8] = b"9,8,4,3,6,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n";

/// Asserts a 400 whose message contains every fragment, then that a valid request still works.
fn assert_rejected(server: &TestServer, reply: Reply, fragments: &[&str], valid: (&str, &[u8])) {
    reply.assert_status(400);
    let message = reply.error_message();
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "message lacks {fragment:?}: {message}"
        );
    }
    server
        .invoke(Some(valid.0), None, valid.1)
        .assert_status(200);
}

#[test]
fn rows_of_wrong_width() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let valid = ("text/csv", VALID_CSV);

    let too_wide = b"1,".repeat(21);
    let reply = server.invoke(Some("text/csv"), None, &too_wide[..too_wide.len() - 1]);
    assert_rejected(
        &server,
        reply,
        &["line 1", "21 columns", "expects 20"],
        valid,
    );

    let too_narrow = b"1,".repeat(19);
    let reply = server.invoke(Some("text/csv"), None, &too_narrow[..too_narrow.len() - 1]);
    assert_rejected(
        &server,
        reply,
        &["line 1", "19 columns", "expects 20"],
        valid,
    );

    let reply = server.invoke(
        Some("application/json"),
        None,
        br#"{"instances": [{"features": [1, 2, 3]}]}"#,
    );
    assert_rejected(
        &server,
        reply,
        &["instance 0", "3 values", "feature_dim is 20"],
        valid,
    );

    let reply = server.invoke(
        Some("application/json"),
        None,
        br#"{"instances": [{"data": {"features": {"keys": [0, 20], "values": [1, 1], "shape": [20]}}}]}"#,
    );
    assert_rejected(&server, reply, &["instance 0", "key 20", "0..=19"], valid);

    let reply = server.invoke(
        Some("application/json"),
        None,
        br#"{"instances": [{"data": {"features": {"keys": [0, 1], "values": [1, 1], "shape": [25]}}}]}"#,
    );
    assert_rejected(
        &server,
        reply,
        &["instance 0", "[25]", "feature_dim is 20"],
        valid,
    );

    let reply = server.invoke(
        Some("application/jsonlines"),
        None,
        b"{\"features\": [1]}\n",
    );
    assert_rejected(
        &server,
        reply,
        &["line 1", "1 values", "feature_dim is 20"],
        valid,
    );
}

#[test]
fn sparse_key_at_feature_dim() {
    let folder = small_model(700);
    let server = TestServer::start(&folder);
    let valid_json = br#"{"instances": [{"data": {"features": {"keys": [0, 3, 699], "values": [1, 2, 1], "shape": [700]}}}]}"#;
    let valid = ("application/json", &valid_json[..]);
    server
        .invoke(Some("application/json"), None, valid_json)
        .assert_status(200);

    let reply = server.invoke(
        Some("application/json"),
        None,
        br#"{"instances": [{"data": {"features": {"keys": [0, 3, 700], "values": [1, 2, 1], "shape": [700]}}}]}"#,
    );
    assert_rejected(&server, reply, &["instance 0", "key 700", "0..=699"], valid);

    // The same in RecordIO: records 0 and 1 are valid, record 2 has key 700, record 3 shape 800.
    let records = |list: &[(&[u64], &[f32], usize)]| {
        let mut writer = RecordIoWriter::new(Vec::new());
        for (keys, values, dim) in list {
            writer
                .write(&encode_sparse_record(keys, values, *dim))
                .unwrap();
        }
        writer.into_inner().unwrap()
    };
    let good: [(&[u64], &[f32], usize); 2] = [
        (&[0, 3, 699], &[1.0, 2.0, 1.0], 700),
        (&[5, 10], &[1.0, 1.0], 700),
    ];
    let reply = server.invoke(
        Some("application/x-recordio-protobuf"),
        Some("application/jsonlines"),
        &records(&good),
    );
    reply.assert_status(200);
    assert_eq!(reply.json_lines_weights().len(), 2);

    let bad_key = [good[0], good[1], (&[0, 3, 700], &[1.0, 2.0, 1.0], 700)];
    let reply = server.invoke(
        Some("application/x-recordio-protobuf"),
        None,
        &records(&bad_key),
    );
    assert_rejected(&server, reply, &["record 2", "key 700", "0..=699"], valid);

    let bad_shape = [good[0], good[1], (&[1, 2], &[1.0, 1.0], 800)];
    let reply = server.invoke(
        Some("application/x-recordio-protobuf"),
        None,
        &records(&bad_shape),
    );
    assert_rejected(
        &server,
        reply,
        &["record 2", "[800]", "feature_dim is 700"],
        valid,
    );
}

#[test]
fn unparseable_csv_cells() {
    let folder = small_model(4);
    let server = TestServer::start(&folder);
    let valid = ("text/csv", &b"1,0,2,0\n"[..]);
    let cases: [(&[u8], &[&str]); 5] = [
        (
            b"1,0,2,0\n(4,[0,2],[1.0,3.0])\n",
            &["line 2, column 1", "(4", "not a number"],
        ),
        (b"1,0,2,0\n1,,2,0\n", &["line 2, column 2", "empty"]),
        (
            b"1,0,2,0\n0,nan,1,0\n0,1,inf,1\n",
            &["line 2, column 2", "nan", "finite"],
        ),
        (b"0,1,inf,1\n", &["line 1, column 3", "inf", "finite"]),
        (b"1,0,-0.5,2\n", &["line 1, column 3", "-0.5", ">= 0"]),
    ];
    for (body, fragments) in cases {
        let reply = server.invoke(Some("text/csv"), None, body);
        assert_rejected(&server, reply, fragments, valid);
    }
}

#[test]
fn negative_and_non_numeric_json_counts() {
    let folder = small_model(4);
    let server = TestServer::start(&folder);
    let valid = ("text/csv", &b"1,0,2,0\n"[..]);
    let cases: [(&str, &[u8], &[&str]); 5] = [
        (
            "application/json",
            br#"{"instances": [{"features": [1, 0, -0.5, 2]}]}"#,
            &["instance 0", "-0.5", ">= 0"],
        ),
        (
            "application/jsonlines",
            b"[1, 0, 2, 0]\n{\"features\": [1, 0, \"x\", 2]}\n",
            &["line 2", "values[2]", "\"x\"", "not a number"],
        ),
        (
            "application/json",
            br#"{"instances": [{"data": {"features": {"keys": [1, 2], "values": [1]}}}]}"#,
            &["instance 0", "2 keys", "1 values"],
        ),
        (
            "application/json",
            br#"{"instances": [{"data": {"features": {"keys": [1.5], "values": [1]}}}]}"#,
            &["instance 0", "keys[0] = 1.5", "non-negative integer"],
        ),
        (
            "application/json",
            br#"{"rows": [[1, 0, 2, 0]]}"#,
            &["\"instances\"", "\"rows\""],
        ),
    ];
    for (content_type, body, fragments) in cases {
        let reply = server.invoke(Some(content_type), None, body);
        assert_rejected(&server, reply, fragments, valid);
    }
}

#[test]
fn bad_recordio_bodies() {
    let folder = small_model(4);
    let server = TestServer::start(&folder);
    let valid = ("text/csv", &b"1,0,2,0\n"[..]);

    let reply = server.invoke(
        Some("application/x-recordio-protobuf"),
        None,
        b"1,0,2,0\n0,1,0,1\n",
    );
    assert_rejected(
        &server,
        reply,
        &["magic", "byte offset 0", "text/csv"],
        valid,
    );

    // A valid header announcing a 100-byte payload, followed by only 10 bytes.
    let mut truncated = Vec::new();
    truncated.extend_from_slice(&0xCED7_230Au32.to_le_bytes());
    truncated.extend_from_slice(&100u32.to_le_bytes());
    truncated.extend_from_slice(&[0; 10]);
    let reply = server.invoke(Some("application/x-recordio-protobuf"), None, &truncated);
    assert_rejected(&server, reply, &["record 0", "truncated", "100"], valid);
}

#[test]
fn duplicate_keys_are_summed() {
    let folder = small_model(6);
    let server = TestServer::start(&folder);
    let body = br#"{"instances": [
        {"data": {"features": {"keys": [2, 2, 5], "values": [1, 1, 3], "shape": [6]}}},
        {"data": {"features": {"keys": [2, 5], "values": [2, 3], "shape": [6]}}},
        {"data": {"features": {"keys": [5, 2], "values": [3, 2], "shape": [6]}}}]}"#;
    let weights = server.weights("application/json", body);
    assert_eq!(weights.len(), 3);
    common::assert_close(
        &weights[..1],
        &weights[1..2],
        1e-6,
        "repeated keys vs canonical",
    );
    common::assert_close(&weights[2..], &weights[1..2], 1e-6, "unsorted vs canonical");

    // The RecordIO path applies the same rule.
    let mut writer = RecordIoWriter::new(Vec::new());
    writer
        .write(&encode_sparse_record(&[2, 2, 5], &[1.0, 1.0, 3.0], 6))
        .unwrap();
    let reply = server.invoke(
        Some("application/x-recordio-protobuf"),
        None,
        &writer.into_inner().unwrap(),
    );
    reply.assert_status(200);
    common::assert_close(
        &reply.json_weights(),
        &weights[1..2],
        1e-6,
        "RecordIO repeated keys",
    );
}

#[test]
fn content_type_and_accept_errors() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);

    // An unsupported or missing Content-Type: 415 listing the supported ones.
    for content_type in [
        Some("application/octet-stream"),
        None,
        Some("text/csv; label_size=3"),
    ] {
        let reply = server.invoke(content_type, Some("application/json"), VALID_CSV);
        reply.assert_status(415);
        let message = reply.error_message();
        for supported in [
            "text/csv",
            "application/json",
            "application/jsonlines",
            "application/x-recordio-protobuf",
        ] {
            assert!(message.contains(supported), "{content_type:?}: {message}");
        }
    }

    // Parameters and case are accepted.
    for content_type in [
        "text/csv; charset=utf-8",
        "TEXT/CSV",
        "text/csv;label_size=0",
    ] {
        let reply = server.invoke(Some(content_type), Some("application/json"), VALID_CSV);
        reply.assert_status(200);
        assert_eq!(reply.json_weights().len(), 1, "{content_type}");
    }

    // A CSV body declared as JSON is a parse error, not a server error.
    let reply = server.invoke(
        Some("application/json"),
        Some("application/json"),
        VALID_CSV,
    );
    reply.assert_status(400);
    assert!(reply.error_message().contains("not valid JSON"));

    // An unsupported Accept: 406 listing the supported response types.
    for accept in ["text/html", "application/json;q=0", "text/csv"] {
        let reply = server.invoke(Some("text/csv"), Some(accept), VALID_CSV);
        reply.assert_status(406);
        let message = reply.error_message();
        for supported in [
            "application/json",
            "application/jsonlines",
            "application/x-recordio-protobuf",
        ] {
            assert!(message.contains(supported), "{accept}: {message}");
        }
    }

    let reply = server.invoke(Some("text/csv"), Some("application/jsonlines"), VALID_CSV);
    reply.assert_status(200);
    assert_eq!(reply.text().lines().count(), 1);
    assert_eq!(reply.json_lines_weights().len(), 1);

    server
        .invoke(Some("text/csv"), None, VALID_CSV)
        .assert_status(200);
}

#[test]
fn empty_body_is_rejected() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let reply = server.invoke(Some("text/csv"), None, b"");
    reply.assert_status(400);
    assert!(reply.error_message().contains("empty"));
}

/// Repeats the valid CSV line until the body has `size` bytes; the last line is cut short
/// when `whole_lines` is false.
fn csv_body(size: usize, whole_lines: bool) -> Vec<u8> {
    let lines = size / VALID_CSV.len();
    let mut body = VALID_CSV.repeat(lines + 1);
    if whole_lines {
        body.truncate(lines * VALID_CSV.len());
    } else {
        body.truncate(size);
    }
    body
}

#[test]
fn payload_limit_default() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let limit = ntm_serve::DEFAULT_MAX_PAYLOAD_BYTES;
    assert_eq!(limit, 6 * 1024 * 1024);

    let reply = server.invoke(Some("text/csv"), None, &csv_body(limit + 1, false));
    reply.assert_status(413);
    let message = reply.error_message();
    assert!(message.contains(&limit.to_string()), "{message}");
    assert!(message.contains("batch transform"), "{message}");

    let under = csv_body(limit, true);
    let lines = under.len() / VALID_CSV.len();
    let reply = server.invoke(Some("text/csv"), Some("application/jsonlines"), &under);
    reply.assert_status(200);
    assert_eq!(reply.json_lines_weights().len(), lines);

    server
        .invoke(Some("text/csv"), None, VALID_CSV)
        .assert_status(200);
}

#[test]
fn payload_limit_configured() {
    let (folder, _) = four_block_model();
    let mut config = ServerConfig::new(folder.clone());
    config.threads = 1;
    config.max_payload_bytes = 1024 * 1024;
    let server = TestServer::start_with(config);

    // Far over the limit, beyond what the server reads and discards: it closes the
    // connection, and the next request still works.
    let huge = csv_body(80 * 1024 * 1024, true);
    let url = format!("http://{}/invocations", server.address());
    let outcome = ureq::post(&url)
        .set("Content-Type", "text/csv")
        .send_bytes(&huge);
    match outcome {
        Err(ureq::Error::Status(413, _)) => {}
        // The server may close the connection before the client has written the whole body.
        Err(ureq::Error::Transport(_)) => {}
        other => panic!("expected 413 or a closed connection, got {other:?}"),
    }

    let reply = server.invoke(Some("text/csv"), None, &csv_body(1024 * 1024 + 1, false));
    reply.assert_status(413);
    assert!(reply.error_message().contains("1048576 bytes"));
    server
        .invoke(Some("text/csv"), None, &csv_body(1024 * 1024, true))
        .assert_status(200);
}

#[test]
fn chunked_body_over_limit() {
    let (folder, _) = four_block_model();
    let mut config = ServerConfig::new(folder.clone());
    config.threads = 1;
    config.max_payload_bytes = 64 * 1024;
    let server = TestServer::start_with(config);
    let url = format!("http://{}/invocations", server.address());
    // A reader body has no Content-Length, so ureq sends it with chunked transfer encoding.
    let body = csv_body(200 * 1024, true);
    let reply = Reply::from(
        ureq::post(&url)
            .set("Content-Type", "text/csv")
            .send(body.as_slice()),
    );
    reply.assert_status(413);
    assert!(reply.error_message().contains("65536 bytes"));
    server
        .invoke(Some("text/csv"), None, VALID_CSV)
        .assert_status(200);
}
