//! Numerical safety, inference-mode properties, reproducibility and input checks of the network.

use ntm_formats::SparseRows;
use ntm_model::network::{Activation, Network, NetworkConfig, NetworkError, Workspace};
use ntm_model::ParamSet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn config(
    v: usize,
    k: usize,
    layers: &[usize],
    activation: Activation,
    batch_norm: bool,
) -> NetworkConfig {
    NetworkConfig {
        feature_dim: v,
        num_topics: k,
        encoder_layers: layers.to_vec(),
        activation,
        batch_norm,
    }
}

fn random_batch(rng: &mut impl Rng, v: usize, docs: usize, nnz: usize) -> SparseRows {
    let mut batch = SparseRows::new(v);
    for _ in 0..docs {
        let mut indices: Vec<u32> = (0..nnz).map(|_| rng.random_range(0..v as u32)).collect();
        indices.sort_unstable();
        indices.dedup();
        let values: Vec<f32> = indices
            .iter()
            .map(|_| rng.random_range(1..5) as f32)
            .collect();
        batch.push_row(&indices, &values);
    }
    batch
}

fn normal_noise(rng: &mut impl Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

#[test]
fn empty_and_huge_documents_stay_finite() {
    for activation in [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::Softplus,
    ] {
        for batch_norm in [false, true] {
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut network =
                Network::new(config(50, 4, &[12, 8], activation, batch_norm), &mut rng);
            let mut batch = SparseRows::new(50);
            batch.push_row(&[], &[]);
            batch.push_row(&[7], &[1e6]);
            batch.push_row(&[1, 2, 49], &[1.0, 3.0, 2.0]);
            let eps = normal_noise(&mut rng, 3 * 4);
            let mut grads = network.zero_grads();
            let mut ws = Workspace::new();
            let sums = network
                .train_step(&batch, &eps, &mut grads, &mut ws)
                .expect("train step");
            let label = format!("{activation} batch_norm={batch_norm}");
            assert!(
                sums.recons.is_finite() && sums.kld.is_finite(),
                "{label}: {sums:?}"
            );
            assert!(grads.all_finite(), "{label}: non-finite gradient");
            assert!(
                network.running.all_finite(),
                "{label}: non-finite running statistics"
            );
            assert_eq!(sums.words, 1e6 + 6.0, "{label}");

            let eval = network.eval_loss(&batch, &eps, &mut ws).expect("eval loss");
            assert!(eval.total().is_finite(), "{label}: eval {eval:?}");
            let mut weights = Vec::new();
            network
                .topic_weights(&batch, &mut ws, &mut weights)
                .expect("topic weights");
            assert!(
                weights.iter().all(|w| w.is_finite()),
                "{label}: topic weights {weights:?}"
            );
        }
    }
}

#[test]
fn empty_document_has_zero_reconstruction() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut network = Network::new(config(20, 3, &[6], Activation::Sigmoid, false), &mut rng);
    let mut batch = SparseRows::new(20);
    batch.push_row(&[], &[]);
    let eps = normal_noise(&mut rng, 3);
    let mut grads = network.zero_grads();
    let sums = network
        .train_step(&batch, &eps, &mut grads, &mut Workspace::new())
        .expect("train step");
    assert_eq!(sums.recons, 0.0);
    assert!(sums.kld > 0.0);
    // No reconstruction gradient reaches the decoder, and x = 0 leaves the first weight untouched.
    for name in ["decoder.weight", "decoder.bias", "encoder.0.weight"] {
        let t = grads.get(name).expect("tensor exists");
        assert!(
            t.data.iter().all(|&g| g == 0.0),
            "{name} gradient is not zero"
        );
    }
}

#[test]
fn topic_weights_are_distributions() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let network = Network::new(config(300, 10, &[30, 20], Activation::Tanh, true), &mut rng);
    let batch = random_batch(&mut rng, 300, 40, 25);
    let mut weights = Vec::new();
    network
        .topic_weights(&batch, &mut Workspace::new(), &mut weights)
        .expect("topic weights");
    assert_eq!(weights.len(), 40 * 10);
    for row in weights.chunks_exact(10) {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() <= 1e-5, "row sums to {sum}");
        assert!(row.iter().all(|&w| w >= 0.0), "negative weight in {row:?}");
    }
}

