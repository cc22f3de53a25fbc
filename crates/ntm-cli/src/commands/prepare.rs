//! `ntm prepare`: raw text to SageMaker NTM channels.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use ntm_formats::SparseRows;
use ntm_text::{
    train_validation_split, DocFrequency, Document, SourceKind, SourceOptions, StopWords,
    Tokenizer, TokenizerSettings, Vocabulary, VocabularyBuilder, VocabularyLimits,
};
use rayon::prelude::*;
use serde::Serialize;
use tracing::{info, warn};

/// Output format of the channel files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ChannelFormat {
    /// RecordIO-wrapped protobuf, one sparse Float32 record per document.
    #[default]
    Recordio,
    /// Dense CSV, one row of `feature_dim` counts per document, no header.
    Csv,
}

/// Arguments of `ntm prepare`.
#[derive(Args, Debug, Clone)]
pub struct PrepareArgs {
    /// Training documents: JSON Lines files, CSV files with a header, or folders of text files
    /// (one document per file); `.gz` files are decompressed.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder; receives train/, validation/, test/, auxiliary/vocab.txt,
    /// auxiliary/tokenizer.json, document-ids/, tokens/ and summary.json.
    #[arg(long)]
    pub output: PathBuf,
    /// Test documents, written to test/ with the training vocabulary.
    #[arg(long, num_args = 1..)]
    pub test: Vec<PathBuf>,
    /// Validation documents, written to validation/; excludes --validation-fraction.
    #[arg(long, num_args = 1.., conflicts_with = "validation_fraction")]
    pub validation: Vec<PathBuf>,
    /// Share of the training documents held out at random as the validation channel.
    #[arg(long, default_value_t = 0.0)]
    pub validation_fraction: f64,
    /// Seed of the validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Format of the channel files.
    #[arg(long, value_enum, default_value_t = ChannelFormat::Recordio)]
    pub format: ChannelFormat,
    /// Input kind: jsonl, csv or folder; detected from each path when absent.
    #[arg(long)]
    pub input_format: Option<String>,
    /// JSON field or CSV column holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Drop words found in fewer documents: an integer is a count (20), a number with a decimal
    /// point a fraction of the training documents (0.01).
    #[arg(long, default_value = "1")]
    pub min_df: String,
    /// Drop words found in more documents: an integer count, or a fraction of the training
    /// documents written with a decimal point (0.5).
    #[arg(long, default_value = "1.0")]
    pub max_df: String,
    /// Keep at most this many words, the most frequent in the training documents.
    #[arg(long)]
    pub max_features: Option<usize>,
    /// Count the documents with a fixed vocabulary instead of building one. Give a `vocab.txt`
    /// file (one word per line, ending in `.txt`) or a model (`model.tar.gz`, the folder
    /// `ntm train` wrote it to, or a folder of its files). A model's words give channels that
    /// it can score and infer on. Words outside the vocabulary are dropped.
    #[arg(long, conflicts_with_all = ["min_df", "max_df", "max_features"])]
    pub vocabulary: Option<PathBuf>,
    /// Shortest token kept, in characters.
    #[arg(long, default_value_t = 2)]
    pub min_token_len: usize,
    /// Stop words: `english` (built in), `none`, or the path of a file with one word per line.
    #[arg(long, default_value = "english")]
    pub stop_words: String,
    /// Remove e-mail headers, quoted lines and signatures of newsgroup-style posts.
    #[arg(long)]
    pub strip_newsgroup: bool,
    /// Replace channel files that an earlier run left in the output folder.
    #[arg(long)]
    pub force: bool,
}

/// Counts reported by `ntm prepare` and written to `summary.json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SplitSummary {
    /// Documents read from the inputs of this split.
    pub documents_read: usize,
    /// Documents written to the channel.
    pub documents_written: usize,
    /// Documents with no in-vocabulary word, not written.
    pub documents_empty: usize,
    /// In-vocabulary tokens written.
    pub tokens: u64,
}

/// Summary of a `ntm prepare` run.
#[derive(Debug, Clone, Serialize)]
pub struct PrepareSummary {
    /// Number of words in the vocabulary (`feature_dim`).
    pub vocabulary_size: usize,
    /// The training split.
    pub train: SplitSummary,
    /// The validation split, when written.
    pub validation: Option<SplitSummary>,
    /// The test split, when written.
    pub test: Option<SplitSummary>,
    /// Format of the channel files.
    pub format: String,
}

/// Folder, beside the channels, of the document ids of each split, one per line in row order.
const DOCUMENT_IDS: &str = "document-ids";

/// Folder, beside the channels, of the tokenised documents of each split: one document per
/// line, its vocabulary words in text order, aligned with the document ids.
const TOKENS: &str = "tokens";

