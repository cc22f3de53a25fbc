//! Ranking the words of each topic.

/// Returns, for each of the `num_topics` topics, the ids of its `n` highest-weight words.
///
/// `decoder` is the decoder weight, row-major `[vocab_size, num_topics]`: entry
/// `(v, k)` is the weight of word `v` in topic `k`. Softmax over a column is monotone,
/// so ranking raw weights gives the same words as ranking word probabilities. Ties go
/// to the lower word id, so the ranking is deterministic. `n` is capped at the
/// vocabulary size.
pub fn top_word_ids(
    decoder: &[f32],
    vocab_size: usize,
    num_topics: usize,
    n: usize,
) -> Vec<Vec<u32>> {
    assert_eq!(
        decoder.len(),
        vocab_size * num_topics,
        "decoder shape mismatch"
    );
    let n = n.min(vocab_size);
    (0..num_topics)
        .map(|k| {
            let mut ids: Vec<u32> = (0..vocab_size as u32).collect();
            let weight = |v: u32| decoder[v as usize * num_topics + k];
            // total_cmp orders NaN above everything; the trainer never saves non-finite weights.
            ids.sort_by(|&a, &b| weight(b).total_cmp(&weight(a)).then(a.cmp(&b)));
            ids.truncate(n);
            ids
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_column_with_stable_ties() {
        // 4 words, 2 topics.
        let decoder = [0.1, 5.0, 0.9, 1.0, 0.9, 1.0, -2.0, 3.0];
        let top = top_word_ids(&decoder, 4, 2, 3);
        assert_eq!(top[0], vec![1, 2, 0]);
        assert_eq!(top[1], vec![0, 3, 1]);
    }

    #[test]
    fn caps_n_at_vocabulary_size() {
        let top = top_word_ids(&[1.0, 2.0, 3.0, 4.0], 2, 2, 20);
        assert_eq!(top[0].len(), 2);
    }
}
