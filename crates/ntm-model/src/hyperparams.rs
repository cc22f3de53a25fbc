//! SageMaker NTM hyperparameters: names, ranges, defaults, parsing and validation.
//!
//! SageMaker hands a training container every hyperparameter as a string (the
//! `HyperParameters` map of `CreateTrainingJob`, written to `hyperparameters.json`).
//! The SageMaker Python SDK produces those strings with Python's `str()`, so booleans
//! arrive as `"True"`/`"False"`, floats as `"1e-06"` or `"0.001"`, and lists as JSON
//! text such as `"[100, 50]"`. This module accepts those forms, plain JSON numbers,
//! booleans and arrays, and the hand-typed forms `"true"`, `"100,50"` and `"auto"`.
//!
//! Validation follows the ranges of the SageMaker NTM documentation, with these choices:
//!
//! - Integer keys accept integral values written as floats (`"10.0"`, `"1e3"`) and reject
//!   non-integral ones (`"10.5"`) with the reason `not an integer`.
//! - `sub_sample = 0.0` is inside the documented range `0.0..1.0`, but it would train on no
//!   documents, so it is rejected. The accepted range is `0 < sub_sample <= 1`.
//! - Keys that start with `_` (SageMaker's internal keys such as `_kvstore`) are accepted,
//!   ignored, and kept so that the start-up log can print them.
//! - `seed` is an extension of ntm, not a SageMaker key: it seeds every random draw of a run.
//! - Enumerated values (`optimizer`, `encoder_layers_activation`) and booleans are matched
//!   without regard to ASCII case.
//!
//! ntm's topic-quality extensions ([`EXTENSION_KEYS`]) are not SageMaker keys. Each is off by
//! default, and a model trained without them is SageMaker's model. `preset` names a group of
//! values ([`Preset`]). Keys set explicitly, from a file or a flag, override the preset's
//! values, whatever the order in which they were set.
//!
//! Use [`HyperparameterBuilder`] to merge sources (a file, then command-line overrides)
//! and [`HyperparameterBuilder::check`] to get a validated [`Hyperparameters`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::Value;

use crate::optim::{OptimizerConfig, OptimizerKind};

/// Largest accepted `feature_dim` (vocabulary size).
pub const MAX_FEATURE_DIM: usize = 1_000_000;
/// Largest accepted `num_topics`.
pub const MAX_NUM_TOPICS: usize = 1000;
/// Largest accepted `mini_batch_size`.
pub const MAX_MINI_BATCH_SIZE: usize = 10_000;

/// Every hyperparameter key that ntm accepts, besides keys that start with `_`.
pub const KNOWN_KEYS: [&str; 16] = [
    "batch_norm",
    "clip_gradient",
    "encoder_layers",
    "encoder_layers_activation",
    "epochs",
    "feature_dim",
    "learning_rate",
    "mini_batch_size",
    "num_patience_epochs",
    "num_topics",
    "optimizer",
    "rescale_gradient",
    "seed",
    "sub_sample",
    "tolerance",
    "weight_decay",
];

/// ntm's extension keys, accepted besides SageMaker's [`KNOWN_KEYS`]. Each is off by default
/// and appears in [`Hyperparameters::to_string_map`] only when it is set to another value.
pub const EXTENSION_KEYS: [&str; 10] = [
    "adam_beta1",
    "decoder_batch_norm",
    "decoder_batch_norm_anneal_epochs",
    "head_batch_norm",
    "kl_warmup_epochs",
    "preset",
    "prior_alpha",
    "restart_selection",
    "restarts",
    "theta_dropout",
];

const ALLOWED_PRIOR_ALPHA: &str =
    "0 (standard normal prior, the default) or a float 1e-3..100 (Dirichlet concentration)";
const ALLOWED_THETA_DROPOUT: &str = "float 0.0..0.9 (0 disables dropout)";
const ALLOWED_KL_WARMUP: &str = "integer >= 0 (0 disables the warm-up)";
const ALLOWED_ADAM_BETA1: &str = "float 0.0..0.999 (default 0.9)";
const ALLOWED_ANNEAL: &str =
    "integer >= 0 (0 keeps the batch-normalised decoder); needs decoder_batch_norm = true";
const ALLOWED_PRESET: &str = "none, quality";
const ALLOWED_RESTARTS: &str = "integer 1..100 (1 trains once)";
const ALLOWED_RESTART_SELECTION: &str =
    "run (keep the best run) or topics (keep the best distinct topics of all runs)";

/// Selection among the runs of `restarts` (`restart_selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartSelection {
    /// The whole run whose topics score best.
    #[default]
    Run,
    /// The best-scoring distinct topics of all runs, with the rest of the network refitted to
    /// them.
    Topics,
}

impl fmt::Display for RestartSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Run => "run",
            Self::Topics => "topics",
        })
    }
}

/// A named group of hyperparameter values (`preset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// No preset: every key at its own default.
    #[default]
    None,
    /// Topic-quality settings: a ProdLDA-style network and training recipe
    /// ([`Preset::values`] lists the keys). Its decoder anneal spans the whole run: unless
    /// `decoder_batch_norm_anneal_epochs` is set explicitly, it follows `epochs`.
    Quality,
}

impl Preset {
    /// Returns the keys and values the preset sets, in the string form of `hyperparameters.json`.
    pub fn values(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::None => &[],
            // The most coherent and diverse topics on 20 Newsgroups came from this combination
            // (docs/quality.md). It has batch norm on the heads and on the decoder, which is
            // annealed to the plain decoder over the run, a Dirichlet prior, theta dropout and
            // high-momentum Adam. The anneal ends at the last epoch, so early stopping never acts.
            Self::Quality => &[
                ("adam_beta1", "0.99"),
                ("decoder_batch_norm", "true"),
                ("decoder_batch_norm_anneal_epochs", "150"),
                ("encoder_layers", "300"),
                ("encoder_layers_activation", "tanh"),
                ("epochs", "150"),
                ("head_batch_norm", "true"),
                ("learning_rate", "0.002"),
                ("mini_batch_size", "200"),
                ("optimizer", "adam"),
                ("prior_alpha", "1.0"),
                ("theta_dropout", "0.2"),
            ],
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Quality => "quality",
        })
    }
}

