//! `ntm report`: one self-contained HTML page about a trained model.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use ntm_eval::{
    evaluate_topics, read_token_documents, token_counts, top_word_ids, MetricOptions, Reference,
    TopicMetrics, VocabularyEmbeddings,
};
use ntm_formats::SparseRows;
use ntm_model::artifact::ModelArtifact;
use ntm_model::network::{Network, Workspace};
use ntm_report::layout::jensen_shannon_matrix;
use ntm_report::{
    classical_mds, render_report, topic_word_distributions, EpochLoss, ModelSummary,
    ReferenceSummary, ReportInput, TopicWords,
};
use tracing::info;

use super::evaluate::{held_out_perplexity, is_token_file, read_channel, training_seed};

/// Documents per inference batch; results do not depend on it.
const BATCH_ROWS: usize = 1024;

/// Arguments of `ntm report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The model: `model.tar.gz`, the folder `ntm train --output` wrote it to, or a folder with
    /// its files.
    #[arg(long)]
    pub model: PathBuf,
    /// The HTML file to write.
    #[arg(long)]
    pub output: PathBuf,
    /// A reference corpus for topic prevalence, coherence and perplexity. A channel folder (CSV
    /// or RecordIO-protobuf counts) gives the document co-occurrence measures; a
    /// tokenised-documents file (`.txt` or `.txt.gz`, as `ntm prepare` writes to
    /// tokens/<split>.txt) adds c_npmi and c_v.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Word vectors in GloVe text format, plain or gzip-compressed, for WETC.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// Top words per topic shown in the charts and used by the metrics.
    #[arg(long, default_value_t = 10)]
    pub top_n: usize,
    /// Worker threads for inference on the reference; 0 uses every core. The last digits of
    /// prevalence and perplexity can differ between thread counts.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    if args.top_n == 0 {
        bail!("invalid --top-n 0: use 1 or more words per topic");
    }
    let artifact = ModelArtifact::load(&args.model)
        .with_context(|| format!("cannot load the model {}", args.model.display()))?;
    let network = &artifact.network;
    let (vocab_size, num_topics) = (network.config.feature_dim, network.config.num_topics);
    let vocabulary = artifact.vocabulary.as_deref();

    let top = top_word_ids(network.decoder_weight(), vocab_size, num_topics, args.top_n);
    let distributions = topic_word_distributions(network.decoder_weight(), vocab_size, num_topics)
        .context("cannot read the model's topics")?;
    let topics: Vec<TopicWords> = top
        .iter()
        .zip(&distributions)
        .map(|(ids, distribution)| TopicWords {
            words: ids
                .iter()
                .map(|&id| match vocabulary.and_then(|v| v.get(id as usize)) {
                    Some(word) => word.clone(),
                    None => id.to_string(),
                })
                .collect(),
            probabilities: ids.iter().map(|&id| distribution[id as usize]).collect(),
        })
        .collect();

    let embeddings = match &args.embeddings {
        Some(path) => {
            let Some(words) = vocabulary else {
                bail!("the model has no vocabulary, so --embeddings cannot match its words to vectors");
            };
            Some(
                VocabularyEmbeddings::load(path, words)
                    .with_context(|| format!("cannot load the embeddings {}", path.display()))?,
            )
        }
        None => None,
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the worker threads")?;
    let (metrics, reference) = match &args.reference {
        Some(path) => {
            let (metrics, rows) = reference_metrics(args, &artifact, &top, embeddings.as_ref())?;
            let non_empty: Vec<usize> = (0..rows.n_rows())
                .filter(|&d| rows.row_sum(d) > 0.0)
                .collect();
            let rows = rows.select(&non_empty);
            let prevalence = pool.install(|| mean_topic_weights(network, &rows))?;
            let seed = training_seed(&artifact)?;
            let perplexity = pool.install(|| held_out_perplexity(network, &rows, 1, seed))?;
            let summary = ReferenceSummary {
                path: path.display().to_string(),
                tokenised: is_token_file(path),
                documents: rows.n_rows(),
                prevalence,
                perplexity: perplexity.map(|p| p.value),
            };
            (metrics, Some(summary))
        }
        None => {
            // Topic uniqueness, diversity, inverted RBO and WETC need no corpus; the
            // co-occurrence measures of an empty reference are not shown.
            let empty = SparseRows::new(vocab_size);
            let metrics = evaluate_topics(
                &top,
                Reference::Counts(&empty),
                embeddings.as_ref(),
                &MetricOptions::default(),
            );
            (metrics, None)
        }
    };

    let distances = jensen_shannon_matrix(&distributions);
    let layout = classical_mds(&distances, num_topics).context("cannot lay out the topic map")?;
    info!(
        "Laid out {num_topics} topics; the map's two axes keep {:.1}% of the distance structure",
        100.0 * layout.explained
    );

    let input = ReportInput {
        summary: model_summary(args, &artifact),
        history: artifact
            .metadata
            .history
            .iter()
            .map(|e| EpochLoss {
                epoch: e.epoch,
                train: e.train.total,
                validation: e.validation.map(|v| v.total),
            })
            .collect(),
        topics,
        layout,
        metrics,
        reference,
    };
    let page = render_report(&input).context("cannot build the report")?;

    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    ntm_model::artifact::write_atomically(&args.output, page.as_bytes())
        .with_context(|| format!("cannot write the report {}", args.output.display()))?;
    info!(
        "Wrote the report of {num_topics} topics to {} ({} bytes)",
        args.output.display(),
        page.len()
    );
    Ok(())
}

