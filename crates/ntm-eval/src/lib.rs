//! Topic-quality measures of a trained model.
//!
//! 1. [`topics`]: the top words of each topic, ranked by decoder weight.
//! 2. [`diversity`]: topic uniqueness (TU) as SageMaker NTM reports it, and topic diversity.
//! 3. [`npmi`]: normalised pointwise mutual information by document co-occurrence.

pub mod diversity;
pub mod npmi;
pub mod topics;

pub use diversity::{topic_diversity, topic_uniqueness, TopicUniqueness};
pub use npmi::{npmi_coherence, NpmiScores};
pub use topics::top_word_ids;
