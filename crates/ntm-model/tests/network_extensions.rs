//! Finite-difference checks of the topic-quality extensions (Dirichlet prior, decoder batch
//! norm and its mix with the plain decoder, head batch norm, theta dropout, KL weight) and their
//! inference-mode behaviour.

use ntm_formats::SparseRows;
use ntm_model::network::{
    Activation, Extensions, Network, NetworkConfig, NetworkError, StepOptions, Workspace,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const V: usize = 9;
const K: usize = 3;
const DOCS: usize = 6;

fn small_batch(rng: &mut ChaCha8Rng, docs: usize) -> SparseRows {
    let mut batch = SparseRows::new(V);
    for _ in 0..docs {
        let mut indices: Vec<u32> = (0..V as u32).filter(|_| rng.random_bool(0.4)).collect();
        if indices.is_empty() {
            indices.push(rng.random_range(0..V as u32));
        }
        let values: Vec<f32> = indices
            .iter()
            .map(|_| rng.random_range(1..4) as f32)
            .collect();
        batch.push_row(&indices, &values);
    }
    batch
}

fn network(extensions: Extensions, rng: &mut ChaCha8Rng) -> Network {
    let config = NetworkConfig {
        feature_dim: V,
        num_topics: K,
        encoder_layers: vec![5, 4],
        activation: Activation::Tanh,
        batch_norm: true,
    };
    let mut network = Network::with_extensions(config, extensions, rng);
    for t in &mut network.params.tensors {
        if !t.decay {
            t.data
                .iter_mut()
                .for_each(|x| *x = rng.random_range(-0.3..0.3));
        }
    }
    network
}

/// `recons + kl_weight * kld` of one training-mode pass, on a copy of the network.
fn loss(network: &Network, batch: &SparseRows, eps: &[f32], options: StepOptions<'_>) -> f64 {
    let mut copy = network.clone();
    let mut grads = copy.zero_grads();
    let sums = copy
        .train_step_with(batch, eps, options, &mut grads, &mut Workspace::new())
        .expect("train step");
    sums.recons + f64::from(options.kl_weight) * sums.kld
}

fn check_gradients(extensions: Extensions, kl_weight: f32) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let network = network(extensions, &mut rng);
    let batch = small_batch(&mut rng, DOCS);
    let eps: Vec<f32> = (0..DOCS * K).map(|_| rng.random_range(-1.5..1.5)).collect();
    // A fixed dropout pattern that drops some proportions and keeps others.
    let uniforms: Vec<f32> = (0..DOCS * K)
        .map(|i| ((i * 7) % 10) as f32 / 10.0)
        .collect();
    let options = StepOptions {
        kl_weight,
        dropout_uniforms: Some(&uniforms),
    };

    let mut grads = network.zero_grads();
    network
        .clone()
        .train_step_with(&batch, &eps, options, &mut grads, &mut Workspace::new())
        .expect("train step");

    let step = 1e-2f32;
    let mut checked = 0;
    for (ti, t) in network.params.tensors.iter().enumerate() {
        for i in 0..t.data.len() {
            let mut plus = network.clone();
            plus.params.tensors[ti].data[i] += step;
            let mut minus = network.clone();
            minus.params.tensors[ti].data[i] -= step;
            let numeric = (loss(&plus, &batch, &eps, options)
                - loss(&minus, &batch, &eps, options))
                / (2.0 * f64::from(step));
            let analytic = f64::from(grads.tensors[ti].data[i]);
            let tolerance = 1e-2 * analytic.abs().max(numeric.abs()) + 2e-3;
            assert!(
                (numeric - analytic).abs() <= tolerance,
                "{extensions:?} kl_weight={kl_weight}: d/d {}[{i}]: analytic {analytic}, numeric {numeric}",
                t.name
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} values checked");
}

#[test]
fn gradients_dirichlet_prior() {
    check_gradients(
        Extensions {
            prior_alpha: 0.5,
            ..Extensions::default()
        },
        1.0,
    );
}

#[test]
fn gradients_decoder_batch_norm() {
    check_gradients(
        Extensions {
            decoder_batch_norm: true,
            ..Extensions::default()
        },
        1.0,
    );
}

#[test]
fn gradients_theta_dropout() {
    check_gradients(
        Extensions {
            theta_dropout: 0.3,
            ..Extensions::default()
        },
        1.0,
    );
}

#[test]
fn gradients_kl_weight() {
    check_gradients(Extensions::default(), 0.25);
}

#[test]
fn gradients_head_batch_norm() {
    check_gradients(
        Extensions {
            head_batch_norm: true,
            ..Extensions::default()
        },
        1.0,
    );
}

#[test]
fn gradients_mixed_decoder() {
    check_gradients(
        Extensions {
            decoder_batch_norm: true,
            plain_decoder_share: 0.4,
            ..Extensions::default()
        },
        1.0,
    );
}

#[test]
fn gradients_plain_decoder_after_anneal() {
    check_gradients(
        Extensions {
            decoder_batch_norm: true,
            plain_decoder_share: 1.0,
            ..Extensions::default()
        },
        1.0,
    );
}

#[test]
fn gradients_all_extensions() {
    check_gradients(
        Extensions {
            prior_alpha: 0.02,
            decoder_batch_norm: true,
            theta_dropout: 0.2,
            head_batch_norm: true,
            plain_decoder_share: 0.7,
        },
        0.5,
    );
}

/// Runs one training step and returns the loss sums and the gradients.
fn step(network: &Network, batch: &SparseRows, eps: &[f32]) -> (f64, Vec<Vec<f32>>) {
    let mut copy = network.clone();
    let mut grads = copy.zero_grads();
    let sums = copy
        .train_step(batch, eps, &mut grads, &mut Workspace::new())
        .expect("train step");
    let grads = grads.tensors.into_iter().map(|t| t.data).collect();
    (sums.total(), grads)
}

#[test]
fn decoder_share_endpoints_match_single_decoders() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let with_bn = network(
        Extensions {
            decoder_batch_norm: true,
            ..Extensions::default()
        },
        &mut rng,
    );
    let batch = small_batch(&mut rng, DOCS);
    let eps: Vec<f32> = (0..DOCS * K).map(|_| rng.random_range(-1.0..1.0)).collect();

    // Share 1: the plain decoder alone, bit for bit, although the decoder's running statistics
    // are still part of the network.
    let mut plain_only = with_bn.clone();
    plain_only.extensions.plain_decoder_share = 1.0;
    let mut without = with_bn.clone();
    without.extensions = Extensions::default();
    let n = without.running.tensors.len();
    without.running.tensors.truncate(n - 2);
    assert_eq!(
        step(&plain_only, &batch, &eps),
        step(&without, &batch, &eps)
    );
    let mut ws = Workspace::new();
    assert_eq!(
        plain_only.eval_loss(&batch, &eps, &mut ws).unwrap(),
        without.eval_loss(&batch, &eps, &mut ws).unwrap()
    );

    // Share 0.25: a quarter of the plain decoder's loss and three quarters of the other's.
    let mut mixed = with_bn.clone();
    mixed.extensions.plain_decoder_share = 0.25;
    let recons = |net: &Network| {
        let mut copy = net.clone();
        let mut grads = copy.zero_grads();
        copy.train_step(&batch, &eps, &mut grads, &mut Workspace::new())
            .unwrap()
            .recons
    };
    let expected = 0.75 * recons(&with_bn) + 0.25 * recons(&plain_only);
    let found = recons(&mixed);
    assert!(
        (found - expected).abs() <= 1e-9 * expected.abs(),
        "mixed {found}, expected {expected}"
    );
}

#[test]
fn plain_decoder_share_needs_the_decoder_batch_norm() {
    let bad = Extensions {
        plain_decoder_share: 0.5,
        ..Extensions::default()
    };
    let message = bad.validate().unwrap_err().to_string();
    assert!(message.contains("plain_decoder_share"), "{message}");
    assert!(message.contains("decoder_batch_norm"), "{message}");
    let out_of_range = Extensions {
        decoder_batch_norm: true,
        plain_decoder_share: 1.5,
        ..Extensions::default()
    };
    assert!(out_of_range.validate().is_err());
}

#[test]
fn head_batch_norm_uses_running_statistics_at_inference() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut net = network(
        Extensions {
            head_batch_norm: true,
            ..Extensions::default()
        },
        &mut rng,
    );
    let names: Vec<String> = net.running.tensors.iter().map(|t| t.name.clone()).collect();
    assert_eq!(
        &names[names.len() - 4..],
        [
            "mu.bn.running_mean",
            "mu.bn.running_var",
            "log_sigma.bn.running_mean",
            "log_sigma.bn.running_var"
        ]
    );
    let batch = small_batch(&mut rng, DOCS);
    let eps: Vec<f32> = (0..DOCS * K).map(|_| rng.random_range(-1.0..1.0)).collect();
    let before = net.running.clone();
    let mut grads = net.zero_grads();
    let mut ws = Workspace::new();
    for _ in 0..3 {
        net.train_step(&batch, &eps, &mut grads, &mut ws).unwrap();
    }
    let n = net.running.tensors.len();
    for ((now, then), name) in net.running.tensors[n - 4..]
        .iter()
        .zip(&before.tensors[n - 4..])
        .zip(&names[n - 4..])
    {
        assert_ne!(now, then, "{name}");
    }

    // In training, mu is normalised over the batch: each topic's mean over the documents is 0.
    let mut weights = Vec::new();
    net.topic_weights(&batch, &mut ws, &mut weights).unwrap();
    assert!(weights.chunks_exact(K).all(|row| {
        let sum: f32 = row.iter().sum();
        (sum - 1.0).abs() < 1e-5
    }));
    // At inference each document is normalised alone, with the running statistics: the
    // weights of a document do not depend on the rest of the batch.
    for r in 0..DOCS {
        let (indices, values) = batch.row(r);
        let mut one = SparseRows::new(V);
        one.push_row(indices, values);
        let mut alone = Vec::new();
        net.topic_weights(&one, &mut ws, &mut alone).unwrap();
        // Products over one row and over the batch may round differently.
        for (a, b) in alone.iter().zip(&weights[r * K..(r + 1) * K]) {
            assert!(
                (a - b).abs() < 1e-6,
                "document {r}: {alone:?} against {weights:?}"
            );
        }
    }
}

