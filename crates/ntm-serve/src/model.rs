//! The loaded model: the network, the text counter for `text/plain` and reusable buffers.

use std::path::Path;
use std::sync::Mutex;

use ntm_formats::SparseRows;
use ntm_model::artifact::ModelArtifact;
use ntm_model::network::{Network, NetworkError, Workspace};
use ntm_text::{Tokenizer, TokenizerSettings, Vocabulary};

use crate::ServeError;

/// Documents scored per pass of the network. Rows are scored independently, so this bounds
/// the buffers of one request without changing any result.
const ROWS_PER_PASS: usize = 1024;

/// Tokenizer and vocabulary that turn raw text into the model's counts.
#[derive(Debug)]
pub struct TextCounter {
    tokenizer: Tokenizer,
    vocabulary: Vocabulary,
}

impl TextCounter {
    /// Counts the in-vocabulary words of `text`: sorted word ids and their counts.
    pub fn count(&self, text: &str) -> (Vec<u32>, Vec<f32>) {
        self.vocabulary.to_counts(&self.tokenizer.tokenize(text))
    }
}

/// A model ready to score documents from several threads at once.
#[derive(Debug)]
pub struct Model {
    network: Network,
    /// The text counter, or the reason the model cannot count raw text.
    text: Result<TextCounter, String>,
    /// Buffers of finished passes, reused by later ones.
    workspaces: Mutex<Vec<Workspace>>,
}

impl Model {
    /// Loads a model from a folder of artifact files, a folder that contains
    /// `model.tar.gz`, or a `model.tar.gz` file.
    ///
    /// # Errors
    /// [`ServeError::Model`] naming the path when the artifact is missing or invalid.
    pub fn load(path: &Path) -> Result<Model, ServeError> {
        let source = ModelArtifact::resolve(path);
        let artifact = ModelArtifact::load(&source).map_err(|source_error| ServeError::Model {
            path: source.clone(),
            message: with_causes(&source_error),
        })?;
        Ok(Model::from_artifact(artifact))
    }

    /// Wraps a loaded artifact.
    pub fn from_artifact(artifact: ModelArtifact) -> Model {
        let text = text_counter(&artifact);
        Model {
            network: artifact.network,
            text,
            workspaces: Mutex::new(Vec::new()),
        }
    }

    /// Vocabulary size V: the number of counts per document.
    pub fn feature_dim(&self) -> usize {
        self.network.config.feature_dim
    }

    /// Number of topics K: the number of weights per document.
    pub fn num_topics(&self) -> usize {
        self.network.config.num_topics
    }

    /// Returns the text counter, or the reason the model has none.
    pub fn text_counter(&self) -> Result<&TextCounter, &str> {
        self.text.as_ref().map_err(String::as_str)
    }

    /// Writes the topic weights of every row into `out`, N x K row-major, with running
    /// batch-norm statistics and the posterior mean, so a row's weights do not depend on the
    /// other rows of the request.
    ///
    /// # Errors
    /// The network's errors; they mean the rows do not fit the model, which the decoders rule out.
    pub fn topic_weights(&self, rows: &SparseRows, out: &mut Vec<f32>) -> Result<(), NetworkError> {
        let mut workspace = self
            .workspaces
            .lock()
            .map(|mut pool| pool.pop())
            .unwrap_or_default()
            .unwrap_or_default();
        out.clear();
        out.reserve(rows.n_rows() * self.num_topics());
        let mut pass = Vec::new();
        let mut start = 0;
        let result = loop {
            if start >= rows.n_rows() {
                break Ok(());
            }
            let end = (start + ROWS_PER_PASS).min(rows.n_rows());
            let chunk = if start == 0 && end == rows.n_rows() {
                None
            } else {
                Some(rows.select(&(start..end).collect::<Vec<_>>()))
            };
            if let Err(error) = self.network.topic_weights(
                chunk.as_ref().unwrap_or(rows),
                &mut workspace,
                &mut pass,
            ) {
                break Err(error);
            }
            out.extend_from_slice(&pass);
            start = end;
        };
        if let Ok(mut pool) = self.workspaces.lock() {
            pool.push(workspace);
        }
        result
    }
}

/// Builds the text counter from the artifact's tokenizer settings and vocabulary.
fn text_counter(artifact: &ModelArtifact) -> Result<TextCounter, String> {
    let Some(settings) = &artifact.metadata.tokenizer else {
        return Err(
            "the model has no tokenizer settings (it was not trained on channels made by \
                    `ntm prepare`), so it cannot count words in raw text; send counts as text/csv, \
                    JSON, JSON Lines or RecordIO-protobuf"
                .to_owned(),
        );
    };
    let Some(words) = &artifact.vocabulary else {
        return Err(
            "the model has no vocabulary, so it cannot map words in raw text to \
                    features; send counts as text/csv, JSON, JSON Lines or RecordIO-protobuf"
                .to_owned(),
        );
    };
    let settings: TokenizerSettings = serde_json::from_value(settings.clone())
        .map_err(|error| format!("the model's tokenizer settings are invalid: {error}"))?;
    let vocabulary = Vocabulary::from_words(words.clone())
        .map_err(|error| format!("the model's vocabulary is invalid: {error}"))?;
    if vocabulary.len() != artifact.network.config.feature_dim {
        return Err(format!(
            "the model's vocabulary has {} words but its feature_dim is {}, so raw text \
             cannot be counted",
            vocabulary.len(),
            artifact.network.config.feature_dim
        ));
    }
    Ok(TextCounter {
        tokenizer: Tokenizer::new(settings),
        vocabulary,
    })
}

/// Joins an error's message with those of its causes, as `message: cause: cause`.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        message.push_str(": ");
        message.push_str(&next.to_string());
        cause = next.source();
    }
    message
}
