//! NPMI coherence by binary document co-occurrence on a reference corpus.

use ntm_formats::SparseRows;

use crate::coherence::TopicScores;
use crate::diversity::mean;

/// NPMI per topic (mean pairwise NPMI of its top words) and overall (mean over topics).
pub type NpmiScores = TopicScores;

/// Computes NPMI coherence of each topic's top words on `reference` documents.
///
/// Probabilities come from binary document occurrence: `p(w)` is the share of
/// reference documents containing `w` and `p(w_i, w_j)` the share containing both.
/// For each pair of a topic's words, `NPMI = log(p_ij / (p_i p_j)) / -log(p_ij)`,
/// with -1 for a pair that never co-occurs and 1 for a pair present in every
/// document; a topic scores the mean over its pairs. This is the measure that the
/// published baseline comparisons of 20 Newsgroups use, so the numbers are
/// comparable with theirs. A topic with fewer than two words, or an empty reference,
/// scores 0.
pub fn npmi_coherence(top_ids: &[Vec<u32>], reference: &SparseRows) -> NpmiScores {
    let n_docs = reference.n_rows();
    let vocab_size = reference.n_cols();

    // Document lists per word, only for the words that some topic needs.
    let mut needed = vec![false; vocab_size];
    for &w in top_ids.iter().flatten() {
        if (w as usize) < vocab_size {
            needed[w as usize] = true;
        }
    }
    let mut postings: Vec<Vec<u32>> = vec![Vec::new(); vocab_size];
    for d in 0..n_docs {
        let (indices, values) = reference.row(d);
        for (&w, &v) in indices.iter().zip(values) {
            if v > 0.0 && needed[w as usize] {
                postings[w as usize].push(d as u32);
            }
        }
    }

    let per_topic: Vec<f64> = top_ids
        .iter()
        .map(|ids| topic_npmi(ids, &postings, n_docs))
        .collect();
    let overall = mean(&per_topic);
    NpmiScores { per_topic, overall }
}

fn topic_npmi(ids: &[u32], postings: &[Vec<u32>], n_docs: usize) -> f64 {
    if ids.len() < 2 || n_docs == 0 {
        return 0.0;
    }
    let n = n_docs as f64;
    let empty = Vec::new();
    let docs_of = |w: u32| postings.get(w as usize).unwrap_or(&empty);
    let mut values = Vec::with_capacity(ids.len() * (ids.len() - 1) / 2);
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let (a, b) = (docs_of(ids[i]), docs_of(ids[j]));
            let joint = intersection_len(a, b) as f64 / n;
            let value = if joint == 0.0 {
                -1.0
            } else if joint == 1.0 {
                1.0
            } else {
                let (pi, pj) = (a.len() as f64 / n, b.len() as f64 / n);
                (joint / (pi * pj)).ln() / -joint.ln()
            };
            values.push(value);
        }
    }
    mean(&values)
}

/// Counts the common elements of two sorted lists.
pub(crate) fn intersection_len(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut count) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                count += 1;
                i += 1;
                j += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(rows: &[&[u32]], vocab: usize) -> SparseRows {
        let mut m = SparseRows::new(vocab);
        for r in rows {
            m.push_row(r, &vec![1.0; r.len()]);
        }
        m
    }

    #[test]
    fn npmi_matches_hand_computation() {
        // 4 documents: words 0 and 1 co-occur in 1 of them, word 0 in 2, word 1 in 2.
        let reference = corpus(&[&[0, 1], &[0], &[1], &[2]], 3);
        let scores = npmi_coherence(&[vec![0, 1]], &reference);
        let (pij, pi, pj) = (0.25f64, 0.5f64, 0.5f64);
        let expected = (pij / (pi * pj)).ln() / -pij.ln();
        assert!((scores.overall - expected).abs() < 1e-12);
    }

    #[test]
    fn never_and_always_co_occurring_pairs() {
        let reference = corpus(&[&[0, 1], &[0, 1]], 3);
        assert_eq!(npmi_coherence(&[vec![0, 1]], &reference).overall, 1.0);
        assert_eq!(npmi_coherence(&[vec![0, 2]], &reference).overall, -1.0);
    }

    #[test]
    fn empty_reference_is_zero_not_nan() {
        let reference = SparseRows::new(3);
        let scores = npmi_coherence(&[vec![0, 1]], &reference);
        assert_eq!(scores.overall, 0.0);
    }
}
