//! `ntm infer`: batch transform offline. Topic weights of every document of a file or a
//! folder of files, written as JSON Lines (or RecordIO-protobuf) in input order.
//!
//! The input is decoded by [`ntm_serve::batch`], the request decoders of `ntm serve`, and
//! scored by the server's [`Model`], so each document gets the weights that `ntm serve`
//! returns for it with the same thread count.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ntm_model::artifact::ModelArtifact;
use ntm_serve::batch::BatchReader;
use ntm_serve::codec;
use ntm_serve::media::{self, ResponseFormat};
use ntm_serve::Model;
use tracing::{info, warn};

use super::channels;

/// Documents per inference batch; results do not depend on it.
const BATCH_ROWS: usize = 1024;

/// Arguments of `ntm infer`.
#[derive(Args, Debug)]
pub struct InferArgs {
    /// The model: `model.tar.gz`, the folder `ntm train --output` wrote it to, or a folder with
    /// its files.
    #[arg(long)]
    pub model: PathBuf,
    /// A file or a folder of files, in any request format of `ntm serve` (see
    /// --content-type). With `--text`, raw documents instead: JSON Lines, CSV with a header,
    /// or a folder of text files, `.gz` accepted.
    #[arg(long)]
    pub input: PathBuf,
    /// Read raw documents and count their words with the model's own tokenizer and vocabulary;
    /// each output line then also carries the document's `id`.
    #[arg(long)]
    pub text: bool,
    /// With `--text`: the JSON field or CSV column holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// With `--text`: the input kind, jsonl, csv or folder; detected from the path when absent.
    #[arg(long, requires = "text")]
    pub input_format: Option<String>,
    /// Content type of every input file: `text/csv` (with `;label_size=1` for a label
    /// column), `application/jsonlines`, `application/json`, `application/x-recordio-protobuf`
    /// or `text/plain` (raw lines counted with the model's tokenizer). Detected from each
    /// file's first bytes and extension when absent.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Output format: `application/jsonlines` (one `{"topic_weights": [K floats]}` per line)
    /// or `application/x-recordio-protobuf` (one record per document, label `topic_weights`).
    #[arg(long, default_value = "application/jsonlines")]
    pub accept: String,
    /// Output file, one result per input document in input order (empty documents
    /// included); standard output when absent.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Worker threads; 0 uses every core. The last digits of the weights can differ between
    /// thread counts.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

pub fn run(args: &InferArgs) -> Result<()> {
    let artifact = ModelArtifact::load(&args.model)
        .with_context(|| format!("cannot load the model {}", args.model.display()))?;
    if !args.text {
        if let Some((vocab, difference)) =
            channels::vocabulary_mismatch(&args.input, artifact.vocabulary.as_deref())?
        {
            warn!(
                "{} differs from the model's vocabulary ({difference}): the counts of {} are \
                 read as the model's words, so its topic weights are likely meaningless",
                vocab.display(),
                args.input.display()
            );
        }
    }
    let accept = output_format(&args.accept)?;
    let format = args
        .content_type
        .as_deref()
        .map(|value| media::parse_content_type(Some(value)))
        .transpose()
        .map_err(|error| anyhow::anyhow!("invalid --content-type: {error}"))?;
    let text = if args.text {
        if accept != ResponseFormat::JsonLines {
            anyhow::bail!(
                "--text writes document ids, which only --accept application/jsonlines can carry"
            );
        }
        Some(TextSource::open(
            args,
            &artifact.metadata,
            artifact.vocabulary.as_deref(),
        )?)
    } else {
        None
    };
    let model = Model::from_artifact(artifact);

    // The output goes to a temporary file renamed at the end, so a failed run leaves no partial file.
    let (mut out, temporary): (Box<dyn Write>, Option<tempfile::NamedTempFile>) = match &args.output
    {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create folder {}", parent.display()))?;
            }
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = ntm_model::artifact::temporary_file_in(dir)
                .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
            let file = tmp
                .reopen()
                .context("cannot open the temporary output file")?;
            (Box::new(BufWriter::new(file)), Some(tmp))
        }
        None => (Box::new(BufWriter::new(io::stdout().lock())), None),
    };

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot start the worker threads")?;
    let documents = match text {
        Some(text) => score_text(text, &model, &pool, &mut out)?,
        None => score_files(args, format, accept, &model, &pool, &mut out)?,
    };
    out.flush().context("cannot write the output")?;
    drop(out);
    if let (Some(tmp), Some(path)) = (temporary, &args.output) {
        tmp.persist(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    info!("Wrote topic weights of {documents} documents");
    Ok(())
}

/// Parses `--accept`: one of the response types of `ntm serve` that can be written as a stream.
fn output_format(accept: &str) -> Result<ResponseFormat> {
    match media::negotiate(Some(accept)) {
        Some(format @ (ResponseFormat::JsonLines | ResponseFormat::RecordIo))
            if !accept.contains('*') =>
        {
            Ok(format)
        }
        _ => anyhow::bail!(
            "invalid --accept {accept:?}: use application/jsonlines (the default) or \
             application/x-recordio-protobuf"
        ),
    }
}

/// Scores the documents of the input files chunk by chunk; returns their number.
fn score_files(
    args: &InferArgs,
    format: Option<media::RequestFormat>,
    accept: ResponseFormat,
    model: &Model,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
) -> Result<usize> {
    let mut reader = BatchReader::open(&args.input, format, model, BATCH_ROWS)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let num_topics = model.num_topics();
    let mut weights = Vec::new();
    let mut documents = 0usize;
    while let Some(chunk) = reader.next_chunk().with_context(|| {
        format!(
            "cannot read {} for a model trained on {} words (feature_dim); \
             the documents must be counted with the model's vocabulary",
            args.input.display(),
            model.feature_dim()
        )
    })? {
        pool.install(|| model.topic_weights(&chunk.rows, &mut weights))?;
        if let Some(row) = codec::first_non_finite_row(&weights, num_topics) {
            let largest = chunk.rows.row(row).1.iter().copied().fold(0.0f32, f32::max);
            anyhow::bail!(
                "{}: {} has counts too large for the model (largest {largest}): its topic \
                 weights are not finite numbers. Pass word counts of real documents",
                chunk.path.display(),
                chunk.position(row)
            );
        }
        out.write_all(&codec::encode(accept, &weights, num_topics))
            .context("cannot write the output")?;
        documents += chunk.rows.n_rows();
    }
    Ok(documents)
}

/// Scores raw documents, writing each one's id with its weights; returns their number.
fn score_text(
    mut text: TextSource,
    model: &Model,
    pool: &rayon::ThreadPool,
    out: &mut dyn Write,
) -> Result<usize> {
    let mut weights = Vec::new();
    let mut documents = 0usize;
    // Documents with no vocabulary word: how many, and the id of the first.
    let mut without_words = 0usize;
    let mut first_without_words = None;
    let mut line = String::new();
    while let Some((chunk, ids)) = text.next_chunk() {
        pool.install(|| model.topic_weights(&chunk, &mut weights))?;
        for (r, id) in ids.iter().enumerate() {
            if chunk.row(r).0.is_empty() {
                without_words += 1;
                first_without_words.get_or_insert_with(|| id.clone());
            }
        }
        for (row, id) in weights.chunks(model.num_topics()).zip(&ids) {
            line.clear();
            line.push_str("{\"id\": ");
            line.push_str(&serde_json::to_string(id).context("cannot encode a document id")?);
            line.push_str(", \"topic_weights\": [");
            for (k, w) in row.iter().enumerate() {
                if k > 0 {
                    line.push_str(", ");
                }
                line.push_str(&format!("{w}"));
            }
            line.push_str("]}\n");
            out.write_all(line.as_bytes())
                .context("cannot write the output")?;
        }
        documents += chunk.n_rows();
    }
    if let Some(first) = first_without_words {
        warn!(
            "{without_words} of {documents} documents have no word of the model's vocabulary \
             (the first: {first:?}); each still has its line, with the topic weights of an empty \
             document"
        );
    }
    Ok(documents)
}

/// Raw documents, counted with the model's tokenizer and vocabulary.
struct TextSource {
    documents: std::vec::IntoIter<ntm_text::Document>,
    tokenizer: ntm_text::Tokenizer,
    vocabulary: ntm_text::Vocabulary,
}

impl TextSource {
    /// Opens raw documents, checking that the model carries what counting them needs.
    fn open(
        args: &InferArgs,
        metadata: &ntm_model::artifact::ModelMetadata,
        words: Option<&[String]>,
    ) -> Result<TextSource> {
        let Some(settings) = &metadata.tokenizer else {
            anyhow::bail!(
                "the model has no tokenizer settings, so --text cannot count words as training did; \
                 train on channels made by `ntm prepare`, or pass channels of counts without --text"
            );
        };
        let Some(words) = words else {
            anyhow::bail!("the model has no vocabulary, so --text cannot map words to features");
        };
        let settings: ntm_text::TokenizerSettings = serde_json::from_value(settings.clone())
            .context("the model's tokenizer settings are not valid")?;
        let vocabulary = ntm_text::Vocabulary::from_words(words.to_vec())
            .context("the model's vocabulary is not valid")?;
        let options = ntm_text::SourceOptions {
            kind: super::prepare::parse_input_format(args.input_format.as_deref())?,
            text_field: args.text_field.clone(),
        };
        let documents = ntm_text::read_documents(&args.input, &options)
            .with_context(|| format!("cannot read documents from {}", args.input.display()))?;
        Ok(TextSource {
            documents: documents.into_iter(),
            tokenizer: ntm_text::Tokenizer::new(settings),
            vocabulary,
        })
    }

    /// Returns the next rows and their document ids; `None` at the end.
    fn next_chunk(&mut self) -> Option<(ntm_formats::SparseRows, Vec<String>)> {
        let mut rows = ntm_formats::SparseRows::new(self.vocabulary.len());
        let mut ids = Vec::new();
        for document in self.documents.by_ref().take(BATCH_ROWS) {
            let (indices, counts) = self
                .vocabulary
                .to_counts(&self.tokenizer.tokenize(&document.text));
            rows.push_row(&indices, &counts);
            ids.push(document.id);
        }
        (rows.n_rows() > 0).then_some((rows, ids))
    }
}