const ALLOWED_FEATURE_DIM: &str = "integer 1..1000000";
const ALLOWED_NUM_TOPICS: &str = "integer 2..1000";
const ALLOWED_ENCODER_LAYERS: &str =
    "'auto' or comma-separated positive integers (for example \"100,50\" or \"[100, 50]\")";
const ALLOWED_ACTIVATION: &str = "sigmoid, tanh, relu, softplus";
const ALLOWED_MINI_BATCH_SIZE: &str = "integer 1..10000";
const ALLOWED_EPOCHS: &str = "integer >= 1";
const ALLOWED_OPTIMIZER: &str = "sgd, adam, adagrad, adadelta, rmsprop";
const ALLOWED_TOLERANCE: &str = "float 1e-6..0.1";
const ALLOWED_PATIENCE: &str = "integer >= 1";
const ALLOWED_BOOL: &str = "true or false";
const ALLOWED_RESCALE: &str = "float 1e-3..1.0";
const ALLOWED_CLIP: &str = "float >= 1e-3, or Inf for no clipping";
const ALLOWED_WEIGHT_DECAY: &str = "float 0.0..1.0";
const ALLOWED_LEARNING_RATE: &str = "float 1e-6..1.0";
const ALLOWED_SUB_SAMPLE: &str = "float in (0, 1]; 0 would train on no data";
const ALLOWED_SEED: &str = "integer 0..18446744073709551615";

/// Errors from parsing or validating hyperparameters.
#[derive(Debug, thiserror::Error)]
pub enum HyperparameterError {
    /// A known key has a value outside its type or range.
    #[error("invalid value {value:?} for hyperparameter `{key}`: {reason}; allowed: {allowed}")]
    InvalidValue {
        /// The hyperparameter name.
        key: String,
        /// The value as given (JSON values other than strings are shown as JSON text).
        value: String,
        /// Description of the problem, for example `out of range` or `not an integer`.
        reason: String,
        /// The accepted type and range or set of values.
        allowed: &'static str,
    },
    /// A key that is neither a known hyperparameter nor an internal `_` key.
    #[error(
        "unknown hyperparameter `{key}` (value {value:?}){}; valid keys: {}; ntm extensions: {}",
        suggestion.map(|s| format!("; did you mean `{s}`?")).unwrap_or_default(),
        KNOWN_KEYS.join(", "),
        EXTENSION_KEYS.join(", ")
    )]
    UnknownKey {
        /// The key as given.
        key: String,
        /// Its value as given.
        value: String,
        /// The closest known key by edit distance, when one is close enough.
        suggestion: Option<&'static str>,
    },
    /// A required key (`feature_dim` or `num_topics`) was never set.
    #[error("missing required hyperparameter `{key}`; allowed: {allowed}")]
    Missing {
        /// The hyperparameter name.
        key: &'static str,
        /// The accepted type and range.
        allowed: &'static str,
    },
    /// The hyperparameter document is valid JSON but not an object.
    #[error("hyperparameters must be a JSON object of key-value pairs, found {found}")]
    NotAnObject {
        /// The JSON type found instead (`array`, `string`, ...).
        found: &'static str,
    },
    /// The hyperparameter document is not valid JSON.
    #[error(
        "invalid JSON in hyperparameters {source_name} at line {line}, column {column}: {message}"
    )]
    InvalidJson {
        /// The file path, or `text` when parsed from a string.
        source_name: String,
        /// 1-based line of the syntax error.
        line: usize,
        /// 1-based column of the syntax error.
        column: usize,
        /// The parser's description of the error.
        message: String,
    },
    /// The hyperparameter file could not be read.
    #[error("failed to read hyperparameters file {}", path.display())]
    Io {
        /// The file path.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

impl HyperparameterError {
    /// Returns the hyperparameter the error is about, when it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::InvalidValue { key, .. } | Self::UnknownKey { key, .. } => Some(key),
            Self::Missing { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = HyperparameterError> = std::result::Result<T, E>;

/// Non-linearity applied after each encoder layer (`encoder_layers_activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// `1 / (1 + exp(-x))`, SageMaker's default.
    #[default]
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// `ln(1 + exp(x))`, an ntm extension (SageMaker accepts only the three above).
    Softplus,
}

/// Error for a string that names no [`Activation`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown activation {value:?}; allowed: {ALLOWED_ACTIVATION}")]
pub struct ParseActivationError {
    /// The string as given.
    pub value: String,
}

impl FromStr for Activation {
    type Err = ParseActivationError;

    /// Parses `sigmoid`, `tanh`, `relu` or `softplus`, ignoring ASCII case and surrounding whitespace.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sigmoid" => Ok(Self::Sigmoid),
            "tanh" => Ok(Self::Tanh),
            "relu" => Ok(Self::Relu),
            "softplus" => Ok(Self::Softplus),
            _ => Err(ParseActivationError {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sigmoid => "sigmoid",
            Self::Tanh => "tanh",
            Self::Relu => "relu",
            Self::Softplus => "softplus",
        })
    }
}

/// Hidden layer widths of the encoder (`encoder_layers`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EncoderLayers {
    /// Two layers of widths `3K` and `2K`, where `K` is `num_topics`.
    #[default]
    Auto,
    /// Explicit widths, first layer first; never empty, every width at least 1.
    Widths(Vec<usize>),
}

