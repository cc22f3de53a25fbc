//! Choosing a set of coherent, distinct topics from a pool of candidates.

use crate::npmi::intersection_len;

/// Maximum number of passes of the exchange search after the greedy start. Each accepted
/// exchange raises the objective, so the search ends on its own. The cap only bounds its time.
const MAX_EXCHANGE_PASSES: usize = 100;

/// Smallest rise of the objective that counts as an improvement, so that rounding cannot make
/// the exchange search cycle.
const MIN_GAIN: f64 = 1e-12;

/// Trade-off between scores and diversity that [`select_diverse_topics`] applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectionRule {
    /// Worth of each distinct word across the chosen lists, in score units.
    pub word_value: f64,
    /// Maximum number of words two chosen lists may share. When the candidates cannot fill the
    /// set under it, it rises one word at a time.
    pub max_shared: usize,
    /// Lowest score of a candidate that takes part. When fewer than `k` candidates reach it,
    /// every candidate takes part.
    pub min_score: f64,
}

/// Chooses `k` of the scored candidate topics, trading their scores against the diversity of
/// their top-word lists.
///
/// The chosen set `S` maximises, as far as the search reaches, the objective
/// `Σ_{i ∈ S} scores[i] + word_value · |∪_{i ∈ S} top_ids[i]|`, subject to no two lists of `S`
/// sharing more than `max_shared` words. A candidate that repeats words of topics already
/// chosen adds little beyond its own score. The floor `min_score` keeps out candidates that
/// would join for their unusual words alone. With `word_value` 0 and no bound on shared words
/// the best `k` scores are chosen.
///
/// The search starts greedily: each step adds the candidate that raises the objective most
/// while respecting the bound. Exchanges follow. Each chosen topic in turn is replaced by the
/// candidate outside the set that would raise the objective most in its place, and the passes
/// repeat until no exchange does. Ties go to the lower index, so the result depends on the
/// inputs alone. Returns the indices of the chosen candidates; fewer than `k` only when there are
/// fewer candidates.
pub fn select_diverse_topics(
    scores: &[f64],
    top_ids: &[Vec<u32>],
    k: usize,
    rule: &SelectionRule,
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
    let eligible = scores[..n].iter().filter(|&&s| s >= rule.min_score).count();
    // Candidates below the floor count as taken, so that no search step considers them.
    let excluded: Vec<bool> = (0..n)
        .map(|i| eligible >= k && scores[i] < rule.min_score)
        .collect();
    let words = lists.iter().flatten().max().map_or(0, |&w| w as usize + 1);
    let search = Search {
        scores: &scores[..n],
        lists: &lists,
        word_value: rule.word_value,
    };
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    let mut bound = rule.max_shared;
    loop {
        let mut state = State {
            pool: WordCounts::new(words),
            in_set: excluded.clone(),
            chosen: Vec::with_capacity(k),
        };
        search.greedy(&mut state, k, bound);
        if state.chosen.len() == k || bound >= longest {
            search.exchange(&mut state, bound);
            return state.chosen;
        }
        bound += 1;
    }
}

/// The inputs of one selection.
struct Search<'a> {
    scores: &'a [f64],
    lists: &'a [Vec<u32>],
    word_value: f64,
}

/// A set under construction.
struct State {
    pool: WordCounts,
    in_set: Vec<bool>,
    chosen: Vec<usize>,
}