#[test]
fn inference_is_independent_of_batch() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut network = Network::new(config(200, 8, &[24, 16], Activation::Relu, true), &mut rng);
    let mut ws = Workspace::new();
    let mut grads = network.zero_grads();
    // A few training steps move the running statistics away from their initial values.
    for _ in 0..3 {
        let batch = random_batch(&mut rng, 200, 32, 20);
        let eps = normal_noise(&mut rng, 32 * 8);
        network
            .train_step(&batch, &eps, &mut grads, &mut ws)
            .expect("train step");
    }
    let batch = random_batch(&mut rng, 200, 16, 20);
    let mut together = Vec::new();
    network
        .topic_weights(&batch, &mut ws, &mut together)
        .expect("batch weights");
    for doc in [0, 7, 15] {
        let alone = batch.select(&[doc]);
        let mut single = Vec::new();
        network
            .topic_weights(&alone, &mut ws, &mut single)
            .expect("single weights");
        let expected = &together[doc * 8..(doc + 1) * 8];
        for (a, b) in single.iter().zip(expected) {
            assert!(
                (a - b).abs() <= 1e-6,
                "document {doc}: alone {single:?}, in batch {expected:?}"
            );
        }
    }
}

/// Runs three training steps on a pool of `threads` threads and returns the final network and
/// the last gradients.
fn train_on_pool(threads: usize) -> (Network, ParamSet, Vec<f64>) {
    train_on_pool_with(threads, true, 128)
}

/// [`train_on_pool`] with or without batch norm and with `docs` documents per batch.
fn train_on_pool_with(
    threads: usize,
    batch_norm: bool,
    docs: usize,
) -> (Network, ParamSet, Vec<f64>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut network = Network::new(
            config(3000, 50, &[150, 100], Activation::Sigmoid, batch_norm),
            &mut rng,
        );
        let mut grads = network.zero_grads();
        let mut ws = Workspace::new();
        let mut losses = Vec::new();
        for _ in 0..3 {
            let batch = random_batch(&mut rng, 3000, docs, 80);
            let eps = normal_noise(&mut rng, docs * 50);
            let sums = network
                .train_step(&batch, &eps, &mut grads, &mut ws)
                .expect("train step");
            losses.push(sums.total());
            // A plain SGD step, so later steps see the gradients of earlier ones.
            for (p, g) in network.params.tensors.iter_mut().zip(&grads.tensors) {
                for (w, d) in p.data.iter_mut().zip(&g.data) {
                    *w -= 1e-4 * d;
                }
            }
        }
        (network, grads, losses)
    })
}

#[test]
fn same_thread_count_is_bit_identical() {
    let first = train_on_pool(4);
    let second = train_on_pool(4);
    assert_eq!(first.2, second.2, "losses differ");
    assert!(
        first.0 == second.0,
        "parameters or running statistics differ"
    );
    assert!(first.1 == second.1, "gradients differ");
}

#[test]
fn one_and_two_threads_agree() {
    let one = train_on_pool(1);
    let two = train_on_pool(2);
    assert_eq!(one.2, two.2, "losses differ");
    assert!(one.0 == two.0, "parameters or running statistics differ");
    assert!(one.1 == two.1, "gradients differ");
}

#[test]
fn one_and_two_threads_agree_on_large_batches() {
    // Without batch norm, batches of 256 documents and more run as parallel shards, so the
    // split must not depend on the thread count.
    for docs in [300, 1100] {
        let one_thread = train_on_pool_with(1, false, docs);
        let two_threads = train_on_pool_with(2, false, docs);
        assert_eq!(
            one_thread.2, two_threads.2,
            "losses differ with {docs} documents"
        );
        assert!(
            one_thread.0 == two_threads.0,
            "parameters differ with {docs} documents"
        );
        assert!(
            one_thread.1 == two_threads.1,
            "gradients differ with {docs} documents"
        );
    }
}

