//! Occurrence and co-occurrence counts of topic words in a reference corpus.
//!
//! Every coherence measure of this crate reads probabilities from one [`CoOccurrence`]:
//! `p(w) = D(w) / D` and `p(w_i, w_j) = D(w_i, w_j) / D`. `D` is the number of counting
//! units, which are whole documents or sliding windows over them. `D(..)` is the number
//! of units that contain the word, or both words. Only the words that some topic lists
//! are counted, so the cost grows with the corpus and the topic words, not the vocabulary.

use std::collections::HashMap;

use ntm_formats::SparseRows;

/// Largest number of distinct topic words whose pair counts are kept in a dense triangle.
/// Above it, pairs go to a hash map, because 2,048 words already take 16 MiB of pair counts.
const DENSE_PAIR_LIMIT: usize = 2048;

/// Boolean occurrence counts of a fixed set of words over counting units.
#[derive(Debug, Clone)]
pub struct CoOccurrence {
    /// Position of each counted word id in `counts` and the pair table.
    slots: HashMap<u32, usize>,
    /// Number of counting units (documents or windows).
    units: u64,
    /// Units containing each counted word.
    counts: Vec<u64>,
    /// Units containing both words of each pair.
    pairs: PairCounts,
}

impl CoOccurrence {
    fn new(words: &[u32]) -> Self {
        let mut slots = HashMap::new();
        for &w in words {
            let next = slots.len();
            slots.entry(w).or_insert(next);
        }
        let n = slots.len();
        CoOccurrence {
            slots,
            units: 0,
            counts: vec![0; n],
            pairs: PairCounts::new(n),
        }
    }

    /// Counts binary document co-occurrence of `words` in the rows of `reference`: a word
    /// occurs in a document when its count there is above zero. Every row is one unit,
    /// empty rows included.
    pub fn from_documents(reference: &SparseRows, words: &[u32]) -> Self {
        let mut counter = CoOccurrence::new(words);
        let mut present = Vec::new();
        for d in 0..reference.n_rows() {
            let (indices, values) = reference.row(d);
            present.clear();
            for (&w, &v) in indices.iter().zip(values) {
                if v > 0.0 {
                    if let Some(&slot) = counter.slots.get(&w) {
                        present.push(slot);
                    }
                }
            }
            present.sort_unstable();
            present.dedup();
            counter.add_unit(&present, 1);
            counter.units += 1;
        }
        counter
    }

    /// Counts binary co-occurrence of `words` in boolean sliding windows of `window` tokens
    /// over each document of `documents` (word ids in text order), as gensim 4's
    /// `p_boolean_sliding_window` does.
    ///
    /// A document of `n >= window` tokens gives `n - window + 1` windows; a shorter one,
    /// empty documents included, gives one window holding the whole document.
    ///
    /// To reproduce gensim's numbers, the set of words present is updated the way gensim
    /// updates it when the window moves by one token. The token that leaves is marked absent,
    /// even when another copy of it is still inside the window, and the token that enters is
    /// marked present. A word repeated within `window` tokens can therefore be missed in
    /// some windows.
    ///
    /// # Panics
    /// When `window` is 0.
    pub fn from_sliding_windows(documents: &[Vec<u32>], words: &[u32], window: usize) -> Self {
        assert!(window > 0, "the sliding window needs at least one token");
        let mut counter = CoOccurrence::new(words);
        let mut present = PresentWords::new(counter.counts.len());
        let mut slot_of = Vec::new();
        for doc in documents {
            slot_of.clear();
            slot_of.extend(doc.iter().map(|w| counter.slots.get(w).copied()));
            let n_windows = if doc.len() >= window {
                doc.len() - window + 1
            } else {
                1
            };
            counter.units += n_windows as u64;

            // The first window of the document starts from its distinct words.
            for slot in slot_of.iter().take(window).flatten() {
                present.insert(*slot);
            }
            // Identical consecutive windows are counted in one step: the last `run`
            // windows share the current set of present words.
            let mut run = 1u64;
            for t in 1..n_windows {
                let leaving = slot_of[t - 1];
                let entering = slot_of[t + window - 1];
                let changed = match (leaving, entering) {
                    (Some(a), Some(b)) if a == b => !present.contains(a),
                    _ => {
                        leaving.is_some_and(|a| present.contains(a))
                            || entering.is_some_and(|b| !present.contains(b))
                    }
                };
                if changed {
                    counter.add_unit(present.slots(), run);
                    run = 0;
                    if let Some(a) = leaving {
                        present.remove(a);
                    }
                    if let Some(b) = entering {
                        present.insert(b);
                    }
                }
                run += 1;
            }
            counter.add_unit(present.slots(), run);
            present.clear();
        }
        counter
    }