impl EncoderLayers {
    /// Returns the layer widths for `num_topics` topics, resolving `auto` to `[3K, 2K]`.
    pub fn widths(&self, num_topics: usize) -> Vec<usize> {
        match self {
            Self::Auto => vec![3 * num_topics, 2 * num_topics],
            Self::Widths(widths) => widths.clone(),
        }
    }
}

impl fmt::Display for EncoderLayers {
    /// Writes `auto` or the widths joined by commas (`100,50`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Widths(widths) => {
                let text: Vec<String> = widths.iter().map(usize::to_string).collect();
                f.write_str(&text.join(","))
            }
        }
    }
}

/// A validated, complete set of NTM hyperparameters.
///
/// Build it with [`HyperparameterBuilder`] (or the `from_*` shortcuts here), which checks
/// every range below. Code that changes a field directly is responsible for keeping it in range.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyperparameters {
    /// Vocabulary size, the width of every input row; 1..=1,000,000, required.
    pub feature_dim: usize,
    /// Number of topics `K`, the latent dimension; 2..=1000, required.
    pub num_topics: usize,
    /// Encoder hidden layer widths; default `auto` (`[3K, 2K]`).
    pub encoder_layers: EncoderLayers,
    /// Activation after each encoder layer; default sigmoid.
    pub encoder_layers_activation: Activation,
    /// Documents per mini-batch; 1..=10,000, default 256.
    pub mini_batch_size: usize,
    /// Maximum number of passes over the training data; at least 1, default 50.
    pub epochs: usize,
    /// Update rule; default AdaDelta.
    pub optimizer: OptimizerKind,
    /// Relative loss improvement that early stopping counts as progress; 1e-6..=0.1, default 0.001.
    pub tolerance: f64,
    /// Early-stopping window and patience in epochs; at least 1, default 3.
    pub num_patience_epochs: usize,
    /// Whether the encoder uses batch normalisation; default false.
    pub batch_norm: bool,
    /// Factor applied to every gradient before the update; 1e-3..=1.0, default 1.0.
    pub rescale_gradient: f64,
    /// Bound on each gradient element after rescaling; at least 1e-3, default infinity (no clipping).
    pub clip_gradient: f64,
    /// L2 weight decay coefficient; 0.0..=1.0, default 0.0.
    pub weight_decay: f64,
    /// Learning rate (ignored by AdaDelta); 1e-6..=1.0, default 0.001.
    pub learning_rate: f64,
    /// Fraction of training documents drawn for each epoch; `0 < sub_sample <= 1`, default 1.0.
    pub sub_sample: f64,
    /// Seed of every random draw in a run. An ntm extension, not a SageMaker key; default 0.
    pub seed: u64,
    /// Extension: Dirichlet concentration of the logistic-normal prior; 0 (default) keeps the
    /// standard normal prior.
    pub prior_alpha: f64,
    /// Extension: batch normalisation of the decoder logits; default false.
    pub decoder_batch_norm: bool,
    /// Extension: dropout probability on the topic proportions in training; default 0.
    pub theta_dropout: f64,
    /// Extension: epochs over which the KL weight rises linearly to 1; default 0 (none).
    pub kl_warmup_epochs: usize,
    /// Extension: batch normalisation of `mu` and of the log-variance; default false.
    pub head_batch_norm: bool,
    /// Extension: Adam's first-moment decay rate; 0.0..=0.999, default 0.9 (MXNet's).
    pub adam_beta1: f64,
    /// Extension: epochs over which training moves from the batch-normalised decoder to the
    /// plain one; default 0 (the batch-normalised decoder throughout).
    pub decoder_batch_norm_anneal_epochs: usize,
    /// Extension: training runs from consecutive seeds, of which the one with the most coherent
    /// topics is kept; 1..=100, default 1.
    pub restarts: usize,
    /// Extension: what the restarts keep, the best run or the best distinct topics of all runs;
    /// default run.
    pub restart_selection: RestartSelection,
    /// Extension: the preset applied to keys not set explicitly; default none.
    pub preset: Preset,
    /// Keys starting with `_`, accepted without effect and kept for the start-up log.
    pub internal: BTreeMap<String, String>,
}

impl Hyperparameters {
    /// Returns an empty builder.
    pub fn builder() -> HyperparameterBuilder {
        HyperparameterBuilder::new()
    }

    /// Creates hyperparameters with the two required keys and every other key at its default.
    ///
    /// # Errors
    /// [`HyperparameterError::InvalidValue`] when either value is outside its range.
    pub fn new(feature_dim: usize, num_topics: usize) -> Result<Self> {
        let mut builder = HyperparameterBuilder::new();
        builder.set("feature_dim", &feature_dim.to_string())?;
        builder.set("num_topics", &num_topics.to_string())?;
        builder.check()
    }

    /// Parses and validates a string map, the form of SageMaker's `hyperparameters.json`.
    ///
    /// # Errors
    /// The first invalid or unknown key in key order, or a missing required key.
    pub fn from_string_map(map: &BTreeMap<String, String>) -> Result<Self> {
        let mut builder = HyperparameterBuilder::new();
        builder.apply_string_map(map)?;
        builder.check()
    }

    /// Parses and validates a JSON object whose values are strings, numbers, booleans or arrays.
    ///
    /// # Errors
    /// [`HyperparameterError::NotAnObject`] for anything but an object, otherwise as
    /// [`Hyperparameters::from_string_map`].
    pub fn from_json_value(value: &Value) -> Result<Self> {
        let mut builder = HyperparameterBuilder::new();
        builder.apply_json_value(value)?;
        builder.check()
    }

