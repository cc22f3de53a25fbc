//! The NTM network: a sparse-input VAE encoder, a Gaussian-softmax topic layer and a softmax
//! decoder over the vocabulary, with hand-written forward and backward passes.
//!
//! Per document `x` (word counts, length `V = feature_dim`):
//!
//! - encoder: `h_1 = act(BN(x W_1 + b_1))`, `h_l = act(BN(h_{l-1} W_l + b_l))`, where `BN` is
//!   batch normalisation (only when `batch_norm` is on, see [`batchnorm`]);
//! - heads: `mu = h W_mu + b_mu`, `log_sigma = h W_sigma + b_sigma` (K values each);
//! - sample: `z = mu + exp(c(log_sigma)) * eps` with `eps` given by the caller, `theta = softmax(z)`;
//! - decoder: `u = W_d theta + b_d`, `log p = log_softmax(u)`;
//! - loss: `recons = -sum_v x_v log p_v`,
//!   `kld = -1/2 sum_k (1 + 2 r(log_sigma_k) - mu_k^2 - exp(2 c(log_sigma_k)))`.
//!
//! `c` clamps to [`LOG_SIGMA_MIN`, `LOG_SIGMA_MAX`] (`MAX`) inside `exp`, so that `exp` cannot
//! overflow; the gradient through a clamped value is zero. `r` is the identity up to `MAX` and
//! mirrors about it above: `r(s) = min(s, 2 MAX - s)`. Below the range the linear term keeps its
//! gradient, which pulls `log_sigma` back up. Above it the plain linear term would keep lowering
//! the loss as `log_sigma` grew. Mirrored, it pulls `log_sigma` back down at the same rate.
//!
//! Parameter layout (also the artifact's tensor names), in this order:
//!
//! | name | shape | decay |
//! |---|---|---|
//! | `encoder.{l}.weight` | `[in, out]`; layer 0 is `[V, H_0]` | yes |
//! | `encoder.{l}.bias` | `[out]` | no |
//! | `encoder.{l}.bn.gamma` (batch norm only) | `[out]` | yes |
//! | `encoder.{l}.bn.beta` (batch norm only) | `[out]` | no |
//! | `mu.weight`, `log_sigma.weight` | `[H_last, K]` | yes |
//! | `mu.bias`, `log_sigma.bias` | `[K]` | no |
//! | `decoder.weight` | `[V, K]` (SageMaker's `projection_weight`) | yes |
//! | `decoder.bias` | `[V]` | no |
//!
//! Encoder and head weights are stored `[in, out]`, so that row `v` of the first layer holds the
//! weights of word `v` contiguously; the decoder weight is `[V, K]`, one column per topic.
//! The running statistics `encoder.{l}.bn.running_mean` and `encoder.{l}.bn.running_var` live in
//! [`Network::running`] (empty without batch norm).
//!
//! Threads: a training batch of at least 256 documents without batch normalisation is split
//! into shards of about 128 documents (at most 8). Their passes run in parallel on the current
//! rayon pool, one thread per shard, and their gradients are then added up in shard order. The
//! shard count follows the batch size alone. Otherwise row-wise work (the sparse first layer,
//! the softmax over the vocabulary) runs on the pool in fixed chunks and dense products use
//! `gemm` on it. Every reduction over the batch runs in a fixed order, so the same inputs on
//! the same pool size give bit-identical results; the tests also find 1 and 2 threads
//! bit-identical.
//!
//! Initialisation ([`Network::new`]): encoder and head weights Glorot/Xavier uniform on
//! `[-a, a]` with `a = sqrt(6 / (fan_in + fan_out))` (MXNet's `Xavier()` default), the decoder
//! weight uniform on `[-sqrt(3), sqrt(3)]` (unit variance, whatever the vocabulary size), biases
//! 0, `gamma` 1, `beta` 0, running mean 0 and running variance 1. Glorot's range for the `[V, K]`
//! decoder shrinks with `V` (0.055 at V = 2,000) and starts every topic as nearly the same word
//! distribution. From unit variance the topics start distinct, near the scale they train to.
//! With `decoder_batch_norm` the decoder weight keeps the Glorot range, because the batch norm
//! standardises the logits whatever the weights' scale.
//!
//! Extensions ([`Extensions`], all off by default; with every one off the passes are exactly the
//! ones above):
//!
//! - `prior_alpha = a > 0`: the KL term is taken against the logistic-normal prior that
//!   approximates a symmetric Dirichlet(`a`) (Laplace approximation in the softmax basis), with
//!   mean `m_k = log a - mean(log a) = 0` and variance `v = (1/a)(1 - 2/K) + 1/(K a)`, so
//!   `kld = 1/2 sum_k (sigma_k^2 / v + (mu_k - m_k)^2 / v - 1 + log v - 2 log_sigma_k)`;
//! - `decoder_batch_norm`: the decoder becomes `u = BN(W_d theta) + b_d`, a batch normalisation
//!   of each word's logit without a learned scale, the decoder bias acting as its shift (a
//!   product-of-experts decoder as in ProdLDA). Its running statistics are
//!   `decoder.bn.running_mean` and `decoder.bn.running_var` (`[V]`), after the encoder's in
//!   [`Network::running`];
//! - `plain_decoder_share = s` (with `decoder_batch_norm`, for a decoder anneal): the
//!   reconstruction term becomes `(1 - s) recons_bn + s recons_plain`, where `recons_plain` uses
//!   the plain decoder `u = W_d theta + b_d` with the same weights. At `s = 1` the passes are the
//!   plain decoder's alone and the decoder's running statistics go unused;
//! - `head_batch_norm`: `mu = BN(h W_mu + b_mu)` and `2 log_sigma = BN(h W_sigma + b_sigma)`,
//!   normalisations without a learned scale or shift; the second head's output is read as the
//!   log-variance. Their running statistics `mu.bn.*` and `log_sigma.bn.*` (`[K]`) come after
//!   the encoder's in [`Network::running`] and before the decoder's;
//! - `theta_dropout = p > 0`: at training time each topic proportion is kept with probability
//!   `1 - p` and scaled by `1 / (1 - p)`. The caller passes the uniforms that decide it
//!   ([`StepOptions::dropout_uniforms`]). Inference never drops.
//!
//! [`StepOptions::kl_weight`] scales the gradient of the KL term (KL warm-up); the loss sums
//! always report the unweighted KL.