#[test]
fn sharded_gradient_equals_summed_parts() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (v, k) = (800, 6);
    let network = Network::new(config(v, k, &[12, 9], Activation::Tanh, false), &mut rng);
    let batch = random_batch(&mut rng, v, 600, 30);
    let eps = normal_noise(&mut rng, 600 * k);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("thread pool");

    // A workspace that already ran a larger batch, so stale shard buffers would show.
    let mut ws = Workspace::new();
    let mut whole = network.zero_grads();
    let bigger = random_batch(&mut rng, v, 900, 30);
    let bigger_eps = normal_noise(&mut rng, 900 * k);
    let sums = pool.install(|| {
        network
            .clone()
            .train_step(&bigger, &bigger_eps, &mut whole, &mut ws)
            .expect("train step");
        network
            .clone()
            .train_step(&batch, &eps, &mut whole, &mut ws)
            .expect("train step")
    });

    // The same documents in parts of 100, each small enough to run as one pass.
    let mut total = network.zero_grads();
    let mut part_grads = network.zero_grads();
    let (mut recons, mut kld) = (0.0f64, 0.0f64);
    for part in 0..6 {
        let rows: Vec<usize> = (part * 100..(part + 1) * 100).collect();
        let sub = batch.select(&rows);
        let sub_eps = &eps[part * 100 * k..(part + 1) * 100 * k];
        let s = network
            .clone()
            .train_step(&sub, sub_eps, &mut part_grads, &mut Workspace::new())
            .expect("train step");
        recons += s.recons;
        kld += s.kld;
        for (t, g) in total.tensors.iter_mut().zip(&part_grads.tensors) {
            for (a, b) in t.data.iter_mut().zip(&g.data) {
                *a += b;
            }
        }
    }
    assert_eq!(sums.docs, 600);
    assert!(
        (sums.recons - recons).abs() <= 1e-9 * recons.abs(),
        "{} vs {recons}",
        sums.recons
    );
    assert!(
        (sums.kld - kld).abs() <= 1e-9 * kld.abs().max(1.0),
        "{} vs {kld}",
        sums.kld
    );
    for (got, expected) in whole.tensors.iter().zip(&total.tensors) {
        let scale = expected
            .data
            .iter()
            .fold(0.0f32, |m, x| m.max(x.abs()))
            .max(1e-6);
        for (i, (a, b)) in got.data.iter().zip(&expected.data).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * scale,
                "{}[{i}]: {a} from the whole batch, {b} from its parts",
                got.name
            );
        }
    }
    let mut present = batch.indices().to_vec();
    present.sort_unstable();
    present.dedup();
    assert_eq!(ws.present_words(), present.as_slice());
}

#[test]
fn stale_gradient_values_are_overwritten() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let network = Network::new(config(500, 5, &[10], Activation::Sigmoid, false), &mut rng);
    let batch = random_batch(&mut rng, 500, 8, 6);
    let eps = normal_noise(&mut rng, 8 * 5);

    let mut clean = network.zero_grads();
    let mut ws = Workspace::new();
    network
        .clone()
        .train_step(&batch, &eps, &mut clean, &mut ws)
        .expect("train step");
    let mut stale = network.zero_grads();
    for t in &mut stale.tensors {
        t.data.fill(7.0);
    }
    network
        .clone()
        .train_step(&batch, &eps, &mut stale, &mut ws)
        .expect("train step");
    assert!(
        clean == stale,
        "gradients depend on the previous buffer contents"
    );

    let present = ws.present_words().to_vec();
    let mut expected: Vec<u32> = batch.indices().to_vec();
    expected.sort_unstable();
    expected.dedup();
    assert_eq!(present, expected);
    let first = clean.get("encoder.0.weight").expect("tensor exists");
    for v in 0..500u32 {
        let row = &first.data[v as usize * 10..(v as usize + 1) * 10];
        if present.binary_search(&v).is_err() {
            assert!(
                row.iter().all(|&g| g == 0.0),
                "row {v} of an absent word is not zero"
            );
        }
    }
}