    /// Parses and validates JSON text, as in `hyperparameters.json`.
    ///
    /// # Errors
    /// [`HyperparameterError::InvalidJson`] for malformed text, otherwise as
    /// [`Hyperparameters::from_json_value`].
    pub fn from_json_str(text: &str) -> Result<Self> {
        let mut builder = HyperparameterBuilder::new();
        builder.apply_json_str(text)?;
        builder.check()
    }

    /// Reads, parses and validates a JSON file such as `/opt/ml/input/config/hyperparameters.json`.
    ///
    /// # Errors
    /// [`HyperparameterError::Io`] when the file cannot be read, otherwise as
    /// [`Hyperparameters::from_json_str`] with the path in the message.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let mut builder = HyperparameterBuilder::new();
        builder.apply_json_file(path)?;
        builder.check()
    }

    /// Returns a builder that contains these values, to apply overrides and check again.
    pub fn to_builder(&self) -> HyperparameterBuilder {
        HyperparameterBuilder {
            feature_dim: Some(self.feature_dim),
            num_topics: Some(self.num_topics),
            values: self.clone(),
            explicit: KNOWN_KEYS
                .iter()
                .chain(EXTENSION_KEYS.iter())
                .copied()
                .collect(),
        }
    }

    /// Returns the encoder hidden layer widths with `auto` resolved to `[3K, 2K]`.
    pub fn encoder_widths(&self) -> Vec<usize> {
        self.encoder_layers.widths(self.num_topics)
    }

    /// Returns whether early stopping can end training before `epochs`.
    ///
    /// SageMaker documents that `num_patience_epochs > epochs` disables early stopping.
    pub fn early_stopping_enabled(&self) -> bool {
        self.num_patience_epochs <= self.epochs
    }

    /// Returns the optimizer settings, with `rescale_grad` equal to `rescale_gradient`.
    ///
    /// The trainer applies it to the gradient of the loss summed over the batch.
    pub fn optimizer_config(&self) -> OptimizerConfig {
        OptimizerConfig {
            kind: self.optimizer,
            learning_rate: self.learning_rate as f32,
            rescale_grad: self.rescale_gradient as f32,
            clip_gradient: self.clip_gradient as f32,
            weight_decay: self.weight_decay as f32,
            adam_beta1: self.adam_beta1,
        }
    }

    /// Returns every hyperparameter, internal `_` keys included, as strings.
    ///
    /// Floats use Python's `str()` form (`0.001`, `1e-06`, `1.0`) and an infinite
    /// `clip_gradient` is `Inf`, as SageMaker's start-up log prints them.
    pub fn to_string_map(&self) -> BTreeMap<String, String> {
        let mut map = self.internal.clone();
        let entries = [
            ("batch_norm", self.batch_norm.to_string()),
            ("clip_gradient", python_float_str(self.clip_gradient)),
            ("encoder_layers", self.encoder_layers.to_string()),
            (
                "encoder_layers_activation",
                self.encoder_layers_activation.to_string(),
            ),
            ("epochs", self.epochs.to_string()),
            ("feature_dim", self.feature_dim.to_string()),
            ("learning_rate", python_float_str(self.learning_rate)),
            ("mini_batch_size", self.mini_batch_size.to_string()),
            ("num_patience_epochs", self.num_patience_epochs.to_string()),
            ("num_topics", self.num_topics.to_string()),
            ("optimizer", self.optimizer.to_string()),
            ("rescale_gradient", python_float_str(self.rescale_gradient)),
            ("seed", self.seed.to_string()),
            ("sub_sample", python_float_str(self.sub_sample)),
            ("tolerance", python_float_str(self.tolerance)),
            ("weight_decay", python_float_str(self.weight_decay)),
        ];
        for (key, value) in entries {
            map.insert(key.to_string(), value);
        }
        let extensions = [
            (
                "adam_beta1",
                self.adam_beta1 != crate::optim::ADAM_BETA1,
                python_float_str(self.adam_beta1),
            ),
            (
                "decoder_batch_norm",
                self.decoder_batch_norm,
                self.decoder_batch_norm.to_string(),
            ),
            (
                "decoder_batch_norm_anneal_epochs",
                self.decoder_batch_norm_anneal_epochs > 0,
                self.decoder_batch_norm_anneal_epochs.to_string(),
            ),
            (
                "head_batch_norm",
                self.head_batch_norm,
                self.head_batch_norm.to_string(),
            ),
            (
                "kl_warmup_epochs",
                self.kl_warmup_epochs > 0,
                self.kl_warmup_epochs.to_string(),
            ),
            (
                "preset",
                self.preset != Preset::None,
                self.preset.to_string(),
            ),
            (
                "prior_alpha",
                self.prior_alpha > 0.0,
                python_float_str(self.prior_alpha),
            ),
            (
                "restart_selection",
                self.restart_selection != RestartSelection::Run,
                self.restart_selection.to_string(),
            ),
            ("restarts", self.restarts > 1, self.restarts.to_string()),
            (
                "theta_dropout",
                self.theta_dropout > 0.0,
                python_float_str(self.theta_dropout),
            ),
        ];
        for (key, set, value) in extensions {
            if set {
                map.insert(key.to_string(), value);
            }
        }
        map
    }

    /// Returns the network extensions these hyperparameters select.
    pub fn extensions(&self) -> crate::network::Extensions {
        crate::network::Extensions {
            prior_alpha: self.prior_alpha as f32,
            decoder_batch_norm: self.decoder_batch_norm,
            theta_dropout: self.theta_dropout as f32,
            head_batch_norm: self.head_batch_norm,
            plain_decoder_share: 0.0,
        }
    }

    /// Formats SageMaker's start-up line `Final configuration: {'key': 'value', ...}`, keys sorted.
    pub fn final_configuration_line(&self) -> String {
        let pairs: Vec<String> = self
            .to_string_map()
            .iter()
            .map(|(key, value)| format!("'{key}': '{value}'"))
            .collect();
        format!("Final configuration: {{{}}}", pairs.join(", "))
    }
}

