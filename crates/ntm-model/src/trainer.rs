//! The training loop: epochs, sub-sampling, mini-batches, validation and early stopping.
//!
//! The loop follows SageMaker NTM's semantics and log lines:
//! 1. every epoch draws a random `sub_sample` share of the training documents and
//!    shuffles them into mini-batches;
//! 2. every mini-batch runs one forward and backward pass and one optimizer update on
//!    the gradient of the batch's summed loss, multiplied by `rescale_gradient`;
//! 3. after each epoch the validation loss (or, without a validation channel, the
//!    training loss) feeds the early-stopping rule, and the best epoch's weights are kept;
//! 4. at the end the best weights are restored and, given a test channel, scored.
//!
//! A channel is held in memory or streamed pass by pass (see [`crate::batches`]). A streamed
//! training channel is mixed by a bounded shuffle buffer instead of a full shuffle, and its
//! `sub_sample` keeps each document with that probability.
//!
//! Randomness comes from one ChaCha8 generator seeded with `seed`, consumed in a fixed
//! order on one thread, so the same seed, data and thread count give the same model bit
//! for bit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ntm_formats::SparseRows;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tracing::{info, warn};

use crate::artifact::{EpochRecord, LossRecord};
use crate::backend::{Backend, CpuBackend};
use crate::batches::{
    BatchError, Channel, MemoryOrder, OrderedBatches, StreamBatches, StreamError,
};
use crate::early_stopping::EarlyStopping;
use crate::hyperparams::{Hyperparameters, RestartSelection};
use crate::network::{Extensions, LossSums, Network, NetworkConfig, StepOptions};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use crate::params::ParamSet;

/// Settings of one training run, already validated.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Shape of the network.
    pub network: NetworkConfig,
    /// Optimizer and its gradient handling.
    pub optimizer: OptimizerConfig,
    /// Documents per mini-batch.
    pub mini_batch_size: usize,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Relative improvement below which an epoch counts as bad.
    pub tolerance: f64,
    /// Bad epochs in a row that stop training; more than `epochs` disables stopping.
    pub num_patience_epochs: usize,
    /// Share of the training documents drawn at random for each epoch, in (0, 1].
    pub sub_sample: f64,
    /// SageMaker's `rescale_gradient`: the factor applied to the gradient of the summed batch loss.
    pub rescale_gradient: f32,
    /// Seed of every random draw.
    pub seed: u64,
    /// Host name used in metric lines (`algo-1` on a single SageMaker host).
    pub host: String,
    /// Documents held by the shuffle buffer of a streamed training channel.
    pub shuffle_buffer: usize,
    /// Topic-quality extensions of the network (all off for SageMaker's model).
    pub extensions: Extensions,
    /// Epochs over which the KL weight rises linearly to 1 (`epoch / kl_warmup_epochs`);
    /// 0 trains with weight 1 throughout.
    pub kl_warmup_epochs: usize,
    /// Epochs over which the weight of the plain decoder rises linearly to 1
    /// (`min(1, epoch / decoder_batch_norm_anneal_epochs)`, see
    /// [`Extensions::plain_decoder_share`]); 0 keeps the batch-normalised decoder.
    pub decoder_batch_norm_anneal_epochs: usize,
    /// Number of training runs, from seeds `seed`, `seed + 1` and so on. The run with the best
    /// score is kept (see [`TrainControl::score_restart`]), and 1 trains once.
    pub restarts: usize,
    /// Selection among the restarts: the best run, or the best distinct topics of all runs with
    /// the rest of the network refitted to them (see [`TrainControl::select_topics`]).
    pub restart_selection: RestartSelection,
}

/// Default size of the shuffle buffer of a streamed training channel, in documents. At a few
/// hundred distinct words per document it takes well under 200 MiB.
pub const DEFAULT_SHUFFLE_BUFFER: usize = 100_000;

impl TrainConfig {
    /// Builds the run settings from validated hyperparameters; `host` names this
    /// machine in metric lines.
    pub fn from_hyperparameters(hp: &Hyperparameters, host: &str) -> Self {
        Self {
            network: NetworkConfig {
                feature_dim: hp.feature_dim,
                num_topics: hp.num_topics,
                encoder_layers: hp.encoder_widths(),
                activation: hp.encoder_layers_activation,
                batch_norm: hp.batch_norm,
            },
            optimizer: hp.optimizer_config(),
            mini_batch_size: hp.mini_batch_size,
            epochs: hp.epochs,
            tolerance: hp.tolerance,
            num_patience_epochs: hp.num_patience_epochs,
            sub_sample: hp.sub_sample,
            rescale_gradient: hp.rescale_gradient as f32,
            seed: hp.seed,
            host: host.to_owned(),
            shuffle_buffer: DEFAULT_SHUFFLE_BUFFER,
            extensions: hp.extensions(),
            kl_warmup_epochs: hp.kl_warmup_epochs,
            decoder_batch_norm_anneal_epochs: hp.decoder_batch_norm_anneal_epochs,
            restarts: hp.restarts,
            restart_selection: hp.restart_selection,
        }
    }
}

