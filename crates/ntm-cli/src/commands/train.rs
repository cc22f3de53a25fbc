//! `ntm train`: train a model on SageMaker NTM channels.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::Args;
use ntm_eval::embeddings::VocabularyEmbeddings;
use ntm_formats::{ContentType, SparseRows};
use ntm_model::artifact::{ModelArtifact, TopicSource};
use ntm_model::batches::{Channel, StreamError};
use ntm_model::hyperparams::Hyperparameters;
use ntm_model::network::Network;
use ntm_model::trainer::{self, TrainConfig, TrainControl, TrainData};
use tracing::{info, warn};

use super::channels::{self, ChannelInput, PipeStream};
use super::topics;

/// Default of `--in-memory-limit-mb`.
pub const DEFAULT_IN_MEMORY_LIMIT_MB: usize = 256;

/// Arguments of `ntm train`. Every SageMaker hyperparameter is also a flag, with `-`
/// for `_`; a flag overrides the same key of the hyperparameters file.
///
/// `Default` leaves every number at 0 and every path empty, not at the command line's
/// defaults: code that builds arguments sets `in_memory_limit_mb` and `shuffle_buffer` itself.
#[derive(Args, Debug, Default)]
pub struct TrainArgs {
    /// Folder with the channel folders `train/`, optional `validation/` and `test/`, and
    /// optional `auxiliary/vocab.txt` (the layout of `ntm prepare` and of /opt/ml/input/data).
    /// Without `--data` and `--output`, `ntm train` runs as a SageMaker training container.
    #[arg(long, requires = "output")]
    pub data: Option<PathBuf>,
    /// Folder to write `model.tar.gz` into; created when missing.
    #[arg(long, requires = "data")]
    pub output: Option<PathBuf>,
    /// Root of the SageMaker container layout, used when `--data` and `--output` are absent.
    #[arg(long, default_value = "/opt/ml")]
    pub sagemaker_root: PathBuf,
    /// SageMaker `hyperparameters.json`: a JSON object whose values are strings (numbers and
    /// booleans are accepted too).
    #[arg(long)]
    pub hyperparameters: Option<PathBuf>,
    /// Content type of the channels (`text/csv`, `text/csv;label_size=1`,
    /// `application/x-recordio-protobuf`); detected from each file's bytes when absent.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Worker threads for training; 0 uses every core. The same seed, data and thread count give
    /// the same model bit for bit; another thread count can change the last digits.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Memory for channels held in memory, in MiB, all channels together. A channel that does
    /// not fit is streamed from disk on every epoch, with a bounded shuffle buffer.
    #[arg(long, env = "NTM_IN_MEMORY_LIMIT_MB", default_value_t = DEFAULT_IN_MEMORY_LIMIT_MB)]
    pub in_memory_limit_mb: usize,
    /// Word vectors in GloVe text format (`.gz` accepted) for WETC in the final topic block.
    /// Without it, `auxiliary/embeddings.txt` or `auxiliary/embeddings.txt.gz` in the data
    /// folder is used. Needs `auxiliary/vocab.txt`.
    #[arg(long, env = "NTM_EMBEDDINGS")]
    pub embeddings: Option<PathBuf>,
    /// Documents in the shuffle buffer of a streamed training channel.
    #[arg(long, env = "NTM_SHUFFLE_BUFFER", default_value_t = trainer::DEFAULT_SHUFFLE_BUFFER)]
    pub shuffle_buffer: usize,