#[test]
fn dirichlet_prior_kl_matches_closed_form() {
    let ext = Extensions {
        prior_alpha: 1.0,
        ..Extensions::default()
    };
    let (mean, var) = ext.prior(K);
    // (1/a)(1 - 2/K) + (1/K^2) * K/a with a = 1, K = 3.
    assert_eq!(mean, 0.0);
    assert!((var - (1.0 - 2.0 / 3.0 + 1.0 / 3.0)).abs() < 1e-6, "{var}");
    assert_eq!(Extensions::default().prior(K), (0.0, 1.0));
}

#[test]
fn theta_dropout_off_at_inference() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let with = network(
        Extensions {
            theta_dropout: 0.5,
            ..Extensions::default()
        },
        &mut rng,
    );
    let mut without = with.clone();
    without.extensions = Extensions::default();
    let batch = small_batch(&mut rng, DOCS);
    let eps: Vec<f32> = (0..DOCS * K).map(|_| rng.random_range(-1.0..1.0)).collect();

    let mut grads = with.zero_grads();
    let error = with
        .clone()
        .train_step(&batch, &eps, &mut grads, &mut Workspace::new())
        .unwrap_err();
    assert_eq!(
        error,
        NetworkError::DropoutLength {
            expected: DOCS * K,
            found: None
        }
    );

    let mut ws = Workspace::new();
    let a = with.eval_loss(&batch, &eps, &mut ws).unwrap();
    let b = without.eval_loss(&batch, &eps, &mut ws).unwrap();
    assert_eq!(a, b, "inference must not drop topic proportions");

    // Training with dropout does change the loss.
    let uniforms: Vec<f32> = (0..DOCS * K).map(|i| (i % 2) as f32 * 0.9).collect();
    let options = StepOptions {
        kl_weight: 1.0,
        dropout_uniforms: Some(&uniforms),
    };
    let dropped = with
        .clone()
        .train_step_with(&batch, &eps, options, &mut grads, &mut Workspace::new())
        .unwrap();
    let kept = without
        .clone()
        .train_step(&batch, &eps, &mut grads, &mut Workspace::new())
        .unwrap();
    assert_ne!(dropped.recons, kept.recons);
    assert_eq!(dropped.kld, kept.kld);
}