/// Called after every mini-batch with (epoch, batches done in the epoch, batches in the epoch).
/// The batch count of a streamed channel is an estimate, 0 when the document count is unknown.
pub type BatchCallback = Box<dyn FnMut(usize, usize, usize) + Send>;

/// Called with the final network and each batch of the test channel as it is scored, so that
/// measures over a streamed test channel need no second pass.
pub type TestBatchCallback = Box<dyn FnMut(&Network, &SparseRows) + Send>;

/// Scores a finished training run for the choice among restarts, higher being better, from
/// its network and the training channel (which a streamed channel lets it read once more).
pub type RestartScorer =
    Box<dyn FnMut(&Network, &mut Channel<'_>) -> Result<f64, StreamError> + Send>;

/// Chooses the topics to keep across restarts. It gets the network of every run, in run order,
/// and the training channel, and returns `num_topics` distinct `(run, topic)` pairs.
pub type TopicSelector = Box<
    dyn FnMut(&[&Network], &mut Channel<'_>) -> Result<Vec<(usize, usize)>, StreamError> + Send,
>;

/// Run-time controls that are not hyperparameters.
#[derive(Default)]
pub struct TrainControl {
    /// When set, training stops at the next batch boundary and keeps the best finished epoch.
    pub stop: Option<Arc<AtomicBool>>,
    /// Called after every mini-batch with (epoch, batches done in the epoch, batches in the epoch).
    pub on_batch: Option<BatchCallback>,
    /// Called with each batch of the test channel while the final model scores it.
    pub on_test_batch: Option<TestBatchCallback>,
    /// With more than one restart: the score that picks the run to keep. Without it, the run
    /// with the lowest loss at its best epoch is kept.
    pub score_restart: Option<RestartScorer>,
    /// With more than one restart and `restart_selection = topics`: the choice of topics across
    /// the runs. Without it, the best-scoring run is kept as with `restart_selection = run`.
    pub select_topics: Option<TopicSelector>,
}

/// Data of a training run. Rows must have `feature_dim` columns and no empty rows.
pub struct TrainData<'a> {
    /// Training documents.
    pub train: Channel<'a>,
    /// Validation documents, which drive early stopping when given.
    pub validation: Option<Channel<'a>>,
    /// Test documents, scored once with the final model.
    pub test: Option<Channel<'a>>,
}

impl<'a> TrainData<'a> {
    /// Data whose channels are all in memory.
    pub fn in_memory(
        train: &'a SparseRows,
        validation: Option<&'a SparseRows>,
        test: Option<&'a SparseRows>,
    ) -> Self {
        Self {
            train: Channel::Memory(train),
            validation: validation.map(Channel::Memory),
            test: test.map(Channel::Memory),
        }
    }
}

/// Result of a training run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The network with the best epoch's weights.
    pub network: Network,
    /// Per-epoch losses.
    pub history: Vec<EpochRecord>,
    /// The epoch whose weights `network` holds; `None` when no epoch finished.
    pub best_epoch: Option<usize>,
    /// Test loss of the final model, when test data was given.
    pub test: Option<LossRecord>,
    /// Whether a stop request ended training before its last epoch or restart.
    pub interrupted: bool,
    /// Seed of the kept run: `seed` itself, or that of the restart with the best score. With
    /// topics chosen across restarts, the seed of the run that gave the most of them, whose
    /// encoder the refit started from.
    pub seed: u64,
    /// With topics chosen across restarts: for each topic of `network`, the seed of the run it
    /// came from and its index in that run.
    pub topic_sources: Option<Vec<(u64, usize)>>,
}

