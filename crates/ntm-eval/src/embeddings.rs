//! Word-embedding topic coherence (WETC) from GloVe-format vectors.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use tracing::warn;

use crate::error::EvalError;
use crate::text_input::for_each_line;

/// Unit-length embedding vectors of a model's vocabulary, by word id.
#[derive(Debug, Clone)]
pub struct VocabularyEmbeddings {
    /// Vector of each word id, scaled to unit length; `None` when the file has no usable
    /// vector for the word.
    vectors: Vec<Option<Vec<f32>>>,
    /// Dimension of the vectors.
    dimension: usize,
}

impl VocabularyEmbeddings {
    /// Reads the vectors of `vocabulary`'s words from a GloVe-format text file, plain or
    /// gzip-compressed: one `word v1 v2 ... vd` line per word, separated by whitespace. A first
    /// line of two integers (the word2vec text header) is skipped. Lines of words outside
    /// the vocabulary are not parsed. The first vector of a word counts, and a zero vector
    /// counts as missing because it has no direction.
    ///
    /// Logs a warning with the number of vocabulary words that have no vector.
    ///
    /// # Errors
    /// [`EvalError::Io`] when the file cannot be read, and [`EvalError::Embedding`] for a
    /// vocabulary word's line whose values are not numbers, not finite, or of another
    /// dimension than the first vector read.
    pub fn load(path: &Path, vocabulary: &[String]) -> Result<Self, EvalError> {
        let ids: HashMap<&str, usize> = vocabulary
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i))
            .collect();
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; vocabulary.len()];
        let mut dimension: Option<usize> = None;
        let invalid = |line: usize, message: String| EvalError::Embedding {
            path: path.to_path_buf(),
            line,
            message,
        };
        for_each_line(path, |line, text| {
            let mut fields = text.split_whitespace();
            let word = fields.next().unwrap_or("");
            if line == 1 && is_word2vec_header(text) {
                return Ok(());
            }
            let Some(&id) = ids.get(word) else {
                return Ok(());
            };
            if vectors[id].is_some() {
                return Ok(());
            }
            let mut vector = Vec::new();
            for (k, field) in fields.enumerate() {
                let value: f32 = field.parse().map_err(|_| {
                    invalid(
                        line,
                        format!(
                            "value {} of word {word:?} is {field:?}, not a number",
                            k + 1
                        ),
                    )
                })?;
                if !value.is_finite() {
                    return Err(invalid(
                        line,
                        format!(
                            "value {} of word {word:?} is {field}, not a finite number",
                            k + 1
                        ),
                    ));
                }
                vector.push(value);
            }
            match dimension {
                None if vector.is_empty() => {
                    return Err(invalid(line, format!("word {word:?} has no vector values")));
                }
                None => dimension = Some(vector.len()),
                Some(d) if d != vector.len() => {
                    return Err(invalid(
                        line,
                        format!(
                            "word {word:?} has {} values, but the first vector read has {d}",
                            vector.len()
                        ),
                    ));
                }
                Some(_) => {}
            }
            let norm = vector
                .iter()
                .map(|v| (*v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            if norm > 0.0 {
                vector
                    .iter_mut()
                    .for_each(|v| *v = (*v as f64 / norm) as f32);
                vectors[id] = Some(vector);
            }
            Ok(())
        })?;
        let embeddings = VocabularyEmbeddings {
            vectors,
            dimension: dimension.unwrap_or(0),
        };
        let missing = embeddings.missing_words();
        if missing > 0 {
            warn!(
                "{missing} out of {} in vocabulary do not have embeddings! WETC skips these words",
                vocabulary.len()
            );
        }
        Ok(embeddings)
    }

    /// Builds embeddings from vectors by word id, `None` for a word without a vector. Each
    /// vector is scaled to unit length, and a zero vector counts as missing.
    ///
    /// # Panics
    /// When the vectors differ in dimension.
    pub fn from_vectors(vectors: Vec<Option<Vec<f32>>>) -> Self {
        let dimension = vectors.iter().flatten().map(Vec::len).next().unwrap_or(0);
        let vectors = vectors
            .into_iter()
            .map(|v| {
                let v = v?;
                assert_eq!(v.len(), dimension, "embedding vectors differ in dimension");
                let norm = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
                (norm > 0.0).then(|| v.iter().map(|x| (*x as f64 / norm) as f32).collect())
            })
            .collect();
        VocabularyEmbeddings { vectors, dimension }
    }

    /// Returns the number of vocabulary words without a vector.
    pub fn missing_words(&self) -> usize {
        self.vectors.iter().filter(|v| v.is_none()).count()
    }

    /// Returns the number of vocabulary words.
    pub fn vocabulary_size(&self) -> usize {
        self.vectors.len()
    }

    /// Returns the dimension of the vectors (0 when no word has one).
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Returns the unit vector of word `id`, when it has one.
    pub fn vector(&self, id: u32) -> Option<&[f32]> {
        self.vectors.get(id as usize)?.as_deref()
    }
}

