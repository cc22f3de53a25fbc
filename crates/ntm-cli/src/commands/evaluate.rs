//! `ntm evaluate`: topic quality and held-out perplexity of a trained model.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use ntm_eval::{
    evaluate_topics, read_token_documents, token_counts, top_word_ids, MetricOptions, Reference,
    TopicMetrics, VocabularyEmbeddings,
};
use ntm_formats::{ChannelReader, SparseRows};
use ntm_model::artifact::ModelArtifact;
use ntm_model::network::Network;
use ntm_model::CpuBackend;
use serde::Serialize;
use tracing::{info, warn};

use super::channels;

/// Documents per batch when reading channels and scoring the loss; results do not depend on it.
const BATCH_ROWS: usize = 1024;

/// Arguments of `ntm evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// The model: `model.tar.gz`, the folder `ntm train --output` wrote it to, or a folder with
    /// its files.
    #[arg(long)]
    pub model: PathBuf,
    /// The reference corpus. A channel folder (CSV or RecordIO-protobuf counts) gives the
    /// document co-occurrence measures and perplexity. A tokenised-documents file (name
    /// ending in `.txt` or `.txt.gz`: one document per line, vocabulary words in text order,
    /// as `ntm prepare` writes to tokens/<split>.txt) adds the sliding-window measures
    /// c_npmi and c_v. Any other file is read as a channel file.
    #[arg(long)]
    pub reference: PathBuf,
    /// Word vectors in GloVe text format, plain or gzip-compressed, for WETC.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// Top words per topic that the topic metrics use.
    #[arg(long, default_value_t = 10)]
    pub top_n: usize,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Noise samples per document in the perplexity's ELBO estimate.
    #[arg(long, default_value_t = 1)]
    pub perplexity_samples: usize,
    /// Seed of the perplexity's noise. Without it, the model's training seed is used, so one
    /// sample on the test channel reproduces the test loss of training.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Persistence p of the rank-biased overlap behind inverted RBO, in (0, 1].
    #[arg(long, default_value_t = ntm_eval::rbo::DEFAULT_RBO_WEIGHT)]
    pub rbo_weight: f64,
    /// Worker threads for the perplexity; 0 uses every core. The last digits can differ
    /// between thread counts.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Held-out perplexity from the ELBO bound.
#[derive(Debug, Clone, Serialize)]
pub struct Perplexity {
    /// `exp(Σ_d -ELBO_d / Σ_d N_d)`.
    pub value: f64,
    /// Sum over documents of the estimated negative ELBO, in nats.
    pub negative_elbo: f64,
    /// Non-empty documents scored.
    pub documents: usize,
    /// Total word count `Σ_d N_d`.
    pub words: f64,
    /// Noise samples per document.
    pub samples: usize,
    /// Seed of the first sample's noise; sample `s` uses `seed + s`.
    pub seed: u64,
}

/// Everything `ntm evaluate --json` prints.
#[derive(Debug, Serialize)]
struct EvaluationReport {
    model: String,
    reference: String,
    /// Top words of each topic, as words when the model has a vocabulary, else as ids.
    topic_words: Vec<Vec<String>>,
    metrics: TopicMetrics,
    perplexity: Option<Perplexity>,
}