/// Collects hyperparameters from several sources, validating each value as it is set.
///
/// Later calls override earlier ones, so a CLI can apply a file and then its flags.
/// [`HyperparameterBuilder::check`] adds the required-key and cross-field checks.
#[derive(Debug, Clone)]
pub struct HyperparameterBuilder {
    feature_dim: Option<usize>,
    num_topics: Option<usize>,
    /// Current values; `feature_dim` and `num_topics` in here are placeholders until set.
    values: Hyperparameters,
    /// Keys set explicitly, for warnings about settings that have no effect.
    explicit: BTreeSet<&'static str>,
}

impl Default for HyperparameterBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HyperparameterBuilder {
    /// Creates a builder holding SageMaker's defaults and no required keys.
    pub fn new() -> Self {
        Self {
            feature_dim: None,
            num_topics: None,
            values: Hyperparameters {
                feature_dim: 0,
                num_topics: 0,
                encoder_layers: EncoderLayers::Auto,
                encoder_layers_activation: Activation::Sigmoid,
                mini_batch_size: 256,
                epochs: 50,
                optimizer: OptimizerKind::Adadelta,
                tolerance: 0.001,
                num_patience_epochs: 3,
                batch_norm: false,
                rescale_gradient: 1.0,
                clip_gradient: f64::INFINITY,
                weight_decay: 0.0,
                learning_rate: 0.001,
                sub_sample: 1.0,
                seed: 0,
                prior_alpha: 0.0,
                decoder_batch_norm: false,
                theta_dropout: 0.0,
                kl_warmup_epochs: 0,
                head_batch_norm: false,
                adam_beta1: crate::optim::ADAM_BETA1,
                decoder_batch_norm_anneal_epochs: 0,
                restarts: 1,
                restart_selection: RestartSelection::Run,
                preset: Preset::None,
                internal: BTreeMap::new(),
            },
            explicit: BTreeSet::new(),
        }
    }