/// Errors that end a training run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The data does not fit the network.
    #[error("{channel} data has {found} columns but feature_dim is {expected}")]
    FeatureDim {
        /// Channel name.
        channel: &'static str,
        /// Columns of the data.
        found: usize,
        /// The configured feature_dim.
        expected: usize,
    },
    /// The training channel contains no document.
    #[error("the train channel contains no non-empty document")]
    NoTrainingData,
    /// A streamed channel could not be read.
    #[error("cannot read the {channel} channel: {error}")]
    Input {
        /// Channel name.
        channel: &'static str,
        /// The reader's error, part of the message so that a printed chain shows it once.
        error: StreamError,
    },
    /// The loss became NaN or infinite.
    #[error(
        "training diverged: the loss became {value} in epoch {epoch}, batch {batch}; {advice}"
    )]
    Diverged {
        /// Epoch number.
        epoch: usize,
        /// Batch number within the epoch, from 1.
        batch: usize,
        /// The non-finite value.
        value: f64,
        /// The changes to try, from the run's settings and the largest count trained on.
        advice: String,
    },
    /// The network rejected its inputs; a bug, since the trainer checks shapes first.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// The topic selector returned something other than `num_topics` distinct valid pairs.
    #[error("the topic selection across restarts is invalid: {0}")]
    TopicSelection(String),
    /// A stop was requested before the first epoch finished, so there is no model to keep.
    #[error("training was stopped before the first epoch finished; no model was written")]
    StoppedBeforeFirstEpoch,
}

/// Trains a network on `data` with `config` on the CPU, in the caller's rayon pool.
pub fn train(
    config: &TrainConfig,
    data: TrainData<'_>,
    control: TrainControl,
) -> Result<TrainOutcome, TrainError> {
    train_with(config, data, control, &mut CpuBackend::new())
}

/// Trains a network on `data` with `config`, computing every step on `backend`.
pub fn train_with(
    config: &TrainConfig,
    data: TrainData<'_>,
    mut control: TrainControl,
    backend: &mut dyn Backend,
) -> Result<TrainOutcome, TrainError> {
    let TrainData {
        train: mut train_channel,
        validation: mut validation_channel,
        test: mut test_channel,
    } = data;

    // 1. Check the in-memory data against the network shape; streamed chunks are checked as
    // they arrive.
    let feature_dim = config.network.feature_dim;
    let channels = [
        ("train", Some(&train_channel)),
        ("validation", validation_channel.as_ref()),
        ("test", test_channel.as_ref()),
    ];
    for (channel, rows) in channels {
        if let Some(Channel::Memory(rows)) = rows {
            if rows.n_cols() != feature_dim {
                return Err(TrainError::FeatureDim {
                    channel,
                    found: rows.n_cols(),
                    expected: feature_dim,
                });
            }
        }
    }
    if train_channel.documents() == Some(0) {
        return Err(TrainError::NoTrainingData);
    }

    // 2. Train once per restart and keep the best-scoring run.
    let restarts = config.restarts.max(1);
    let pool_topics = restarts > 1
        && config.restart_selection == RestartSelection::Topics
        && control.select_topics.is_some();
    let mut chosen: Option<(f64, Run)> = None;
    let mut pool: Vec<Run> = Vec::new();
    let mut stopped = false;
    for restart in 0..restarts {
        let mut run_config = config.clone();
        run_config.seed = config.seed.wrapping_add(restart as u64);
        if restarts > 1 {
            info!(
                "Restart {} of {restarts}: training with seed {}",
                restart + 1,
                run_config.seed
            );
        }
        let run = match run_epochs(
            &run_config,
            &mut train_channel,
            validation_channel.as_mut(),
            &mut control,
            backend,
            None,
        ) {
            Ok(run) => run,
            // A stop during a later restart keeps the runs already finished.
            Err(TrainError::StoppedBeforeFirstEpoch) if chosen.is_some() => {
                stopped = true;
                break;
            }
            Err(error) => return Err(error),
        };
        let interrupted = run.interrupted;
        let score = if restarts == 1 {
            0.0
        } else {
            match control.score_restart.as_mut() {
                Some(scorer) => {
                    scorer(&run.network, &mut train_channel).map_err(|error| TrainError::Input {
                        channel: "train",
                        error,
                    })?
                }
                None => {
                    info!(
                        "Restart {} of {restarts} (seed {}): best loss {}",
                        restart + 1,
                        run_config.seed,
                        run.best_loss
                    );
                    -run.best_loss
                }
            }
        };
        if pool_topics {
            pool.push(run.clone());
        }
        if chosen.as_ref().is_none_or(|(best, _)| score > *best) {
            chosen = Some((score, run));
        }
        if interrupted {
            stopped = true;
            break;
        }
    }
    let Some((_, mut run)) = chosen else {
        return Err(TrainError::StoppedBeforeFirstEpoch);
    };
    let mut topic_sources = None;
    if pool_topics && !stopped && pool.len() > 1 {
        let selector = control
            .select_topics
            .as_mut()
            .expect("pool_topics implies a selector");
        let networks: Vec<&Network> = pool.iter().map(|r| &r.network).collect();
        let picks = selector(&networks, &mut train_channel).map_err(|error| TrainError::Input {
            channel: "train",
            error,
        })?;
        let Composed {
            network: start,
            base,
            sources,
        } = compose_topics(&pool, &picks, config.network.num_topics)?;
        info!(
            "Keeping {} topics from {} runs; refitting the encoder to them from the run with seed {}, with the topic-word weights fixed.",
            picks.len(),
            sources
                .iter()
                .map(|(seed, _)| seed)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            pool[base].seed
        );
        let mut refit_config = config.clone();
        refit_config.seed = pool[base].seed;
        refit_config.kl_warmup_epochs = 0;
        refit_config.decoder_batch_norm_anneal_epochs = 0;
        match run_epochs(
            &refit_config,
            &mut train_channel,
            validation_channel.as_mut(),
            &mut control,
            backend,
            Some(start),
        ) {
            Ok(refit) => {
                let mut history = pool[base].history.clone();
                let offset = history.len();
                info!(
                    "The refit's epoch {} is epoch {} of the model's history, which starts with the {offset} epochs of the run with seed {}.",
                    refit.best_epoch,
                    offset + refit.best_epoch,
                    pool[base].seed
                );
                history.extend(refit.history.into_iter().map(|mut record| {
                    record.epoch += offset;
                    record
                }));
                stopped |= refit.interrupted;
                run = Run {
                    network: refit.network,
                    history,
                    best_epoch: offset + refit.best_epoch,
                    best_loss: refit.best_loss,
                    interrupted: refit.interrupted,
                    seed: pool[base].seed,
                };
                topic_sources = Some(sources);
            }
            // A stop before the refit's first epoch keeps the best run.
            Err(TrainError::StoppedBeforeFirstEpoch) => stopped = true,
            Err(error) => return Err(error),
        }
    }
    if restarts > 1 && topic_sources.is_none() {
        info!(
            "Keeping the run with seed {}, the best score of the restarts.",
            run.seed
        );
    }

    // 3. Score the test channel with the kept model.
    let mut run_config = config.clone();
    run_config.seed = run.seed;
    let test = match test_channel.as_mut() {
        Some(channel) => Some(score_channel(
            "test",
            run.best_epoch,
            &run.network,
            channel,
            &run_config,
            backend,
            control.on_test_batch.as_mut(),
        )?),
        None => None,
    };
    Ok(TrainOutcome {
        network: run.network,
        history: run.history,
        best_epoch: Some(run.best_epoch),
        test,
        interrupted: stopped,
        seed: run.seed,
        topic_sources,
    })
}