    /// Vocabulary size (columns of the data). Defaults to the line count of auxiliary/vocab.txt.
    #[arg(long)]
    pub feature_dim: Option<String>,
    /// Number of topics, 2 to 1000.
    #[arg(long)]
    pub num_topics: Option<String>,
    /// Encoder hidden layer widths, `auto` (3K,2K) or a list such as `100,50` [default: auto].
    #[arg(long)]
    pub encoder_layers: Option<String>,
    /// Encoder activation: sigmoid, tanh, relu, or softplus (an ntm extension) [default: sigmoid].
    #[arg(long)]
    pub encoder_layers_activation: Option<String>,
    /// Documents per mini-batch, 1 to 10000 [default: 256].
    #[arg(long)]
    pub mini_batch_size: Option<String>,
    /// Maximum number of passes over the training data [default: 50].
    #[arg(long)]
    pub epochs: Option<String>,
    /// Optimizer: sgd, adam, adagrad, adadelta or rmsprop [default: adadelta].
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Relative loss improvement below which an epoch counts as bad, 1e-6 to 0.1 [default: 0.001].
    #[arg(long)]
    pub tolerance: Option<String>,
    /// Bad epochs in a row that stop training; more than --epochs disables stopping [default: 3].
    #[arg(long)]
    pub num_patience_epochs: Option<String>,
    /// Batch normalisation in the encoder: true or false [default: false].
    #[arg(long)]
    pub batch_norm: Option<String>,
    /// Factor applied to every gradient, 1e-3 to 1 [default: 1.0].
    #[arg(long)]
    pub rescale_gradient: Option<String>,
    /// Bound on each gradient element, at least 1e-3; Inf disables clipping [default: Inf].
    #[arg(long)]
    pub clip_gradient: Option<String>,
    /// L2 weight decay, 0 to 1 [default: 0.0].
    #[arg(long)]
    pub weight_decay: Option<String>,
    /// Learning rate, 1e-6 to 1; AdaDelta does not use it [default: 0.001].
    #[arg(long)]
    pub learning_rate: Option<String>,
    /// Share of the training data drawn at random for each epoch, above 0 and up to 1 [default: 1.0].
    #[arg(long)]
    pub sub_sample: Option<String>,
    /// Seed of every random draw, an ntm extension [default: 0].
    #[arg(long)]
    pub seed: Option<String>,
    /// Extension: a named group of values (`quality`); other flags and file values override
    /// it [default: none].
    #[arg(long)]
    pub preset: Option<String>,
    /// Extension: Dirichlet concentration of the logistic-normal prior; 0 keeps the standard
    /// normal prior [default: 0].
    #[arg(long)]
    pub prior_alpha: Option<String>,
    /// Extension: batch normalisation of the decoder logits, true or false [default: false].
    #[arg(long)]
    pub decoder_batch_norm: Option<String>,
    /// Extension: dropout probability on the topic proportions in training, 0 to 0.9 [default: 0].
    #[arg(long)]
    pub theta_dropout: Option<String>,
    /// Extension: epochs over which the KL weight rises to 1; 0 disables the warm-up [default: 0].
    #[arg(long)]
    pub kl_warmup_epochs: Option<String>,
    /// Extension: batch-normalise mu and the log-variance, true or false [default: false].
    #[arg(long)]
    pub head_batch_norm: Option<String>,
    /// Extension: epochs over which training moves from the batch-normalised decoder to the
    /// plain one; needs --decoder-batch-norm true [default: 0, no move].
    #[arg(long)]
    pub decoder_batch_norm_anneal_epochs: Option<String>,
    /// Extension: Adam's first-moment decay rate beta1, 0 to 0.999 [default: 0.9].
    #[arg(long)]
    pub adam_beta1: Option<String>,
    /// Extension: train this many times from seeds --seed, --seed + 1, ... and keep the run
    /// whose topics score the highest NPMI@10 on the training channel, 1 to 100 [default: 1].
    #[arg(long)]
    pub restarts: Option<String>,
    /// Extension: what the restarts keep, `run` (the run with the best topics) or `topics`
    /// (the best distinct topics of all runs, the encoder refitted to them) [default: run].
    #[arg(long)]
    pub restart_selection: Option<String>,
}

impl TrainArgs {
    pub(super) fn flag_values(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("feature_dim", &self.feature_dim),
            ("num_topics", &self.num_topics),
            ("encoder_layers", &self.encoder_layers),
            ("encoder_layers_activation", &self.encoder_layers_activation),
            ("mini_batch_size", &self.mini_batch_size),
            ("epochs", &self.epochs),
            ("optimizer", &self.optimizer),
            ("tolerance", &self.tolerance),
            ("num_patience_epochs", &self.num_patience_epochs),
            ("batch_norm", &self.batch_norm),
            ("rescale_gradient", &self.rescale_gradient),
            ("clip_gradient", &self.clip_gradient),
            ("weight_decay", &self.weight_decay),
            ("learning_rate", &self.learning_rate),
            ("sub_sample", &self.sub_sample),
            ("seed", &self.seed),
            ("preset", &self.preset),
            ("prior_alpha", &self.prior_alpha),
            ("decoder_batch_norm", &self.decoder_batch_norm),
            ("theta_dropout", &self.theta_dropout),
            ("kl_warmup_epochs", &self.kl_warmup_epochs),
            ("head_batch_norm", &self.head_batch_norm),
            (
                "decoder_batch_norm_anneal_epochs",
                &self.decoder_batch_norm_anneal_epochs,
            ),
            ("adam_beta1", &self.adam_beta1),
            ("restarts", &self.restarts),
            ("restart_selection", &self.restart_selection),
        ]
    }
}