impl Search<'_> {
    fn gain(&self, pool: &WordCounts, i: usize) -> f64 {
        self.scores[i] + self.word_value * pool.new_words(&self.lists[i]) as f64
    }

    /// Returns whether candidate `i` shares at most `bound` words with each of `others` except
    /// `skip`.
    fn fits(&self, i: usize, others: &[usize], skip: Option<usize>, bound: usize) -> bool {
        others
            .iter()
            .filter(|&&j| Some(j) != skip)
            .all(|&j| intersection_len(&self.lists[i], &self.lists[j]) <= bound)
    }

    /// Returns the fitting candidate outside the set with the highest gain (the lower index on
    /// a tie). Candidates are tried in order of gain, so the bound is checked for few of them.
    fn best_outside(
        &self,
        state: &State,
        skip: Option<usize>,
        bound: usize,
    ) -> Option<(usize, f64)> {
        let mut ranked: Vec<(usize, f64)> = (0..self.scores.len())
            .filter(|&i| !state.in_set[i])
            .map(|i| (i, self.gain(&state.pool, i)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .find(|&(i, _)| self.fits(i, &state.chosen, skip, bound))
    }

    fn greedy(&self, state: &mut State, k: usize, bound: usize) {
        while state.chosen.len() < k {
            let Some((i, _)) = self.best_outside(state, None, bound) else {
                return;
            };
            state.in_set[i] = true;
            state.chosen.push(i);
            state.pool.add(&self.lists[i]);
        }
    }

    fn exchange(&self, state: &mut State, bound: usize) {
        for _ in 0..MAX_EXCHANGE_PASSES {
            let mut improved = false;
            for slot in 0..state.chosen.len() {
                let current = state.chosen[slot];
                state.pool.remove(&self.lists[current]);
                let current_gain = self.gain(&state.pool, current);
                let next = self
                    .best_outside(state, Some(current), bound)
                    .filter(|&(_, g)| g > current_gain + MIN_GAIN)
                    .map_or(current, |(i, _)| i);
                if next != current {
                    improved = true;
                    state.in_set[current] = false;
                    state.in_set[next] = true;
                    state.chosen[slot] = next;
                }
                state.pool.add(&self.lists[next]);
            }
            if !improved {
                return;
            }
        }
    }
}

/// How many chosen lists hold each word.
struct WordCounts {
    counts: Vec<u32>,
}

impl WordCounts {
    fn new(words: usize) -> Self {
        Self {
            counts: vec![0; words],
        }
    }

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

    /// Builds a rule without a bound on shared words.
    fn unbounded(word_value: f64, min_score: f64) -> SelectionRule {
        SelectionRule {
            word_value,
            max_shared: usize::MAX,
            min_score,
        }
    }

    fn objective(scores: &[f64], top: &[Vec<u32>], chosen: &[usize], word_value: f64) -> f64 {
        let mut words: Vec<u32> = chosen.iter().flat_map(|&i| top[i].clone()).collect();
        words.sort_unstable();
        words.dedup();
        chosen.iter().map(|&i| scores[i]).sum::<f64>() + word_value * words.len() as f64
    }

    #[test]
    fn without_word_value_the_best_scores_are_chosen() {
        let top = vec![vec![1, 2], vec![1, 2], vec![3, 4], vec![1, 3]];
        let mut chosen = select_diverse_topics(
            &[0.9, 0.8, 0.1, 0.5],
            &top,
            2,
            &unbounded(0.0, f64::NEG_INFINITY),
        );
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 1]);
    }

    #[test]
    fn selection_prefers_distinct_over_duplicate_topic() {
        // Topic 1 repeats topic 0's words. Topic 2 is weaker but brings three new words.
        let top = vec![vec![1, 2, 3], vec![1, 2, 3], vec![4, 5, 6]];
        let scores = [0.9, 0.85, 0.7];
        let mut chosen =
            select_diverse_topics(&scores, &top, 2, &unbounded(0.1, f64::NEG_INFINITY));
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
        let chosen = select_diverse_topics(&scores, &top, 2, &unbounded(value, f64::NEG_INFINITY));
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
            select_diverse_topics(
                &[0.5, 0.5, 0.5],
                &top,
                2,
                &unbounded(0.1, f64::NEG_INFINITY)
            ),
            vec![0, 1]
        );
    }

    #[test]
    fn fewer_candidates_than_asked_gives_them_all() {
        let top = vec![vec![1, 2], vec![2, 3]];
        let mut chosen =
            select_diverse_topics(&[0.1, 0.2], &top, 5, &unbounded(0.1, f64::NEG_INFINITY));
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 1]);
        assert!(select_diverse_topics(&[], &[], 3, &unbounded(0.1, 0.0)).is_empty());
    }

    #[test]
    fn candidates_below_the_floor_stay_out() {
        // Topic 2 brings three new words but scores below the floor of 0.
        let top = vec![vec![1, 2, 3], vec![1, 2, 4], vec![5, 6, 7]];
        let scores = [0.5, 0.4, -0.1];
        let mut chosen = select_diverse_topics(&scores, &top, 2, &unbounded(0.3, 0.0));
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 1]);
        // Without the floor its words win it a place.
        let mut chosen =
            select_diverse_topics(&scores, &top, 2, &unbounded(0.3, f64::NEG_INFINITY));
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 2]);
    }

    #[test]
    fn too_few_candidates_above_the_floor_lift_it() {
        let top = vec![vec![1, 2], vec![3, 4], vec![5, 6]];
        let mut chosen = select_diverse_topics(&[0.5, -0.2, -0.3], &top, 2, &unbounded(0.1, 0.0));
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 1]);
    }

    #[test]
    fn shared_word_bound_keeps_duplicates_apart() {
        // Topic 1 shares two words with topic 0, so with at most one shared, topic 2 joins.
        let top = vec![vec![1, 2, 3], vec![1, 2, 4], vec![5, 6, 7]];
        let rule = SelectionRule {
            word_value: 0.0,
            max_shared: 1,
            min_score: f64::NEG_INFINITY,
        };
        let mut chosen = select_diverse_topics(&[0.9, 0.8, 0.1], &top, 2, &rule);
        chosen.sort_unstable();
        assert_eq!(chosen, vec![0, 2]);
        // No three lists fit under the bound, so it rises until they do.
        assert_eq!(
            select_diverse_topics(&[0.9, 0.8, 0.1], &top, 3, &rule).len(),
            3
        );
    }

    proptest! {
        #[test]
        fn no_single_exchange_improves_the_result(
            scores in proptest::collection::vec(-1.0f64..1.0, 1..24),
            lists in proptest::collection::vec(proptest::collection::vec(0u32..30, 1..6), 24),
            k in 1usize..8,
            value in 0.0f64..0.3,
            floor in -1.0f64..0.5,
            max_shared in 0usize..6,
        ) {
            let top = &lists[..scores.len()];
            let rule = SelectionRule { word_value: value, max_shared, min_score: floor };
            let chosen = select_diverse_topics(&scores, top, k, &rule);

            let eligible: Vec<usize> = if scores.iter().filter(|&&s| s >= floor).count() >= k {
                (0..scores.len()).filter(|&i| scores[i] >= floor).collect()
            } else {
                (0..scores.len()).collect()
            };
            prop_assert!(chosen.iter().all(|i| eligible.contains(i)));
            prop_assert_eq!(chosen.len(), k.min(scores.len()));

            let mut distinct = chosen.clone();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), chosen.len());

            // Where the set keeps to the bound, no exchange that also keeps to it does better.
            let fits = |set: &[usize]| {
                set.iter().enumerate().all(|(a, &i)| {
                    set[a + 1..].iter().all(|&j| {
                        let mut x = top[i].clone();
                        x.sort_unstable();
                        x.dedup();
                        x.iter().filter(|w| top[j].contains(w)).count() <= max_shared
                    })
                })
            };
            if fits(&chosen) {
                let best = objective(&scores, top, &chosen, value);
                for slot in 0..chosen.len() {
                    for &c in eligible.iter().filter(|c| !chosen.contains(c)) {
                        let mut other = chosen.clone();
                        other[slot] = c;
                        if fits(&other) {
                            prop_assert!(objective(&scores, top, &other, value) <= best + 1e-9);
                        }
                    }
                }
            }
        }
    }
}