/// The network a refit starts from, with the topics chosen across restarts.
struct Composed {
    /// The starting run's network with the chosen decoder columns.
    network: Network,
    /// Index of the starting run in the pool.
    base: usize,
    /// The `(seed, topic)` each decoder column came from.
    sources: Vec<(u64, usize)>,
}

/// Builds the network the refit starts from. It is the run that gave the most chosen topics
/// (the first such run on a tie), and its own chosen topics keep their columns. The other chosen
/// topics' decoder columns fill the remaining columns in the order given.
fn compose_topics(
    pool: &[Run],
    picks: &[(usize, usize)],
    num_topics: usize,
) -> Result<Composed, TrainError> {
    if picks.len() != num_topics {
        return Err(TrainError::TopicSelection(format!(
            "{} topics chosen, expected {num_topics}",
            picks.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for &(r, t) in picks {
        if r >= pool.len() || t >= num_topics || !seen.insert((r, t)) {
            return Err(TrainError::TopicSelection(format!(
                "pair (run {r}, topic {t}) is out of range or repeated ({} runs of {num_topics} topics)",
                pool.len()
            )));
        }
    }

    // The starting run and the column of every chosen topic.
    let mut counts = vec![0usize; pool.len()];
    for &(r, _) in picks {
        counts[r] += 1;
    }
    let base = (0..pool.len())
        .max_by(|&a, &b| counts[a].cmp(&counts[b]).then(b.cmp(&a)))
        .unwrap_or(0);
    let mut slots: Vec<Option<(usize, usize)>> = vec![None; num_topics];
    for &(r, t) in picks.iter().filter(|(r, _)| *r == base) {
        slots[t] = Some((r, t));
    }
    let mut free = (0..num_topics).filter(|&k| picks.iter().all(|&(r, t)| r != base || t != k));
    for &(r, t) in picks.iter().filter(|(r, _)| *r != base) {
        let slot = free
            .next()
            .expect("one free column per topic from another run");
        slots[slot] = Some((r, t));
    }

    // Copy the chosen columns into the starting run's decoder weight.
    let mut network = pool[base].network.clone();
    let v = network.config.feature_dim;
    let columns: Vec<(usize, usize)> = slots
        .into_iter()
        .map(|s| s.expect("every column filled"))
        .collect();
    let index = network
        .params
        .tensors
        .iter()
        .position(|t| t.name == "decoder.weight")
        .expect("every network has a decoder weight");
    let weight = &mut network.params.tensors[index].data;
    for (k, &(r, t)) in columns.iter().enumerate() {
        let source = pool[r].network.decoder_weight();
        for word in 0..v {
            weight[word * num_topics + k] = source[word * num_topics + t];
        }
    }
    let sources = columns.iter().map(|&(r, t)| (pool[r].seed, t)).collect();
    Ok(Composed {
        network,
        base,
        sources,
    })
}

/// One finished training run: the best epoch's network and the history of every epoch.
#[derive(Clone)]
struct Run {
    network: Network,
    history: Vec<EpochRecord>,
    best_epoch: usize,
    best_loss: f64,
    interrupted: bool,
    seed: u64,
}

/// Trains one network from `config.seed` and restores its best epoch.
fn run_epochs(
    config: &TrainConfig,
    train_channel: &mut Channel<'_>,
    mut validation_channel: Option<&mut Channel<'_>>,
    control: &mut TrainControl,
    backend: &mut dyn Backend,
    start: Option<Network>,
) -> Result<Run, TrainError> {
    let feature_dim = config.network.feature_dim;
    // 1. Initialise the network, its gradients and the optimizer from the seed. A refit starts
    // from the given network instead and keeps its decoder weight fixed.
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut network = Network::with_extensions(config.network.clone(), config.extensions, &mut rng);
    let frozen_decoder = start.map(|start| {
        network = start;
        network.decoder_weight().to_vec()
    });
    let mut grads = network.params.zeros_like();
    let mut optimizer = Optimizer::new(config.optimizer, &network.params);
    // The gradient is of the summed batch loss; rescale_gradient is MXNet's rescale_grad as given.
    optimizer.set_rescale_grad(config.rescale_gradient);
    info!("Compute backend: {}", backend.name());
    let num_topics = config.network.num_topics;
    let mut early_stopping =
        EarlyStopping::new(config.tolerance, config.num_patience_epochs, config.epochs);
    let monitored = if validation_channel.is_some() {
        "validation"
    } else {
        "train"
    };
    if validation_channel.is_none() {
        info!("No validation channel: early stopping monitors the training loss.");
    }

    let mut history = Vec::new();
    let mut best: Option<(usize, f64, ParamSet, ParamSet, Extensions)> = None;
    let mut interrupted = false;
    let mut memory_order = match &train_channel {
        Channel::Memory(rows) => Some(MemoryOrder::new(rows.n_rows())),
        Channel::Stream(_) => None,
    };
    let mut eps = Vec::new();
    let mut uniforms: Vec<f32> = Vec::new();
    let dropout = config.extensions.theta_dropout > 0.0;
    // Epochs of the decoder anneal: until it ends, the training objective changes from epoch to
    // epoch, so losses of different epochs are not compared.
    let anneal = if config.extensions.decoder_batch_norm {
        config.decoder_batch_norm_anneal_epochs
    } else {
        0
    };
    if anneal > 0 {
        info!(
            "Decoder anneal over {anneal} epochs: early stopping and the choice of the best epoch start at epoch {anneal}."
        );
    }

    // 2. Epoch loop.
    // The largest count trained on so far, named when the loss diverges.
    let mut largest_count = 0.0f32;
    'epochs: for epoch in 1..=config.epochs {
        info!("# Starting training for epoch {epoch}");
        let started = Instant::now();
        let mut batches = EpochBatches::start(config, train_channel, &mut memory_order, &mut rng)?;
        let n_batches = batches.estimated_batches(config);
        let mut done = 0usize;
        let mut documents = 0usize;
        let mut sums = LossSums::default();
        if anneal > 0 {
            let share = (epoch as f32 / anneal as f32).min(1.0);
            network.extensions.plain_decoder_share = share;
            info!(
                "Decoder anneal: the plain decoder's share of the reconstruction loss is {share}"
            );
        }
        let kl_weight = if config.kl_warmup_epochs > 0 {
            (epoch as f32 / config.kl_warmup_epochs as f32).min(1.0)
        } else {
            1.0
        };
        loop {
            if control
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::SeqCst))
            {
                warn!(
                    "Stop requested: ending training in epoch {epoch} before batch {}.",
                    done + 1
                );
                interrupted = true;
                break 'epochs;
            }
            let Some(batch) = batches
                .next_batch(&mut rng)
                .map_err(|e| input_error("train", feature_dim, e))?
            else {
                break;
            };
            fill_normal(&mut eps, batch.n_rows() * num_topics, &mut rng);
            if dropout {
                uniforms.clear();
                uniforms.extend((0..batch.n_rows() * num_topics).map(|_| rng.random::<f32>()));
            }
            let options = StepOptions {
                kl_weight,
                dropout_uniforms: dropout.then_some(uniforms.as_slice()),
            };
            let step = backend.train_step(&mut network, &batch, &eps, options, &mut grads)?;
            let total = step.recons + step.kld;
            // Checking the loss costs nothing. A non-finite gradient behind a finite loss shows
            // up in the next batch's loss or in the parameter check at the end of the epoch.
            largest_count = batch.values().iter().copied().fold(largest_count, f32::max);
            if !total.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    batch: done + 1,
                    value: total,
                    advice: divergence_advice(config, largest_count),
                });
            }
            sums.add(&step);
            backend.update(&mut optimizer, &mut network.params, &grads);
            if let Some(fixed) = &frozen_decoder {
                restore_decoder_weight(&mut network, fixed);
            }
            done += 1;
            documents += batch.n_rows();
            if let Some(callback) = control.on_batch.as_mut() {
                callback(epoch, done, n_batches);
            }
        }
        drop(batches);
        if documents == 0 {
            return Err(TrainError::NoTrainingData);
        }
        let train_seconds = started.elapsed().as_secs_f64();
        if !network.params.all_finite() {
            return Err(TrainError::Diverged {
                epoch,
                batch: done,
                value: f64::NAN,
                advice: divergence_advice(config, largest_count),
            });
        }
        let train_loss = per_document(&sums);
        info!(
            "# Finished training epoch {epoch} on {documents} examples from {done} batches, each of size {}.",
            config.mini_batch_size
        );
        log_losses("", &train_loss);
        info!(
            "#quality_metric: host={}, epoch={epoch}, train total_loss <loss>={}",
            config.host, train_loss.total
        );

        // 3. Validation and early stopping.
        let val_started = Instant::now();
        let validation = match validation_channel.as_mut() {
            Some(channel) => Some(score_channel(
                "validation",
                epoch,
                &network,
                channel,
                config,
                backend,
                None,
            )?),
            None => None,
        };
        let val_seconds = val_started.elapsed().as_secs_f64();
        let current = validation.map_or(train_loss.total, |v| v.total);
        if !current.is_finite() {
            return Err(TrainError::Diverged {
                epoch,
                batch: done,
                value: current,
                advice: divergence_advice(config, largest_count),
            });
        }
        // Before the anneal ends, the latest epoch counts as the best one, since losses of
        // different mixes are not comparable.
        let settled = epoch >= anneal;
        let decision = settled.then(|| early_stopping.observe(current));
        for line in decision
            .iter()
            .flat_map(|d| [d.patience_line(), d.bad_epoch_line()])
            .flatten()
        {
            info!("{line}");
        }
        if best
            .as_ref()
            .is_none_or(|(best_epoch, loss, ..)| *best_epoch < anneal || current < *loss)
        {
            best = Some((
                epoch,
                current,
                network.params.clone(),
                network.running.clone(),
                network.extensions,
            ));
        }
        let seconds = started.elapsed().as_secs_f64();
        history.push(EpochRecord {
            epoch,
            documents,
            train: train_loss,
            validation,
            seconds,
        });
        info!("Timing: train: {train_seconds:.2}s, val: {val_seconds:.2}s, epoch: {seconds:.2}s");
        info!(
            "#progress_metric: host={}, completed {} % of epochs",
            config.host,
            (100.0 * epoch as f64 / config.epochs as f64).floor()
        );
        info!(
            "#throughput_metric: host={}, train throughput={:.2} records/second",
            config.host,
            documents as f64 / train_seconds.max(1e-9)
        );
        if decision.is_some_and(|d| d.stop) {
            info!(
                "Early stopping: the {monitored} loss has not improved enough for {} epochs.",
                config.num_patience_epochs
            );
            break;
        }
    }

    // 4. Restore the best epoch.
    let Some((best_epoch, best_loss, params, running, extensions)) = best else {
        return Err(TrainError::StoppedBeforeFirstEpoch);
    };
    info!("Best model based on early stopping at epoch {best_epoch}. Best loss: {best_loss}");
    network.params = params;
    network.running = running;
    network.extensions = extensions;
    Ok(Run {
        network,
        history,
        best_epoch,
        best_loss,
        interrupted,
        seed: config.seed,
    })
}