/// Channels, vocabulary and settings read from a data folder.
pub struct LoadedChannels {
    pub train: ChannelInput,
    pub validation: Option<ChannelInput>,
    pub test: Option<ChannelInput>,
    pub vocabulary: Option<Vec<String>>,
    pub tokenizer: Option<serde_json::Value>,
}

/// Destination and layout of the trained model.
enum ModelOutput {
    /// `model.tar.gz` in this folder.
    Archive(PathBuf),
    /// The artifact's files, unpacked, in this folder (SageMaker archives `/opt/ml/model` itself).
    Folder(PathBuf),
}

/// One training run, resolved from the command line or from the SageMaker container layout.
struct TrainJob {
    data: PathBuf,
    values: BTreeMap<String, String>,
    /// Origin of each value (a file or a flag), for error messages.
    origins: BTreeMap<String, String>,
    channels: ChannelSettings,
    output: ModelOutput,
    host: String,
    threads: usize,
    in_memory_limit_mb: usize,
    shuffle_buffer: usize,
    embeddings: Option<PathBuf>,
    stop: Option<Arc<AtomicBool>>,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    match (&args.data, &args.output) {
        (Some(data), Some(output)) => run_job(job_from_args(args, data, output)?),
        _ => super::container::train(args),
    }
}

fn job_from_args(args: &TrainArgs, data: &Path, output: &Path) -> Result<TrainJob> {
    if !data.is_dir() {
        bail!(
            "data folder {} does not exist; it should contain a train/ channel folder",
            data.display()
        );
    }
    let settings = ChannelSettings {
        default: args
            .content_type
            .as_deref()
            .map(str::parse::<ContentType>)
            .transpose()
            .context("invalid --content-type")?,
        ..ChannelSettings::default()
    };
    check_train_channel(data, &settings)?;
    let file = match &args.hyperparameters {
        Some(path) => Some((path.as_path(), read_hyperparameters_file(path)?)),
        None => None,
    };
    let (values, origins) = merge_values(file, args);
    Ok(TrainJob {
        data: data.to_path_buf(),
        values,
        origins,
        channels: settings,
        output: ModelOutput::Archive(output.to_path_buf()),
        host: "algo-1".to_owned(),
        threads: args.threads,
        in_memory_limit_mb: args.in_memory_limit_mb,
        shuffle_buffer: args.shuffle_buffer,
        embeddings: args.embeddings.clone(),
        stop: Some(stop_on_signals()?),
    })
}

/// Installs the handlers that end a local training early. The first Ctrl-C (SIGINT) or SIGTERM
/// stops it at the next batch boundary, and the best finished epoch is written as usual. A
/// second one ends the process at once.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for (signal, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
        // The exit handler runs before the flag is set, so it fires only on a repeated signal.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .with_context(|| format!("cannot install the {name} handler"))?;
    }
    Ok(stop)
}

/// Content type and input mode of each channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelSettings {
    /// Content type of channels without their own; `None` detects each file's format.
    pub default: Option<ContentType>,
    /// Content types by channel name, as SageMaker's `inputdataconfig.json` gives them.
    pub per_channel: BTreeMap<String, ContentType>,
    /// Channels declared in Pipe mode. A channel not declared is also read in Pipe mode when
    /// its folder is missing and its first FIFO `<name>_0` exists.
    pub pipe: BTreeSet<String>,
}

impl ChannelSettings {
    fn content_type(&self, channel: &str) -> Option<ContentType> {
        self.per_channel.get(channel).copied().or(self.default)
    }

    fn is_pipe(&self, data: &Path, channel: &str) -> bool {
        self.pipe.contains(channel)
            || (!data.join(channel).exists() && channels::has_pipe(data, channel))
    }
}