/// Folders `ntm prepare` writes: the channels, the document ids and the tokenised documents.
const CHANNELS: [&str; 6] = [
    "train",
    "validation",
    "test",
    "auxiliary",
    DOCUMENT_IDS,
    TOKENS,
];

/// Joins ids one per line; line breaks inside an id become spaces so lines stay aligned with rows.
fn document_ids_text(ids: &[String]) -> String {
    let mut text = String::new();
    for id in ids {
        text.push_str(&id.replace(['\n', '\r'], " "));
        text.push('\n');
    }
    text
}

pub fn run(args: &PrepareArgs) -> Result<()> {
    prepare(args).map(|_| ())
}

/// Parses an `--input-format` value (jsonl, csv or folder); `None` leaves the kind to be
/// detected from each path.
pub(crate) fn parse_input_format(value: Option<&str>) -> Result<Option<SourceKind>> {
    value
        .map(str::parse::<SourceKind>)
        .transpose()
        .context("invalid --input-format")
}

/// Runs the whole preparation and returns its summary.
pub fn prepare(args: &PrepareArgs) -> Result<PrepareSummary> {
    // 1. Check the settings before reading anything.
    let min_df: DocFrequency = args.min_df.parse().context("invalid --min-df")?;
    let max_df: DocFrequency = args.max_df.parse().context("invalid --max-df")?;
    // An integer is a count and a number with a decimal point a fraction, as in scikit-learn:
    // the two values that read alike but mean the opposite get a word of warning.
    if max_df == DocFrequency::Count(1) {
        warn!(
            "--max-df {} is a count: only words found in a single training document are kept; \
             write 1.0 for no upper limit",
            args.max_df
        );
    }
    if min_df == DocFrequency::Fraction(1.0) {
        warn!(
            "--min-df {} is a fraction: only words found in every training document are kept; \
             write 1 for no lower limit",
            args.min_df
        );
    }
    if !(0.0..1.0).contains(&args.validation_fraction) {
        bail!(
            "invalid --validation-fraction {}: use a value from 0 (no validation channel) up to, but not including, 1",
            args.validation_fraction
        );
    }
    if args.min_token_len == 0 {
        bail!("invalid --min-token-len 0: use 1 or more characters");
    }
    let stop_words = match args.stop_words.as_str() {
        "english" => StopWords::English,
        "none" => StopWords::None,
        path if !Path::new(path).exists() => bail!(
            "invalid --stop-words {path:?}: it is neither `english`, `none`, nor an existing \
             file of stop words"
        ),
        path => StopWords::from_file(Path::new(path))
            .with_context(|| format!("cannot load the stop-word file {path}"))?,
    };
    let settings = TokenizerSettings {
        min_token_len: args.min_token_len,
        lowercase: true,
        stop_words,
        strip_newsgroup: args.strip_newsgroup,
    };
    let tokenizer = Tokenizer::new(settings.clone());
    let options = SourceOptions {
        kind: parse_input_format(args.input_format.as_deref())?,
        text_field: args.text_field.clone(),
    };
    let fixed_vocabulary = match &args.vocabulary {
        Some(path) => Some(load_fixed_vocabulary(path, &settings)?),
        None => None,
    };
    check_output_folder(&args.output, args.force)?;

    // 2. Read and tokenise every input.
    let mut train_tokens = tokenize_inputs(&args.inputs, &options, &tokenizer)?;
    let mut validation_tokens = if args.validation.is_empty() {
        None
    } else {
        Some(tokenize_inputs(&args.validation, &options, &tokenizer)?)
    };
    let test_tokens = if args.test.is_empty() {
        None
    } else {
        Some(tokenize_inputs(&args.test, &options, &tokenizer)?)
    };

    if train_tokens.is_empty() {
        bail!(
            "no training documents: the inputs ({}) hold no document",
            display_paths(&args.inputs)
        );
    }

    // 3. Hold out the validation share of the training documents.
    if args.validation_fraction > 0.0 {
        let split =
            train_validation_split(train_tokens.len(), args.validation_fraction, args.seed)?;
        if split.train.is_empty() {
            bail!(
                "invalid --validation-fraction {}: it holds out all {} documents and leaves none \
                 for training; use a smaller fraction",
                args.validation_fraction,
                split.validation.len()
            );
        }
        let mut slots: Vec<Option<TokenizedDocument>> =
            train_tokens.into_iter().map(Some).collect();
        let take = |indices: &[usize],
                    slots: &mut Vec<Option<TokenizedDocument>>|
         -> Vec<TokenizedDocument> {
            indices.iter().filter_map(|&i| slots[i].take()).collect()
        };
        let validation = take(&split.validation, &mut slots);
        train_tokens = take(&split.train, &mut slots);
        validation_tokens = Some(validation);
    }

    if train_tokens.iter().all(|doc| doc.tokens.is_empty()) {
        bail!(
            "no token is left in the {} training documents after tokenisation: every word was \
             shorter than --min-token-len {}, not alphabetic, or a stop word. Chinese and \
             Japanese text splits mostly into single characters and needs --min-token-len 1",
            train_tokens.len(),
            args.min_token_len
        );
    }

    // 4. Build the vocabulary from the training documents only, unless one is given.
    let vocabulary = match fixed_vocabulary {
        Some(vocabulary) => vocabulary,
        None => {
            let mut builder = VocabularyBuilder::new();
            for doc in &train_tokens {
                builder.add_document(&doc.tokens);
            }
            let limits = VocabularyLimits {
                min_df,
                max_df,
                max_features: args.max_features,
            };
            let vocabulary = builder
                .build(&limits)
                .context("cannot build the vocabulary")?;
            info!(
                "Vocabulary: {} words kept of {} distinct tokens in {} training documents",
                vocabulary.len(),
                builder.n_words(),
                builder.n_docs()
            );
            vocabulary
        }
    };

    // 5. Write the channels.
    let extension = match args.format {
        ChannelFormat::Recordio => "rec",
        ChannelFormat::Csv => "csv",
    };
    // Count every split before writing any, so a split with no usable document stops the
    // run before a single channel file exists.
    let mut splits = vec![("train", to_rows(&vocabulary, &train_tokens))];
    if let Some(docs) = &validation_tokens {
        splits.push(("validation", to_rows(&vocabulary, docs)));
    }
    if let Some(docs) = &test_tokens {
        splits.push(("test", to_rows(&vocabulary, docs)));
    }
    for (name, SplitRows { rows, summary, .. }) in &splits {
        if summary.documents_empty > 0 {
            warn!(
                "{name}: {} document(s) have no vocabulary word and were skipped",
                summary.documents_empty
            );
        }
        if rows.n_rows() == 0 {
            bail!("the {name} split has no document with a vocabulary word; nothing was written");
        }
    }
    let mut summaries = std::collections::BTreeMap::new();
    for (
        name,
        SplitRows {
            rows,
            document_ids,
            tokens,
            summary,
        },
    ) in splits
    {
        let path = args.output.join(name).join(format!("{name}.{extension}"));
        write_channel_file(&path, &rows, args.format)?;
        // Row i of the channel is the document on line i, so outputs of `ntm infer` can be
        // joined back to the input documents.
        let ids_path = args.output.join(DOCUMENT_IDS).join(format!("{name}.txt"));
        write_file(&ids_path, document_ids_text(&document_ids).as_bytes())?;
        // Line i holds the words of row i in text order, the reference `ntm evaluate` needs
        // for sliding-window coherence.
        let tokens_path = args.output.join(TOKENS).join(format!("{name}.txt"));
        write_file(&tokens_path, tokens.as_bytes())?;
        info!(
            "{name}: {} documents read, {} written, {} empty skipped, {} tokens -> {}",
            summary.documents_read,
            summary.documents_written,
            summary.documents_empty,
            summary.tokens,
            path.display()
        );
        summaries.insert(name, summary);
    }
    let train = summaries.remove("train").unwrap_or_default();
    let validation = summaries.remove("validation");
    let test = summaries.remove("test");

    let auxiliary = args.output.join("auxiliary");
    let mut vocab_bytes = Vec::new();
    ntm_formats::vocab::write_vocab(&mut vocab_bytes, vocabulary.words())?;
    write_file(&auxiliary.join("vocab.txt"), &vocab_bytes)?;
    write_file(
        &auxiliary.join("tokenizer.json"),
        &serde_json::to_vec_pretty(&settings)?,
    )?;

    let summary = PrepareSummary {
        vocabulary_size: vocabulary.len(),
        train,
        validation,
        test,
        format: format!("{:?}", args.format).to_lowercase(),
    };
    write_file(
        &args.output.join("summary.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    info!(
        "Channels written to {} (feature_dim {})",
        args.output.display(),
        vocabulary.len()
    );
    Ok(summary)
}

/// Refuses to mix new channel files with those of an earlier run, unless `force` clears them.
/// Reads the vocabulary of `--vocabulary`: a `vocab.txt` file, or the vocabulary of a model.
/// For a model, warns when its text was tokenised with other settings than `settings`, since
/// the counts would then miss words of its vocabulary.
fn load_fixed_vocabulary(path: &Path, settings: &TokenizerSettings) -> Result<Vocabulary> {
    let is_word_list = path.is_file()
        && path
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("txt"));
    let (words, source) = if is_word_list {
        let words = ntm_formats::vocab::read_vocab(path)
            .with_context(|| format!("cannot read the vocabulary {}", path.display()))?;
        (words, format!("vocabulary file {}", path.display()))
    } else {
        let artifact = ntm_model::artifact::ModelArtifact::load(path).with_context(|| {
            format!(
                "cannot read --vocabulary {}: give a vocab.txt file (name ending in .txt) or a model",
                path.display()
            )
        })?;
        let Some(words) = artifact.vocabulary else {
            bail!(
                "the model {} has no vocabulary (it was trained without auxiliary/vocab.txt), \
                 so it cannot give --vocabulary its words",
                path.display()
            );
        };
        if let Some(used) = &artifact.metadata.tokenizer {
            let current = serde_json::to_value(settings)?;
            if *used != current {
                warn!(
                    "the model's training text was tokenised with {used}, these documents with \
                     {current}; give the same tokenizer flags so that the counts match the model"
                );
            }
        }
        (words, format!("model {}", path.display()))
    };
    let vocabulary = Vocabulary::from_words(words)
        .with_context(|| format!("the {source} is not a usable vocabulary"))?;
    info!("Vocabulary: the {} words of the {source}", vocabulary.len());
    Ok(vocabulary)
}

