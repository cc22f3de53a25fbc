//! The model artifact: everything needed to run inference or report on a trained model.
//!
//! An artifact is either a folder or a `model.tar.gz` holding the same files at its root:
//! - `model.safetensors`: every parameter tensor and the batch-norm running statistics,
//!   float32, under the names the network defines (`decoder.weight` is the `[V, K]`
//!   topic-word matrix);
//! - `model.json`: format version, network shape, hyperparameters as strings, tensor
//!   shapes, per-epoch losses, the best epoch and the tokenizer settings of the text
//!   pipeline, when known;
//! - `vocab.txt`: the vocabulary, one word per line, when training had one.
//!
//! Writes are atomic: files go to a temporary name in the destination folder and are
//! renamed into place, `model.json` last, so a reader never sees half a model.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::network::{Activation, Extensions, Network, NetworkConfig};
use crate::params::{ParamSet, Tensor};

/// File name of the weights inside an artifact.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the metadata inside an artifact.
pub const METADATA_FILE: &str = "model.json";
/// File name of the vocabulary inside an artifact.
pub const VOCAB_FILE: &str = "vocab.txt";
/// File name of the archive that `ntm train --output DIR` writes into `DIR`.
pub const ARCHIVE_FILE: &str = "model.tar.gz";
/// Value of `model.json`'s `format` field.
pub const FORMAT_NAME: &str = "ntm-model";
/// Version of the layout described in this module.
pub const FORMAT_VERSION: u32 = 1;

/// Errors reading or writing a model artifact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// An I/O operation on a path failed.
    #[error("{action} {path}")]
    Io {
        /// The failed action, for example "cannot write".
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The compressed archive ends early or does not decompress.
    #[error("model archive {path} is truncated or corrupt")]
    Corrupt {
        /// The archive path.
        path: PathBuf,
        /// The decompression or archive error.
        source: io::Error,
    },
    /// A file of the artifact is missing.
    #[error("model artifact {path} has no {file}; expected model.tar.gz as `ntm train` writes it, the folder that contains it, or a folder of its files")]
    Missing {
        /// The artifact path.
        path: PathBuf,
        /// The missing member.
        file: &'static str,
    },
    /// The metadata is not valid JSON of the expected layout.
    #[error("invalid {file} in model artifact {path}: {message}")]
    Invalid {
        /// The artifact path.
        path: PathBuf,
        /// The member at fault.
        file: &'static str,
        /// Description of the problem.
        message: String,
    },
}

type Result<T> = std::result::Result<T, ArtifactError>;

/// Losses of one epoch, each averaged per document.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossRecord {
    /// Reconstruction loss: negative multinomial log-likelihood of the words.
    pub recons: f64,
    /// KL divergence of the posterior from the standard normal prior.
    pub kld: f64,
    /// `recons + kld`, SageMaker's `total_loss`.
    pub total: f64,
}

/// One epoch's entry in the training history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, starting at 1.
    pub epoch: usize,
    /// Training documents of the epoch (fewer than the channel with `sub_sample` below 1).
    pub documents: usize,
    /// Training loss of the epoch.
    pub train: LossRecord,
    /// Validation loss after the epoch, when a validation channel was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<LossRecord>,
    /// Wall time of the epoch in seconds.
    pub seconds: f64,
}

/// Shape of the network, as stored in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkShape {
    /// Vocabulary size V.
    pub feature_dim: usize,
    /// Number of topics K.
    pub num_topics: usize,
    /// Widths of the encoder's hidden layers.
    pub encoder_layers: Vec<usize>,
    /// Encoder activation: `sigmoid`, `tanh` or `relu`.
    pub activation: String,
    /// Whether the encoder uses batch normalisation.
    pub batch_norm: bool,
    /// Extension: Dirichlet concentration of the prior; absent (0) for the standard normal.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior_alpha: f32,
    /// Extension: whether the decoder logits are batch-normalised; absent when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub decoder_batch_norm: bool,
    /// Extension: theta dropout probability in training; absent (0) when off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub theta_dropout: f32,
    /// Extension: whether `mu` and the log-variance are batch-normalised; absent when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub head_batch_norm: bool,
    /// Extension: weight of the plain decoder beside the batch-normalised one at the saved
    /// epoch; absent (0) when the batch-normalised decoder works alone.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub plain_decoder_share: f32,
}

