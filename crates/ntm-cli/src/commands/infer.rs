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
    /// A channel: one CSV or RecordIO-protobuf file, or a folder of them.
    #[arg(long)]
    pub input: PathBuf,
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
    let mut reader = ChannelReader::open(
        &args.input,
        content_type,
        network.config.feature_dim,
        BATCH_ROWS,
    )
    .with_context(|| format!("cannot read {}", args.input.display()))?
    .keep_empty(true);

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
    while let Some(chunk) = reader
        .next_chunk()
        .with_context(|| format!("cannot read {}", args.input.display()))?
    {
        pool.install(|| network.topic_weights(&chunk, &mut workspace, &mut weights))?;
        for row in weights.chunks(network.config.num_topics) {
            line.clear();
            line.push_str("{\"topic_weights\": [");
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