/// Runs a training job from hyperparameters to the written model.
fn run_job(job: TrainJob) -> Result<()> {
    // 1. Hyperparameters, validated before any data is read.
    let mut values = job.values;
    let mut origins = job.origins;
    let vocab_path = job.data.join("auxiliary").join("vocab.txt");
    // Logged only once the hyperparameters are valid, so an error is the last line of a failed run.
    let mut feature_dim_note = None;
    if !values.contains_key("feature_dim") && vocab_path.is_file() {
        let words = ntm_formats::vocab::read_vocab(&vocab_path)?;
        feature_dim_note = Some(format!(
            "feature_dim not given: using the {} words of {}",
            words.len(),
            vocab_path.display()
        ));
        values.insert("feature_dim".to_owned(), words.len().to_string());
        origins.insert(
            "feature_dim".to_owned(),
            format!("the line count of {}", vocab_path.display()),
        );
    }
    let hyperparameters = Hyperparameters::from_string_map(&values).map_err(|error| {
        let origin = error.key().and_then(|key| Some((key, origins.get(key)?)));
        let context = match origin {
            Some((key, origin)) => format!("invalid hyperparameters (`{key}` comes from {origin})"),
            None if error.key() == Some("feature_dim") => format!(
                "invalid hyperparameters (feature_dim is read from {} when not given, and that \
                 file does not exist)",
                vocab_path.display()
            ),
            None => "invalid hyperparameters".to_owned(),
        };
        anyhow::Error::new(error).context(context)
    })?;
    if let Some(note) = feature_dim_note {
        info!("{note}");
    }
    info!(
        "Final configuration: {}",
        format_configuration(&hyperparameters.to_string_map())
    );

    // 2. Channels.
    let mut config = TrainConfig::from_hyperparameters(&hyperparameters, &job.host);
    config.shuffle_buffer = job.shuffle_buffer.max(1);
    let embeddings_path = job.embeddings.clone().or_else(|| {
        ["embeddings.txt", "embeddings.txt.gz"]
            .iter()
            .map(|name| job.data.join("auxiliary").join(name))
            .find(|path| path.is_file())
    });
    let mut channels = load_channels(
        &job.data,
        &job.channels,
        hyperparameters.feature_dim,
        job.in_memory_limit_mb.saturating_mul(1 << 20),
        job.stop.clone(),
    )?;
    // Word vectors are loaded before training, so a bad file fails before any work is done.
    let embeddings = match (&embeddings_path, &channels.vocabulary) {
        (Some(path), Some(words)) => {
            info!("Loading pre-trained word vectors from {}", path.display());
            // The loader logs SageMaker's line for vocabulary words without a vector.
            let vectors = VocabularyEmbeddings::load(path, words)
                .with_context(|| format!("cannot load the word vectors {}", path.display()))?;
            Some(vectors)
        }
        (Some(path), None) => {
            warn!(
                "no auxiliary/vocab.txt, so the word vectors in {} cannot be matched to features; WETC is left out",
                path.display()
            );
            None
        }
        (None, _) => None,
    };

    // 3. Train.
    let output_dir = match &job.output {
        ModelOutput::Archive(dir) | ModelOutput::Folder(dir) => dir,
    };
    fs::create_dir_all(output_dir)
        .with_context(|| format!("cannot create output folder {}", output_dir.display()))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(job.threads)
        .build()
        .context("cannot start the worker threads")?;
    let threads = pool.current_num_threads();
    info!(
        "Training with {threads} worker {}.",
        if threads == 1 { "thread" } else { "threads" }
    );
    let test_words = Arc::new(Mutex::new(TestWordCounts::default()));
    let data = TrainData {
        train: channels.train.as_channel(),
        validation: channels.validation.as_mut().map(ChannelInput::as_channel),
        test: channels.test.as_mut().map(ChannelInput::as_channel),
    };
    let control = TrainControl {
        stop: job.stop.clone(),
        on_batch: crate::progress::batch_callback(),
        on_test_batch: Some(TestWordCounts::callback(Arc::clone(&test_words))),
        score_restart: Some(Box::new(training_coherence)),
        select_topics: Some(Box::new(select_training_topics)),
    };
    let outcome = pool.install(|| trainer::train(&config, data, control))?;
    if outcome.interrupted {
        info!("Training was stopped; writing the best model of the finished epochs.");
    }

    // 4. Report the topics.
    for line in topics::topic_block(
        &outcome.network,
        channels.vocabulary.as_deref(),
        embeddings.as_ref(),
    ) {
        info!("{line}");
    }
    info!("{}", topics::quality_line(&outcome.network));
    if channels.test.is_some() {
        let counts = test_words
            .lock()
            .map_err(|_| anyhow::anyhow!("the test scoring thread panicked"))?;
        if let Some((top, rows)) = &counts.top_word_rows {
            info!(
                "Topic coherence on the test channel: NPMI@10 {:.4} (document co-occurrence)",
                topics::npmi_of(top, rows)
            );
        }
    }

    // 5. Write the model.
    let mut artifact = ModelArtifact::new(
        outcome.network,
        hyperparameters.to_string_map(),
        outcome.history,
        outcome.best_epoch,
        channels.vocabulary,
    );
    artifact.metadata.test = outcome.test;
    artifact.metadata.restart_seed = (hyperparameters.restarts > 1).then_some(outcome.seed);
    artifact.metadata.topic_sources = outcome.topic_sources.map(|sources| {
        sources
            .into_iter()
            .map(|(seed, topic)| TopicSource { seed, topic })
            .collect()
    });
    artifact.metadata.tokenizer = channels.tokenizer;
    match &job.output {
        ModelOutput::Archive(dir) => {
            let path = dir.join("model.tar.gz");
            artifact
                .write_tar_gz(&path)
                .with_context(|| format!("cannot write the model to {}", path.display()))?;
            info!("Model written to {}", path.display());
        }
        ModelOutput::Folder(dir) => {
            artifact
                .write_dir(dir)
                .with_context(|| format!("cannot write the model to {}", dir.display()))?;
            info!("Model files written to {}", dir.display());
        }
    }
    if let Some(peak) = peak_resident_memory() {
        info!("Peak resident memory: {} MiB", peak >> 20);
    }
    Ok(())
}

