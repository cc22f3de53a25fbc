//! The training loop on a small synthetic corpus with known topics.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ntm_formats::SparseRows;
use ntm_model::batches::{Channel, RowStream, StreamError};
use ntm_model::hyperparams::{Hyperparameters, RestartSelection};
use ntm_model::network::{LossSums, Network, NetworkError, StepOptions};
use ntm_model::trainer::{
    evaluate, evaluate_channel, train, train_with, TrainConfig, TrainControl, TrainData,
    TrainError, TrainOutcome,
};
use ntm_model::{Backend, CpuBackend, Optimizer, ParamSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BLOCKS: usize = 4;
const BLOCK_WORDS: usize = 5;
const VOCAB: usize = BLOCKS * BLOCK_WORDS;

/// Documents that each draw 30 tokens from one block of 5 words: 4 clear topics.
fn block_corpus(docs: usize, seed: u64) -> SparseRows {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = SparseRows::new(VOCAB);
    for d in 0..docs {
        let block = d % BLOCKS;
        let mut counts = [0.0f32; BLOCK_WORDS];
        for _ in 0..30 {
            counts[rng.random_range(0..BLOCK_WORDS)] += 1.0;
        }
        let (mut ids, mut values) = (Vec::new(), Vec::new());
        for (w, &c) in counts.iter().enumerate() {
            if c > 0.0 {
                ids.push((block * BLOCK_WORDS + w) as u32);
                values.push(c);
            }
        }
        rows.push_row(&ids, &values);
    }
    rows
}

fn config(epochs: usize, seed: u64) -> TrainConfig {
    let mut hp = Hyperparameters::new(VOCAB, BLOCKS).expect("valid hyperparameters");
    hp.epochs = epochs;
    hp.mini_batch_size = 32;
    hp.seed = seed;
    TrainConfig::from_hyperparameters(&hp, "algo-1")
}

fn run(
    config: &TrainConfig,
    train_rows: &SparseRows,
    validation: Option<&SparseRows>,
) -> ntm_model::trainer::TrainOutcome {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    pool.install(|| {
        let data = TrainData::in_memory(train_rows, validation, None);
        train(config, data, TrainControl::default())
    })
    .expect("training succeeds")
}

#[test]
fn training_loss_falls() {
    let rows = block_corpus(160, 1);
    let outcome = run(&config(20, 0), &rows, None);
    let first = outcome.history.first().expect("an epoch").train.total;
    let last = outcome.history.last().expect("an epoch").train.total;
    assert!(last < first, "loss rose from {first} to {last}");
    assert!(outcome
        .history
        .iter()
        .all(|e| e.train.total.is_finite() && e.train.kld >= 0.0));
}

#[test]
fn same_seed_gives_identical_model() {
    let rows = block_corpus(96, 2);
    let a = run(&config(3, 7), &rows, None);
    let b = run(&config(3, 7), &rows, None);
    assert_eq!(a.network.params, b.network.params);
    let c = run(&config(3, 8), &rows, None);
    assert_ne!(a.network.params, c.network.params);
}

#[test]
fn best_epoch_weights_are_kept() {
    let rows = block_corpus(96, 3);
    let validation = block_corpus(40, 4);
    let outcome = run(&config(8, 0), &rows, Some(&validation));
    let best = outcome.best_epoch.expect("a best epoch");
    let losses: Vec<f64> = outcome
        .history
        .iter()
        .map(|e| e.validation.expect("validation loss").total)
        .collect();
    let min = losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(
        losses[best - 1],
        min,
        "best epoch {best} is not the lowest validation loss in {losses:?}"
    );
}

#[test]
fn sub_sample_trains_on_a_share_per_epoch() {
    let rows = block_corpus(100, 5);
    let mut cfg = config(2, 0);
    cfg.sub_sample = 0.3;
    let outcome = run(&cfg, &rows, None);
    assert_eq!(outcome.history.len(), 2);
    // ceil(0.3 * 100) documents per epoch.
    assert!(
        outcome.history.iter().all(|e| e.documents == 30),
        "{:?}",
        outcome.history
    );
    let full = run(&config(2, 0), &rows, None);
    assert_ne!(outcome.network.params, full.network.params);
}

#[test]
fn patience_stops_on_a_flat_loss() {
    let rows = block_corpus(64, 6);
    let mut cfg = config(50, 0);
    cfg.num_patience_epochs = 1;
    cfg.tolerance = 0.1;
    let outcome = run(&cfg, &rows, None);
    assert!(outcome.history.len() < 50, "early stopping never fired");
}

#[test]
fn stop_request_before_first_epoch_writes_no_model() {
    let rows = block_corpus(64, 7);
    let data = TrainData::in_memory(&rows, None, None);
    let control = TrainControl {
        stop: Some(Arc::new(AtomicBool::new(true))),
        ..TrainControl::default()
    };
    let result = train(&config(3, 0), data, control);
    assert!(
        matches!(result, Err(TrainError::StoppedBeforeFirstEpoch)),
        "{result:?}"
    );
}

#[test]
fn wrong_width_is_rejected_before_training() {
    let rows = SparseRows::new(VOCAB + 1);
    let data = TrainData::in_memory(&rows, None, None);
    let error = train(&config(1, 0), data, TrainControl::default()).expect_err("width mismatch");
    let message = error.to_string();
    assert!(
        message.contains("21") && message.contains("20"),
        "{message}"
    );
}

#[test]
fn recovers_the_four_blocks() {
    let rows = block_corpus(160, 8);
    let outcome = run(&config(60, 0), &rows, None);
    let top = ntm_eval::top_word_ids(outcome.network.decoder_weight(), VOCAB, BLOCKS, BLOCK_WORDS);
    let matched = top
        .iter()
        .filter(|ids| {
            let block = ids[0] as usize / BLOCK_WORDS;
            ids.iter().all(|&w| w as usize / BLOCK_WORDS == block)
        })
        .count();
    assert!(matched >= 3, "only {matched} topics match a block: {top:?}");
}

/// A channel streamed from memory in chunks of `chunk_rows`, counting its passes; it fails
/// in pass `fail_in_pass` when that is set.
struct ChunkedStream {
    rows: SparseRows,
    chunk_rows: usize,
    next_row: usize,
    passes: usize,
    fail_in_pass: Option<usize>,
}

impl ChunkedStream {
    fn new(rows: SparseRows, chunk_rows: usize) -> Self {
        Self {
            rows,
            chunk_rows,
            next_row: 0,
            passes: 0,
            fail_in_pass: None,
        }
    }
}

impl RowStream for ChunkedStream {
    fn start_pass(&mut self) -> Result<(), StreamError> {
        self.passes += 1;
        self.next_row = 0;
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Option<SparseRows>, StreamError> {
        if self.fail_in_pass == Some(self.passes) && self.next_row > 0 {
            return Err("record 9 of part-2.rec is truncated".into());
        }
        let end = (self.next_row + self.chunk_rows).min(self.rows.n_rows());
        if self.next_row >= end {
            return Ok(None);
        }
        let chosen: Vec<usize> = (self.next_row..end).collect();
        self.next_row = end;
        Ok(Some(self.rows.select(&chosen)))
    }

    fn documents(&self) -> Option<usize> {
        Some(self.rows.n_rows())
    }
}

fn run_streamed(
    config: &TrainConfig,
    stream: &mut ChunkedStream,
) -> Result<TrainOutcome, TrainError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    pool.install(|| {
        let data = TrainData {
            train: Channel::Stream(stream),
            validation: None,
            test: None,
        };
        train(config, data, TrainControl::default())
    })
}

#[test]
fn streamed_epoch_uses_every_document_once() {
    let rows = block_corpus(203, 3);
    let mut config = config(3, 5);
    config.shuffle_buffer = 40;
    let mut stream = ChunkedStream::new(rows, 17);
    let outcome = run_streamed(&config, &mut stream).expect("training succeeds");
    assert_eq!(stream.passes, 3, "one pass per epoch");
    for epoch in &outcome.history {
        assert_eq!(epoch.documents, 203, "epoch {}", epoch.epoch);
    }
    let losses: Vec<f64> = outcome.history.iter().map(|e| e.train.total).collect();
    assert!(losses[2] < losses[0], "the loss falls: {losses:?}");
}

#[test]
fn streamed_training_is_deterministic() {
    let rows = block_corpus(150, 4);
    let mut config = config(2, 8);
    config.shuffle_buffer = 32;
    let first = run_streamed(&config, &mut ChunkedStream::new(rows.clone(), 9)).expect("first run");
    let second =
        run_streamed(&config, &mut ChunkedStream::new(rows.clone(), 9)).expect("second run");
    assert!(
        first.network.params == second.network.params,
        "same seed, same weights"
    );
    config.seed = 9;
    let other = run_streamed(&config, &mut ChunkedStream::new(rows, 9)).expect("other seed");
    assert!(
        first.network.params != other.network.params,
        "another seed, other weights"
    );
}

#[test]
fn streamed_sub_sample_keeps_a_share() {
    let rows = block_corpus(400, 6);
    let mut config = config(2, 1);
    config.sub_sample = 0.5;
    let mut stream = ChunkedStream::new(rows, 64);
    let outcome = run_streamed(&config, &mut stream).expect("training succeeds");
    for epoch in &outcome.history {
        assert!(
            (150..=250).contains(&epoch.documents),
            "epoch {} trained on {} of 400 documents",
            epoch.epoch,
            epoch.documents
        );
    }
}

#[test]
fn streamed_read_error_names_channel() {
    let rows = block_corpus(100, 2);
    let mut stream = ChunkedStream::new(rows, 10);
    stream.fail_in_pass = Some(2);
    let error = run_streamed(&config(3, 0), &mut stream).expect_err("the second pass fails");
    let message = error.to_string();
    assert!(
        matches!(
            error,
            TrainError::Input {
                channel: "train",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(message.contains("part-2.rec"), "{message}");
    // The reader's error is in the message only, so a printed chain of causes shows it once.
    assert!(std::error::Error::source(&error).is_none(), "{error:?}");
}

#[test]
fn streamed_chunk_of_wrong_width_is_rejected() {
    let mut stream = ChunkedStream::new(SparseRows::new(VOCAB + 3), 10);
    stream.rows.push_row(&[1], &[2.0]);
    let error = run_streamed(&config(1, 0), &mut stream).expect_err("width mismatch");
    assert!(
        matches!(
            error,
            TrainError::FeatureDim {
                channel: "train",
                found: 23,
                expected: 20
            }
        ),
        "{error:?}"
    );
}

#[test]
fn streamed_evaluation_equals_in_memory() {
    let rows = block_corpus(97, 12);
    let outcome = run(&config(2, 3), &rows, None);
    let mut backend = CpuBackend::new();
    let in_memory = evaluate(&outcome.network, &rows, 32, 3, &mut backend).expect("in memory");
    let mut stream = ChunkedStream::new(rows, 7);
    let mut channel = Channel::Stream(&mut stream);
    let streamed = evaluate_channel(&outcome.network, &mut channel, 32, 3, &mut backend, None)
        .expect("streamed");
    assert_eq!(in_memory.total.to_bits(), streamed.total.to_bits());
    assert_eq!(in_memory.kld.to_bits(), streamed.kld.to_bits());
}

/// A backend that hands every call to the CPU backend and counts the calls.
#[derive(Default)]
struct CountingBackend {
    inner: CpuBackend,
    steps: usize,
    updates: usize,
    evaluations: usize,
    documents: usize,
}

impl Backend for CountingBackend {
    fn name(&self) -> &'static str {
        "counting"
    }

    fn train_step(
        &mut self,
        network: &mut Network,
        batch: &SparseRows,
        eps: &[f32],
        options: StepOptions<'_>,
        grads: &mut ParamSet,
    ) -> Result<LossSums, NetworkError> {
        self.steps += 1;
        self.documents += batch.n_rows();
        self.inner.train_step(network, batch, eps, options, grads)
    }

    fn eval_loss(
        &mut self,
        network: &Network,
        batch: &SparseRows,
        eps: &[f32],
    ) -> Result<LossSums, NetworkError> {
        self.evaluations += 1;
        self.inner.eval_loss(network, batch, eps)
    }

    fn topic_weights(
        &mut self,
        network: &Network,
        batch: &SparseRows,
        out: &mut Vec<f32>,
    ) -> Result<(), NetworkError> {
        self.inner.topic_weights(network, batch, out)
    }

    fn update(&mut self, optimizer: &mut Optimizer, params: &mut ParamSet, grads: &ParamSet) {
        self.updates += 1;
        self.inner.update(optimizer, params, grads);
    }
}

#[test]
fn backend_runs_every_step() {
    let rows = block_corpus(100, 4);
    let validation = block_corpus(40, 5);
    let mut config = config(3, 2);
    config.num_patience_epochs = 4;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    let mut backend = CountingBackend::default();
    let through_backend = pool
        .install(|| {
            let data = TrainData::in_memory(&rows, Some(&validation), None);
            train_with(&config, data, TrainControl::default(), &mut backend)
        })
        .expect("training succeeds");
    // 100 documents in batches of 32 make 4 batches per epoch. Validation is scored once per
    // epoch, in 2 batches.
    assert_eq!(backend.steps, 3 * 4);
    assert_eq!(backend.updates, backend.steps);
    assert_eq!(backend.documents, 3 * 100);
    assert_eq!(backend.evaluations, 3 * 2);

    let direct = run(&config, &rows, Some(&validation));
    assert!(
        direct.network == through_backend.network,
        "the CPU backend behind the seam changed the model"
    );
}

fn with_restarts(epochs: usize, seed: u64, restarts: usize) -> TrainConfig {
    let mut cfg = config(epochs, seed);
    cfg.restarts = restarts;
    cfg
}

fn run_with(
    config: &TrainConfig,
    rows: &SparseRows,
    control: TrainControl,
) -> Result<TrainOutcome, TrainError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    pool.install(|| train(config, TrainData::in_memory(rows, None, None), control))
}

#[test]
fn restarts_keep_the_best_scored_run() {
    let rows = block_corpus(96, 8);
    let scores = [0.1, 0.5, 0.2];
    let mut calls = 0usize;
    let control = TrainControl {
        score_restart: Some(Box::new(move |_network, _channel| {
            calls += 1;
            Ok(scores[calls - 1])
        })),
        ..TrainControl::default()
    };
    let kept = run_with(&with_restarts(4, 10, 3), &rows, control).expect("training succeeds");
    assert_eq!(kept.seed, 11);
    let single = run(&config(4, 11), &rows, None);
    assert_eq!(kept.network.params, single.network.params);
    assert_eq!(kept.history.len(), single.history.len());
}

#[test]
fn restarts_without_scorer_keep_lowest_loss() {
    let rows = block_corpus(96, 9);
    let kept = run(&with_restarts(3, 20, 3), &rows, None);
    let best_loss = |outcome: &TrainOutcome| {
        let epoch = outcome.best_epoch.expect("a best epoch");
        outcome.history[epoch - 1].train.total
    };
    let singles: Vec<_> = (20..23)
        .map(|seed| run(&config(3, seed), &rows, None))
        .collect();
    let lowest = singles
        .iter()
        .min_by(|a, b| best_loss(a).total_cmp(&best_loss(b)))
        .expect("three runs");
    assert_eq!(kept.seed, lowest.seed);
    assert_eq!(kept.network.params, lowest.network.params);
}

#[test]
fn one_restart_is_a_plain_run() {
    let rows = block_corpus(64, 10);
    let control = TrainControl {
        score_restart: Some(Box::new(|_network, _channel| {
            panic!("a single run is not scored")
        })),
        ..TrainControl::default()
    };
    let once = run_with(&with_restarts(3, 5, 1), &rows, control).expect("training succeeds");
    let plain = run(&config(3, 5), &rows, None);
    assert_eq!(once.seed, 5);
    assert_eq!(once.network.params, plain.network.params);
}

#[test]
fn later_restart_stop_keeps_finished_runs() {
    let rows = block_corpus(64, 11);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let control = TrainControl {
        stop: Some(stop),
        // The first run's score requests the stop, so the second run ends before its first epoch.
        score_restart: Some(Box::new(move |_network, _channel| {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(0.3)
        })),
        ..TrainControl::default()
    };
    let kept = run_with(&with_restarts(3, 30, 3), &rows, control).expect("the first run is kept");
    assert_eq!(kept.seed, 30);
    assert!(kept.interrupted);
    assert!(!kept.history.is_empty());
}

fn decoder_column(network: &Network, topic: usize) -> Vec<f32> {
    let k = network.config.num_topics;
    network
        .decoder_weight()
        .iter()
        .skip(topic)
        .step_by(k)
        .copied()
        .collect()
}

#[test]
fn topic_selection_copies_chosen_columns() {
    let rows = block_corpus(96, 12);
    let mut cfg = with_restarts(4, 40, 3);
    cfg.restart_selection = RestartSelection::Topics;

    // Run 1 gives two topics, runs 0 and 2 one each.
    let picks = vec![(1, 3), (0, 2), (1, 0), (2, 1)];
    let given = picks.clone();
    let control = TrainControl {
        score_restart: Some(Box::new(|_network, _channel| Ok(0.0))),
        select_topics: Some(Box::new(move |networks, _channel| {
            assert_eq!(networks.len(), 3);
            Ok(given.clone())
        })),
        ..TrainControl::default()
    };
    let kept = run_with(&cfg, &rows, control).expect("training succeeds");
    let singles: Vec<_> = (40..43)
        .map(|seed| run(&config(4, seed), &rows, None))
        .collect();

    // The run that gave the most topics is the refit's start, and its topics keep their columns.
    // The other topics fill the free columns in the order chosen.
    assert_eq!(kept.seed, 41);
    let expected = [(41, 0), (40, 2), (42, 1), (41, 3)];
    assert_eq!(kept.topic_sources.as_deref(), Some(&expected[..]));
    for (column, &(seed, topic)) in expected.iter().enumerate() {
        let source = &singles[(seed - 40) as usize].network;
        assert_eq!(
            decoder_column(&kept.network, column),
            decoder_column(source, topic),
            "column {column} is not topic {topic} of the run with seed {seed}"
        );
    }

    // The refit trained the encoder: its epochs follow the start run's in the history.
    let start_epochs = singles[1].history.len();
    assert!(kept.history.len() > start_epochs);
    assert_eq!(kept.history[start_epochs].epoch, start_epochs + 1);
    assert_ne!(
        kept.network.params.get("encoder.0.weight"),
        singles[1].network.params.get("encoder.0.weight")
    );
    assert!(kept.best_epoch.expect("a best epoch") > start_epochs);
}

#[test]
fn invalid_topic_selection_is_an_error() {
    let rows = block_corpus(64, 13);
    let mut cfg = with_restarts(2, 50, 2);
    cfg.restart_selection = RestartSelection::Topics;
    let control = TrainControl {
        select_topics: Some(Box::new(|_networks, _channel| {
            Ok(vec![(0, 0), (0, 0), (1, 1), (1, 2)])
        })),
        ..TrainControl::default()
    };
    let error = run_with(&cfg, &rows, control).expect_err("a repeated pair is rejected");
    assert!(matches!(error, TrainError::TopicSelection(_)), "{error}");
    assert!(error.to_string().contains("repeated"), "{error}");
}

#[test]
fn topic_selection_without_selector_keeps_the_best_run() {
    let rows = block_corpus(96, 14);
    let mut cfg = with_restarts(3, 60, 2);
    cfg.restart_selection = RestartSelection::Topics;
    let kept = run(&cfg, &rows, None);
    let run_only = run(&with_restarts(3, 60, 2), &rows, None);
    assert_eq!(kept.network.params, run_only.network.params);
    assert!(kept.topic_sources.is_none());
}

#[test]
fn cpu_backend_update_matches_the_dense_update() {
    use ntm_model::network::{Activation, NetworkConfig};
    use ntm_model::OptimizerConfig;

    // Each batch takes 6 documents of one or two of the four word blocks. Most rows of the first
    // layer's weight then have no gradient in a given step, and the backend updates only the
    // rows of the batch's words.
    let rows = block_corpus(60, 21);
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let config = NetworkConfig {
        feature_dim: VOCAB,
        num_topics: 3,
        encoder_layers: vec![8, 5],
        activation: Activation::Sigmoid,
        batch_norm: false,
    };
    let start = Network::new(config, &mut rng);
    let mut backend = CpuBackend::new();
    let (mut sparse, mut dense) = (start.clone(), start.clone());
    let mut grads = start.zero_grads();
    let optimizer_config = OptimizerConfig {
        rescale_grad: 1.0 / 6.0,
        ..OptimizerConfig::default()
    };
    let mut sparse_optimizer = Optimizer::new(optimizer_config, &start.params);
    let mut dense_optimizer = sparse_optimizer.clone();
    for step in 0..10 {
        let blocks = [step % BLOCKS, (step + step / 3) % BLOCKS];
        let picked: Vec<usize> = (0..60)
            .filter(|d| blocks.contains(&(d % BLOCKS)))
            .skip(step)
            .take(6)
            .collect();
        let batch = rows.select(&picked);
        let eps: Vec<f32> = (0..6 * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
        backend
            .train_step(
                &mut sparse,
                &batch,
                &eps,
                StepOptions::default(),
                &mut grads,
            )
            .expect("step");
        assert!(
            backend.workspace().present_words().len() < VOCAB,
            "step {step} uses every word"
        );
        backend.update(&mut sparse_optimizer, &mut sparse.params, &grads);
        backend
            .train_step(&mut dense, &batch, &eps, StepOptions::default(), &mut grads)
            .expect("step");
        dense_optimizer.step(&mut dense.params, &grads);
        for (a, b) in sparse.params.tensors.iter().zip(&dense.params.tensors) {
            let same = a
                .data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "step {step}: `{}` differs", a.name);
        }
    }
    assert_ne!(sparse.params, start.params);
}

/// Trains on `rows` on one thread and returns the divergence message.
fn divergence_message(config: &TrainConfig, rows: &SparseRows) -> String {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("thread pool");
    let error = pool
        .install(|| {
            train(
                config,
                TrainData::in_memory(rows, None, None),
                TrainControl::default(),
            )
        })
        .expect_err("training diverges");
    assert!(matches!(error, TrainError::Diverged { .. }), "{error:?}");
    error.to_string()
}

#[test]
fn divergence_advice_fits_the_run() {
    use ntm_model::OptimizerKind;

    // A count near the largest f32 makes the weights overflow, whatever the optimizer: the
    // message names the count, and with AdaDelta it does not suggest the learning rate, which
    // AdaDelta ignores.
    let mut rows = block_corpus(64, 31);
    rows.push_row(&[0, 1], &[3e38, 1.0]);
    let message = divergence_message(&config(2, 1), &rows);
    assert!(message.contains("word count of 3e38"), "{message}");
    assert!(message.contains("set clip_gradient"), "{message}");
    assert!(!message.contains("learning_rate"), "{message}");
    assert!(!message.contains("optimizer adadelta"), "{message}");

    // SGD with a huge learning rate on clean data: lower it, clip, or go back to AdaDelta.
    let rows = block_corpus(64, 32);
    let mut sgd = config(3, 1);
    sgd.optimizer.kind = OptimizerKind::Sgd;
    sgd.optimizer.learning_rate = 1e30;
    let message = divergence_message(&sgd, &rows);
    assert!(
        message.contains("lower learning_rate (now 1e30)")
            && message.contains("set clip_gradient")
            && message.contains("use the default optimizer adadelta"),
        "{message}"
    );
    assert!(!message.contains("word count"), "{message}");
}