    /// Parses `value` for `key` and stores it, replacing any earlier value.
    ///
    /// Keys starting with `_` are stored as given and have no effect.
    ///
    /// # Errors
    /// [`HyperparameterError::UnknownKey`] (with the closest known key as a suggestion)
    /// or [`HyperparameterError::InvalidValue`] naming the key, the value and what is allowed.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        if key.starts_with('_') {
            self.values
                .internal
                .insert(key.to_string(), value.to_string());
            return Ok(self);
        }
        let Some(&known) = KNOWN_KEYS
            .iter()
            .chain(EXTENSION_KEYS.iter())
            .find(|k| **k == key)
        else {
            return Err(HyperparameterError::UnknownKey {
                key: key.to_string(),
                value: value.to_string(),
                suggestion: closest_key(key),
            });
        };
        let v = &mut self.values;
        match known {
            "feature_dim" => {
                let n =
                    parse_integer(known, value, 1, MAX_FEATURE_DIM as u64, ALLOWED_FEATURE_DIM)?;
                self.feature_dim = Some(to_usize(known, value, n, ALLOWED_FEATURE_DIM)?);
            }
            "num_topics" => {
                let n = parse_integer(known, value, 2, MAX_NUM_TOPICS as u64, ALLOWED_NUM_TOPICS)?;
                self.num_topics = Some(to_usize(known, value, n, ALLOWED_NUM_TOPICS)?);
            }
            "encoder_layers" => v.encoder_layers = parse_encoder_layers(value)?,
            "encoder_layers_activation" => {
                v.encoder_layers_activation = value.parse().map_err(|_| {
                    invalid(known, value, "not a known activation", ALLOWED_ACTIVATION)
                })?;
            }
            "mini_batch_size" => {
                let n = parse_integer(
                    known,
                    value,
                    1,
                    MAX_MINI_BATCH_SIZE as u64,
                    ALLOWED_MINI_BATCH_SIZE,
                )?;
                v.mini_batch_size = to_usize(known, value, n, ALLOWED_MINI_BATCH_SIZE)?;
            }
            "epochs" => {
                let n = parse_integer(known, value, 1, u64::MAX, ALLOWED_EPOCHS)?;
                v.epochs = to_usize(known, value, n, ALLOWED_EPOCHS)?;
            }
            "optimizer" => {
                v.optimizer = value.parse().map_err(|_| {
                    invalid(known, value, "not a known optimizer", ALLOWED_OPTIMIZER)
                })?;
            }
            "tolerance" => {
                v.tolerance = parse_float(
                    known,
                    value,
                    FloatRange::closed(1e-6, 0.1),
                    ALLOWED_TOLERANCE,
                )?;
            }
            "num_patience_epochs" => {
                let n = parse_integer(known, value, 1, u64::MAX, ALLOWED_PATIENCE)?;
                v.num_patience_epochs = to_usize(known, value, n, ALLOWED_PATIENCE)?;
            }
            "batch_norm" => v.batch_norm = parse_bool(known, value)?,
            "rescale_gradient" => {
                v.rescale_gradient =
                    parse_float(known, value, FloatRange::closed(1e-3, 1.0), ALLOWED_RESCALE)?;
            }
            "clip_gradient" => {
                let range = FloatRange {
                    min: 1e-3,
                    max: f64::INFINITY,
                    min_exclusive: false,
                };
                v.clip_gradient = parse_float(known, value, range, ALLOWED_CLIP)?;
            }
            "weight_decay" => {
                v.weight_decay = parse_float(
                    known,
                    value,
                    FloatRange::closed(0.0, 1.0),
                    ALLOWED_WEIGHT_DECAY,
                )?;
            }
            "learning_rate" => {
                v.learning_rate = parse_float(
                    known,
                    value,
                    FloatRange::closed(1e-6, 1.0),
                    ALLOWED_LEARNING_RATE,
                )?;
            }
            "sub_sample" => {
                let range = FloatRange {
                    min: 0.0,
                    max: 1.0,
                    min_exclusive: true,
                };
                v.sub_sample = parse_float(known, value, range, ALLOWED_SUB_SAMPLE)?;
            }
            "seed" => v.seed = parse_integer(known, value, 0, u64::MAX, ALLOWED_SEED)?,
            "prior_alpha" => {
                let alpha = parse_float(
                    known,
                    value,
                    FloatRange::closed(0.0, 100.0),
                    ALLOWED_PRIOR_ALPHA,
                )?;
                if alpha != 0.0 && alpha < 1e-3 {
                    return Err(invalid(known, value, "out of range", ALLOWED_PRIOR_ALPHA));
                }
                v.prior_alpha = alpha;
            }
            "decoder_batch_norm" => v.decoder_batch_norm = parse_bool(known, value)?,
            "theta_dropout" => {
                v.theta_dropout = parse_float(
                    known,
                    value,
                    FloatRange::closed(0.0, 0.9),
                    ALLOWED_THETA_DROPOUT,
                )?;
            }
            "head_batch_norm" => v.head_batch_norm = parse_bool(known, value)?,
            "adam_beta1" => {
                v.adam_beta1 = parse_float(
                    known,
                    value,
                    FloatRange::closed(0.0, 0.999),
                    ALLOWED_ADAM_BETA1,
                )?;
            }
            "decoder_batch_norm_anneal_epochs" => {
                let n = parse_integer(known, value, 0, u64::MAX, ALLOWED_ANNEAL)?;
                v.decoder_batch_norm_anneal_epochs = to_usize(known, value, n, ALLOWED_ANNEAL)?;
            }
            "restarts" => {
                let n = parse_integer(known, value, 1, 100, ALLOWED_RESTARTS)?;
                v.restarts = to_usize(known, value, n, ALLOWED_RESTARTS)?;
            }
            "restart_selection" => {
                v.restart_selection = match value.trim().to_ascii_lowercase().as_str() {
                    "run" => RestartSelection::Run,
                    "topics" => RestartSelection::Topics,
                    _ => {
                        return Err(invalid(
                            known,
                            value,
                            "not a known selection",
                            ALLOWED_RESTART_SELECTION,
                        ))
                    }
                };
            }
            "kl_warmup_epochs" => {
                let n = parse_integer(known, value, 0, u64::MAX, ALLOWED_KL_WARMUP)?;
                v.kl_warmup_epochs = to_usize(known, value, n, ALLOWED_KL_WARMUP)?;
            }
            "preset" => {
                v.preset = match value.trim().to_ascii_lowercase().as_str() {
                    "none" => Preset::None,
                    "quality" => Preset::Quality,
                    _ => return Err(invalid(known, value, "not a known preset", ALLOWED_PRESET)),
                };
            }
            _ => unreachable!("every entry of KNOWN_KEYS has a parser"),
        }
        self.explicit.insert(known);
        Ok(self)
    }

    /// Sets `key` from a JSON value: strings are parsed as by [`HyperparameterBuilder::set`],
    /// numbers, booleans and arrays through their JSON text.
    ///
    /// # Errors
    /// As [`HyperparameterBuilder::set`]; `null` and objects are invalid for every known key.
    pub fn set_json(&mut self, key: &str, value: &Value) -> Result<&mut Self> {
        match value {
            Value::String(text) => self.set(key, text),
            Value::Number(_) | Value::Bool(_) | Value::Array(_) => {
                self.set(key, &value.to_string())
            }
            Value::Null | Value::Object(_) => {
                if key.starts_with('_') {
                    return self.set(key, &value.to_string());
                }
                // Run the key check first so that an unknown key is reported as unknown.
                let allowed = allowed_for(key).ok_or_else(|| HyperparameterError::UnknownKey {
                    key: key.to_string(),
                    value: value.to_string(),
                    suggestion: closest_key(key),
                })?;
                Err(invalid(
                    key,
                    &value.to_string(),
                    "expected a string, number or boolean",
                    allowed,
                ))
            }
        }
    }

    /// Sets every entry of a string map, in key order.
    ///
    /// # Errors
    /// The first entry that [`HyperparameterBuilder::set`] rejects.
    pub fn apply_string_map(&mut self, map: &BTreeMap<String, String>) -> Result<&mut Self> {
        for (key, value) in map {
            self.set(key, value)?;
        }
        Ok(self)
    }

    /// Sets every entry of a JSON object, in key order.
    ///
    /// # Errors
    /// [`HyperparameterError::NotAnObject`], or the first entry that
    /// [`HyperparameterBuilder::set_json`] rejects.
    pub fn apply_json_value(&mut self, value: &Value) -> Result<&mut Self> {
        let Value::Object(object) = value else {
            return Err(HyperparameterError::NotAnObject {
                found: json_type_name(value),
            });
        };
        for (key, item) in object {
            self.set_json(key, item)?;
        }
        Ok(self)
    }

    /// Parses JSON text and sets every entry of the object it contains.
    ///
    /// # Errors
    /// [`HyperparameterError::InvalidJson`], otherwise as [`HyperparameterBuilder::apply_json_value`].
    pub fn apply_json_str(&mut self, text: &str) -> Result<&mut Self> {
        let value = parse_json(text, "text")?;
        self.apply_json_value(&value)
    }

    /// Reads a JSON file and sets every entry of the object it contains.
    ///
    /// # Errors
    /// [`HyperparameterError::Io`] when the file cannot be read, otherwise as
    /// [`HyperparameterBuilder::apply_json_str`] with the path in the message.
    pub fn apply_json_file(&mut self, path: &Path) -> Result<&mut Self> {
        let text = std::fs::read_to_string(path).map_err(|source| HyperparameterError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value = parse_json(&text, &path.display().to_string())?;
        self.apply_json_value(&value)
    }

    /// Checks the required keys and cross-field rules and returns the validated set.
    ///
    /// Logs a warning when `learning_rate` is set with AdaDelta (which ignores it), and
    /// an info line when `num_patience_epochs > epochs` disables early stopping.
    ///
    /// # Errors
    /// [`HyperparameterError::Missing`] when `feature_dim` or `num_topics` was never set.
    pub fn check(&self) -> Result<Hyperparameters> {
        let feature_dim = self.feature_dim.ok_or(HyperparameterError::Missing {
            key: "feature_dim",
            allowed: ALLOWED_FEATURE_DIM,
        })?;
        let num_topics = self.num_topics.ok_or(HyperparameterError::Missing {
            key: "num_topics",
            allowed: ALLOWED_NUM_TOPICS,
        })?;
        let mut hyperparameters = Hyperparameters {
            feature_dim,
            num_topics,
            ..self.values.clone()
        };
        let preset = hyperparameters.preset;
        if preset != Preset::None {
            // Apply the preset on a copy, then restore every explicitly set key.
            let mut with_preset = self.clone();
            for (key, value) in preset.values() {
                if !self.explicit.contains(key) {
                    with_preset.set(key, value)?;
                }
            }
            hyperparameters = Hyperparameters {
                feature_dim,
                num_topics,
                ..with_preset.values
            };
        }

        let anneal_explicit = self.explicit.contains("decoder_batch_norm_anneal_epochs");
        if preset == Preset::Quality && !anneal_explicit {
            // The preset anneals over the whole run, however many epochs it has.
            hyperparameters.decoder_batch_norm_anneal_epochs = if hyperparameters.decoder_batch_norm
            {
                hyperparameters.epochs
            } else {
                0
            };
        }
        if hyperparameters.decoder_batch_norm_anneal_epochs > 0
            && !hyperparameters.decoder_batch_norm
        {
            return Err(HyperparameterError::InvalidValue {
                key: "decoder_batch_norm_anneal_epochs".into(),
                value: hyperparameters.decoder_batch_norm_anneal_epochs.to_string(),
                reason:
                    "decoder_batch_norm is false, so there is no batch-normalised decoder to anneal"
                        .into(),
                allowed: ALLOWED_ANNEAL,
            });
        }
        if hyperparameters.restart_selection == RestartSelection::Topics
            && hyperparameters.restarts < 2
        {
            return Err(HyperparameterError::InvalidValue {
                key: "restart_selection".into(),
                value: hyperparameters.restart_selection.to_string(),
                reason: format!(
                    "restarts is {}, and choosing topics across runs needs at least 2",
                    hyperparameters.restarts
                ),
                allowed: ALLOWED_RESTART_SELECTION,
            });
        }
        if hyperparameters.optimizer == OptimizerKind::Adadelta
            && self.explicit.contains("learning_rate")
        {
            tracing::warn!(
                "learning_rate {} has no effect with optimizer adadelta, which does not use a learning rate",
                python_float_str(hyperparameters.learning_rate)
            );
        }
        if !hyperparameters.early_stopping_enabled() {
            tracing::info!(
                "Early stopping is disabled because num_patience_epochs ({}) > epochs ({}).",
                hyperparameters.num_patience_epochs,
                hyperparameters.epochs
            );
        }
        Ok(hyperparameters)
    }
}

