//! All topic-quality metrics of one set of topics against one reference corpus.

use ntm_formats::SparseRows;
use serde::Serialize;

use crate::coherence::{c_npmi, c_v, topic_words, u_mass, TopicScores, C_NPMI_WINDOW, C_V_WINDOW};
use crate::cooccurrence::CoOccurrence;
use crate::diversity::{topic_diversity, topic_uniqueness, TopicUniqueness};
use crate::embeddings::{wetc, VocabularyEmbeddings, Wetc};
use crate::npmi::npmi_coherence;
use crate::rbo::{inverted_rbo, InvertedRbo, DEFAULT_RBO_WEIGHT};
use crate::tokens::token_counts;

/// The reference corpus that coherence is measured on.
#[derive(Debug, Clone, Copy)]
pub enum Reference<'a> {
    /// Word counts, one row per document: document co-occurrence measures only.
    Counts(&'a SparseRows),
    /// Documents as word ids in text order: document and sliding-window measures.
    Tokens {
        /// Each document's word ids in text order.
        documents: &'a [Vec<u32>],
        /// Vocabulary size, the number of count columns.
        vocab_size: usize,
    },
}

/// Settings of [`evaluate_topics`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricOptions {
    /// Persistence `p` of the rank-biased overlap behind inverted RBO.
    pub rbo_weight: f64,
}

impl Default for MetricOptions {
    fn default() -> Self {
        MetricOptions {
            rbo_weight: DEFAULT_RBO_WEIGHT,
        }
    }
}

/// Every topic-quality metric of a set of topics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicMetrics {
    /// Words per topic (the longest topic list).
    pub top_n: usize,
    /// Number of documents in the reference.
    pub reference_documents: usize,
    /// Topic uniqueness, SageMaker NTM's TU.
    pub topic_uniqueness: TopicUniqueness,
    /// Share of distinct words among all top words.
    pub topic_diversity: f64,
    /// One minus the mean rank-biased overlap of topic pairs.
    pub inverted_rbo: InvertedRbo,
    /// NPMI by binary document co-occurrence, -1 for pairs that never co-occur.
    pub npmi: TopicScores,
    /// gensim's `u_mass` by binary document co-occurrence.
    pub u_mass: TopicScores,
    /// gensim's `c_npmi` over sliding windows of 10 tokens; only with tokenised documents.
    pub c_npmi: Option<TopicScores>,
    /// gensim's `c_v` over sliding windows of 110 tokens; only with tokenised documents.
    pub c_v: Option<TopicScores>,
    /// Word-embedding topic coherence; only with embeddings.
    pub wetc: Option<Wetc>,
}

/// Computes every metric of the topics `top_ids` (word ids in rank order) on `reference`,
/// with WETC when `embeddings` are given.
pub fn evaluate_topics(
    top_ids: &[Vec<u32>],
    reference: Reference<'_>,
    embeddings: Option<&VocabularyEmbeddings>,
    options: &MetricOptions,
) -> TopicMetrics {
    let words = topic_words(top_ids);
    let counted;
    let (rows, documents) = match reference {
        Reference::Counts(rows) => (rows, None),
        Reference::Tokens {
            documents,
            vocab_size,
        } => {
            counted = token_counts(documents, vocab_size);
            (&counted, Some(documents))
        }
    };
    let by_document = CoOccurrence::from_documents(rows, &words);
    let (c_npmi, c_v) = match documents {
        Some(documents) => {
            let narrow = CoOccurrence::from_sliding_windows(documents, &words, C_NPMI_WINDOW);
            let wide = CoOccurrence::from_sliding_windows(documents, &words, C_V_WINDOW);
            (Some(c_npmi(top_ids, &narrow)), Some(c_v(top_ids, &wide)))
        }
        None => (None, None),
    };
    TopicMetrics {
        top_n: top_ids.iter().map(Vec::len).max().unwrap_or(0),
        reference_documents: rows.n_rows(),
        topic_uniqueness: topic_uniqueness(top_ids),
        topic_diversity: topic_diversity(top_ids),
        inverted_rbo: inverted_rbo(top_ids, options.rbo_weight),
        npmi: npmi_coherence(top_ids, rows),
        u_mass: u_mass(top_ids, &by_document),
        c_npmi,
        c_v,
        wetc: embeddings.map(|e| wetc(top_ids, e)),
    }
}