pub fn run(args: &EvaluateArgs) -> Result<()> {
    if args.top_n == 0 {
        bail!("invalid --top-n 0: use 1 or more words per topic");
    }
    if args.perplexity_samples == 0 {
        bail!("invalid --perplexity-samples 0: use 1 or more samples");
    }
    if !(args.rbo_weight > 0.0 && args.rbo_weight <= 1.0) {
        bail!(
            "invalid --rbo-weight {}: use a value above 0 and at most 1",
            args.rbo_weight
        );
    }
    let artifact = ModelArtifact::load(&args.model)
        .with_context(|| format!("cannot load the model {}", args.model.display()))?;
    let network = &artifact.network;
    let (vocab_size, num_topics) = (network.config.feature_dim, network.config.num_topics);
    let vocabulary = artifact.vocabulary.as_deref();
    if args.top_n > vocab_size {
        warn!(
            "--top-n {} is more than the model's {vocab_size} words: each topic lists all of them",
            args.top_n
        );
    }

    let top = top_word_ids(network.decoder_weight(), vocab_size, num_topics, args.top_n);
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

    let options = MetricOptions {
        rbo_weight: args.rbo_weight,
    };
    let (metrics, rows) = if is_token_file(&args.reference) {
        let Some(words) = vocabulary else {
            bail!(
                "the model has no vocabulary, so the words of {} cannot be matched to its features; \
                 pass a channel folder of counts instead",
                args.reference.display()
            );
        };
        let documents = read_token_documents(&args.reference, words)
            .with_context(|| format!("cannot read the reference {}", args.reference.display()))?;
        info!(
            "Read {} tokenised documents from {}",
            documents.len(),
            args.reference.display()
        );
        let reference = Reference::Tokens {
            documents: &documents,
            vocab_size,
        };
        let metrics = evaluate_topics(&top, reference, embeddings.as_ref(), &options);
        (metrics, token_counts(&documents, vocab_size))
    } else {
        let rows = read_channel(&args.reference, vocab_size, vocabulary)?;
        info!(
            "Read {} documents from {}",
            rows.n_rows(),
            args.reference.display()
        );
        let metrics = evaluate_topics(
            &top,
            Reference::Counts(&rows),
            embeddings.as_ref(),
            &options,
        );
        (metrics, rows)
    };

    let seed = match args.seed {
        Some(seed) => seed,
        None => training_seed(&artifact)?,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the worker threads")?;
    let perplexity =
        pool.install(|| held_out_perplexity(network, &rows, args.perplexity_samples, seed))?;

    let topic_words = top
        .iter()
        .map(|ids| {
            ids.iter()
                .map(|&id| match vocabulary.and_then(|v| v.get(id as usize)) {
                    Some(word) => word.clone(),
                    None => id.to_string(),
                })
                .collect()
        })
        .collect();
    let report = EvaluationReport {
        model: args.model.display().to_string(),
        reference: args.reference.display().to_string(),
        topic_words,
        metrics,
        perplexity,
    };
    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        text.push('\n');
        text
    } else {
        render_text(&report)
    };
    print!("{text}");
    Ok(())
}

/// True when `path` names a tokenised-documents file rather than a channel.
pub(crate) fn is_token_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    path.is_file() && (name.ends_with(".txt") || name.ends_with(".txt.gz"))
}

/// Reads every non-empty document of a channel into one matrix, after checking that the
/// vocabulary `ntm prepare` wrote beside the channel, if any, is the model's.
pub(crate) fn read_channel(
    path: &Path,
    vocab_size: usize,
    model_words: Option<&[String]>,
) -> Result<SparseRows> {
    if let Some((vocab, difference)) = channels::vocabulary_mismatch(path, model_words)? {
        bail!(
            "the reference {} was counted with another vocabulary than the model's: {} \
             differs ({difference}), so its features would stand for other words; count the \
             reference text with `ntm prepare TEXT --output DIR --vocabulary MODEL` and pass \
             DIR/train, or pass a tokens file",
            path.display(),
            vocab.display()
        );
    }
    let mut reader = ChannelReader::open(path, None, vocab_size, BATCH_ROWS)
        .with_context(|| format!("cannot read the reference {}", path.display()))?;
    let mut rows = SparseRows::new(vocab_size);
    while let Some(chunk) = reader.next_chunk().with_context(|| {
        format!(
            "cannot read the reference {} for a model of {vocab_size} words (feature_dim)",
            path.display()
        )
    })? {
        rows.extend(&chunk);
    }
    Ok(rows)
}

/// Returns the `seed` hyperparameter the model was trained with, or its default 0 when the
/// model does not record one.
pub(crate) fn training_seed(artifact: &ModelArtifact) -> Result<u64> {
    match artifact.metadata.hyperparameters.get("seed") {
        Some(text) => text.parse().with_context(|| {
            format!("the model's seed hyperparameter {text:?} is not an integer; pass --seed")
        }),
        None => Ok(0),
    }
}

