//! gensim-compatible topic coherence: `c_npmi`, `c_v` and `u_mass`.
//!
//! Each measure follows the four steps of gensim 4's `CoherenceModel` (Röder et al. 2015):
//! segment a topic's top words into pairs, estimate probabilities from a
//! [`CoOccurrence`], score each pair with a confirmation measure, and average. A topic
//! scores the mean over its pairs and the model scores the mean over topics.
//!
//! Zero counts never give NaN or infinity. gensim returns infinite or NaN values in these
//! cases; ntm uses these rules instead:
//! - an empty reference (no documents or windows) scores 0 for every topic and measure;
//! - a topic with fewer than two words scores 0;
//! - `c_npmi` and the NPMI entries of `c_v`: a pair with a word that never occurs scores -1,
//!   the lowest NPMI;
//! - `c_v`: the cosine of a context vector whose entries are all 0 is 0;
//! - `u_mass`: a pair whose conditioning word never occurs scores 0, as in gensim.

use serde::Serialize;

use crate::cooccurrence::CoOccurrence;
use crate::diversity::mean;

/// Smoothing added to joint probabilities, as gensim's confirmation measures add it.
pub const EPSILON: f64 = 1e-12;

/// Sliding-window size that gensim uses for `c_npmi`.
pub const C_NPMI_WINDOW: usize = 10;

/// Sliding-window size that gensim uses for `c_v`.
pub const C_V_WINDOW: usize = 110;

/// A score per topic and their mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicScores {
    /// Score of each topic, in topic order.
    pub per_topic: Vec<f64>,
    /// Mean of `per_topic`; 0 without topics.
    pub overall: f64,
}

impl TopicScores {
    /// Wraps per-topic scores with their mean.
    pub fn from_per_topic(per_topic: Vec<f64>) -> Self {
        let overall = mean(&per_topic);
        TopicScores { per_topic, overall }
    }
}

/// Returns the distinct word ids of all topics, in first-seen order.
pub fn topic_words(top_ids: &[Vec<u32>]) -> Vec<u32> {
    let mut seen = std::collections::HashSet::new();
    top_ids
        .iter()
        .flatten()
        .copied()
        .filter(|w| seen.insert(*w))
        .collect()
}

/// Computes NPMI of a word pair as gensim's `log_ratio_measure(normalize=True)` does:
/// `log((p_ij + ε) / (p_i p_j)) / -log(p_ij + ε)`, with probabilities over the units of
/// `counts`. A pair with a word that never occurs scores -1.
pub fn pair_npmi(counts: &CoOccurrence, a: u32, b: u32) -> f64 {
    let n = counts.units() as f64;
    let (ca, cb) = (counts.count(a), counts.count(b));
    if ca == 0 || cb == 0 {
        return -1.0;
    }
    let joint = counts.joint(a, b) as f64 / n;
    let pmi = ((joint + EPSILON) / ((ca as f64 / n) * (cb as f64 / n))).ln();
    pmi / -(joint + EPSILON).ln()
}

/// Computes `c_npmi`: the mean NPMI over the ordered pairs of each topic's words
/// (gensim's `s_one_one` segmentation), with probabilities from `counts`.
///
/// gensim estimates them from boolean sliding windows of [`C_NPMI_WINDOW`] tokens; build
/// `counts` with [`CoOccurrence::from_sliding_windows`] for the same numbers. NPMI is
/// symmetric, so the mean equals the mean over unordered pairs.
pub fn c_npmi(top_ids: &[Vec<u32>], counts: &CoOccurrence) -> TopicScores {
    let per_topic = top_ids
        .iter()
        .map(|ids| {
            if ids.len() < 2 || counts.units() == 0 {
                return 0.0;
            }
            let mut values = Vec::with_capacity(ids.len() * (ids.len() - 1));
            for (i, &a) in ids.iter().enumerate() {
                for (j, &b) in ids.iter().enumerate() {
                    if i != j {
                        values.push(pair_npmi(counts, a, b));
                    }
                }
            }
            mean(&values)
        })
        .collect();
    TopicScores::from_per_topic(per_topic)
}