#[test]
fn decoder_batch_norm_uses_running_statistics_at_inference() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut net = network(
        Extensions {
            decoder_batch_norm: true,
            ..Extensions::default()
        },
        &mut rng,
    );
    let names: Vec<&str> = net
        .running
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["decoder.bn.running_mean", "decoder.bn.running_var"]
    );
    let batch = small_batch(&mut rng, DOCS);
    let eps: Vec<f32> = (0..DOCS * K).map(|_| rng.random_range(-1.0..1.0)).collect();
    let before = net.running.clone();
    let mut grads = net.zero_grads();
    let mut ws = Workspace::new();
    for _ in 0..5 {
        net.train_step(&batch, &eps, &mut grads, &mut ws).unwrap();
    }
    let n = net.running.tensors.len();
    assert_ne!(net.running.tensors[n - 2], before.tensors[n - 2]);
    assert!(net.running.tensors[n - 1]
        .data
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0));

    // Inference normalises each document alone: the batch loss is the sum of the loss of each
    // document scored on its own, which batch statistics would not give.
    let whole = net.eval_loss(&batch, &eps, &mut ws).unwrap();
    let mut parts = 0.0;
    for r in 0..DOCS {
        let (indices, values) = batch.row(r);
        let mut one = SparseRows::new(V);
        one.push_row(indices, values);
        parts += net
            .eval_loss(&one, &eps[r * K..(r + 1) * K], &mut ws)
            .unwrap()
            .recons;
    }
    assert!(
        (whole.recons - parts).abs() < 1e-6 * whole.recons.abs().max(1.0),
        "{} vs {parts}",
        whole.recons
    );
    let train = net
        .clone()
        .train_step(&batch, &eps, &mut grads, &mut ws)
        .unwrap();
    assert_ne!(train.recons, whole.recons);

    // The running statistics survive a round trip through from_parts.
    let rebuilt = Network::from_parts_with_extensions(
        net.config.clone(),
        net.extensions,
        net.params.clone(),
        net.running.clone(),
    )
    .unwrap();
    assert_eq!(rebuilt, net);
    let error = Network::from_parts(net.config.clone(), net.params.clone(), net.running.clone())
        .unwrap_err();
    assert!(
        matches!(error, NetworkError::TensorCount { set: "running", .. }),
        "{error}"
    );
}
