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
//! Randomness comes from one ChaCha8 generator seeded with `seed`, consumed in a fixed
//! order on one thread, so the same seed, data and thread count give the same model bit
//! for bit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ntm_formats::SparseRows;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use tracing::{info, warn};

use crate::artifact::{EpochRecord, LossRecord};
use crate::early_stopping::EarlyStopping;
use crate::hyperparams::Hyperparameters;
use crate::network::{LossSums, Network, NetworkConfig, Workspace};
use crate::optim::{Optimizer, OptimizerConfig};
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
}

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
        }
    }
}

/// Called after every mini-batch with (epoch, batches done in the epoch, batches in the epoch).
pub type BatchCallback = Box<dyn FnMut(usize, usize, usize) + Send>;

/// Run-time controls that are not hyperparameters.
#[derive(Default)]
pub struct TrainControl {
    /// When set, training stops at the next batch boundary and keeps the best finished epoch.
    pub stop: Option<Arc<AtomicBool>>,
    /// Called after every mini-batch with (epoch, batches done in the epoch, batches in the epoch).
    pub on_batch: Option<BatchCallback>,
}

/// Data of a training run. Rows must have `feature_dim` columns and no empty rows.
pub struct TrainData<'a> {
    /// Training documents.
    pub train: &'a SparseRows,
    /// Validation documents, which drive early stopping when given.
    pub validation: Option<&'a SparseRows>,
    /// Test documents, scored once with the final model.
    pub test: Option<&'a SparseRows>,
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
    /// Whether a stop request ended training before its last epoch.
    pub interrupted: bool,
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
    /// The loss became NaN or infinite.
    #[error(
        "training diverged: the loss became {value} in epoch {epoch}, batch {batch}; \
         lower learning_rate, set clip_gradient, or use the default optimizer adadelta"
    )]
    Diverged {
        /// Epoch number.
        epoch: usize,
        /// Batch number within the epoch, from 1.
        batch: usize,
        /// The non-finite value.
        value: f64,
    },
    /// The network rejected its inputs; a bug, since the trainer checks shapes first.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// A stop was requested before the first epoch finished, so there is no model to keep.
    #[error("training was stopped before the first epoch finished; no model was written")]
    StoppedBeforeFirstEpoch,
}

