//! Inverted rank-biased overlap (IRBO) of topics' ranked top-word lists.

use serde::Serialize;

/// Default persistence `p` of rank-biased overlap: the default of the `InvertedRBO` measure
/// in contextualized-topic-models (Bianchi et al. 2021). OCTIS documents 1.0 for its own.
pub const DEFAULT_RBO_WEIGHT: f64 = 0.9;

/// Inverted RBO of a set of topics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvertedRbo {
    /// `1 - mean RBO` over all unordered topic pairs, in `[0, 1]`; 1 means no two topics
    /// share a word.
    pub overall: f64,
    /// The persistence `p` used.
    pub weight: f64,
}

/// Computes extrapolated rank-biased overlap (Webber, Moffat and Zobel 2010, eq. 30) of two
/// ranked lists cut to the depth `k` of the shorter one:
///
/// `RBO_ext = (X_k / k) p^k + ((1 - p) / p) Σ_{d=1..k} (X_d / d) p^d`,
///
/// where `X_d` is the number of items the two depth-`d` prefixes share. Identical lists
/// score 1 and disjoint lists 0. With `p = 1` it is the average overlap
/// `(1/k) Σ_d X_d / d`. Two empty lists score 1, one empty list 0.
///
/// # Panics
/// When `p` is not in `(0, 1]`.
pub fn rank_biased_overlap(a: &[u32], b: &[u32], p: f64) -> f64 {
    assert!(
        p > 0.0 && p <= 1.0,
        "RBO persistence must be in (0, 1], got {p}"
    );
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let k = a.len().min(b.len());
    if k == 0 {
        return 0.0;
    }

    let mut seen_a = std::collections::HashSet::new();
    let mut seen_b = std::collections::HashSet::new();
    let mut overlap = 0usize;
    let mut weighted_sum = 0.0f64;
    let mut agreement = 0.0f64;
    for d in 0..k {
        // `overlap` is the size of the intersection of the two prefix sets.
        if seen_a.insert(a[d]) && seen_b.contains(&a[d]) {
            overlap += 1;
        }
        if seen_b.insert(b[d]) && seen_a.contains(&b[d]) {
            overlap += 1;
        }
        agreement = overlap as f64 / (d + 1) as f64;
        weighted_sum += if p == 1.0 {
            agreement
        } else {
            agreement * p.powi(d as i32 + 1)
        };
    }

    if p == 1.0 {
        return weighted_sum / k as f64;
    }
    let value = agreement * p.powi(k as i32) + (1.0 - p) / p * weighted_sum;
    value.clamp(0.0, 1.0)
}

/// Computes inverted RBO: one minus the mean [`rank_biased_overlap`] over all unordered
/// pairs of topics, each list in rank order. Fewer than two topics give 1 (nothing overlaps).
pub fn inverted_rbo(top_ids: &[Vec<u32>], weight: f64) -> InvertedRbo {
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for i in 0..top_ids.len() {
        for j in i + 1..top_ids.len() {
            sum += rank_biased_overlap(&top_ids[i], &top_ids[j], weight);
            pairs += 1;
        }
    }
    let overall = if pairs == 0 {
        1.0
    } else {
        1.0 - sum / pairs as f64
    };
    InvertedRbo { overall, weight }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_and_disjoint_lists() {
        for p in [0.5, 0.9, 1.0] {
            let same = rank_biased_overlap(&[1, 2, 3, 4], &[1, 2, 3, 4], p);
            assert!((same - 1.0).abs() < 1e-12, "p {p}: {same}");
            assert_eq!(rank_biased_overlap(&[1, 2], &[3, 4], p), 0.0);
        }
    }

    #[test]
    fn swapped_pair_by_hand() {
        // [1 2] vs [2 1]: X_1 = 0, X_2 = 2. RBO = (2/2) p^2 + (1-p)/p (0 + (2/2) p^2).
        let p = 0.9f64;
        let expected = p * p + (1.0 - p) / p * p * p;
        assert!((rank_biased_overlap(&[1, 2], &[2, 1], p) - expected).abs() < 1e-12);
        // Average overlap at p = 1: (0/1 + 2/2) / 2.
        assert!((rank_biased_overlap(&[1, 2], &[2, 1], 1.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn shared_tail_by_hand() {
        // [1 2 3] vs [4 5 3]: X = 0, 0, 1. RBO = (1/3) p^3 + (1-p)/p (1/3) p^3.
        let p = 0.9f64;
        let expected = p.powi(3) / 3.0 + (1.0 - p) / p * p.powi(3) / 3.0;
        assert!((rank_biased_overlap(&[1, 2, 3], &[4, 5, 3], p) - expected).abs() < 1e-12);
    }

    #[test]
    fn inverted_rbo_of_topic_sets() {
        let disjoint = vec![vec![0, 1], vec![2, 3], vec![4, 5]];
        assert_eq!(inverted_rbo(&disjoint, 0.9).overall, 1.0);
        let same = vec![vec![0, 1, 2]; 3];
        assert!(inverted_rbo(&same, 0.9).overall.abs() < 1e-12);
        assert_eq!(inverted_rbo(&[vec![0]], 0.9).overall, 1.0);
    }

    #[test]
    fn earlier_overlap_weighs_more() {
        // Sharing the first word lowers IRBO more than sharing the last.
        let head = inverted_rbo(&[vec![1, 2, 3], vec![1, 5, 6]], 0.9).overall;
        let tail = inverted_rbo(&[vec![1, 2, 3], vec![5, 6, 3]], 0.9).overall;
        assert!(head < tail, "head {head}, tail {tail}");
    }
}