/// Mini-batches of one training epoch.
enum EpochBatches<'s, 'a> {
    /// An in-memory channel: the drawn documents in shuffled order.
    Memory {
        rows: &'a SparseRows,
        chosen: Vec<usize>,
        next: usize,
        batch_size: usize,
    },
    /// A streamed channel, mixed by the shuffle buffer.
    Stream {
        batches: StreamBatches<'s>,
        documents: Option<usize>,
    },
}

impl<'s, 'a> EpochBatches<'s, 'a> {
    fn start(
        config: &TrainConfig,
        channel: &'s mut Channel<'a>,
        memory_order: &mut Option<MemoryOrder>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self, TrainError> {
        match channel {
            Channel::Memory(rows) => {
                let n = rows.n_rows();
                let epoch_size = ((config.sub_sample * n as f64).ceil() as usize).clamp(1, n);
                let order = memory_order.get_or_insert_with(|| MemoryOrder::new(n));
                Ok(EpochBatches::Memory {
                    rows,
                    chosen: order.draw(epoch_size, rng),
                    next: 0,
                    batch_size: config.mini_batch_size,
                })
            }
            Channel::Stream(stream) => {
                let documents = stream.documents();
                let batches = StreamBatches::start(
                    &mut **stream,
                    config.network.feature_dim,
                    config.mini_batch_size,
                    config.sub_sample,
                    config.shuffle_buffer,
                )
                .map_err(|error| TrainError::Input {
                    channel: "train",
                    error,
                })?;
                Ok(EpochBatches::Stream { batches, documents })
            }
        }
    }

    /// Returns the number of batches of the epoch, estimated for a streamed channel.
    fn estimated_batches(&self, config: &TrainConfig) -> usize {
        match self {
            EpochBatches::Memory { chosen, .. } => chosen.len().div_ceil(config.mini_batch_size),
            EpochBatches::Stream { documents, .. } => documents.map_or(0, |n| {
                ((n as f64 * config.sub_sample).ceil() as usize).div_ceil(config.mini_batch_size)
            }),
        }
    }

    fn next_batch(&mut self, rng: &mut ChaCha8Rng) -> Result<Option<SparseRows>, BatchError> {
        match self {
            EpochBatches::Memory {
                rows,
                chosen,
                next,
                batch_size,
            } => {
                if *next >= chosen.len() {
                    return Ok(None);
                }
                let end = (*next + *batch_size).min(chosen.len());
                let batch = rows.select(&chosen[*next..end]);
                *next = end;
                Ok(Some(batch))
            }
            EpochBatches::Stream { batches, .. } => batches.next_batch(rng),
        }
    }
}

fn input_error(channel: &'static str, expected: usize, error: BatchError) -> TrainError {
    match error {
        BatchError::Stream(error) => TrainError::Input { channel, error },
        BatchError::FeatureDim { found } => TrainError::FeatureDim {
            channel,
            found,
            expected,
        },
    }
}

/// Computes the per-document loss of `rows` in inference mode.
///
/// The sample noise comes from a generator seeded from `seed` alone, so every call
/// draws the same noise and losses of different epochs compare the model, not the draw.
///
/// # Errors
/// [`NetworkError`](crate::network::NetworkError) when `rows` does not fit the network.
pub fn evaluate(
    network: &Network,
    rows: &SparseRows,
    batch_size: usize,
    seed: u64,
    backend: &mut dyn Backend,
) -> Result<LossRecord, crate::network::NetworkError> {
    let mut channel = Channel::Memory(rows);
    match evaluate_channel(network, &mut channel, batch_size, seed, backend, None) {
        Ok(loss) => Ok(loss),
        Err(TrainError::Network(error)) => Err(error),
        Err(other) => unreachable!("an in-memory channel has no read errors: {other}"),
    }
}

/// Computes the per-document loss of a channel in inference mode, as [`evaluate`] does.
/// A streamed channel gives the same batches, and so the same loss, as the same documents
/// in memory. `on_batch` is called with the network and every batch.
///
/// # Errors
/// [`TrainError::Input`] when a streamed channel cannot be read, and
/// [`TrainError::Network`] when its rows do not fit the network.
pub fn evaluate_channel(
    network: &Network,
    channel: &mut Channel<'_>,
    batch_size: usize,
    seed: u64,
    backend: &mut dyn Backend,
    mut on_batch: Option<&mut TestBatchCallback>,
) -> Result<LossRecord, TrainError> {
    let feature_dim = network.config.feature_dim;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_e7a1_0000_0001);
    let mut sums = LossSums::default();
    let mut eps = Vec::new();
    let mut batches =
        OrderedBatches::start(channel, batch_size).map_err(|error| TrainError::Input {
            channel: "evaluation",
            error,
        })?;
    while let Some(batch) = batches
        .next_batch(feature_dim)
        .map_err(|e| input_error("evaluation", feature_dim, e))?
    {
        fill_normal(
            &mut eps,
            batch.n_rows() * network.config.num_topics,
            &mut rng,
        );
        sums.add(&backend.eval_loss(network, &batch, &eps)?);
        if let Some(callback) = on_batch.as_mut() {
            callback(network, &batch);
        }
    }
    Ok(per_document(&sums))
}