fn is_zero(value: &f32) -> bool {
    *value == 0.0
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Contents of `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Layout version, [`FORMAT_VERSION`] for this code.
    pub format_version: u32,
    /// Version of ntm that wrote the artifact.
    pub ntm_version: String,
    /// Network shape.
    pub network: NetworkShape,
    /// Hyperparameters the model was trained with, as strings, SageMaker's form.
    pub hyperparameters: BTreeMap<String, String>,
    /// Shape of every tensor in `model.safetensors`.
    pub tensors: BTreeMap<String, Vec<usize>>,
    /// Per-epoch losses.
    pub history: Vec<EpochRecord>,
    /// The epoch whose weights were saved (the best under early stopping).
    pub best_epoch: Option<usize>,
    /// Test loss of the saved model, when a test channel was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<LossRecord>,
    /// Settings of the tokenizer that produced the training counts (`ntm prepare`),
    /// so raw text can be turned into counts the same way at inference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<serde_json::Value>,
    /// Whether the artifact contains `vocab.txt`.
    pub has_vocabulary: bool,
    /// Seed of the run kept among several restarts (`restarts` above 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_seed: Option<u64>,
    /// With topics chosen across restarts (`restart_selection = topics`): where each topic
    /// came from, in topic order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_sources: Option<Vec<TopicSource>>,
}

/// The run and topic a kept topic came from, when topics are chosen across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSource {
    /// Seed of the run.
    pub seed: u64,
    /// Index of the topic in that run.
    pub topic: usize,
}

/// A trained model with its metadata and vocabulary.
#[derive(Debug, Clone)]
pub struct ModelArtifact {
    /// The network with its weights.
    pub network: Network,
    /// Metadata written to `model.json`.
    pub metadata: ModelMetadata,
    /// The vocabulary, line `i` being word id `i`, when known.
    pub vocabulary: Option<Vec<String>>,
}

impl ModelArtifact {
    /// Builds an artifact around a trained network, filling the shape fields of the metadata.
    pub fn new(
        network: Network,
        hyperparameters: BTreeMap<String, String>,
        history: Vec<EpochRecord>,
        best_epoch: Option<usize>,
        vocabulary: Option<Vec<String>>,
    ) -> Self {
        let config = &network.config;
        let tensors = network
            .params
            .tensors
            .iter()
            .chain(&network.running.tensors)
            .map(|t| (t.name.clone(), t.shape.clone()))
            .collect();
        let metadata = ModelMetadata {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            ntm_version: env!("CARGO_PKG_VERSION").to_owned(),
            network: NetworkShape {
                feature_dim: config.feature_dim,
                num_topics: config.num_topics,
                encoder_layers: config.encoder_layers.clone(),
                activation: config.activation.to_string(),
                batch_norm: config.batch_norm,
                prior_alpha: network.extensions.prior_alpha,
                decoder_batch_norm: network.extensions.decoder_batch_norm,
                theta_dropout: network.extensions.theta_dropout,
                head_batch_norm: network.extensions.head_batch_norm,
                plain_decoder_share: network.extensions.plain_decoder_share,
            },
            hyperparameters,
            tensors,
            history,
            best_epoch,
            test: None,
            tokenizer: None,
            has_vocabulary: vocabulary.is_some(),
            restart_seed: None,
            topic_sources: None,
        };
        Self {
            network,
            metadata,
            vocabulary,
        }
    }

    /// Writes the artifact's files into `dir`, creating it if needed; each file atomically.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| io_error("cannot create folder", dir, e))?;
        for (name, bytes) in self.members()? {
            write_atomically(&dir.join(name), &bytes)?;
        }
        Ok(())
    }

    /// Writes the artifact as a gzip-compressed tar file at `path`, atomically.
    pub fn write_tar_gz(&self, path: &Path) -> Result<()> {
        let mut tar_bytes = Vec::new();
        {
            let encoder =
                flate2::write::GzEncoder::new(&mut tar_bytes, flate2::Compression::default());
            let mut builder = tar::Builder::new(encoder);
            for (name, bytes) in self.members()? {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_cksum();
                builder
                    .append_data(&mut header, name, bytes.as_slice())
                    .map_err(|e| io_error("cannot write", path, e))?;
            }
            let encoder = builder
                .into_inner()
                .map_err(|e| io_error("cannot write", path, e))?;
            encoder
                .finish()
                .map_err(|e| io_error("cannot write", path, e))?;
        }
        write_atomically(path, &tar_bytes)
    }

    /// Returns what [`ModelArtifact::load`] reads for `path`. A folder that contains
    /// `model.tar.gz` but no `model.json`, as `ntm train --output` writes it, is read as the archive.
    pub fn resolve(path: &Path) -> PathBuf {
        let archive = path.join(ARCHIVE_FILE);
        if path.is_dir() && !path.join(METADATA_FILE).exists() && archive.is_file() {
            archive
        } else {
            path.to_path_buf()
        }
    }

    /// Loads an artifact from a folder of its files, a folder that contains `model.tar.gz`, or a
    /// `.tar.gz` file.
    pub fn load(path: &Path) -> Result<Self> {
        let path = &Self::resolve(path);
        let members = if path.is_dir() {
            read_dir_members(path)?
        } else {
            read_tar_members(path)?
        };
        Self::from_members(path, members)
    }

    /// Returns the file names and contents, `model.json` last.
    fn members(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        let mut members = Vec::new();
        members.push((WEIGHTS_FILE, serialize_weights(&self.network)?));
        if let Some(words) = &self.vocabulary {
            let mut text = String::new();
            for w in words {
                text.push_str(w);
                text.push('\n');
            }
            members.push((VOCAB_FILE, text.into_bytes()));
        }
        let mut metadata = self.metadata.clone();
        metadata.has_vocabulary = self.vocabulary.is_some();
        let json = serde_json::to_vec_pretty(&metadata).map_err(|e| ArtifactError::Invalid {
            path: PathBuf::from(METADATA_FILE),
            file: METADATA_FILE,
            message: e.to_string(),
        })?;
        members.push((METADATA_FILE, json));
        Ok(members)
    }

    fn from_members(path: &Path, mut members: BTreeMap<String, Vec<u8>>) -> Result<Self> {
        let json = members
            .remove(METADATA_FILE)
            .ok_or_else(|| ArtifactError::Missing {
                path: path.to_owned(),
                file: METADATA_FILE,
            })?;
        let invalid = |file: &'static str, message: String| ArtifactError::Invalid {
            path: path.to_owned(),
            file,
            message,
        };
        let metadata: ModelMetadata =
            serde_json::from_slice(&json).map_err(|e| invalid(METADATA_FILE, e.to_string()))?;
        if metadata.format != FORMAT_NAME || metadata.format_version > FORMAT_VERSION {
            return Err(invalid(
                METADATA_FILE,
                format!(
                    "format {:?} version {} is not supported; this ntm reads {FORMAT_NAME:?} up to version {FORMAT_VERSION}",
                    metadata.format, metadata.format_version
                ),
            ));
        }
        let weights = members
            .remove(WEIGHTS_FILE)
            .ok_or_else(|| ArtifactError::Missing {
                path: path.to_owned(),
                file: WEIGHTS_FILE,
            })?;
        let shape = &metadata.network;
        let activation: Activation = shape.activation.parse().map_err(|_| {
            invalid(
                METADATA_FILE,
                format!("unknown activation {:?}", shape.activation),
            )
        })?;
        let config = NetworkConfig {
            feature_dim: shape.feature_dim,
            num_topics: shape.num_topics,
            encoder_layers: shape.encoder_layers.clone(),
            activation,
            batch_norm: shape.batch_norm,
        };
        let extensions = Extensions {
            prior_alpha: shape.prior_alpha,
            decoder_batch_norm: shape.decoder_batch_norm,
            theta_dropout: shape.theta_dropout,
            head_batch_norm: shape.head_batch_norm,
            plain_decoder_share: shape.plain_decoder_share,
        };
        extensions
            .validate()
            .map_err(|e| invalid(METADATA_FILE, e.to_string()))?;
        let network = network_from_weights(config, extensions, &weights)
            .map_err(|m| invalid(WEIGHTS_FILE, m))?;
        let vocabulary = match members.remove(VOCAB_FILE) {
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|e| invalid(VOCAB_FILE, format!("not UTF-8: {e}")))?;
                let words: Vec<String> = text.lines().map(str::to_owned).collect();
                // Word ids are line numbers, so any other count shifts or loses topic words.
                if words.len() != network.config.feature_dim {
                    return Err(invalid(
                        VOCAB_FILE,
                        format!(
                            "it has {} lines but the model has {} features, one word per feature; \
                             the file is cut short or belongs to another model",
                            words.len(),
                            network.config.feature_dim
                        ),
                    ));
                }
                Some(words)
            }
            None => None,
        };
        Ok(Self {
            network,
            metadata,
            vocabulary,
        })
    }
}

fn serialize_weights(network: &Network) -> Result<Vec<u8>> {
    let tensors: Vec<&Tensor> = network
        .params
        .tensors
        .iter()
        .chain(&network.running.tensors)
        .collect();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for (t, b) in tensors.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, t.shape.clone(), b).map_err(|e| {
            ArtifactError::Invalid {
                path: PathBuf::from(WEIGHTS_FILE),
                file: WEIGHTS_FILE,
                message: format!("tensor {}: {e}", t.name),
            }
        })?;
        views.push((t.name.clone(), view));
    }
    safetensors::serialize(views, &None).map_err(|e| ArtifactError::Invalid {
        path: PathBuf::from(WEIGHTS_FILE),
        file: WEIGHTS_FILE,
        message: e.to_string(),
    })
}

/// Rebuilds the network from safetensors bytes, checking every tensor the shape requires.
fn network_from_weights(
    config: NetworkConfig,
    extensions: Extensions,
    bytes: &[u8],
) -> std::result::Result<Network, String> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| format!("the file is truncated or corrupt ({e})"))?;
    // A fresh network of this shape defines the expected names and shapes.
    let template = Network::with_extensions(
        config.clone(),
        extensions,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
    );
    let load = |set: &ParamSet| -> std::result::Result<ParamSet, String> {
        let mut out = set.clone();
        for t in &mut out.tensors {
            let view = file
                .tensor(&t.name)
                .map_err(|_| format!("tensor {} is missing", t.name))?;
            if view.dtype() != Dtype::F32 {
                return Err(format!(
                    "tensor {} has dtype {:?}, expected F32",
                    t.name,
                    view.dtype()
                ));
            }
            if view.shape() != t.shape.as_slice() {
                return Err(format!(
                    "tensor {} has shape {:?}, expected {:?}",
                    t.name,
                    view.shape(),
                    t.shape
                ));
            }
            for (dst, chunk) in t.data.iter_mut().zip(view.data().chunks_exact(4)) {
                *dst = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            if t.data.iter().any(|v| !v.is_finite()) {
                return Err(format!("tensor {} contains non-finite values", t.name));
            }
        }
        Ok(out)
    };
    let params = load(&template.params)?;
    let running = load(&template.running)?;
    Network::from_parts_with_extensions(config, extensions, params, running)
        .map_err(|e| e.to_string())
}

use rand::SeedableRng;

fn read_dir_members(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut members = BTreeMap::new();
    for name in [WEIGHTS_FILE, METADATA_FILE, VOCAB_FILE] {
        let path = dir.join(name);
        if path.is_file() {
            let bytes = fs::read(&path).map_err(|e| io_error("cannot read", &path, e))?;
            members.insert(name.to_owned(), bytes);
        }
    }
    Ok(members)
}

fn read_tar_members(path: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let file = File::open(path).map_err(|e| io_error("cannot open model", path, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut members = BTreeMap::new();
    let entries = archive.entries().map_err(|e| archive_error(path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_error(path, e))?;
        let name = entry
            .path()
            .map_err(|e| archive_error(path, e))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        if [WEIGHTS_FILE, METADATA_FILE, VOCAB_FILE].contains(&name.as_str()) {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| archive_error(path, e))?;
            members.insert(name, bytes);
        }
    }
    Ok(members)
}

/// Reports an error met while decompressing or unpacking the archive at `path`. Errors of the
/// data itself (an early end, a bad block) mean a damaged file; others keep their I/O message.
fn archive_error(path: &Path, error: io::Error) -> ArtifactError {
    match error.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            ArtifactError::Corrupt {
                path: path.to_owned(),
                source: error,
            }
        }
        _ => io_error("cannot read model archive", path, error),
    }
}

/// Creates a temporary file in `dir` that becomes an ordinary file readable by everyone
/// (mode 0644 on Unix) once renamed, unlike tempfile's private default.
pub fn temporary_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ntm-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it and renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = temporary_file_in(dir)
        .map_err(|e| io_error("cannot create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| io_error("cannot write", path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| io_error("cannot write", path, e))?;
    tmp.persist(path)
        .map_err(|e| io_error("cannot write", path, e.error))?;
    Ok(())
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> ArtifactError {
    ArtifactError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}