/// True for a word2vec text header: two non-negative integers.
fn is_word2vec_header(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields.len() == 2 && fields.iter().all(|f| f.parse::<u64>().is_ok())
}

/// WETC per topic and overall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wetc {
    /// Mean pairwise cosine of each topic's top words that have a vector; `None` for a
    /// topic with fewer than two such words.
    pub per_topic: Vec<Option<f64>>,
    /// Mean over the topics that have a score; `None` when none has.
    pub overall: Option<f64>,
    /// Top words, counted over all topics, that have no vector and were skipped.
    pub missing_top_words: usize,
    /// Vocabulary words without a vector.
    pub missing_vocabulary_words: usize,
}

/// Computes word-embedding topic coherence as SageMaker NTM reports it, in the pairwise form
/// of Ding, Nallapati and Xiang (2018). A topic scores the mean cosine similarity over the
/// unordered pairs of its top words, and the overall WETC is the mean over topics. Words
/// without a vector are skipped and counted in [`Wetc::missing_top_words`].
pub fn wetc(top_ids: &[Vec<u32>], embeddings: &VocabularyEmbeddings) -> Wetc {
    let mut missing_top_words = 0;
    let per_topic: Vec<Option<f64>> = top_ids
        .iter()
        .map(|ids| {
            let vectors: Vec<&[f32]> = ids.iter().filter_map(|&id| embeddings.vector(id)).collect();
            missing_top_words += ids.len() - vectors.len();
            if vectors.len() < 2 {
                return None;
            }
            let mut sum = 0.0f64;
            let mut pairs = 0usize;
            for i in 0..vectors.len() {
                for j in i + 1..vectors.len() {
                    sum += vectors[i]
                        .iter()
                        .zip(vectors[j])
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum::<f64>();
                    pairs += 1;
                }
            }
            Some(sum / pairs as f64)
        })
        .collect();
    let scored: Vec<f64> = per_topic.iter().flatten().copied().collect();
    let overall = (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64);
    Wetc {
        per_topic,
        overall,
        missing_top_words,
        missing_vocabulary_words: embeddings.missing_words(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wetc_by_hand() {
        // Words 0 and 1 are orthogonal, 2 is at 45 degrees to both; word 3 has no vector.
        let embeddings = VocabularyEmbeddings::from_vectors(vec![
            Some(vec![1.0, 0.0]),
            Some(vec![0.0, 3.0]),
            Some(vec![2.0, 2.0]),
            None,
        ]);
        let half_root = std::f64::consts::FRAC_1_SQRT_2;
        let scores = wetc(&[vec![0, 1, 2], vec![0, 3], vec![0, 2, 3]], &embeddings);
        let first = (0.0 + half_root + half_root) / 3.0;
        assert!((scores.per_topic[0].unwrap() - first).abs() < 1e-6);
        assert_eq!(scores.per_topic[1], None);
        assert!((scores.per_topic[2].unwrap() - half_root).abs() < 1e-6);
        assert!((scores.overall.unwrap() - (first + half_root) / 2.0).abs() < 1e-6);
        assert_eq!(scores.missing_top_words, 2);
        assert_eq!(scores.missing_vocabulary_words, 1);
    }

    #[test]
    fn zero_vector_counts_as_missing() {
        let embeddings =
            VocabularyEmbeddings::from_vectors(vec![Some(vec![0.0, 0.0]), Some(vec![1.0, 1.0])]);
        assert_eq!(embeddings.missing_words(), 1);
        assert!(embeddings.vector(0).is_none());
        assert_eq!(wetc(&[vec![0, 1]], &embeddings).overall, None);
    }
}