/// Returns the process's peak resident memory in bytes, from `VmHWM` in `/proc/self/status`;
/// `None` where that file does not exist (systems other than Linux).
fn peak_resident_memory() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Builds a job from the SageMaker container layout under `root` (see `commands::container`).
pub(super) fn container_job(
    root: &Path,
    (values, origins): (BTreeMap<String, String>, BTreeMap<String, String>),
    channels: ChannelSettings,
    host: String,
    args: &TrainArgs,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    run_job(TrainJob {
        data: root.join("input").join("data"),
        values,
        origins,
        channels,
        output: ModelOutput::Folder(root.join("model")),
        host,
        threads: args.threads,
        in_memory_limit_mb: args.in_memory_limit_mb,
        shuffle_buffer: args.shuffle_buffer,
        embeddings: args.embeddings.clone(),
        stop: Some(stop),
    })
}

/// Merges the values of a hyperparameters file with the flags, which override it, and
/// records where each value came from.
pub(super) fn merge_values(
    file: Option<(&Path, BTreeMap<String, String>)>,
    args: &TrainArgs,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut origins = BTreeMap::new();
    let mut values = match file {
        Some((path, values)) => {
            for key in values.keys() {
                origins.insert(key.clone(), path.display().to_string());
            }
            values
        }
        None => BTreeMap::new(),
    };
    for (key, value) in args.flag_values() {
        if let Some(value) = value {
            values.insert(key.to_owned(), value.clone());
            origins.insert(key.to_owned(), format!("--{}", key.replace('_', "-")));
        }
    }
    (values, origins)
}

/// Reads a SageMaker `hyperparameters.json` into a string map.
pub fn read_hyperparameters_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let Some(object) = json.as_object() else {
        bail!(
            "{} must contain a JSON object of hyperparameter names to values",
            path.display()
        );
    };
    let mut values = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Array(_) => value.to_string(),
            other => bail!(
                "{}: hyperparameter {key} has the value {other}, but values must be strings, numbers, booleans or lists",
                path.display()
            ),
        };
        values.insert(key.clone(), text);
    }
    Ok(values)
}

fn format_configuration(map: &BTreeMap<String, String>) -> String {
    let entries: Vec<String> = map.iter().map(|(k, v)| format!("'{k}': '{v}'")).collect();
    format!("{{{}}}", entries.join(", "))
}

/// Checks that the data folder has a train channel: a `train/` folder or the Pipe-mode FIFO
/// `train_0`. A channel folder given in place of the data folder is the usual slip, so the
/// error names it.
fn check_train_channel(data: &Path, settings: &ChannelSettings) -> Result<()> {
    if data.join("train").exists() || settings.is_pipe(data, "train") {
        return Ok(());
    }
    let hint = match data.file_name().and_then(|n| n.to_str()) {
        Some(name @ ("train" | "validation" | "test")) => format!(
            "; {} looks like the {name} channel itself, so give its parent folder",
            data.display()
        ),
        _ => String::new(),
    };
    bail!(
        "data folder {} has no train channel (expected a folder {}, or the Pipe-mode FIFO train_0){hint}",
        data.display(),
        data.join("train").display()
    )
}

