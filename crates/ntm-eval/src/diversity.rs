//! Topic uniqueness and topic diversity of top-word lists.

use std::collections::HashMap;

use serde::Serialize;

/// Topic uniqueness per topic and overall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicUniqueness {
    /// TU of each topic, in topic order.
    pub per_topic: Vec<f64>,
    /// Mean of `per_topic`.
    pub overall: f64,
}

/// Computes topic uniqueness (Nan et al. 2019), the TU that SageMaker NTM prints.
///
/// For topic k with top-N list `w_1..w_N`, `TU(k) = (1/N) Σ_i 1 / cnt(w_i)`, where
/// `cnt(w)` is the number of topics whose list contains `w`. The overall TU is the
/// mean over topics and lies in `[1/K, 1]`. An empty input gives an overall TU of 0.
pub fn topic_uniqueness(top_ids: &[Vec<u32>]) -> TopicUniqueness {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for list in top_ids {
        let mut seen: Vec<u32> = list.clone();
        seen.sort_unstable();
        seen.dedup();
        for w in seen {
            *counts.entry(w).or_default() += 1;
        }
    }
    let per_topic: Vec<f64> = top_ids
        .iter()
        .map(|list| {
            if list.is_empty() {
                return 0.0;
            }
            let sum: f64 = list.iter().map(|w| 1.0 / counts[w] as f64).sum();
            sum / list.len() as f64
        })
        .collect();
    let overall = mean(&per_topic);
    TopicUniqueness { per_topic, overall }
}

/// Computes topic diversity: the share of distinct words among all top-N words.
///
/// `TD = |∪_k topN(k)| / (K · N)`. An empty input gives 0.
pub fn topic_diversity(top_ids: &[Vec<u32>]) -> f64 {
    let total: usize = top_ids.iter().map(Vec::len).sum();
    if total == 0 {
        return 0.0;
    }
    let mut all: Vec<u32> = top_ids.iter().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    all.len() as f64 / total as f64
}

pub(crate) fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_topics_give_one_over_k() {
        // Every topic lists the same 8 words: each count is 3, so TU = 1/3.
        let lists = vec![(0..8).collect::<Vec<u32>>(); 3];
        let tu = topic_uniqueness(&lists);
        assert!((tu.overall - 1.0 / 3.0).abs() < 1e-12);
        assert!((topic_diversity(&lists) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn disjoint_topics_give_one() {
        let lists = vec![vec![0, 1], vec![2, 3], vec![4, 5]];
        assert_eq!(topic_uniqueness(&lists).overall, 1.0);
        assert_eq!(topic_diversity(&lists), 1.0);
    }

    #[test]
    fn partial_overlap_by_hand() {
        // Word 1 appears in both topics: topic 0 = (1 + 1/2)/2, topic 1 = (1/2 + 1)/2.
        let tu = topic_uniqueness(&[vec![0, 1], vec![1, 2]]);
        assert_eq!(tu.per_topic, vec![0.75, 0.75]);
        assert!((topic_diversity(&[vec![0, 1], vec![1, 2]]) - 0.75).abs() < 1e-12);
    }
}