mod activation;
pub mod batchnorm;
pub(crate) mod kernels;
mod pass;
mod sparse;

use rand::Rng;

use crate::params::{ParamSet, Tensor};

pub use crate::hyperparams::Activation;
pub use kernels::fast_exp;
pub use pass::Workspace;

/// Lower clamp of `log_sigma` before it enters `exp`.
pub const LOG_SIGMA_MIN: f32 = -10.0;
/// Upper clamp of `log_sigma` before it enters `exp`.
pub const LOG_SIGMA_MAX: f32 = 10.0;

/// Errors of network construction and of the forward and backward passes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NetworkError {
    /// A configuration field has a value the network cannot be built with.
    #[error("invalid network configuration: {field} = {value}: {allowed}")]
    InvalidConfig {
        /// The field, for example `num_topics`.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// A tensor set has the wrong number of tensors for the configuration.
    #[error("{set}: expected {expected} tensors for this network shape, found {found}")]
    TensorCount {
        /// Name of the set: `params`, `running` or `gradients`.
        set: &'static str,
        /// Tensors the configuration defines.
        expected: usize,
        /// Tensors present.
        found: usize,
    },
    /// A tensor has an unexpected name at its position.
    #[error("{set}: tensor {index} is named {found:?}, expected {expected:?}")]
    TensorName {
        /// Name of the set: `params`, `running` or `gradients`.
        set: &'static str,
        /// Position in the set.
        index: usize,
        /// The name the configuration defines at that position.
        expected: String,
        /// The name present.
        found: String,
    },
    /// A tensor has the wrong shape or the wrong number of values.
    #[error(
        "{set}: tensor {name:?} has shape {found:?} with {len} values, expected shape {expected:?}"
    )]
    TensorShape {
        /// Name of the set: `params`, `running` or `gradients`.
        set: &'static str,
        /// Tensor name.
        name: String,
        /// Shape the configuration defines.
        expected: Vec<usize>,
        /// Shape present.
        found: Vec<usize>,
        /// Number of values present.
        len: usize,
    },
    /// A running variance is negative or not finite, which would make inference produce NaN.
    #[error("running: {name:?}[{index}] = {value} is not a finite non-negative variance")]
    InvalidRunningVariance {
        /// Tensor name.
        name: String,
        /// Index of the bad value.
        index: usize,
        /// The bad value.
        value: f32,
    },
    /// The batch has a different number of columns than the network's vocabulary.
    #[error("batch has {found} columns but the network's feature_dim is {expected}")]
    FeatureDim {
        /// `feature_dim` of the network.
        expected: usize,
        /// Columns of the batch.
        found: usize,
    },
    /// Theta dropout is on but the uniforms are missing or not `batch size * num_topics` values.
    #[error("theta dropout needs {expected} uniforms (batch size x num_topics), found {found:?}")]
    DropoutLength {
        /// `rows * num_topics`.
        expected: usize,
        /// Values given, `None` when none were given.
        found: Option<usize>,
    },
    /// The noise buffer does not hold `batch size * num_topics` values.
    #[error("eps has {found} values, expected {expected} (batch size x num_topics)")]
    EpsLength {
        /// `rows * num_topics`.
        expected: usize,
        /// Values given.
        found: usize,
    },
}

