//! Topic-quality measures of a trained model.
//!
//! 1. [`topics`]: the top words of each topic, ranked by decoder weight.
//! 2. [`diversity`]: topic uniqueness (TU) as SageMaker NTM reports it, and topic diversity.
//! 3. [`rbo`]: inverted rank-biased overlap of the topics' ranked word lists.
//! 4. [`npmi`]: normalised pointwise mutual information by document co-occurrence.
//! 5. [`coherence`]: gensim-compatible `c_npmi`, `c_v` and `u_mass`, counted by
//!    [`cooccurrence`] over documents or sliding windows.
//! 6. [`embeddings`]: word-embedding topic coherence (WETC) from GloVe-format vectors.
//! 7. [`report`]: all of them at once for one reference corpus.
//! 8. [`selection`]: a coherent, diverse subset of a pool of candidate topics.
//!
//! `docs/metrics.md` gives every formula, default and zero-count rule.

pub mod coherence;
pub mod cooccurrence;
pub mod diversity;
pub mod embeddings;
pub mod error;
pub mod npmi;
pub mod rbo;
pub mod report;
pub mod selection;
mod text_input;
pub mod tokens;
pub mod topics;

pub use coherence::{c_npmi, c_v, u_mass, TopicScores};
pub use cooccurrence::CoOccurrence;
pub use diversity::{topic_diversity, topic_uniqueness, TopicUniqueness};
pub use embeddings::{wetc, VocabularyEmbeddings, Wetc};
pub use error::EvalError;
pub use npmi::{npmi_coherence, NpmiScores};
pub use rbo::{inverted_rbo, rank_biased_overlap, InvertedRbo};
pub use report::{evaluate_topics, MetricOptions, Reference, TopicMetrics};
pub use selection::{select_diverse_topics, SelectionRule};
pub use tokens::{read_token_documents, token_counts};
pub use topics::top_word_ids;