/// Inclusive-or-exclusive lower bound and inclusive upper bound for a float key.
#[derive(Debug, Clone, Copy)]
struct FloatRange {
    min: f64,
    max: f64,
    min_exclusive: bool,
}

impl FloatRange {
    fn closed(min: f64, max: f64) -> Self {
        Self {
            min,
            max,
            min_exclusive: false,
        }
    }

    fn contains(&self, v: f64) -> bool {
        let above_min = if self.min_exclusive {
            v > self.min
        } else {
            v >= self.min
        };
        above_min && v <= self.max
    }
}

fn invalid(
    key: &str,
    value: &str,
    reason: impl Into<String>,
    allowed: &'static str,
) -> HyperparameterError {
    HyperparameterError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
        allowed,
    }
}

/// Parses an integer in `min..=max`. Integral floats such as `10.0` or `1e3` are accepted.
fn parse_integer(key: &str, value: &str, min: u64, max: u64, allowed: &'static str) -> Result<u64> {
    let text = value.trim();
    let number: i128 = if let Ok(n) = text.parse::<i128>() {
        n
    } else {
        match text.parse::<f64>() {
            Ok(f) if !f.is_finite() => {
                return Err(invalid(key, value, "not a finite integer", allowed))
            }
            Ok(f) if f.fract() != 0.0 => {
                return Err(invalid(key, value, "not an integer", allowed))
            }
            // Integral and finite, so the conversion only saturates far outside every range.
            Ok(f) => f as i128,
            Err(_) => return Err(invalid(key, value, "not an integer", allowed)),
        }
    };
    if number < i128::from(min) || number > i128::from(max) {
        return Err(invalid(key, value, "out of range", allowed));
    }
    // The range check above bounds `number` to `min..=max`, which fits in u64.
    Ok(number as u64)
}

fn to_usize(key: &str, value: &str, n: u64, allowed: &'static str) -> Result<usize> {
    usize::try_from(n).map_err(|_| invalid(key, value, "too large for this platform", allowed))
}