/// Reads the reference and computes the topic metrics on it; returns them with the
/// reference's word counts, one row per document.
fn reference_metrics(
    args: &ReportArgs,
    artifact: &ModelArtifact,
    top: &[Vec<u32>],
    embeddings: Option<&VocabularyEmbeddings>,
) -> Result<(TopicMetrics, SparseRows)> {
    let Some(path) = &args.reference else {
        bail!("no --reference given");
    };
    let vocab_size = artifact.network.config.feature_dim;
    let options = MetricOptions::default();
    if is_token_file(path) {
        let Some(words) = artifact.vocabulary.as_deref() else {
            bail!(
                "the model has no vocabulary, so the words of {} cannot be matched to its features; \
                 pass a channel folder of counts instead",
                path.display()
            );
        };
        let documents = read_token_documents(path, words)
            .with_context(|| format!("cannot read the reference {}", path.display()))?;
        info!(
            "Read {} tokenised documents from {}",
            documents.len(),
            path.display()
        );
        let reference = Reference::Tokens {
            documents: &documents,
            vocab_size,
        };
        let metrics = evaluate_topics(top, reference, embeddings, &options);
        Ok((metrics, token_counts(&documents, vocab_size)))
    } else {
        let rows = read_channel(path, vocab_size, artifact.vocabulary.as_deref())?;
        info!("Read {} documents from {}", rows.n_rows(), path.display());
        let metrics = evaluate_topics(top, Reference::Counts(&rows), embeddings, &options);
        Ok((metrics, rows))
    }
}

/// Returns the mean topic weight of each topic over `rows`, with the weights that `ntm infer`
/// writes for each document. The means are all zero when there are no rows.
fn mean_topic_weights(network: &Network, rows: &SparseRows) -> Result<Vec<f64>> {
    let num_topics = network.config.num_topics;
    let mut sums = vec![0.0f64; num_topics];
    let mut workspace = Workspace::default();
    let mut weights = Vec::new();
    let mut start = 0;
    while start < rows.n_rows() {
        let end = (start + BATCH_ROWS).min(rows.n_rows());
        let batch = rows.select(&(start..end).collect::<Vec<_>>());
        network
            .topic_weights(&batch, &mut workspace, &mut weights)
            .context("cannot infer the topic weights of the reference")?;
        for row in weights.chunks_exact(num_topics) {
            for (sum, &w) in sums.iter_mut().zip(row) {
                *sum += f64::from(w);
            }
        }
        start = end;
    }
    if rows.n_rows() > 0 {
        let n = rows.n_rows() as f64;
        sums.iter_mut().for_each(|s| *s /= n);
    }
    Ok(sums)
}

fn model_summary(args: &ReportArgs, artifact: &ModelArtifact) -> ModelSummary {
    let metadata = &artifact.metadata;
    ModelSummary {
        name: args.model.display().to_string(),
        ntm_version: metadata.ntm_version.clone(),
        num_topics: metadata.network.num_topics,
        vocab_size: metadata.network.feature_dim,
        encoder_layers: metadata.network.encoder_layers.clone(),
        activation: metadata.network.activation.clone(),
        batch_norm: metadata.network.batch_norm,
        hyperparameters: metadata
            .hyperparameters
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        best_epoch: metadata.best_epoch,
        training_documents: metadata.history.last().map(|e| e.documents),
        test_loss: metadata.test.map(|t| t.total),
        has_vocabulary: artifact.vocabulary.is_some(),
    }
}
