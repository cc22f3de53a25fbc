//! A self-contained HTML report of a trained topic model.
//!
//! [`render_report`] turns a [`ReportInput`] into one HTML page with inline CSS, inline SVG
//! charts and a few lines of inline JavaScript. The page loads nothing from outside the
//! file: its Content-Security-Policy blocks every fetch, so a stray external reference shows
//! up as a console error instead of a request.
//!
//! 1. [`layout`]: topic word distributions, Jensen-Shannon distances and classical
//!    multidimensional scaling for the 2-D topic map.
//! 2. [`charts`]: the SVG charts (loss per epoch, top words, prevalence, topic map).
//! 3. [`svg`]: escaping, number formatting, ticks and topic colours.
//!
//! `docs/report.md` describes the page and how each chart is computed.

pub mod charts;
pub mod error;
mod html;
pub mod layout;
pub mod svg;

pub use error::ReportError;
pub use layout::{classical_mds, jensen_shannon_distance, topic_word_distributions, Layout};

use ntm_eval::TopicMetrics;

/// Model facts shown in the report's header.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// Name of the model file or folder, shown as the page title.
    pub name: String,
    /// Version of ntm that trained the model.
    pub ntm_version: String,
    /// Number of topics K.
    pub num_topics: usize,
    /// Vocabulary size V.
    pub vocab_size: usize,
    /// Widths of the encoder's hidden layers.
    pub encoder_layers: Vec<usize>,
    /// Encoder activation.
    pub activation: String,
    /// Whether the encoder uses batch normalisation.
    pub batch_norm: bool,
    /// Hyperparameters as name and value, in the order to show.
    pub hyperparameters: Vec<(String, String)>,
    /// The epoch whose weights were saved.
    pub best_epoch: Option<usize>,
    /// Training documents per epoch.
    pub training_documents: Option<usize>,
    /// Test loss per document of the saved model.
    pub test_loss: Option<f64>,
    /// Whether the model has a vocabulary; without one, words are shown as feature ids.
    pub has_vocabulary: bool,
}

/// Losses of one epoch, each the total loss per document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochLoss {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Training loss.
    pub train: f64,
    /// Validation loss, when training had a validation channel.
    pub validation: Option<f64>,
}

/// The top words of one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicWords {
    /// Words in rank order.
    pub words: Vec<String>,
    /// Probability of each word in the topic's word distribution, in `[0, 1]`.
    pub probabilities: Vec<f64>,
}

/// The reference corpus and what the model infers on it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceSummary {
    /// The reference path as given.
    pub path: String,
    /// Whether the reference is a tokenised-documents file, which adds c_npmi and c_v.
    pub tokenised: bool,
    /// Documents with at least one vocabulary word, over which prevalence is averaged.
    pub documents: usize,
    /// Mean topic weight of each topic over those documents.
    pub prevalence: Vec<f64>,
    /// Held-out perplexity on the reference, when it has words.
    pub perplexity: Option<f64>,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// Header facts.
    pub summary: ModelSummary,
    /// Losses per epoch.
    pub history: Vec<EpochLoss>,
    /// Top words of each topic, in topic order.
    pub topics: Vec<TopicWords>,
    /// 2-D positions of the topics.
    pub layout: Layout,
    /// Topic-quality metrics. Its co-occurrence measures are shown only with a reference.
    pub metrics: TopicMetrics,
    /// The reference corpus, when one was given.
    pub reference: Option<ReferenceSummary>,
}

/// Renders the report as one HTML page.
///
/// Fails when the per-topic inputs do not all have one entry per topic, or when a topic's
/// word and probability lists differ in length.
pub fn render_report(input: &ReportInput) -> Result<String, ReportError> {
    check_lengths(input)?;
    Ok(html::page(input))
}

fn check_lengths(input: &ReportInput) -> Result<(), ReportError> {
    let k = input.summary.num_topics;
    let expect = |what: &'static str, found: usize| {
        if found == k {
            Ok(())
        } else {
            Err(ReportError::Shape {
                what,
                expected: format!("one entry per topic, {k}"),
                found,
            })
        }
    };
    expect("topic word lists", input.topics.len())?;
    expect("topic map positions", input.layout.points.len())?;
    expect(
        "topic uniqueness scores",
        input.metrics.topic_uniqueness.per_topic.len(),
    )?;
    if let Some(reference) = &input.reference {
        expect("prevalence values", reference.prevalence.len())?;
        expect("NPMI scores", input.metrics.npmi.per_topic.len())?;
        expect("u_mass scores", input.metrics.u_mass.per_topic.len())?;
    }
    if let Some(scores) = &input.metrics.c_npmi {
        expect("c_npmi scores", scores.per_topic.len())?;
    }
    if let Some(scores) = &input.metrics.c_v {
        expect("c_v scores", scores.per_topic.len())?;
    }
    if let Some(wetc) = &input.metrics.wetc {
        expect("WETC scores", wetc.per_topic.len())?;
    }
    for (t, topic) in input.topics.iter().enumerate() {
        if topic.words.len() != topic.probabilities.len() {
            return Err(ReportError::Shape {
                what: "topic word probabilities",
                expected: format!(
                    "{} for the {} words of topic {t}",
                    topic.words.len(),
                    topic.words.len()
                ),
                found: topic.probabilities.len(),
            });
        }
    }
    Ok(())
}