/// Parses a float in `range`. Accepts Python `str()` forms, `Inf` and `Infinity` in any case.
fn parse_float(key: &str, value: &str, range: FloatRange, allowed: &'static str) -> Result<f64> {
    let number: f64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not a number", allowed))?;
    if number.is_nan() {
        return Err(invalid(key, value, "NaN is not allowed", allowed));
    }
    if !range.contains(number) {
        return Err(invalid(key, value, "out of range", allowed));
    }
    Ok(number)
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    let text = value.trim();
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(key, value, "not a boolean", ALLOWED_BOOL))
    }
}

/// Parses `auto`, `100,50`, `100, 50` or `[100, 50]`.
fn parse_encoder_layers(value: &str) -> Result<EncoderLayers> {
    const KEY: &str = "encoder_layers";
    let text = value.trim();
    if text.eq_ignore_ascii_case("auto") {
        return Ok(EncoderLayers::Auto);
    }
    let inner = match (text.strip_prefix('['), text.ends_with(']')) {
        (Some(rest), true) => &rest[..rest.len() - 1],
        (None, false) => text,
        _ => {
            return Err(invalid(
                KEY,
                value,
                "unbalanced brackets",
                ALLOWED_ENCODER_LAYERS,
            ))
        }
    };
    if inner.trim().is_empty() {
        return Err(invalid(
            KEY,
            value,
            "no layer widths given",
            ALLOWED_ENCODER_LAYERS,
        ));
    }
    let mut widths = Vec::new();
    for item in inner.split(',') {
        let item = item.trim();
        match item.parse::<usize>() {
            Ok(width) if width >= 1 => widths.push(width),
            _ => {
                let reason = format!("{item:?} is not a positive integer");
                return Err(invalid(KEY, value, reason, ALLOWED_ENCODER_LAYERS));
            }
        }
    }
    Ok(EncoderLayers::Widths(widths))
}

fn allowed_for(key: &str) -> Option<&'static str> {
    Some(match key {
        "batch_norm" => ALLOWED_BOOL,
        "clip_gradient" => ALLOWED_CLIP,
        "encoder_layers" => ALLOWED_ENCODER_LAYERS,
        "encoder_layers_activation" => ALLOWED_ACTIVATION,
        "epochs" => ALLOWED_EPOCHS,
        "feature_dim" => ALLOWED_FEATURE_DIM,
        "learning_rate" => ALLOWED_LEARNING_RATE,
        "mini_batch_size" => ALLOWED_MINI_BATCH_SIZE,
        "num_patience_epochs" => ALLOWED_PATIENCE,
        "num_topics" => ALLOWED_NUM_TOPICS,
        "optimizer" => ALLOWED_OPTIMIZER,
        "rescale_gradient" => ALLOWED_RESCALE,
        "seed" => ALLOWED_SEED,
        "sub_sample" => ALLOWED_SUB_SAMPLE,
        "tolerance" => ALLOWED_TOLERANCE,
        "weight_decay" => ALLOWED_WEIGHT_DECAY,
        "prior_alpha" => ALLOWED_PRIOR_ALPHA,
        "decoder_batch_norm" => ALLOWED_BOOL,
        "theta_dropout" => ALLOWED_THETA_DROPOUT,
        "kl_warmup_epochs" => ALLOWED_KL_WARMUP,
        "head_batch_norm" => ALLOWED_BOOL,
        "adam_beta1" => ALLOWED_ADAM_BETA1,
        "decoder_batch_norm_anneal_epochs" => ALLOWED_ANNEAL,
        "preset" => ALLOWED_PRESET,
        "restarts" => ALLOWED_RESTARTS,
        "restart_selection" => ALLOWED_RESTART_SELECTION,
        _ => return None,
    })
}

fn parse_json(text: &str, source_name: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| HyperparameterError::InvalidJson {
        source_name: source_name.to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Returns the known key closest to `key` by edit distance (ignoring ASCII case),
/// when the distance is at most half the key's length, clamped to `1..=3`.
fn closest_key(key: &str) -> Option<&'static str> {
    let lowered = key.to_ascii_lowercase();
    let (best, distance) = KNOWN_KEYS
        .iter()
        .chain(EXTENSION_KEYS.iter())
        .map(|candidate| (*candidate, edit_distance(&lowered, candidate)))
        .min_by_key(|(_, distance)| *distance)?;
    let limit = (lowered.chars().count() / 2).clamp(1, 3);
    (distance <= limit).then_some(best)
}

/// Levenshtein distance over Unicode scalar values.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Formats a float as Python's `str()` does (`1.0`, `0.001`, `1e-06`, `1e+16`),
/// except that infinity is written `Inf` as in SageMaker's configuration log.
pub fn python_float_str(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Inf" } else { "-Inf" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits, the same digits Python's repr uses.
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let positional = format!("{value}");
        if positional.contains('.') {
            positional
        } else {
            format!("{positional}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_str_matches_python() {
        assert_eq!(python_float_str(1.0), "1.0");
        assert_eq!(python_float_str(0.001), "0.001");
        assert_eq!(python_float_str(1e-6), "1e-06");
        assert_eq!(python_float_str(0.0001), "0.0001");
        assert_eq!(python_float_str(1.5e-5), "1.5e-05");
        assert_eq!(python_float_str(1e16), "1e+16");
        assert_eq!(python_float_str(123.25), "123.25");
        assert_eq!(python_float_str(0.0), "0.0");
        assert_eq!(python_float_str(f64::INFINITY), "Inf");
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("num_topic", "num_topics"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn closest_key_suggests_only_near_keys() {
        assert_eq!(closest_key("num_topic"), Some("num_topics"));
        assert_eq!(closest_key("mini_batch_siz"), Some("mini_batch_size"));
        assert_eq!(closest_key("Learning_Rate"), Some("learning_rate"));
        assert_eq!(closest_key("completely_unrelated"), None);
        assert_eq!(closest_key("x"), None);
    }
}