/// Trains a network on `data` with `config`, in the caller's rayon pool.
pub fn train(
    config: &TrainConfig,
    data: &TrainData<'_>,
    mut control: TrainControl,
) -> Result<TrainOutcome, TrainError> {
    // 1. Check the data against the network shape.
    let feature_dim = config.network.feature_dim;
    let channels = [
        ("train", Some(data.train)),
        ("validation", data.validation),
        ("test", data.test),
    ];
    for (channel, rows) in channels {
        if let Some(rows) = rows {
            if rows.n_cols() != feature_dim {
                return Err(TrainError::FeatureDim {
                    channel,
                    found: rows.n_cols(),
                    expected: feature_dim,
                });
            }
        }
    }
    let n_train = data.train.n_rows();
    if n_train == 0 {
        return Err(TrainError::NoTrainingData);
    }

    // 2. Initialise the network, its gradients and the optimizer from the seed.
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut network = Network::new(config.network.clone(), &mut rng);
    let mut grads = network.params.zeros_like();
    let mut optimizer = Optimizer::new(config.optimizer, &network.params);
    // The gradient is of the summed batch loss; rescale_gradient is MXNet's rescale_grad as given.
    optimizer.set_rescale_grad(config.rescale_gradient);
    let mut workspace = Workspace::default();
    let num_topics = config.network.num_topics;
    let mut early_stopping =
        EarlyStopping::new(config.tolerance, config.num_patience_epochs, config.epochs);
    let monitored = if data.validation.is_some() {
        "validation"
    } else {
        "train"
    };
    if data.validation.is_none() {
        info!("No validation channel: early stopping monitors the training loss.");
    }

    let mut history = Vec::new();
    let mut best: Option<(usize, f64, ParamSet, ParamSet)> = None;
    let mut interrupted = false;
    let mut indices: Vec<usize> = (0..n_train).collect();
    let epoch_size = ((config.sub_sample * n_train as f64).ceil() as usize).clamp(1, n_train);
    let mut eps = Vec::new();

    // 3. Epoch loop.
    'epochs: for epoch in 1..=config.epochs {
        info!("# Starting training for epoch {epoch}");
        let started = Instant::now();
        indices.shuffle(&mut rng);
        let mut chosen = indices[..epoch_size].to_vec();
        if epoch_size < n_train {
            // Keep the file order within the drawn subset for locality; the batches are still random.
            chosen.sort_unstable();
            chosen.shuffle(&mut rng);
        }
        let n_batches = chosen.len().div_ceil(config.mini_batch_size);
        let mut sums = LossSums::default();
        for (b, batch_rows) in chosen.chunks(config.mini_batch_size).enumerate() {
            if control
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::SeqCst))
            {
                warn!(
                    "Stop requested: ending training in epoch {epoch} before batch {}.",
                    b + 1
                );
                interrupted = true;
                break 'epochs;
            }
            let batch = data.train.select(batch_rows);
            fill_normal(&mut eps, batch.n_rows() * num_topics, &mut rng);
            let step = network.train_step(&batch, &eps, &mut grads, &mut workspace)?;
            let total = step.recons + step.kld;
            // Checking the loss costs nothing. A non-finite gradient behind a finite loss shows
            // up in the next batch's loss or in the parameter check at the end of the epoch.
            if !total.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    batch: b + 1,
                    value: total,
                });
            }
            sums.add(&step);
            optimizer.step(&mut network.params, &grads);
            if let Some(callback) = control.on_batch.as_mut() {
                callback(epoch, b + 1, n_batches);
            }
        }
        let train_seconds = started.elapsed().as_secs_f64();
        if !network.params.all_finite() {
            return Err(TrainError::Diverged {
                epoch,
                batch: n_batches,
                value: f64::NAN,
            });
        }
        let train_loss = per_document(&sums);
        info!(
            "# Finished training epoch {epoch} on {} examples from {n_batches} batches, each of size {}.",
            chosen.len(),
            config.mini_batch_size
        );
        log_losses("", &train_loss);
        info!(
            "#quality_metric: host={}, epoch={epoch}, train total_loss <loss>={}",
            config.host, train_loss.total
        );

        // 4. Validation and early stopping.
        let val_started = Instant::now();
        let validation = match data.validation {
            Some(rows) => Some(score_channel(
                "validation",
                epoch,
                &network,
                rows,
                config,
                &mut workspace,
            )?),
            None => None,
        };
        let val_seconds = val_started.elapsed().as_secs_f64();
        let current = validation.map_or(train_loss.total, |v| v.total);
        if !current.is_finite() {
            return Err(TrainError::Diverged {
                epoch,
                batch: n_batches,
                value: current,
            });
        }
        let decision = early_stopping.observe(current);
        for line in [decision.patience_line(), decision.bad_epoch_line()]
            .into_iter()
            .flatten()
        {
            info!("{line}");
        }
        if best.as_ref().is_none_or(|(_, loss, _, _)| current < *loss) {
            best = Some((
                epoch,
                current,
                network.params.clone(),
                network.running.clone(),
            ));
        }
        let seconds = started.elapsed().as_secs_f64();
        history.push(EpochRecord {
            epoch,
            documents: chosen.len(),
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
            chosen.len() as f64 / train_seconds.max(1e-9)
        );
        if decision.stop {
            info!(
                "Early stopping: the {monitored} loss has not improved enough for {} epochs.",
                config.num_patience_epochs
            );
            break;
        }
    }

    // 5. Restore the best epoch and score the test channel.
    let Some((best_epoch, best_loss, params, running)) = best else {
        return Err(TrainError::StoppedBeforeFirstEpoch);
    };
    info!("Best model based on early stopping at epoch {best_epoch}. Best loss: {best_loss}");
    network.params = params;
    network.running = running;
    let test = match data.test {
        Some(rows) => Some(score_channel(
            "test",
            best_epoch,
            &network,
            rows,
            config,
            &mut workspace,
        )?),
        None => None,
    };
    Ok(TrainOutcome {
        network,
        history,
        best_epoch: Some(best_epoch),
        test,
        interrupted,
    })
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
    workspace: &mut Workspace,
) -> Result<LossRecord, crate::network::NetworkError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_e7a1_0000_0001);
    let mut sums = LossSums::default();
    let mut eps = Vec::new();
    let all: Vec<usize> = (0..rows.n_rows()).collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let batch = rows.select(chunk);
        fill_normal(
            &mut eps,
            batch.n_rows() * network.config.num_topics,
            &mut rng,
        );
        sums.add(&network.eval_loss(&batch, &eps, workspace)?);
    }
    Ok(per_document(&sums))
}

/// Evaluates one channel and logs its loss lines and its `#quality_metric` line.
fn score_channel(
    channel: &str,
    epoch: usize,
    network: &Network,
    rows: &SparseRows,
    config: &TrainConfig,
    workspace: &mut Workspace,
) -> Result<LossRecord, crate::network::NetworkError> {
    let loss = evaluate(
        network,
        rows,
        config.mini_batch_size,
        config.seed,
        workspace,
    )?;
    log_losses(&format!("{channel} "), &loss);
    info!(
        "#quality_metric: host={}, epoch={epoch}, {channel} total_loss <loss>={}",
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
