//! ntm-eval's c_npmi, c_v and u_mass against gensim's CoherenceModel on a real corpus.
//!
//! The reference numbers come from `scripts/gensim_crosscheck.py`, which prepares the
//! shipped 20 Newsgroups test sample and scores fixed topics with gensim.

use std::path::{Path, PathBuf};

use ntm_eval::{
    c_npmi, c_v, read_token_documents, token_counts, u_mass, CoOccurrence, TopicScores,
};
use serde_json::Value;

/// Largest difference allowed from gensim's score.
const TOLERANCE: f64 = 1e-6;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

struct Fixture {
    topics: Vec<Vec<u32>>,
    documents: Vec<Vec<u32>>,
    vocab_size: usize,
    reference: Value,
}

fn load_fixture() -> Fixture {
    let text =
        std::fs::read_to_string(data("gensim-reference.json")).expect("read gensim-reference.json");
    let reference: Value = serde_json::from_str(&text).expect("parse gensim-reference.json");
    let texts = data(reference["texts"].as_str().expect("texts file name"));

    // The vocabulary is every word of the texts, so no word is unknown.
    let raw = {
        use std::io::Read;
        let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&texts).expect("open texts"));
        let mut s = String::new();
        gz.read_to_string(&mut s).expect("decompress texts");
        s
    };
    let mut vocabulary: Vec<String> = raw.split_whitespace().map(str::to_owned).collect();
    vocabulary.sort_unstable();
    vocabulary.dedup();
    let documents = read_token_documents(&texts, &vocabulary).expect("read texts");
    let id = |w: &str| {
        vocabulary
            .binary_search_by(|v| v.as_str().cmp(w))
            .expect("topic word in texts") as u32
    };
    let topics = reference["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| {
            t.as_array()
                .expect("topic")
                .iter()
                .map(|w| id(w.as_str().expect("word")))
                .collect()
        })
        .collect();
    Fixture {
        topics,
        documents,
        vocab_size: vocabulary.len(),
        reference,
    }
}

fn assert_agrees(measure: &str, ours: &TopicScores, reference: &Value) {
    let expected = &reference["scores"][measure];
    let per_topic: Vec<f64> = expected["per_topic"]
        .as_array()
        .expect("per_topic")
        .iter()
        .map(|v| v.as_f64().expect("score"))
        .collect();
    assert_eq!(
        ours.per_topic.len(),
        per_topic.len(),
        "{measure}: topic count"
    );
    for (k, (a, b)) in ours.per_topic.iter().zip(&per_topic).enumerate() {
        assert!(
            (a - b).abs() < TOLERANCE,
            "{measure}, topic {k}: ntm {a}, gensim {b}"
        );
    }
    let overall = expected["overall"].as_f64().expect("overall");
    assert!(
        (ours.overall - overall).abs() < TOLERANCE,
        "{measure} overall: ntm {}, gensim {overall}",
        ours.overall
    );
}

fn window(reference: &Value, measure: &str) -> usize {
    reference["windows"][measure].as_u64().expect("window size") as usize
}

#[test]
fn c_npmi_agrees_with_gensim() {
    let f = load_fixture();
    let words = ntm_eval::coherence::topic_words(&f.topics);
    let counts =
        CoOccurrence::from_sliding_windows(&f.documents, &words, window(&f.reference, "c_npmi"));
    assert_agrees("c_npmi", &c_npmi(&f.topics, &counts), &f.reference);
}

#[test]
fn c_v_agrees_with_gensim() {
    let f = load_fixture();
    let words = ntm_eval::coherence::topic_words(&f.topics);
    let counts =
        CoOccurrence::from_sliding_windows(&f.documents, &words, window(&f.reference, "c_v"));
    assert_agrees("c_v", &c_v(&f.topics, &counts), &f.reference);
}

#[test]
fn u_mass_agrees_with_gensim() {
    let f = load_fixture();
    let words = ntm_eval::coherence::topic_words(&f.topics);
    let rows = token_counts(&f.documents, f.vocab_size);
    let counts = CoOccurrence::from_documents(&rows, &words);
    assert_agrees("u_mass", &u_mass(&f.topics, &counts), &f.reference);
}

#[test]
fn window_constants_match_gensim_defaults() {
    let f = load_fixture();
    assert_eq!(
        window(&f.reference, "c_npmi"),
        ntm_eval::coherence::C_NPMI_WINDOW
    );
    assert_eq!(window(&f.reference, "c_v"), ntm_eval::coherence::C_V_WINDOW);
}

#[test]
fn report_uses_gensim_windows() {
    let f = load_fixture();
    let metrics = ntm_eval::evaluate_topics(
        &f.topics,
        ntm_eval::Reference::Tokens {
            documents: &f.documents,
            vocab_size: f.vocab_size,
        },
        None,
        &ntm_eval::MetricOptions::default(),
    );
    assert_agrees(
        "c_npmi",
        metrics.c_npmi.as_ref().expect("c_npmi"),
        &f.reference,
    );
    assert_agrees("c_v", metrics.c_v.as_ref().expect("c_v"), &f.reference);
    assert_agrees("u_mass", &metrics.u_mass, &f.reference);
    assert_eq!(metrics.reference_documents, f.documents.len());
}