/// Computes `c_v` as gensim does: each top word `w` of a topic gets the context vector
/// `v(w) = (NPMI(w, w_j))_j` over the topic's words `w_j`, the topic gets
/// `v(W) = Σ_i v(w_i)`, and the topic scores the mean over its words of
/// `cos(v(w), v(W))` (segmentation `s_one_set`, indirect cosine confirmation, γ = 1).
///
/// gensim estimates the probabilities from boolean sliding windows of [`C_V_WINDOW`]
/// tokens; build `counts` with [`CoOccurrence::from_sliding_windows`] for the same numbers.
pub fn c_v(top_ids: &[Vec<u32>], counts: &CoOccurrence) -> TopicScores {
    let per_topic = top_ids
        .iter()
        .map(|ids| {
            if ids.len() < 2 || counts.units() == 0 {
                return 0.0;
            }
            let n = ids.len();
            // Row i is the context vector of word i.
            let mut matrix = vec![0.0f64; n * n];
            for i in 0..n {
                for j in 0..n {
                    matrix[i * n + j] = pair_npmi(counts, ids[i], ids[j]);
                }
            }
            let mut set_vector = vec![0.0f64; n];
            for row in matrix.chunks(n) {
                for (s, v) in set_vector.iter_mut().zip(row) {
                    *s += v;
                }
            }
            let sims: Vec<f64> = matrix
                .chunks(n)
                .map(|row| cosine(row, &set_vector))
                .collect();
            mean(&sims)
        })
        .collect();
    TopicScores::from_per_topic(per_topic)
}

/// Computes `u_mass` as gensim does: for each topic, the mean over the pairs of a later
/// word `w_i` and an earlier word `w_j` (`i > j`, segmentation `s_one_pre`) of
/// `log((p(w_i, w_j) + ε) / p(w_j))`.
///
/// gensim and Mimno et al. (2011) estimate the probabilities from binary document
/// co-occurrence; build `counts` with [`CoOccurrence::from_documents`]. Values are at most
/// about 0, and closer to 0 is more coherent.
pub fn u_mass(top_ids: &[Vec<u32>], counts: &CoOccurrence) -> TopicScores {
    let n = counts.units() as f64;
    let per_topic = top_ids
        .iter()
        .map(|ids| {
            if ids.len() < 2 || counts.units() == 0 {
                return 0.0;
            }
            let mut values = Vec::with_capacity(ids.len() * (ids.len() - 1) / 2);
            for i in 1..ids.len() {
                for j in 0..i {
                    let conditioning = counts.count(ids[j]);
                    let value = if conditioning == 0 {
                        0.0
                    } else {
                        let joint = counts.joint(ids[i], ids[j]) as f64 / n;
                        ((joint + EPSILON) / (conditioning as f64 / n)).ln()
                    };
                    values.push(value);
                }
            }
            mean(&values)
        })
        .collect();
    TopicScores::from_per_topic(per_topic)
}

