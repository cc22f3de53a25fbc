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

/// Chooses `k` distinct topics from scored candidates: greedily, best score first (the lower
/// index first on a tie), a candidate joins when its top-word list shares at most `max_shared`
/// words with the list of every topic already chosen. When a pass over the candidates leaves
/// fewer than `k`, the bound rises by one word and the pass repeats over those not chosen yet.
/// Returns the indices of the chosen candidates in the order they joined; fewer than `k` only
/// when there are fewer candidates.
pub fn select_distinct_topics(
    scores: &[f64],
    top_ids: &[Vec<u32>],
    k: usize,
    max_shared: usize,
) -> Vec<usize> {
    let n = scores.len().min(top_ids.len());
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let sets: Vec<Vec<u32>> = top_ids
        .iter()
        .take(n)
        .map(|list| {
            let mut set = list.clone();
            set.sort_unstable();
            set.dedup();
            set
        })
        .collect();
    let shared = |a: &[u32], b: &[u32]| a.iter().filter(|w| b.binary_search(w).is_ok()).count();
    let mut chosen: Vec<usize> = Vec::with_capacity(k.min(n));
    let mut is_chosen = vec![false; n];
    let mut bound = max_shared;
    while chosen.len() < k.min(n) {
        for &i in &order {
            if chosen.len() == k {
                break;
            }
            if !is_chosen[i] && chosen.iter().all(|&j| shared(&sets[i], &sets[j]) <= bound) {
                is_chosen[i] = true;
                chosen.push(i);
            }
        }
        bound += 1;
    }
    chosen
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
    fn selection_skips_near_duplicates_of_better_topics() {
        let top = vec![
            vec![1, 2, 3, 4],
            vec![1, 2, 3, 5],
            vec![6, 7, 8, 9],
            vec![10, 11, 12, 1],
        ];
        let scores = [0.9, 0.8, 0.5, 0.4];
        // Topic 1 shares three words with topic 0, so topics 2 and 3 join instead.
        assert_eq!(select_distinct_topics(&scores, &top, 3, 1), vec![0, 2, 3]);
        // With room for three shared words, the second-best topic joins second.
        assert_eq!(select_distinct_topics(&scores, &top, 3, 3), vec![0, 1, 2]);
    }

    #[test]
    fn selection_relaxes_the_bound_when_candidates_run_out() {
        let top = vec![vec![1, 2, 3], vec![1, 2, 4], vec![1, 2, 5]];
        let scores = [0.1, 0.3, 0.2];
        // No two lists share fewer than two words: the bound rises from 0 to 2.
        assert_eq!(select_distinct_topics(&scores, &top, 3, 0), vec![1, 2, 0]);
        assert_eq!(select_distinct_topics(&scores, &top, 5, 0).len(), 3);
    }

    #[test]
    fn selection_breaks_ties_by_index() {
        let top = vec![vec![1], vec![2], vec![3]];
        assert_eq!(
            select_distinct_topics(&[0.5, 0.5, 0.5], &top, 2, 0),
            vec![0, 1]
        );
    }

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