/// Shape of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Vocabulary size `V`.
    pub feature_dim: usize,
    /// Number of topics `K`.
    pub num_topics: usize,
    /// Widths of the encoder layers, input side first; at least one, each above 0.
    pub encoder_layers: Vec<usize>,
    /// Non-linearity after each encoder layer.
    pub activation: Activation,
    /// Whether each encoder layer has batch normalisation between its affine map and activation.
    pub batch_norm: bool,
}

impl NetworkConfig {
    /// Checks that every size is positive and that there is at least one encoder layer.
    ///
    /// # Errors
    /// [`NetworkError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), NetworkError> {
        if self.feature_dim == 0 {
            return Err(invalid_config(
                "feature_dim",
                "0",
                "a vocabulary size of at least 1",
            ));
        }
        if self.num_topics == 0 {
            return Err(invalid_config("num_topics", "0", "at least 1 topic"));
        }
        if self.encoder_layers.is_empty() || self.encoder_layers.contains(&0) {
            return Err(invalid_config(
                "encoder_layers",
                &format!("{:?}", self.encoder_layers),
                "at least one layer, each of width 1 or more",
            ));
        }
        Ok(())
    }

    /// Width of the last encoder layer, the input of the `mu` and `log_sigma` heads.
    fn last_width(&self) -> usize {
        self.encoder_layers.last().copied().unwrap_or(0)
    }

    /// Number of parameter tensors per encoder layer.
    fn tensors_per_layer(&self) -> usize {
        if self.batch_norm {
            4
        } else {
            2
        }
    }
}

fn invalid_config(field: &'static str, value: &str, allowed: &'static str) -> NetworkError {
    NetworkError::InvalidConfig {
        field,
        value: value.to_owned(),
        allowed,
    }
}

/// Topic-quality extensions of the network, all off by default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extensions {
    /// Concentration of the symmetric Dirichlet prior approximated by a logistic normal;
    /// 0 keeps the standard normal prior.
    pub prior_alpha: f32,
    /// Whether the decoder logits are batch-normalised without a learned scale.
    pub decoder_batch_norm: bool,
    /// Dropout probability on the topic proportions at training time; 0 disables it.
    pub theta_dropout: f32,
    /// Whether `mu` and the log-variance are batch-normalised without a learned scale or shift.
    /// The `log_sigma` head's affine output is then read as the log-variance `2 log_sigma`.
    pub head_batch_norm: bool,
    /// With `decoder_batch_norm`: the weight `s` in `[0, 1]` of the plain decoder's loss in the
    /// training objective `(1 - s) recons_bn + s recons_plain`. 0 trains and scores the
    /// batch-normalised decoder alone, 1 the plain decoder `u = W_d theta + b_d` alone.
    pub plain_decoder_share: f32,
}

