//! The final topic block of a training log, in SageMaker NTM's layout.

use ntm_eval::embeddings::{wetc, VocabularyEmbeddings};
use ntm_eval::{npmi_coherence, top_word_ids, topic_diversity, topic_uniqueness};
use ntm_formats::SparseRows;
use ntm_model::network::Network;

/// Number of top words SageMaker prints per topic (fewer when the vocabulary is smaller).
pub const TOP_WORDS: usize = 20;

/// Builds the lines `Topics from epoch:final (num_topics:K) [tu T]:` and one
/// `[t_k] word ...` line per topic, with TU over the top `min(20, V)` words. With word
/// embeddings, WETC joins them as SageMaker prints it: `[wetc W, tu T]` and `[w_k, t_k]`.
/// Words come from `vocabulary` when given, word ids otherwise.
pub fn topic_block(
    network: &Network,
    vocabulary: Option<&[String]>,
    embeddings: Option<&VocabularyEmbeddings>,
) -> Vec<String> {
    let config = &network.config;
    let top = top_word_ids(
        network.decoder_weight(),
        config.feature_dim,
        config.num_topics,
        TOP_WORDS,
    );
    let tu = topic_uniqueness(&top);
    let coherence = embeddings.map(|e| wetc(&top, e));
    // A topic with fewer than two top words that have a vector scores 0, as its pairs are empty.
    let header = match &coherence {
        Some(w) => format!(
            "[wetc {:.2}, tu {:.2}]",
            w.overall.unwrap_or(0.0),
            tu.overall
        ),
        None => format!("[tu {:.2}]", tu.overall),
    };
    let mut lines = vec![format!(
        "Topics from epoch:final (num_topics:{}) {header}:",
        config.num_topics
    )];
    for (k, (ids, score)) in top.iter().zip(&tu.per_topic).enumerate() {
        let words: Vec<String> = ids
            .iter()
            .map(|&id| match vocabulary.and_then(|v| v.get(id as usize)) {
                Some(word) => word.clone(),
                None => id.to_string(),
            })
            .collect();
        let scores = match &coherence {
            Some(w) => format!("[{:.2}, {score:.2}]", w.per_topic[k].unwrap_or(0.0)),
            None => format!("[{score:.2}]"),
        };
        lines.push(format!("{scores} {}", words.join(" ")));
    }
    lines
}

/// Returns the top 10 word ids of every topic, by decoder weight.
pub fn top_10(network: &Network) -> Vec<Vec<u32>> {
    let config = &network.config;
    top_word_ids(
        network.decoder_weight(),
        config.feature_dim,
        config.num_topics,
        10,
    )
}

/// Mean NPMI of the given top words per topic by document co-occurrence in `reference`.
pub fn npmi_of(top: &[Vec<u32>], reference: &SparseRows) -> f64 {
    npmi_coherence(top, reference).overall
}

/// Summary line with TU@10 and topic diversity at 25, the figures topic-model comparisons quote.
pub fn quality_line(network: &Network) -> String {
    let config = &network.config;
    let top10 = top_word_ids(
        network.decoder_weight(),
        config.feature_dim,
        config.num_topics,
        10,
    );
    let top25 = top_word_ids(
        network.decoder_weight(),
        config.feature_dim,
        config.num_topics,
        25,
    );
    format!(
        "Topic uniqueness TU@10 {:.4}, topic diversity TD@25 {:.4}",
        topic_uniqueness(&top10).overall,
        topic_diversity(&top25)
    )
}