fn check_output_folder(output: &Path, force: bool) -> Result<()> {
    for channel in CHANNELS {
        let dir = output.join(channel);
        let occupied = fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if !occupied {
            continue;
        }
        if !force {
            bail!(
                "output folder {} already contains a {channel} channel; training reads every file of a channel, \
                 so pass --force to replace the earlier channels or choose another --output",
                output.display()
            );
        }
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    Ok(())
}

/// Reads and tokenises the documents of every path, in order, in parallel.
/// A document's id and its tokens.
struct TokenizedDocument {
    id: String,
    tokens: Vec<String>,
}

fn tokenize_inputs(
    paths: &[PathBuf],
    options: &SourceOptions,
    tokenizer: &Tokenizer,
) -> Result<Vec<TokenizedDocument>> {
    let mut documents: Vec<Document> = Vec::new();
    for path in paths {
        let docs = ntm_text::read_documents(path, options)
            .with_context(|| format!("cannot read documents from {}", path.display()))?;
        info!("Read {} documents from {}", docs.len(), path.display());
        documents.extend(docs);
    }
    Ok(documents
        .par_iter()
        .map(|doc| TokenizedDocument {
            id: doc.id.clone(),
            tokens: tokenizer.tokenize(&doc.text),
        })
        .collect())
}

/// Count rows of one split, with the ids and vocabulary words of the documents written, in
/// row order.
struct SplitRows {
    rows: SparseRows,
    document_ids: Vec<String>,
    /// One line per written document: its vocabulary words in text order, space separated.
    tokens: String,
    summary: SplitSummary,
}

/// Converts token lists to count rows, skipping documents with no vocabulary word.
fn to_rows(vocabulary: &Vocabulary, docs: &[TokenizedDocument]) -> SplitRows {
    let mut rows = SparseRows::new(vocabulary.len());
    let mut document_ids = Vec::new();
    let mut tokens = String::new();
    let mut summary = SplitSummary {
        documents_read: docs.len(),
        ..SplitSummary::default()
    };
    for doc in docs {
        let (ids, counts) = vocabulary.to_counts(&doc.tokens);
        if ids.is_empty() {
            summary.documents_empty += 1;
            continue;
        }
        summary.tokens += counts.iter().map(|&c| c as u64).sum::<u64>();
        rows.push_row(&ids, &counts);
        document_ids.push(doc.id.clone());
        let mut words = doc.tokens.iter().filter(|t| vocabulary.id(t).is_some());
        if let Some(first) = words.next() {
            tokens.push_str(first);
            for word in words {
                tokens.push(' ');
                tokens.push_str(word);
            }
        }
        tokens.push('\n');
        summary.documents_written += 1;
    }
    SplitRows {
        rows,
        document_ids,
        tokens,
        summary,
    }
}

fn write_channel_file(path: &Path, rows: &SparseRows, format: ChannelFormat) -> Result<()> {
    let bytes = match format {
        ChannelFormat::Recordio => ntm_formats::record::write_sparse_rows(Vec::new(), rows)?,
        ChannelFormat::Csv => ntm_formats::csv::write_csv_rows(Vec::new(), rows)?,
    };
    write_file(path, &bytes)
}

/// Writes a file atomically, creating its folder.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create folder {}", parent.display()))?;
    }
    ntm_model::artifact::write_atomically(path, bytes)?;
    Ok(())
}

/// Joins input paths for a message, as the user gave them.
fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