/// Returns the cosine of two vectors, or 0 when either has zero length.
pub(crate) fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ntm_formats::SparseRows;

    fn documents(rows: &[&[u32]], vocab: usize) -> SparseRows {
        let mut m = SparseRows::new(vocab);
        for r in rows {
            m.push_row(r, &vec![1.0; r.len()]);
        }
        m
    }

    #[test]
    fn c_npmi_by_hand() {
        // 4 documents as units: p0 = 1/2, p1 = 1/2, p01 = 1/4.
        let reference = documents(&[&[0, 1], &[0], &[1], &[2]], 3);
        let counts = CoOccurrence::from_documents(&reference, &[0, 1]);
        let scores = c_npmi(&[vec![0, 1]], &counts);
        let expected = ((0.25f64 + EPSILON) / 0.25).ln() / -(0.25f64 + EPSILON).ln();
        assert!((scores.overall - expected).abs() < 1e-15);
        assert!(
            scores.overall.abs() < 1e-9,
            "independent words score about 0"
        );
    }

    #[test]
    fn c_npmi_never_co_occurring() {
        // p0 = p1 = 1/2 and never together: log(ε / 0.25) / -log(ε).
        let reference = documents(&[&[0], &[1]], 2);
        let counts = CoOccurrence::from_documents(&reference, &[0, 1]);
        let expected = (EPSILON / 0.25).ln() / -EPSILON.ln();
        assert!((c_npmi(&[vec![0, 1]], &counts).overall - expected).abs() < 1e-15);
    }

    #[test]
    fn absent_word_scores_minus_one() {
        let reference = documents(&[&[0], &[1]], 3);
        let counts = CoOccurrence::from_documents(&reference, &[0, 2]);
        let scores = c_npmi(&[vec![0, 2]], &counts);
        assert_eq!(scores.overall, -1.0);
        let cv = c_v(&[vec![0, 2]], &counts);
        assert!(cv.overall.is_finite());
        // The earlier word conditions: word 2 never occurs, so (0 | 2) scores 0.
        assert_eq!(u_mass(&[vec![2, 0]], &counts).overall, 0.0);
        assert_eq!(u_mass(&[vec![0, 2]], &counts).overall, (EPSILON / 0.5).ln());
    }

    #[test]
    fn u_mass_by_hand() {
        // Topic [0, 1, 2] over 4 documents; pairs (1|0), (2|0), (2|1).
        let reference = documents(&[&[0, 1], &[0, 1, 2], &[0], &[2]], 3);
        let counts = CoOccurrence::from_documents(&reference, &[0, 1, 2]);
        let n = 4.0f64;
        let term =
            |joint: f64, conditioning: f64| ((joint / n + EPSILON) / (conditioning / n)).ln();
        let expected = (term(2.0, 3.0) + term(1.0, 3.0) + term(1.0, 2.0)) / 3.0;
        let scores = u_mass(&[vec![0, 1, 2]], &counts);
        assert!((scores.overall - expected).abs() < 1e-15);
    }

    #[test]
    fn c_v_by_hand() {
        // Two words: context vectors (n00, n01) and (n10, n11), set vector their sum.
        let reference = documents(&[&[0, 1], &[0], &[1, 2], &[2]], 3);
        let counts = CoOccurrence::from_documents(&reference, &[0, 1]);
        let n = |a, b| pair_npmi(&counts, a, b);
        let v0 = [n(0, 0), n(0, 1)];
        let v1 = [n(1, 0), n(1, 1)];
        let set = [v0[0] + v1[0], v0[1] + v1[1]];
        let expected = (cosine(&v0, &set) + cosine(&v1, &set)) / 2.0;
        let scores = c_v(&[vec![0, 1]], &counts);
        assert!((scores.overall - expected).abs() < 1e-15);
        // Self-NPMI of a word present in half of the units is about 1.
        assert!((n(0, 0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn empty_reference_and_short_topics_score_zero() {
        let reference = SparseRows::new(3);
        let counts = CoOccurrence::from_documents(&reference, &[0, 1]);
        for scores in [
            c_npmi(&[vec![0, 1]], &counts),
            c_v(&[vec![0, 1]], &counts),
            u_mass(&[vec![0, 1]], &counts),
        ] {
            assert_eq!(scores.per_topic, vec![0.0]);
        }
        let reference = documents(&[&[0, 1]], 2);
        let counts = CoOccurrence::from_documents(&reference, &[0]);
        assert_eq!(c_npmi(&[vec![0]], &counts).overall, 0.0);
        assert_eq!(c_npmi(&[], &counts).overall, 0.0);
    }
}
