//! Properties of the returned topic weights: a document's weights do not depend on the rest of
//! the request, on repetition or on the thread count, and every row is a probability vector.

mod common;

use common::{assert_close, four_block_model, TestServer};
use ntm_serve::ServerConfig;

/// Deterministic pseudo-random documents of the four-block vocabulary, some of them empty.
fn documents(count: usize) -> Vec<String> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let counts: Vec<String> = (0..20)
                .map(|_| {
                    let draw = next() % 10;
                    if draw < 6 {
                        "0".to_owned()
                    } else {
                        (draw - 5).to_string()
                    }
                })
                .collect();
            if next() % 13 == 0 {
                vec!["0"; 20].join(",")
            } else {
                counts.join(",")
            }
        })
        .collect()
}

fn csv(lines: &[String]) -> Vec<u8> {
    let mut body = lines.join("\n");
    body.push('\n');
    body.into_bytes()
}

#[test]
fn weights_do_not_depend_on_batch() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let docs = documents(2500);

    let alone: Vec<Vec<f64>> = docs[..40]
        .iter()
        .map(|doc| {
            let weights = server.weights("text/csv", &csv(std::slice::from_ref(doc)));
            assert_eq!(weights.len(), 1);
            weights.into_iter().next().unwrap()
        })
        .collect();

    // Batches of several sizes, including more rows than one pass of the network scores.
    for size in [2, 7, 100, 1500, 2500] {
        let batch = server.weights("text/csv", &csv(&docs[..size]));
        assert_eq!(batch.len(), size, "one prediction per row, batch of {size}");
        let checked = size.min(alone.len());
        assert_close(
            &batch[..checked],
            &alone[..checked],
            1e-6,
            &format!("batch of {size}"),
        );
    }

    // The same documents in reverse order and at other positions.
    let mut reversed: Vec<String> = docs[..40].to_vec();
    reversed.reverse();
    let mut batch = server.weights("text/csv", &csv(&reversed));
    batch.reverse();
    assert_close(&batch, &alone, 1e-6, "reversed batch");

    let mut shifted: Vec<String> = docs[1000..1100].to_vec();
    shifted.extend_from_slice(&docs[..40]);
    let batch = server.weights("text/csv", &csv(&shifted));
    assert_close(&batch[100..], &alone, 1e-6, "after 100 other rows");
}

#[test]
fn repeated_calls_are_identical() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let body = csv(&documents(300));
    let first = server.invoke(Some("text/csv"), Some("application/json"), &body);
    first.assert_status(200);
    for _ in 0..5 {
        let again = server.invoke(Some("text/csv"), Some("application/json"), &body);
        assert_eq!(again.body, first.body);
    }
}

#[test]
fn thread_count_does_not_change_weights() {
    let (folder, _) = four_block_model();
    let body = csv(&documents(2000));
    let mut results = Vec::new();
    for threads in [1, 2, 4] {
        let mut config = ServerConfig::new(folder.clone());
        config.threads = threads;
        let server = TestServer::start_with(config);
        results.push(server.weights("text/csv", &body));
    }
    assert_close(&results[1], &results[0], 1e-6, "2 threads vs 1");
    assert_close(&results[2], &results[0], 1e-6, "4 threads vs 1");
}

#[test]
fn every_row_is_a_distribution() {
    let (folder, _) = four_block_model();
    let server = TestServer::start(folder);
    let mut docs = documents(500);
    docs.push(vec!["0"; 20].join(","));
    docs.push(vec!["1000000"; 20].join(","));
    docs.push(format!("1e30{}", ",0".repeat(19)));
    docs.push(vec!["1e12"; 20].join(","));
    docs.push(vec!["0.001"; 20].join(","));
    let weights = server.weights("text/csv", &csv(&docs));
    assert_eq!(weights.len(), docs.len());
    for (i, row) in weights.iter().enumerate() {
        assert_eq!(row.len(), 4, "document {i}");
        for &w in row {
            assert!(w.is_finite(), "document {i}: weight {w}");
            assert!(w >= 0.0, "document {i}: weight {w}");
        }
        let sum: f64 = row.iter().sum();
        assert!(
            (sum - 1.0).abs() < 1e-5,
            "document {i}: weights sum to {sum}"
        );
    }
}

#[test]
fn counts_beyond_model_range_are_rejected() {
    // Counts near the f32 maximum overflow the encoder's first layer. The server must either
    // return finite weights or reject the document by position; it must never send NaN.
    let folder = common::small_model_with(20, "relu");
    let server = TestServer::start(&folder);
    let mut docs = documents(3);
    docs.push(vec!["3e38"; 20].join(","));
    let reply = server.invoke(Some("text/csv"), Some("application/json"), &csv(&docs));
    match reply.status {
        200 => {
            for row in reply.json_weights() {
                let sum: f64 = row.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "weights sum to {sum}");
            }
        }
        400 => {
            let message = reply.error_message();
            assert!(message.contains("document 3"), "{message}");
            assert!(message.contains("too large"), "{message}");
        }
        status => panic!("unexpected status {status}: {}", reply.text()),
    }
}

#[test]
fn concurrent_requests_and_ping() {
    let (folder, _) = four_block_model();
    let mut config = ServerConfig::new(folder.clone());
    config.threads = 2;
    let server = TestServer::start_with(config);
    let docs = documents(64);
    let expected = server.weights("text/csv", &csv(&docs));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|client| {
                let server = &server;
                let docs = &docs;
                let expected = &expected;
                scope.spawn(move || {
                    for round in 0..10 {
                        let i = (client * 10 + round) % docs.len();
                        let weights =
                            server.weights("text/csv", &csv(std::slice::from_ref(&docs[i])));
                        assert_close(&weights, &expected[i..=i], 1e-6, "concurrent request");
                        server.get("/ping").assert_status(200);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("client thread");
        }
    });
}
