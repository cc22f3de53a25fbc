//! One `train_step` on 256 random documents of about 80 distinct words, K = 50, encoder layers
//! (150, 100) (SageMaker's `auto` for K = 50), sigmoid, no batch norm, at V = 2000 and 20000.
//! `train_step+adadelta` adds the AdaDelta update of every parameter, as one training batch costs.
//! Throughput is reported in documents per second. The thread count is rayon's default (one per
//! core) unless `RAYON_NUM_THREADS` sets it.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ntm_formats::SparseRows;
use ntm_model::network::{Activation, Network, NetworkConfig, Workspace};
use ntm_model::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const DOCS: usize = 256;
const WORDS_PER_DOC: usize = 80;
const TOPICS: usize = 50;

fn random_batch(rng: &mut ChaCha8Rng, vocabulary: usize) -> SparseRows {
    let mut batch = SparseRows::new(vocabulary);
    for _ in 0..DOCS {
        let mut indices: Vec<u32> = (0..WORDS_PER_DOC)
            .map(|_| rng.random_range(0..vocabulary as u32))
            .collect();
        indices.sort_unstable();
        indices.dedup();
        let counts: Vec<f32> = indices
            .iter()
            .map(|_| rng.random_range(1..4) as f32)
            .collect();
        batch.push_row(&indices, &counts);
    }
    batch
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(DOCS as u64));
    for vocabulary in [2000, 20_000] {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let config = NetworkConfig {
            feature_dim: vocabulary,
            num_topics: TOPICS,
            encoder_layers: vec![3 * TOPICS, 2 * TOPICS],
            activation: Activation::Sigmoid,
            batch_norm: false,
        };
        let mut network = Network::new(config, &mut rng);
        let batch = random_batch(&mut rng, vocabulary);
        let eps: Vec<f32> = (0..DOCS * TOPICS)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let mut grads = network.zero_grads();
        let mut ws = Workspace::new();
        group.bench_function(format!("V={vocabulary}"), |b| {
            b.iter(|| {
                network
                    .train_step(&batch, &eps, &mut grads, &mut ws)
                    .expect("benchmark inputs match the network")
            })
        });
        // The trainer averages over the batch through the rescaling factor.
        let config = OptimizerConfig {
            kind: OptimizerKind::Adadelta,
            rescale_grad: 1.0 / DOCS as f32,
            ..OptimizerConfig::default()
        };
        let mut optimizer = Optimizer::new(config, &network.params);
        group.bench_function(format!("V={vocabulary}+adadelta"), |b| {
            b.iter(|| {
                network
                    .train_step(&batch, &eps, &mut grads, &mut ws)
                    .expect("benchmark inputs match the network");
                optimizer.step(&mut network.params, &grads);
            })
        });
    }
    group.finish();
}

/// Measures the AdaDelta update alone, over the parameters of the V = 2000 network.
fn adadelta_update(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let config = NetworkConfig {
        feature_dim: 2000,
        num_topics: TOPICS,
        encoder_layers: vec![3 * TOPICS, 2 * TOPICS],
        activation: Activation::Sigmoid,
        batch_norm: false,
    };
    let mut network = Network::new(config, &mut rng);
    let mut grads = network.zero_grads();
    for t in &mut grads.tensors {
        for g in &mut t.data {
            *g = rng.sample::<f32, _>(StandardNormal);
        }
    }
    let mut optimizer = Optimizer::new(OptimizerConfig::default(), &network.params);
    c.bench_function("adadelta/V=2000", |b| {
        b.iter(|| optimizer.step(&mut network.params, &grads))
    });
}

criterion_group!(benches, train_step, adadelta_update);
criterion_main!(benches);
