//! `train_step` against one forward and backward pass computed by PyTorch autograd in float64
//! (batch norm off). The fixture stores weights as `[out, in]`; the network stores encoder and
//! head weights as `[in, out]`, so those are transposed on the way in and out.

use ntm_formats::SparseRows;
use ntm_model::network::{Activation, Network, NetworkConfig, Workspace};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

const FIXTURE: &str = include_str!("data/reference-step.json");

fn matrix(value: &Value) -> Vec<Vec<f64>> {
    value
        .as_array()
        .expect("matrix is an array")
        .iter()
        .map(|row| {
            row.as_array()
                .expect("row is an array")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        })
        .collect()
}

fn vector(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("vector is an array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn flatten(m: &[Vec<f64>]) -> Vec<f64> {
    m.iter().flatten().copied().collect()
}

fn transpose(m: &[Vec<f64>]) -> Vec<f64> {
    let (rows, cols) = (m.len(), m[0].len());
    let mut out = Vec::with_capacity(rows * cols);
    for c in 0..cols {
        for row in m {
            out.push(row[c]);
        }
    }
    out
}

/// Reference values for tensor `name` in the network's layout.
fn in_network_layout(tensors: &Value, name: &str) -> Vec<f64> {
    let (key, transposed) = match name {
        "encoder.0.weight" => ("W1", true),
        "encoder.0.bias" => ("b1", false),
        "encoder.1.weight" => ("W2", true),
        "encoder.1.bias" => ("b2", false),
        "mu.weight" => ("Wmu", true),
        "mu.bias" => ("bmu", false),
        "log_sigma.weight" => ("Wsig", true),
        "log_sigma.bias" => ("bsig", false),
        "decoder.weight" => ("Wd", false),
        "decoder.bias" => ("bd", false),
        other => panic!("no reference tensor for {other}"),
    };
    let value = &tensors[key];
    if value[0].is_array() {
        let m = matrix(value);
        if transposed {
            transpose(&m)
        } else {
            flatten(&m)
        }
    } else {
        vector(value)
    }
}

fn assert_close(what: &str, got: f64, expected: f64, scale: f64) {
    let tolerance = 1e-4 * expected.abs() + 1e-5 * scale;
    assert!(
        (got - expected).abs() <= tolerance,
        "{what}: got {got}, expected {expected} (tolerance {tolerance})"
    );
}

fn check_activation(activation: Activation, case_name: &str) {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("fixture parses");
    let dims = |key: &str| fixture[key].as_u64().expect("dimension") as usize;
    let (v, h1, h2, k) = (dims("V"), dims("H1"), dims("H2"), dims("K"));
    let config = NetworkConfig {
        feature_dim: v,
        num_topics: k,
        encoder_layers: vec![h1, h2],
        activation,
        batch_norm: false,
    };
    let mut network = Network::new(config, &mut ChaCha8Rng::seed_from_u64(1));
    for t in &mut network.params.tensors {
        let values = in_network_layout(&fixture["params"], &t.name);
        assert_eq!(values.len(), t.data.len(), "{} size", t.name);
        t.data = values.iter().map(|&x| x as f32).collect();
    }

    let dense = matrix(&fixture["x"]);
    let mut batch = SparseRows::new(v);
    for row in &dense {
        let indices: Vec<u32> = (0..v)
            .filter(|&c| row[c] != 0.0)
            .map(|c| c as u32)
            .collect();
        let values: Vec<f32> = indices.iter().map(|&c| row[c as usize] as f32).collect();
        batch.push_row(&indices, &values);
    }
    let eps: Vec<f32> = flatten(&matrix(&fixture["eps"]))
        .iter()
        .map(|&x| x as f32)
        .collect();

    let case = &fixture["cases"][case_name];
    let mut grads = network.zero_grads();
    let mut ws = Workspace::new();
    let sums = network
        .train_step(&batch, &eps, &mut grads, &mut ws)
        .expect("train step");

    let recons: f64 = vector(&case["recons"]).iter().sum();
    let kld: f64 = vector(&case["kld"]).iter().sum();
    assert_eq!(sums.docs, dense.len());
    assert_close("recons", sums.recons, recons, recons.abs());
    assert_close("kld", sums.kld, kld, kld.abs());
    assert_close(
        "loss",
        sums.total(),
        case["loss"].as_f64().expect("loss"),
        1.0,
    );

    for t in &grads.tensors {
        let expected = in_network_layout(&case["grads"], &t.name);
        let scale = expected.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (i, (&got, &want)) in t.data.iter().zip(&expected).enumerate() {
            assert_close(
                &format!("{case_name} grad {}[{i}]", t.name),
                f64::from(got),
                want,
                scale,
            );
        }
    }

    // Inference without batch norm gives the same encoder, so topic weights are softmax(mu).
    let mut weights = Vec::new();
    network
        .topic_weights(&batch, &mut ws, &mut weights)
        .expect("topic weights");
    let theta_at_mu = flatten(&matrix(&case["theta_at_mu"]));
    for (i, (&got, &want)) in weights.iter().zip(&theta_at_mu).enumerate() {
        assert_close(
            &format!("{case_name} topic weight {i}"),
            f64::from(got),
            want,
            1.0,
        );
    }
}

#[test]
fn reference_step_sigmoid() {
    check_activation(Activation::Sigmoid, "sigmoid");
}

#[test]
fn reference_step_tanh() {
    check_activation(Activation::Tanh, "tanh");
}

#[test]
fn reference_step_relu() {
    check_activation(Activation::Relu, "relu");
}