    /// Adds `times` units that contain exactly the words at the distinct `slots`.
    fn add_unit(&mut self, slots: &[usize], times: u64) {
        for (i, &a) in slots.iter().enumerate() {
            self.counts[a] += times;
            for &b in &slots[i + 1..] {
                self.pairs.add(a.min(b), a.max(b), times);
            }
        }
    }

    /// Returns the number of counting units `D`.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Returns `D(w)`, the units containing `word`; 0 for a word that was not counted.
    pub fn count(&self, word: u32) -> u64 {
        self.slots.get(&word).map_or(0, |&s| self.counts[s])
    }

    /// Returns `D(a, b)`, the units containing both words; `D(a)` when `a == b`.
    pub fn joint(&self, a: u32, b: u32) -> u64 {
        match (self.slots.get(&a), self.slots.get(&b)) {
            (Some(&i), Some(&j)) if i == j => self.counts[i],
            (Some(&i), Some(&j)) => self.pairs.get(i.min(j), i.max(j)),
            _ => 0,
        }
    }
}

/// The set of word slots present in the current window, with constant-time updates.
#[derive(Debug)]
struct PresentWords {
    /// The present slots, in no particular order.
    slots: Vec<usize>,
    /// Index of each slot in `slots`, or `usize::MAX` when absent.
    position: Vec<usize>,
}

impl PresentWords {
    fn new(n_slots: usize) -> Self {
        PresentWords {
            slots: Vec::new(),
            position: vec![usize::MAX; n_slots],
        }
    }

    fn contains(&self, slot: usize) -> bool {
        self.position[slot] != usize::MAX
    }

    fn insert(&mut self, slot: usize) {
        if !self.contains(slot) {
            self.position[slot] = self.slots.len();
            self.slots.push(slot);
        }
    }

    fn remove(&mut self, slot: usize) {
        let index = self.position[slot];
        if index == usize::MAX {
            return;
        }
        self.slots.swap_remove(index);
        if let Some(&moved) = self.slots.get(index) {
            self.position[moved] = index;
        }
        self.position[slot] = usize::MAX;
    }

    fn slots(&self) -> &[usize] {
        &self.slots
    }

    fn clear(&mut self) {
        for &slot in &self.slots {
            self.position[slot] = usize::MAX;
        }
        self.slots.clear();
    }
}

/// Counts of unordered slot pairs `(a, b)` with `a < b`.
#[derive(Debug, Clone)]
enum PairCounts {
    /// Upper triangle, row-major, for up to [`DENSE_PAIR_LIMIT`] slots.
    Dense { n: usize, counts: Vec<u64> },
    /// Pairs keyed by `a * n + b`, for larger word sets.
    Sparse {
        n: usize,
        counts: HashMap<usize, u64>,
    },
}

impl PairCounts {
    fn new(n: usize) -> Self {
        if n <= DENSE_PAIR_LIMIT {
            PairCounts::Dense {
                n,
                counts: vec![0; n * n.saturating_sub(1) / 2],
            }
        } else {
            PairCounts::Sparse {
                n,
                counts: HashMap::new(),
            }
        }
    }

    /// Position of pair `(a, b)`, `a < b`, in the dense triangle.
    fn dense_index(n: usize, a: usize, b: usize) -> usize {
        a * n - a * (a + 1) / 2 + (b - a - 1)
    }

    fn add(&mut self, a: usize, b: usize, times: u64) {
        match self {
            PairCounts::Dense { n, counts } => counts[Self::dense_index(*n, a, b)] += times,
            PairCounts::Sparse { n, counts } => *counts.entry(a * *n + b).or_default() += times,
        }
    }