#[test]
fn running_statistics_follow_momentum() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut network = Network::new(config(40, 3, &[4], Activation::Sigmoid, true), &mut rng);
    let batch = random_batch(&mut rng, 40, 10, 8);
    let eps = normal_noise(&mut rng, 30);
    let mut grads = network.zero_grads();
    network
        .train_step(&batch, &eps, &mut grads, &mut Workspace::new())
        .expect("train step");

    // Recompute the affine output of layer 0 and its biased batch statistics by hand.
    let weight = &network.params.get("encoder.0.weight").expect("weight").data;
    let bias = &network.params.get("encoder.0.bias").expect("bias").data;
    let mut pre = vec![[0.0f64; 4]; 10];
    for (doc, row) in pre.iter_mut().enumerate() {
        let (indices, values) = batch.row(doc);
        for j in 0..4 {
            row[j] = f64::from(bias[j]);
            for (&c, &x) in indices.iter().zip(values) {
                row[j] += f64::from(x) * f64::from(weight[c as usize * 4 + j]);
            }
        }
    }
    let mean_running = &network
        .running
        .get("encoder.0.bn.running_mean")
        .expect("mean")
        .data;
    let var_running = &network
        .running
        .get("encoder.0.bn.running_var")
        .expect("var")
        .data;
    for j in 0..4 {
        let mean = pre.iter().map(|r| r[j]).sum::<f64>() / 10.0;
        let var = pre.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / 10.0;
        assert!(
            (f64::from(mean_running[j]) - 0.1 * mean).abs() < 1e-5,
            "running mean {j}"
        );
        assert!(
            (f64::from(var_running[j]) - (0.9 + 0.1 * var)).abs() < 1e-5,
            "running var {j}"
        );
    }
}

#[test]
fn invalid_inputs_return_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let mut network = Network::new(config(30, 4, &[6], Activation::Sigmoid, false), &mut rng);
    let mut grads = network.zero_grads();
    let mut ws = Workspace::new();
    let batch = random_batch(&mut rng, 30, 2, 3);

    let wrong_width = random_batch(&mut rng, 31, 2, 3);
    let err = network
        .train_step(&wrong_width, &[0.0; 8], &mut grads, &mut ws)
        .unwrap_err();
    assert_eq!(
        err,
        NetworkError::FeatureDim {
            expected: 30,
            found: 31
        }
    );

    let err = network
        .train_step(&batch, &[0.0; 7], &mut grads, &mut ws)
        .unwrap_err();
    assert_eq!(
        err,
        NetworkError::EpsLength {
            expected: 8,
            found: 7
        }
    );

    let mut short = network.zero_grads();
    short.tensors.pop();
    let err = network
        .train_step(&batch, &[0.0; 8], &mut short, &mut ws)
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetworkError::TensorCount {
                set: "gradients",
                ..
            }
        ),
        "{err}"
    );

    let bad = config(30, 0, &[6], Activation::Sigmoid, false);
    let err = Network::from_parts(bad, network.params.clone(), ParamSet::default()).unwrap_err();
    assert!(
        matches!(
            err,
            NetworkError::InvalidConfig {
                field: "num_topics",
                ..
            }
        ),
        "{err}"
    );

    let mut renamed = network.params.clone();
    renamed.tensors[0].name = "encoder.0.weights".into();
    let err =
        Network::from_parts(network.config.clone(), renamed, ParamSet::default()).unwrap_err();
    assert!(
        matches!(err, NetworkError::TensorName { index: 0, .. }),
        "{err}"
    );

    let rebuilt = Network::from_parts(
        network.config.clone(),
        network.params.clone(),
        ParamSet::default(),
    )
    .expect("matching parts");
    assert!(rebuilt == network);
}