/// Evaluates one channel and logs its loss lines and its `#quality_metric` line.
fn score_channel(
    channel_name: &'static str,
    epoch: usize,
    network: &Network,
    channel: &mut Channel<'_>,
    config: &TrainConfig,
    backend: &mut dyn Backend,
    on_batch: Option<&mut TestBatchCallback>,
) -> Result<LossRecord, TrainError> {
    let loss = evaluate_channel(
        network,
        channel,
        config.mini_batch_size,
        config.seed,
        backend,
        on_batch,
    )
    .map_err(|error| match error {
        TrainError::Input { error: source, .. } => TrainError::Input {
            channel: channel_name,
            error: source,
        },
        TrainError::FeatureDim {
            found, expected, ..
        } => TrainError::FeatureDim {
            channel: channel_name,
            found,
            expected,
        },
        other => other,
    })?;
    log_losses(&format!("{channel_name} "), &loss);
    info!(
        "#quality_metric: host={}, epoch={epoch}, {channel_name} total_loss <loss>={}",
        config.host, loss.total
    );
    Ok(loss)
}

fn fill_normal(eps: &mut Vec<f32>, len: usize, rng: &mut ChaCha8Rng) {
    eps.clear();
    eps.extend((0..len).map(|_| {
        let v: f32 = StandardNormal.sample(rng);
        v
    }));
}