impl Extensions {
    /// Returns whether every extension is off.
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }

    /// Returns the prior's mean and variance per topic for `k` topics: `(0, 1)` without
    /// `prior_alpha`, otherwise the Laplace approximation of the symmetric Dirichlet.
    pub fn prior(&self, k: usize) -> (f32, f32) {
        if self.prior_alpha > 0.0 {
            let (a, k) = (f64::from(self.prior_alpha), k as f64);
            let var = (1.0 / a) * (1.0 - 2.0 / k) + (k / a) / (k * k);
            (0.0, var as f32)
        } else {
            (0.0, 1.0)
        }
    }

    /// Checks the ranges: `prior_alpha` finite and not negative, `theta_dropout` in `[0, 1)`.
    ///
    /// # Errors
    /// [`NetworkError::InvalidConfig`] naming the bad field.
    pub fn validate(&self) -> Result<(), NetworkError> {
        if !(self.prior_alpha.is_finite() && self.prior_alpha >= 0.0) {
            return Err(invalid_config(
                "prior_alpha",
                &self.prior_alpha.to_string(),
                "0 (standard normal prior) or a finite positive concentration",
            ));
        }
        if !(0.0..1.0).contains(&self.theta_dropout) {
            return Err(invalid_config(
                "theta_dropout",
                &self.theta_dropout.to_string(),
                "a probability in [0, 1)",
            ));
        }
        if !(0.0..=1.0).contains(&self.plain_decoder_share) {
            return Err(invalid_config(
                "plain_decoder_share",
                &self.plain_decoder_share.to_string(),
                "a weight in [0, 1]",
            ));
        }
        if self.plain_decoder_share > 0.0 && !self.decoder_batch_norm {
            return Err(invalid_config(
                "plain_decoder_share",
                &self.plain_decoder_share.to_string(),
                "0 unless decoder_batch_norm is on",
            ));
        }
        Ok(())
    }

    /// Returns whether the decoder's batch normalisation takes part in the passes: it is on
    /// and the plain decoder has not taken over entirely.
    pub(crate) fn decoder_bn_active(&self) -> bool {
        self.decoder_batch_norm && self.plain_decoder_share < 1.0
    }

    /// Returns whether the passes mix the batch-normalised and the plain decoder.
    pub(crate) fn decoder_mixed(&self) -> bool {
        self.decoder_bn_active() && self.plain_decoder_share > 0.0
    }
}

/// Per-step settings of [`Network::train_step_with`].
#[derive(Debug, Clone, Copy)]
pub struct StepOptions<'a> {
    /// Factor on the gradient of the KL term; 1 trains the plain ELBO.
    pub kl_weight: f32,
    /// B x K uniforms in `[0, 1)` that decide the theta dropout (a value below `theta_dropout`
    /// drops); required when `theta_dropout > 0`, ignored otherwise.
    pub dropout_uniforms: Option<&'a [f32]>,
}

impl Default for StepOptions<'_> {
    fn default() -> Self {
        Self {
            kl_weight: 1.0,
            dropout_uniforms: None,
        }
    }
}

/// Half-width of the plain decoder weight's uniform initialisation: `sqrt(3)`, so that every
/// weight starts with unit variance.
pub const DECODER_INIT_LIMIT: f32 = 1.732_050_8;

/// Initialisation rule of a tensor.
#[derive(Debug, Clone, Copy)]
enum Init {
    Glorot { fan_in: usize, fan_out: usize },
    Uniform { limit: f32 },
    Zeros,
    Ones,
}

/// Name, shape, decay flag and initialisation of one tensor.
struct TensorSpec {
    name: String,
    shape: Vec<usize>,
    decay: bool,
    init: Init,
}

impl TensorSpec {
    fn new(name: String, shape: &[usize], decay: bool, init: Init) -> Self {
        Self {
            name,
            shape: shape.to_vec(),
            decay,
            init,
        }
    }
}