    fn get(&self, a: usize, b: usize) -> u64 {
        match self {
            PairCounts::Dense { n, counts } => counts[Self::dense_index(*n, a, b)],
            PairCounts::Sparse { n, counts } => counts.get(&(a * n + b)).copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts windows by listing them, with gensim's incremental update of the present words.
    fn windows_by_listing(
        documents: &[Vec<u32>],
        window: usize,
        a: u32,
        b: u32,
    ) -> (u64, u64, u64, u64) {
        let (mut units, mut ca, mut cb, mut cab) = (0, 0, 0, 0);
        for doc in documents {
            let n = if doc.len() >= window {
                doc.len() - window + 1
            } else {
                1
            };
            let mut present: std::collections::HashSet<u32> =
                doc.iter().take(window).copied().collect();
            for t in 0..n {
                if t > 0 {
                    present.remove(&doc[t - 1]);
                    present.insert(doc[t + window - 1]);
                }
                units += 1;
                let (ha, hb) = (present.contains(&a), present.contains(&b));
                ca += ha as u64;
                cb += hb as u64;
                cab += (ha && hb) as u64;
            }
        }
        (units, ca, cb, cab)
    }

    #[test]
    fn documents_count_rows_and_pairs() {
        let mut rows = SparseRows::new(4);
        rows.push_row(&[0, 1], &[2.0, 1.0]);
        rows.push_row(&[1, 2], &[1.0, 0.0]);
        rows.push_row(&[], &[]);
        let counts = CoOccurrence::from_documents(&rows, &[0, 1, 2]);
        assert_eq!(counts.units(), 3);
        assert_eq!(counts.count(0), 1);
        assert_eq!(counts.count(1), 2);
        assert_eq!(counts.count(2), 0, "a zero value is no occurrence");
        assert_eq!(counts.joint(0, 1), 1);
        assert_eq!(counts.joint(1, 0), 1);
        assert_eq!(counts.joint(1, 2), 0);
        assert_eq!(counts.joint(1, 1), 2);
        assert_eq!(counts.count(3), 0, "an uncounted word");
    }

    #[test]
    fn short_and_empty_documents_are_one_window() {
        let docs = vec![vec![], vec![5, 6], vec![5, 7, 8, 6]];
        let counts = CoOccurrence::from_sliding_windows(&docs, &[5, 6], 3);
        // 1 + 1 + 2 windows; [5 7 8] and [7 8 6].
        assert_eq!(counts.units(), 4);
        assert_eq!(counts.count(5), 2);
        assert_eq!(counts.count(6), 2);
        assert_eq!(counts.joint(5, 6), 1);
    }

    #[test]
    fn repeated_token_leaving_window_is_dropped() {
        // Windows of 3 over [1 2 1 3]: [1 2 1] then [2 1 3]. Word 1 is still inside the
        // second window, but gensim marks it absent when its first copy leaves.
        let docs = vec![vec![1, 2, 1, 3]];
        let counts = CoOccurrence::from_sliding_windows(&docs, &[1, 3], 3);
        assert_eq!(counts.units(), 2);
        assert_eq!(counts.count(1), 1);
        assert_eq!(counts.count(3), 1);
        assert_eq!(counts.joint(1, 3), 0);
    }

    #[test]
    fn windows_match_listing_on_random_text() {
        // A small linear congruential generator gives repeatable pseudo-random text.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let docs: Vec<Vec<u32>> = (0..40)
            .map(|_| {
                let len = next() % 30;
                (0..len).map(|_| next() % 8).collect()
            })
            .collect();
        for window in [1, 2, 5, 10] {
            let counts = CoOccurrence::from_sliding_windows(&docs, &[0, 1, 2, 3], window);
            for (a, b) in [(0, 1), (2, 3), (1, 3)] {
                let (units, ca, cb, cab) = windows_by_listing(&docs, window, a, b);
                assert_eq!(counts.units(), units, "window {window}");
                assert_eq!(counts.count(a), ca, "window {window}, word {a}");
                assert_eq!(counts.count(b), cb, "window {window}, word {b}");
                assert_eq!(counts.joint(a, b), cab, "window {window}, pair {a} {b}");
            }
        }
    }

    #[test]
    fn sparse_pairs_agree_with_dense() {
        let words: Vec<u32> = (0..(DENSE_PAIR_LIMIT as u32 + 10)).collect();
        let docs = vec![vec![0, 1, 2], vec![1, 2, DENSE_PAIR_LIMIT as u32 + 5]];
        let counts = CoOccurrence::from_sliding_windows(&docs, &words, 10);
        assert_eq!(counts.joint(1, 2), 2);
        assert_eq!(counts.joint(2, DENSE_PAIR_LIMIT as u32 + 5), 1);
        assert_eq!(counts.joint(0, DENSE_PAIR_LIMIT as u32 + 5), 0);
    }
}
