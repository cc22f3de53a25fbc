//! `ntm infer`: topic weights of every document of a channel, as JSON Lines.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ntm_formats::{ChannelReader, ContentType};
use ntm_model::artifact::ModelArtifact;
use ntm_model::network::Workspace;
use tracing::info;

/// Documents per inference batch; results do not depend on it.
const BATCH_ROWS: usize = 1024;

/// Arguments of `ntm infer`.
#[derive(Args, Debug)]
pub struct InferArgs {
    /// The model: `model.tar.gz` or a folder with its files.
    #[arg(long)]
    pub model: PathBuf,
    /// A channel: one CSV or RecordIO-protobuf file, or a folder of them. With `--text`, raw
    /// documents instead: JSON Lines, CSV with a header, or a folder of text files, `.gz` accepted.
    #[arg(long)]
    pub input: PathBuf,
    /// Read raw documents and count their words with the model's own tokenizer and vocabulary;
    /// each output line then also carries the document's `id`.
    #[arg(long)]
    pub text: bool,
    /// With `--text`: the JSON field or CSV column holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Content type of the input (`text/csv`, `application/x-recordio-protobuf`); detected when absent.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Output file, JSON Lines with one `{"topic_weights": [K floats]}` per input document, in
    /// input order (empty documents included); standard output when absent.
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
    let network = artifact.network;
    let content_type = args
        .content_type
        .as_deref()
        .map(str::parse::<ContentType>)
        .transpose()
        .context("invalid --content-type")?;
    let mut source = if args.text {
        Source::text(args, &artifact.metadata, artifact.vocabulary.as_deref())?
    } else {
        let reader = ChannelReader::open(
            &args.input,
            content_type,
            network.config.feature_dim,
            BATCH_ROWS,
        )
        .with_context(|| format!("cannot read {}", args.input.display()))?
        .keep_empty(true);
        Source::Channel(Box::new(reader))
    };

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
    let mut workspace = Workspace::default();
    let mut weights = Vec::new();
    let mut documents = 0usize;
    let mut line = String::new();
    let feature_dim = network.config.feature_dim;
    while let Some((chunk, ids)) = source.next_chunk().with_context(|| {
        format!(
            "cannot read {} for a model trained on {feature_dim} words (feature_dim); \
             the documents must be counted with the model's vocabulary",
            args.input.display()
        )
    })? {
        pool.install(|| network.topic_weights(&chunk, &mut workspace, &mut weights))?;
        for (i, row) in weights.chunks(network.config.num_topics).enumerate() {
            line.clear();
            line.push('{');
            if let Some(id) = ids.as_ref().and_then(|ids| ids.get(i)) {
                line.push_str("\"id\": ");
                line.push_str(&serde_json::to_string(id).context("cannot encode a document id")?);
                line.push_str(", ");
            }
            line.push_str("\"topic_weights\": [");
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
    out.flush().context("cannot write the output")?;
    drop(out);
    if let (Some(tmp), Some(path)) = (temporary, &args.output) {
        tmp.persist(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    info!("Wrote topic weights of {documents} documents");
    Ok(())
}

/// Documents to score: a channel of counts, or raw text counted with the model's vocabulary.
enum Source {
    Channel(Box<ChannelReader>),
    Text {
        documents: std::vec::IntoIter<ntm_text::Document>,
        tokenizer: ntm_text::Tokenizer,
        vocabulary: ntm_text::Vocabulary,
    },
}

impl Source {
    /// Opens raw documents, checking that the model carries what counting them needs.
    fn text(
        args: &InferArgs,
        metadata: &ntm_model::artifact::ModelMetadata,
        words: Option<&[String]>,
    ) -> Result<Source> {
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
            kind: None,
            text_field: args.text_field.clone(),
        };
        let documents = ntm_text::read_documents(&args.input, &options)
            .with_context(|| format!("cannot read documents from {}", args.input.display()))?;
        Ok(Source::Text {
            documents: documents.into_iter(),
            tokenizer: ntm_text::Tokenizer::new(settings),
            vocabulary,
        })
    }

    /// Returns the next rows and, for raw text, their document ids; `None` at the end.
    fn next_chunk(&mut self) -> Result<Option<(ntm_formats::SparseRows, Option<Vec<String>>)>> {
        match self {
            Source::Channel(reader) => {
                Ok(ChannelReader::next_chunk(reader)?.map(|rows| (rows, None)))
            }
            Source::Text {
                documents,
                tokenizer,
                vocabulary,
            } => {
                let mut rows = ntm_formats::SparseRows::new(vocabulary.len());
                let mut ids = Vec::new();
                for document in documents.by_ref().take(BATCH_ROWS) {
                    let (indices, counts) =
                        vocabulary.to_counts(&tokenizer.tokenize(&document.text));
                    rows.push_row(&indices, &counts);
                    ids.push(document.id);
                }
                Ok((rows.n_rows() > 0).then_some((rows, Some(ids))))
            }
        }
    }
}