/// The parameter tensors the configuration defines, in [`Network::params`] order.
fn param_specs(config: &NetworkConfig, extensions: &Extensions) -> Vec<TensorSpec> {
    let mut specs = Vec::new();
    let mut fan_in = config.feature_dim;
    for (l, &width) in config.encoder_layers.iter().enumerate() {
        let glorot = Init::Glorot {
            fan_in,
            fan_out: width,
        };
        specs.push(TensorSpec::new(
            format!("encoder.{l}.weight"),
            &[fan_in, width],
            true,
            glorot,
        ));
        specs.push(TensorSpec::new(
            format!("encoder.{l}.bias"),
            &[width],
            false,
            Init::Zeros,
        ));
        if config.batch_norm {
            specs.push(TensorSpec::new(
                format!("encoder.{l}.bn.gamma"),
                &[width],
                true,
                Init::Ones,
            ));
            specs.push(TensorSpec::new(
                format!("encoder.{l}.bn.beta"),
                &[width],
                false,
                Init::Zeros,
            ));
        }
        fan_in = width;
    }
    let (h, k, v) = (config.last_width(), config.num_topics, config.feature_dim);
    let head = Init::Glorot {
        fan_in: h,
        fan_out: k,
    };
    specs.push(TensorSpec::new("mu.weight".into(), &[h, k], true, head));
    specs.push(TensorSpec::new("mu.bias".into(), &[k], false, Init::Zeros));
    specs.push(TensorSpec::new(
        "log_sigma.weight".into(),
        &[h, k],
        true,
        head,
    ));
    specs.push(TensorSpec::new(
        "log_sigma.bias".into(),
        &[k],
        false,
        Init::Zeros,
    ));
    let decoder = if extensions.decoder_batch_norm {
        Init::Glorot {
            fan_in: k,
            fan_out: v,
        }
    } else {
        Init::Uniform {
            limit: DECODER_INIT_LIMIT,
        }
    };
    specs.push(TensorSpec::new(
        "decoder.weight".into(),
        &[v, k],
        true,
        decoder,
    ));
    specs.push(TensorSpec::new(
        "decoder.bias".into(),
        &[v],
        false,
        Init::Zeros,
    ));
    specs
}

/// The running-statistics tensors, in [`Network::running`] order (none without batch norm).
fn running_specs(config: &NetworkConfig, extensions: &Extensions) -> Vec<TensorSpec> {
    let mut specs = Vec::new();
    if config.batch_norm {
        for (l, &width) in config.encoder_layers.iter().enumerate() {
            specs.push(TensorSpec::new(
                format!("encoder.{l}.bn.running_mean"),
                &[width],
                false,
                Init::Zeros,
            ));
            specs.push(TensorSpec::new(
                format!("encoder.{l}.bn.running_var"),
                &[width],
                false,
                Init::Ones,
            ));
        }
    }
    if extensions.head_batch_norm {
        let k = config.num_topics;
        for head in ["mu", "log_sigma"] {
            specs.push(TensorSpec::new(
                format!("{head}.bn.running_mean"),
                &[k],
                false,
                Init::Zeros,
            ));
            specs.push(TensorSpec::new(
                format!("{head}.bn.running_var"),
                &[k],
                false,
                Init::Ones,
            ));
        }
    }
    if extensions.decoder_batch_norm {
        let v = config.feature_dim;
        specs.push(TensorSpec::new(
            "decoder.bn.running_mean".into(),
            &[v],
            false,
            Init::Zeros,
        ));
        specs.push(TensorSpec::new(
            "decoder.bn.running_var".into(),
            &[v],
            false,
            Init::Ones,
        ));
    }
    specs
}

/// Fills `values` with draws from the uniform distribution on `[-limit, limit]`, in order.
fn fill_uniform(values: &mut [f32], limit: f32, rng: &mut impl Rng) {
    for v in values {
        *v = rng.random_range(-limit..=limit);
    }
}

fn build_set(specs: Vec<TensorSpec>, rng: &mut impl Rng) -> ParamSet {
    let tensors = specs
        .into_iter()
        .map(|spec| {
            let mut t = Tensor::zeros(spec.name, &spec.shape, spec.decay);
            match spec.init {
                Init::Zeros => {}
                Init::Ones => t.data.fill(1.0),
                Init::Glorot { fan_in, fan_out } => {
                    let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
                    fill_uniform(&mut t.data, limit, rng);
                }
                Init::Uniform { limit } => fill_uniform(&mut t.data, limit, rng),
            }
            t
        })
        .collect();
    ParamSet { tensors }
}