#[test]
fn negative_running_variance_is_rejected() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let network = Network::new(config(30, 4, &[6], Activation::Sigmoid, true), &mut rng);
    let mut running = network.running.clone();
    running.tensors[1].data[2] = -1.0;
    let err =
        Network::from_parts(network.config.clone(), network.params.clone(), running).unwrap_err();
    assert!(
        matches!(err, NetworkError::InvalidRunningVariance { index: 2, .. }),
        "{err}"
    );
}

#[test]
fn initialisation_ranges_and_defaults() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let network = Network::new(
        config(400, 10, &[30, 20], Activation::Sigmoid, true),
        &mut rng,
    );
    let limit = (6.0f32 / 430.0).sqrt();
    let first = network.params.get("encoder.0.weight").expect("weight");
    assert_eq!(first.shape, vec![400, 30]);
    assert!(first.decay);
    assert!(first.data.iter().all(|w| w.abs() <= limit));
    let max = first.data.iter().fold(0.0f32, |m, w| m.max(w.abs()));
    assert!(max > 0.9 * limit, "weights do not fill the Glorot range");
    let decoder = network.params.get("decoder.weight").expect("decoder");
    assert_eq!(decoder.shape, vec![400, 10]);
    // The decoder weight is uniform on [-sqrt(3), sqrt(3)] whatever the vocabulary size, so its
    // variance is 1 (sample variance of 4,000 draws within 0.1 of it).
    let decoder_limit = 3.0f32.sqrt();
    assert!(decoder.data.iter().all(|w| w.abs() <= decoder_limit));
    let variance = decoder
        .data
        .iter()
        .map(|w| f64::from(*w).powi(2))
        .sum::<f64>()
        / decoder.data.len() as f64;
    assert!(
        (variance - 1.0).abs() < 0.1,
        "decoder weight variance {variance}"
    );
    assert!(network
        .params
        .get("encoder.1.bn.gamma")
        .expect("gamma")
        .data
        .iter()
        .all(|&g| g == 1.0));
    assert!(!network.params.get("encoder.1.bias").expect("bias").decay);
    assert!(network
        .running
        .get("encoder.1.bn.running_var")
        .expect("var")
        .data
        .iter()
        .all(|&v| v == 1.0));
}

#[test]
fn kl_restores_log_sigma_above_clamp() {
    // A log_sigma far above the clamp: the loss must rise as it grows further, and its gradient
    // must point back down, one unit per document and topic.
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let mut network = Network::new(config(40, 3, &[8], Activation::Sigmoid, false), &mut rng);
    for w in &mut network
        .params
        .get_mut("log_sigma.weight")
        .expect("weight")
        .data
    {
        *w = 0.0;
    }
    let batch = random_batch(&mut rng, 40, 6, 10);
    let eps = normal_noise(&mut rng, 6 * 3);
    let mut ws = Workspace::new();
    let mut step = |network: &mut Network, bias: f32| {
        network
            .params
            .get_mut("log_sigma.bias")
            .expect("bias")
            .data
            .fill(bias);
        let mut grads = network.zero_grads();
        let sums = network
            .train_step(&batch, &eps, &mut grads, &mut ws)
            .expect("train step");
        assert!(sums.kld.is_finite(), "{sums:?}");
        assert!(sums.recons.is_finite(), "{sums:?}");
        let g = grads.get("log_sigma.bias").expect("gradient").data.clone();
        (sums.kld + sums.recons, g)
    };
    let (at_12, grad_12) = step(&mut network, 12.0);
    let (at_14, grad_14) = step(&mut network, 14.0);
    // 6 documents x 3 topics, each adding 2 to kld over the 2 units.
    assert!(
        ((at_14 - at_12) - 36.0).abs() < 1e-6 * at_12.abs(),
        "loss at 12: {at_12}, at 14: {at_14}"
    );
    for g in [grad_12, grad_14] {
        assert!(g.iter().all(|&g| g == 6.0), "gradient {g:?}");
    }

    // Below the lower clamp the linear term still pulls log_sigma back up.
    let (_, grad_low) = step(&mut network, -12.0);
    assert!(grad_low.iter().all(|&g| g == -6.0), "gradient {grad_low:?}");
}
