//! Writes a synthetic training channel of sparse RecordIO-protobuf records, for measuring
//! training on corpora larger than memory.
//!
//! Usage: `synthetic_corpus OUTPUT_FOLDER DOCUMENTS VOCABULARY [TOPICS] [SEED]`
//!
//! Each document mixes one to three of `TOPICS` latent topics (50 by default). A topic draws
//! words from its own random 2% of the vocabulary with Zipf-like weights, and each document
//! has 40 to 400 tokens. Files of 250,000 documents each are written as `part-NNNNN.rec`.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use ntm_formats::record::encode_sparse_record;
use ntm_formats::recordio::RecordIoWriter;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DOCUMENTS_PER_FILE: usize = 250_000;

/// A topic's words and the cumulative weights used to draw them.
struct Topic {
    words: Vec<u32>,
    cumulative: Vec<f64>,
}

impl Topic {
    fn new(vocabulary: usize, rng: &mut ChaCha8Rng) -> Self {
        let size = (vocabulary / 50).max(5).min(vocabulary);
        let words: Vec<u32> = sample(rng, vocabulary, size)
            .into_iter()
            .map(|w| w as u32)
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=size)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> u32 {
        let total = *self.cumulative.last().expect("topics have words");
        let target = rng.random::<f64>() * total;
        let position = self.cumulative.partition_point(|&c| c < target);
        self.words[position.min(self.words.len() - 1)]
    }
}

fn parse(
    args: &[String],
    index: usize,
    name: &str,
    default: Option<usize>,
) -> Result<usize, String> {
    match (args.get(index), default) {
        (Some(text), _) => text
            .parse()
            .map_err(|_| format!("{name} must be a positive integer, got {text:?}")),
        (None, Some(value)) => Ok(value),
        (None, None) => Err(format!(
            "missing {name}; usage: synthetic_corpus OUTPUT_FOLDER DOCUMENTS VOCABULARY [TOPICS] [SEED]"
        )),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let output = PathBuf::from(args.first().ok_or("missing OUTPUT_FOLDER")?);
    let documents = parse(args, 1, "DOCUMENTS", None)?;
    let vocabulary = parse(args, 2, "VOCABULARY", None)?;
    let topics = parse(args, 3, "TOPICS", Some(50))?.max(1);
    let seed = parse(args, 4, "SEED", Some(0))? as u64;
    if vocabulary == 0 || vocabulary > u32::MAX as usize {
        return Err(format!("VOCABULARY must be between 1 and {}", u32::MAX));
    }
    fs::create_dir_all(&output).map_err(|e| format!("cannot create {}: {e}", output.display()))?;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let topics: Vec<Topic> = (0..topics)
        .map(|_| Topic::new(vocabulary, &mut rng))
        .collect();
    let mut counts = vec![0.0f32; vocabulary];
    let mut touched: Vec<u32> = Vec::new();
    let mut keys: Vec<u64> = Vec::new();
    let mut values: Vec<f32> = Vec::new();
    let mut writer: Option<RecordIoWriter<BufWriter<File>>> = None;
    for document in 0..documents {
        if document % DOCUMENTS_PER_FILE == 0 {
            if let Some(done) = writer.take() {
                done.into_inner()
                    .map_err(|e| format!("cannot write: {e}"))?;
            }
            let path = output.join(format!("part-{:05}.rec", document / DOCUMENTS_PER_FILE));
            let file = File::create(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            writer = Some(RecordIoWriter::new(BufWriter::with_capacity(1 << 20, file)));
        }
        let mixed: Vec<&Topic> = (0..rng.random_range(1..=3))
            .map(|_| &topics[rng.random_range(0..topics.len())])
            .collect();
        for _ in 0..rng.random_range(40..=400) {
            let word = mixed[rng.random_range(0..mixed.len())].draw(&mut rng);
            if counts[word as usize] == 0.0 {
                touched.push(word);
            }
            counts[word as usize] += 1.0;
        }
        touched.sort_unstable();
        keys.clear();
        values.clear();
        for &word in &touched {
            keys.push(u64::from(word));
            values.push(counts[word as usize]);
            counts[word as usize] = 0.0;
        }
        touched.clear();
        let payload = encode_sparse_record(&keys, &values, vocabulary);
        if let Some(writer) = writer.as_mut() {
            writer
                .write(&payload)
                .map_err(|e| format!("cannot write: {e}"))?;
        }
    }
    if let Some(done) = writer.take() {
        done.into_inner()
            .map_err(|e| format!("cannot write: {e}"))?;
    }
    println!(
        "wrote {documents} documents over {vocabulary} words to {}",
        output.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