/// Computes held-out perplexity `exp(Σ_d -ELBO_d / Σ_d N_d)` over the non-empty rows.
///
/// The negative ELBO of a document is the reconstruction loss at `z = μ + σ ε` plus the
/// analytic KL divergence, as the trainer scores a channel in inference mode. With
/// `samples` above 1, the reconstruction loss is averaged over that many noise draws, the
/// draw `s` seeded with `seed + s`. `None` when the rows hold no word.
pub fn held_out_perplexity(
    network: &Network,
    rows: &SparseRows,
    samples: usize,
    seed: u64,
) -> Result<Option<Perplexity>> {
    let non_empty: Vec<usize> = (0..rows.n_rows())
        .filter(|&d| rows.row_sum(d) > 0.0)
        .collect();
    let rows = rows.select(&non_empty);
    let words: f64 = (0..rows.n_rows()).map(|d| rows.row_sum(d)).sum();
    if rows.n_rows() == 0 || words <= 0.0 {
        return Ok(None);
    }
    let mut backend = CpuBackend::new();
    let mut negative_elbo = 0.0;
    for s in 0..samples {
        let loss = ntm_model::trainer::evaluate(
            network,
            &rows,
            BATCH_ROWS,
            seed.wrapping_add(s as u64),
            &mut backend,
        )
        .context("cannot score the reference with the model")?;
        negative_elbo += loss.total * rows.n_rows() as f64;
    }
    negative_elbo /= samples as f64;
    let per_word = negative_elbo / words;
    let value = per_word.exp();
    if !value.is_finite() {
        bail!(
            "cannot compute the perplexity: the negative ELBO per word is {per_word:e} nats, too \
             large for exp (at most about 709); check the reference counts, which sum to \
             {words:e} words over {} documents",
            rows.n_rows()
        );
    }
    Ok(Some(Perplexity {
        value,
        negative_elbo,
        documents: rows.n_rows(),
        words,
        samples,
        seed,
    }))
}

/// Formats the report as a table per topic and an overall block.
fn render_text(report: &EvaluationReport) -> String {
    let m = &report.metrics;
    let cell = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
    let pick = |scores: &Option<ntm_eval::TopicScores>, k: usize| {
        scores.as_ref().and_then(|s| s.per_topic.get(k).copied())
    };

    let mut out = String::new();
    out.push_str(&format!(
        "Topic metrics on the top {} words against {} reference documents\n",
        m.top_n, m.reference_documents
    ));
    out.push_str(&format!(
        "{:>5} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}  top words\n",
        "topic", "TU", "NPMI", "u_mass", "c_npmi", "c_v", "WETC"
    ));

    for (k, words) in report.topic_words.iter().enumerate() {
        let row = [
            m.topic_uniqueness.per_topic.get(k).copied(),
            m.npmi.per_topic.get(k).copied(),
            m.u_mass.per_topic.get(k).copied(),
            pick(&m.c_npmi, k),
            pick(&m.c_v, k),
            m.wetc
                .as_ref()
                .and_then(|w| w.per_topic.get(k).copied().flatten()),
        ];
        out.push_str(&format!(
            "{k:>5} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n",
            cell(row[0]),
            cell(row[1]),
            cell(row[2]),
            cell(row[3]),
            cell(row[4]),
            cell(row[5]),
            words.join(" ")
        ));
    }
    out.push_str(&format!(
        "{:>5} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "all",
        cell(Some(m.topic_uniqueness.overall)),
        cell(Some(m.npmi.overall)),
        cell(Some(m.u_mass.overall)),
        cell(m.c_npmi.as_ref().map(|s| s.overall)),
        cell(m.c_v.as_ref().map(|s| s.overall)),
        cell(m.wetc.as_ref().and_then(|w| w.overall)),
    ));

    out.push_str(&format!(
        "topic diversity TD@{}: {:.4}\n",
        m.top_n, m.topic_diversity
    ));
    out.push_str(&format!(
        "inverted RBO (p = {}): {:.4}\n",
        m.inverted_rbo.weight, m.inverted_rbo.overall
    ));
    if let Some(w) = &m.wetc {
        out.push_str(&format!(
            "WETC skipped {} top {} without a vector ({} of the vocabulary's words {} none)\n",
            w.missing_top_words,
            if w.missing_top_words == 1 {
                "word"
            } else {
                "words"
            },
            w.missing_vocabulary_words,
            if w.missing_vocabulary_words == 1 {
                "has"
            } else {
                "have"
            },
        ));
    }
    match &report.perplexity {
        Some(p) => out.push_str(&format!(
            "perplexity: {:.4} ({} documents, {} words, {} noise sample(s) per document, seed {})\n",
            p.value, p.documents, p.words, p.samples, p.seed
        )),
        None => out.push_str("perplexity: - (the reference has no word)\n"),
    }
    out
}