/// Checks that `set` has exactly the names and shapes of `specs`, and sets each decay flag.
fn check_set(
    set_name: &'static str,
    set: &mut ParamSet,
    specs: &[TensorSpec],
) -> Result<(), NetworkError> {
    if set.tensors.len() != specs.len() {
        return Err(NetworkError::TensorCount {
            set: set_name,
            expected: specs.len(),
            found: set.tensors.len(),
        });
    }
    for (index, (t, spec)) in set.tensors.iter_mut().zip(specs).enumerate() {
        if t.name != spec.name {
            return Err(NetworkError::TensorName {
                set: set_name,
                index,
                expected: spec.name.clone(),
                found: t.name.clone(),
            });
        }
        if t.shape != spec.shape || t.data.len() != spec.shape.iter().product::<usize>() {
            return Err(NetworkError::TensorShape {
                set: set_name,
                name: t.name.clone(),
                expected: spec.shape.clone(),
                found: t.shape.clone(),
                len: t.data.len(),
            });
        }
        t.decay = spec.decay;
    }
    Ok(())
}

/// Sums of the loss parts over the documents of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossSums {
    /// Sum over documents of `-sum_v x_v log p_v` (nats).
    pub recons: f64,
    /// Sum over documents of the KL divergence from the standard normal prior (nats).
    pub kld: f64,
    /// Number of documents.
    pub docs: usize,
    /// Sum of all word counts in the batch.
    pub words: f64,
}

impl LossSums {
    /// Adds the sums of another batch.
    pub fn add(&mut self, other: &LossSums) {
        self.recons += other.recons;
        self.kld += other.kld;
        self.docs += other.docs;
        self.words += other.words;
    }

    /// Returns `recons + kld`.
    pub fn total(&self) -> f64 {
        self.recons + self.kld
    }
}

/// The network: its shape, its parameters and its batch-norm running statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Shape of the network.
    pub config: NetworkConfig,
    /// Trainable tensors, laid out as the module documentation lists.
    pub params: ParamSet,
    /// Batch-norm running means and variances (empty without batch norm).
    pub running: ParamSet,
    /// Topic-quality extensions (all off for SageMaker's network).
    pub extensions: Extensions,
}

impl Network {
    /// Creates a network with freshly initialised parameters (see the module documentation).
    ///
    /// Never fails: an invalid configuration gives a network whose passes return
    /// [`NetworkError::InvalidConfig`]; call [`NetworkConfig::validate`] to check early.
    pub fn new(config: NetworkConfig, rng: &mut impl Rng) -> Network {
        Self::with_extensions(config, Extensions::default(), rng)
    }

    /// Creates a network with extensions; with [`Extensions::default`] this is [`Network::new`].
    pub fn with_extensions(
        config: NetworkConfig,
        extensions: Extensions,
        rng: &mut impl Rng,
    ) -> Network {
        let params = build_set(param_specs(&config, &extensions), rng);
        let running = build_set(running_specs(&config, &extensions), rng);
        Network {
            config,
            params,
            running,
            extensions,
        }
    }

    /// Assembles a network from stored tensors, checking names, shapes and running variances
    /// against the configuration. Decay flags are set from the layout.
    ///
    /// # Errors
    /// [`NetworkError::InvalidConfig`], [`NetworkError::TensorCount`],
    /// [`NetworkError::TensorName`], [`NetworkError::TensorShape`] or
    /// [`NetworkError::InvalidRunningVariance`].
    pub fn from_parts(
        config: NetworkConfig,
        params: ParamSet,
        running: ParamSet,
    ) -> Result<Network, NetworkError> {
        Self::from_parts_with_extensions(config, Extensions::default(), params, running)
    }

    /// As [`Network::from_parts`], for a network with extensions.
    ///
    /// # Errors
    /// As [`Network::from_parts`]; also [`NetworkError::InvalidConfig`] for bad extensions.
    pub fn from_parts_with_extensions(
        config: NetworkConfig,
        extensions: Extensions,
        mut params: ParamSet,
        mut running: ParamSet,
    ) -> Result<Network, NetworkError> {
        config.validate()?;
        extensions.validate()?;
        check_set("params", &mut params, &param_specs(&config, &extensions))?;
        check_set(
            "running",
            &mut running,
            &running_specs(&config, &extensions),
        )?;
        for t in running
            .tensors
            .iter()
            .filter(|t| t.name.ends_with("running_var"))
        {
            if let Some((index, &value)) = t
                .data
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
            {
                return Err(NetworkError::InvalidRunningVariance {
                    name: t.name.clone(),
                    index,
                    value,
                });
            }
        }
        Ok(Network {
            config,
            params,
            running,
            extensions,
        })
    }