/// Reads the channels of a data folder; `train/` (or Pipe-mode `train_0`) is required.
/// Channels are kept in memory within `budget` bytes, all together, and streamed beyond it.
pub fn load_channels(
    data: &Path,
    settings: &ChannelSettings,
    feature_dim: usize,
    budget: usize,
    stop: Option<Arc<AtomicBool>>,
) -> Result<LoadedChannels> {
    if !data.is_dir() {
        bail!("data folder {} does not exist", data.display());
    }
    check_train_channel(data, settings)?;
    let mut budget = budget;
    let mut channel = |name: &'static str| -> Result<Option<ChannelInput>> {
        let content_type = settings.content_type(name);
        if settings.is_pipe(data, name) {
            let stream = PipeStream::new(data, name, content_type, feature_dim, stop.clone());
            return Ok(Some(ChannelInput::Stream(Box::new(stream))));
        }
        let path = data.join(name);
        if !path.exists() {
            return Ok(None);
        }
        channels::load_file_channel(name, &path, content_type, feature_dim, &mut budget).map(Some)
    };
    let train = channel("train")?.context("the train channel is missing")?;
    let validation = channel("validation")?;
    let test = channel("test")?;

    let vocab_path = data.join("auxiliary").join("vocab.txt");
    let vocabulary = if vocab_path.is_file() {
        let words = ntm_formats::vocab::read_vocab(&vocab_path)?;
        ntm_formats::vocab::check_vocab_size(&vocab_path, words.len(), feature_dim)?;
        ntm_formats::vocab::warn_blank_words(&vocab_path, &words);
        info!(
            "Vocab file vocab.txt is expected at {}",
            vocab_path.parent().unwrap_or(data).display()
        );
        Some(words.into_iter().take(feature_dim).collect())
    } else {
        warn!(
            "No vocabulary at {}: topics will show word ids, and the model cannot read raw text \
             (infer --text, text/plain requests); `ntm prepare` writes the file",
            vocab_path.display()
        );
        None
    };
    let tokenizer_path = data.join("auxiliary").join("tokenizer.json");
    let tokenizer = if tokenizer_path.is_file() {
        let text = fs::read_to_string(&tokenizer_path)
            .with_context(|| format!("cannot read {}", tokenizer_path.display()))?;
        Some(
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", tokenizer_path.display()))?,
        )
    } else {
        None
    };
    Ok(LoadedChannels {
        train,
        validation,
        test,
        vocabulary,
        tokenizer,
    })
}

/// Scores a finished run among restarts: NPMI@10 of its topics by document co-occurrence in the
/// training channel, read once more when it is streamed.
fn training_coherence(network: &Network, channel: &mut Channel<'_>) -> Result<f64, StreamError> {
    let top = topics::top_10(network);
    let score = channel_npmi(&top, network.config.feature_dim, channel)?.overall;
    info!("Topic coherence on the train channel: NPMI@10 {score:.4} (document co-occurrence)");
    Ok(score)
}

/// Rule for choosing topics across restarts, scored by their NPMI@10 on the training channel:
/// - each distinct word among the kept topics' top 25 words is worth 0.04 of one topic's score,
///   so a topic whose 25 words are all new to the set gains 1;
/// - two kept topics share at most 5 of their top 25 words (a fifth of the list);
/// - a topic scoring below 0, whose top words co-occur less often than unrelated words would,
///   is kept only when too few topics score higher.
const TOPIC_SELECTION: ntm_eval::SelectionRule = ntm_eval::SelectionRule {
    word_value: 1.0 / 25.0,
    max_shared: 5,
    min_score: 0.0,
};