fn per_document(sums: &LossSums) -> LossRecord {
    let docs = sums.docs.max(1) as f64;
    let recons = sums.recons / docs;
    let kld = sums.kld / docs;
    LossRecord {
        recons,
        kld,
        total: recons + kld,
    }
}

fn log_losses(prefix: &str, loss: &LossRecord) {
    info!("{prefix}Loss (name: value) kld: {}", loss.kld);
    info!("{prefix}Loss (name: value) recons: {}", loss.recons);
    info!("{prefix}Loss (name: value) logppx: {}", loss.total);
}

/// Counts above this, trained on before a divergence, are named in the advice as a likely cause.
const EXTREME_COUNT: f32 = 1e6;

/// Says what to change after a divergence, from the run's settings and the largest count
/// trained on before it.
fn divergence_advice(config: &TrainConfig, largest_count: f32) -> String {
    let optimizer = &config.optimizer;
    let mut steps = Vec::new();
    if largest_count.is_nan() || largest_count > EXTREME_COUNT {
        steps.push(format!(
            "check the training data, which holds a word count of {largest_count:e}"
        ));
    }
    if optimizer.kind != OptimizerKind::Adadelta {
        steps.push(format!(
            "lower learning_rate (now {:?})",
            optimizer.learning_rate
        ));
    }
    if !(optimizer.clip_gradient.is_finite() && optimizer.clip_gradient >= 0.0) {
        steps.push("set clip_gradient (for example 10)".to_owned());
    } else {
        steps.push(format!(
            "lower clip_gradient (now {:?})",
            optimizer.clip_gradient
        ));
    }
    if optimizer.kind != OptimizerKind::Adadelta {
        steps.push("use the default optimizer adadelta".to_owned());
    } else if config.rescale_gradient >= 1.0 {
        steps.push(format!(
            "lower rescale_gradient (now {:?})",
            config.rescale_gradient
        ));
    }
    let last = steps.pop().unwrap_or_default();
    if steps.is_empty() {
        last
    } else {
        format!("{}, or {last}", steps.join(", "))
    }
}

/// Puts the fixed decoder weight of a refit back after an optimizer update.
fn restore_decoder_weight(network: &mut Network, fixed: &[f32]) {
    if let Some(t) = network
        .params
        .tensors
        .iter_mut()
        .find(|t| t.name == "decoder.weight")
    {
        t.data.copy_from_slice(fixed);
    }
}
