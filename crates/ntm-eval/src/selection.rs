//! Choosing a set of coherent, distinct topics from a pool of candidates.

/// Most passes of the exchange search after the greedy start. Each accepted exchange raises
/// the objective, so the search ends on its own; the cap only bounds its time.
const MAX_EXCHANGE_PASSES: usize = 100;

/// Smallest rise of the objective that counts as an improvement, so that rounding cannot make
/// the exchange search cycle.
const MIN_GAIN: f64 = 1e-12;

/// Chooses `k` of the scored candidate topics, trading their scores against the diversity of
/// their top-word lists.
///
/// The chosen set `S` maximises, as far as the search reaches, the objective
/// `Σ_{i ∈ S} scores[i] + word_value · |∪_{i ∈ S} top_ids[i]|`: each distinct word across the
/// chosen lists is worth `word_value` in score units. A candidate that repeats the words of
/// topics already chosen adds little beyond its own score, so near-duplicates rarely join
/// together. With `word_value` 0 the best `k` scores are chosen.
///
/// The search starts greedily (each step adds the candidate that raises the objective most)
/// and then exchanges: for each chosen topic in turn, the candidate outside the set that would
/// raise the objective most in its place replaces it, and the passes repeat until none does.
/// Ties go to the lower index, so the result depends on the inputs alone. Returns the indices
/// of the chosen candidates; fewer than `k` only when there are fewer candidates.
pub fn select_diverse_topics(
    scores: &[f64],
    top_ids: &[Vec<u32>],
    k: usize,
    word_value: f64,
) -> Vec<usize> {
    let n = scores.len().min(top_ids.len());
    let k = k.min(n);
    let lists: Vec<Vec<u32>> = top_ids
        .iter()
        .take(n)
        .map(|list| {
            let mut set = list.clone();
            set.sort_unstable();
            set.dedup();
            set
        })
        .collect();
    let words = lists.iter().flatten().max().map_or(0, |&w| w as usize + 1);
    let mut pool = WordCounts {
        counts: vec![0; words],
    };
    let gain =
        |pool: &WordCounts, i: usize| scores[i] + word_value * pool.new_words(&lists[i]) as f64;

    let mut chosen: Vec<usize> = Vec::with_capacity(k);
    let mut in_set = vec![false; n];
    for _ in 0..k {
        let best = best_outside(n, &in_set, |i| gain(&pool, i));
        if let Some((i, _)) = best {
            in_set[i] = true;
            chosen.push(i);
            pool.add(&lists[i]);
        }
    }

    for _ in 0..MAX_EXCHANGE_PASSES {
        let mut improved = false;
        for slot in chosen.iter_mut() {
            let current = *slot;
            pool.remove(&lists[current]);
            let kept = gain(&pool, current);
            in_set[current] = false;
            let replacement = best_outside(n, &in_set, |i| gain(&pool, i))
                .filter(|&(i, g)| i != current && g > kept + MIN_GAIN)
                .map(|(i, _)| i);
            let next = replacement.unwrap_or(current);
            improved |= next != current;
            in_set[next] = true;
            *slot = next;
            pool.add(&lists[next]);
        }
        if !improved {
            break;
        }
    }
    chosen
}

/// The candidate outside the set with the highest gain, the lower index on a tie.
fn best_outside(n: usize, in_set: &[bool], gain: impl Fn(usize) -> f64) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for i in (0..n).filter(|&i| !in_set[i]) {
        let g = gain(i);
        if best.is_none_or(|(_, b)| g > b) {
            best = Some((i, g));
        }
    }
    best
}

/// How many chosen lists hold each word.
struct WordCounts {
    counts: Vec<u32>,
}

impl WordCounts {
    fn new_words(&self, list: &[u32]) -> usize {
        list.iter()
            .filter(|&&w| self.counts[w as usize] == 0)
            .count()
    }

    fn add(&mut self, list: &[u32]) {
        for &w in list {
            self.counts[w as usize] += 1;
        }
    }

    fn remove(&mut self, list: &[u32]) {
        for &w in list {
            self.counts[w as usize] -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn objective(scores: &[f64], top: &[Vec<u32>], chosen: &[usize], word_value: f64) -> f64 {
        let mut words: Vec<u32> = chosen.iter().flat_map(|&i| top[i].clone()).collect();
        words.sort_unstable();
        words.dedup();
        chosen.iter().map(|&i| scores[i]).sum::<f64>() + word_value * words.len() as f64
    }

    #[test]
    fn without_word_value_the_best_scores_are_chosen() {
        let top = vec![vec![1, 2], vec![1, 2], vec![3, 4], vec![1, 3]];
        let mut chosen = select_diverse_topics(&[0.9, 0.8, 0.1, 0.5], &top, 2, 0.0);
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 1]);
    }

    #[test]
    fn a_near_duplicate_gives_way_to_a_distinct_topic() {
        // Topic 1 repeats topic 0's words; topic 2 is weaker but brings two new words.
        let top = vec![vec![1, 2, 3], vec![1, 2, 3], vec![4, 5, 6]];
        let scores = [0.9, 0.85, 0.7];
        let mut chosen = select_diverse_topics(&scores, &top, 2, 0.1);
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 2]);
    }

    #[test]
    fn exchanges_improve_on_the_greedy_start() {
        // Greedy takes topic 0 first (0.5 + 4 words), then one of the others adds 2 words at
        // most. Topics 1 and 2 together cover all 8 words, worth more than any pair with 0.
        let top = vec![vec![1, 2, 5, 6], vec![1, 2, 3, 4], vec![5, 6, 7, 8]];
        let scores = [0.5, 0.35, 0.35];
        let value = 0.1;
        let chosen = select_diverse_topics(&scores, &top, 2, value);
        let mut sorted = chosen.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![1, 2]);
        assert!(
            objective(&scores, &top, &chosen, value) > objective(&scores, &top, &[0, 1], value)
        );
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        let top = vec![vec![1], vec![2], vec![3]];
        assert_eq!(
            select_diverse_topics(&[0.5, 0.5, 0.5], &top, 2, 0.1),
            vec![0, 1]
        );
    }

    #[test]
    fn fewer_candidates_than_asked_gives_them_all() {
        let top = vec![vec![1, 2], vec![2, 3]];
        let mut chosen = select_diverse_topics(&[0.1, 0.2], &top, 5, 0.1);
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 1]);
        assert!(select_diverse_topics(&[], &[], 3, 0.1).is_empty());
    }

    proptest! {
        #[test]
        fn no_single_exchange_improves_the_result(
            scores in proptest::collection::vec(-1.0f64..1.0, 1..24),
            lists in proptest::collection::vec(proptest::collection::vec(0u32..30, 1..6), 24),
            k in 1usize..8,
            value in 0.0f64..0.3,
        ) {
            let top = &lists[..scores.len()];
            let chosen = select_diverse_topics(&scores, top, k, value);
            prop_assert_eq!(chosen.len(), k.min(scores.len()));
            let mut distinct = chosen.clone();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), chosen.len());
            let best = objective(&scores, top, &chosen, value);
            for slot in 0..chosen.len() {
                for c in (0..scores.len()).filter(|c| !chosen.contains(c)) {
                    let mut other = chosen.clone();
                    other[slot] = c;
                    prop_assert!(objective(&scores, top, &other, value) <= best + 1e-9);
                }
            }
        }
    }
}