/// Chooses the topics kept across restarts. Every run's topics are scored by their NPMI@10 on
/// the training channel (the measure of [`training_coherence`], per topic). The kept set
/// maximises the sum of its topics' scores plus a worth for each distinct word among their top
/// 25 words, under the rule [`TOPIC_SELECTION`] ([`ntm_eval::select_diverse_topics`]).
fn select_training_topics(
    networks: &[&Network],
    channel: &mut Channel<'_>,
) -> Result<Vec<(usize, usize)>, StreamError> {
    let Some(first) = networks.first() else {
        return Ok(Vec::new());
    };
    let (feature_dim, num_topics) = (first.config.feature_dim, first.config.num_topics);
    let mut top10 = Vec::new();
    let mut top25 = Vec::new();
    let mut origin = Vec::new();
    for (r, network) in networks.iter().enumerate() {
        let weight = network.decoder_weight();
        top10.extend(ntm_eval::top_word_ids(weight, feature_dim, num_topics, 10));
        top25.extend(ntm_eval::top_word_ids(weight, feature_dim, num_topics, 25));
        origin.extend((0..num_topics).map(|t| (r, t)));
    }
    let scores = channel_npmi(&top10, feature_dim, channel)?.per_topic;
    let chosen = ntm_eval::select_diverse_topics(&scores, &top25, num_topics, &TOPIC_SELECTION);
    let mean = chosen.iter().map(|&i| scores[i]).sum::<f64>() / chosen.len().max(1) as f64;
    let kept_lists: Vec<Vec<u32>> = chosen.iter().map(|&i| top25[i].clone()).collect();
    info!(
        "Chose {} topics of {} across the restarts: NPMI@10 {mean:.4} on the train channel (document co-occurrence), topic diversity TD@25 {:.4}",
        chosen.len(),
        scores.len(),
        ntm_eval::topic_diversity(&kept_lists)
    );
    Ok(chosen.into_iter().map(|i| origin[i]).collect())
}

/// Computes the NPMI of the given top words by document co-occurrence in a channel. A streamed
/// channel is read in one more pass, keeping only the top words of each document.
fn channel_npmi(
    top: &[Vec<u32>],
    feature_dim: usize,
    channel: &mut Channel<'_>,
) -> Result<ntm_eval::NpmiScores, StreamError> {
    Ok(match channel {
        Channel::Memory(rows) => ntm_eval::npmi_coherence(top, rows),
        Channel::Stream(stream) => {
            let keep = word_mask(top, feature_dim);
            let mut rows = SparseRows::new(feature_dim);
            stream.start_pass()?;
            while let Some(chunk) = stream.next_chunk()? {
                push_kept_words(&mut rows, &chunk, &keep);
            }
            ntm_eval::npmi_coherence(top, &rows)
        }
    })
}

/// Marks the words of `top` in a mask over the `feature_dim` word ids.
fn word_mask(top: &[Vec<u32>], feature_dim: usize) -> Vec<bool> {
    let mut mask = vec![false; feature_dim];
    for &id in top.iter().flatten() {
        mask[id as usize] = true;
    }
    mask
}

/// Appends every row of `batch` to `rows`, keeping only the words marked in `keep`. A row left
/// without words is still appended, so the document count stays right.
fn push_kept_words(rows: &mut SparseRows, batch: &SparseRows, keep: &[bool]) {
    let mut indices = Vec::new();
    let mut values = Vec::new();
    for row in 0..batch.n_rows() {
        indices.clear();
        values.clear();
        let (ids, counts) = batch.row(row);
        for (&id, &count) in ids.iter().zip(counts) {
            if keep[id as usize] {
                indices.push(id);
                values.push(count);
            }
        }
        rows.push_row(&indices, &values);
    }
}

/// Top-word document counts gathered while the final model scores the test channel, so that
/// NPMI needs no second pass over a streamed channel.
#[derive(Default)]
struct TestWordCounts {
    /// The final model's top 10 word ids per topic, and the test documents restricted to those
    /// words (every document kept, possibly empty, so the document count stays right).
    top_word_rows: Option<(Vec<Vec<u32>>, SparseRows)>,
}

impl TestWordCounts {
    fn callback(shared: Arc<Mutex<Self>>) -> trainer::TestBatchCallback {
        let mut keep: Vec<bool> = Vec::new();
        Box::new(move |network: &Network, batch: &SparseRows| {
            let Ok(mut counts) = shared.lock() else {
                return;
            };
            let (_, rows) = counts.top_word_rows.get_or_insert_with(|| {
                let top = topics::top_10(network);
                keep = word_mask(&top, network.config.feature_dim);
                (top, SparseRows::new(network.config.feature_dim))
            });
            push_kept_words(rows, batch, &keep);
        })
    }
}