    /// Returns the decoder weight `W_d`, `[V, K]` row-major: column `k` is topic `k`'s word weights.
    pub fn decoder_weight(&self) -> &[f32] {
        // Empty only when `params` was replaced by a set of another layout.
        self.params
            .tensors
            .get(self.index().decoder_weight)
            .map_or(&[][..], |t| t.data.as_slice())
    }

    /// Returns a zero-filled gradient set with the layout of [`Network::params`].
    pub fn zero_grads(&self) -> ParamSet {
        self.params.zeros_like()
    }

    /// Returns the position of the first encoder layer's weight in [`Network::params`] and the
    /// length of its rows (one row of `H` values per word), the rows that
    /// [`Workspace::present_words`] lists after a training step.
    pub(crate) fn first_layer_rows(&self) -> (usize, usize) {
        (
            self.index().layer_weight(0),
            self.config.encoder_layers.first().copied().unwrap_or(0),
        )
    }

    /// Positions of the tensors in [`Network::params`].
    fn index(&self) -> ParamIndex {
        ParamIndex::new(&self.config)
    }

    /// Checks the configuration and that `set` has the parameter layout (count and shapes).
    fn check_layout(&self, set_name: &'static str, set: &ParamSet) -> Result<(), NetworkError> {
        self.config.validate()?;
        let index = self.index();
        if set.tensors.len() != index.count {
            return Err(NetworkError::TensorCount {
                set: set_name,
                expected: index.count,
                found: set.tensors.len(),
            });
        }
        for (i, t) in set.tensors.iter().enumerate() {
            let (dims, rank) = index.shape(&self.config, i);
            if t.shape.as_slice() != &dims[..rank]
                || t.data.len() != dims[..rank].iter().product::<usize>()
            {
                return Err(NetworkError::TensorShape {
                    set: set_name,
                    name: t.name.clone(),
                    expected: dims[..rank].to_vec(),
                    found: t.shape.clone(),
                    len: t.data.len(),
                });
            }
        }
        Ok(())
    }
}

/// Positions of tensors in the parameter set, computed from the configuration without allocating.
#[derive(Debug, Clone, Copy)]
struct ParamIndex {
    per_layer: usize,
    mu_weight: usize,
    mu_bias: usize,
    log_sigma_weight: usize,
    log_sigma_bias: usize,
    decoder_weight: usize,
    decoder_bias: usize,
    count: usize,
}

impl ParamIndex {
    fn new(config: &NetworkConfig) -> Self {
        let per_layer = config.tensors_per_layer();
        let heads = config.encoder_layers.len() * per_layer;
        Self {
            per_layer,
            mu_weight: heads,
            mu_bias: heads + 1,
            log_sigma_weight: heads + 2,
            log_sigma_bias: heads + 3,
            decoder_weight: heads + 4,
            decoder_bias: heads + 5,
            count: heads + 6,
        }
    }

    fn layer_weight(&self, l: usize) -> usize {
        l * self.per_layer
    }

    fn layer_bias(&self, l: usize) -> usize {
        l * self.per_layer + 1
    }

    fn layer_gamma(&self, l: usize) -> usize {
        l * self.per_layer + 2
    }

    fn layer_beta(&self, l: usize) -> usize {
        l * self.per_layer + 3
    }

    /// Shape of tensor `i` as up to two dimensions and the rank.
    fn shape(&self, config: &NetworkConfig, i: usize) -> ([usize; 2], usize) {
        let (k, v, h) = (config.num_topics, config.feature_dim, config.last_width());
        if i < self.mu_weight {
            let l = i / self.per_layer;
            let width = config.encoder_layers[l];
            if i.is_multiple_of(self.per_layer) {
                let fan_in = if l == 0 {
                    v
                } else {
                    config.encoder_layers[l - 1]
                };
                ([fan_in, width], 2)
            } else {
                ([width, 0], 1)
            }
        } else if i == self.mu_weight || i == self.log_sigma_weight {
            ([h, k], 2)
        } else if i == self.mu_bias || i == self.log_sigma_bias {
            ([k, 0], 1)
        } else if i == self.decoder_weight {
            ([v, k], 2)
        } else {
            ([v, 0], 1)
        }
    }
}
