//! Seeded split of documents into a training set and a validation set.

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Document indices of a train/validation split, each list in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainValidationSplit {
    /// Indices of the training documents.
    pub train: Vec<usize>,
    /// Indices of the validation documents.
    pub validation: Vec<usize>,
}

/// Errors of [`train_validation_split`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    /// The validation fraction is outside `[0, 1]` or not a number.
    #[error("invalid validation fraction {fraction}: use a number in [0, 1]")]
    InvalidFraction {
        /// The rejected fraction.
        fraction: f64,
    },
}

/// Splits the indices `0..n_docs` at random into training and validation sets.
///
/// The validation set has `round(validation_fraction * n_docs)` documents
/// (halves round away from zero), so a fraction of 1 leaves the training set
/// empty. The choice depends only on `n_docs`, the fraction and `seed`: the
/// indices are shuffled with a Fisher-Yates shuffle driven by
/// `ChaCha8Rng::seed_from_u64(seed)`, using rejection sampling on its 64-bit
/// outputs, and the first indices of the shuffle form the validation set.
///
/// # Errors
/// [`SplitError::InvalidFraction`] when the fraction is not in `[0, 1]`.
pub fn train_validation_split(
    n_docs: usize,
    validation_fraction: f64,
    seed: u64,
) -> Result<TrainValidationSplit, SplitError> {
    if !(0.0..=1.0).contains(&validation_fraction) {
        return Err(SplitError::InvalidFraction {
            fraction: validation_fraction,
        });
    }
    let n_validation = ((validation_fraction * n_docs as f64).round() as usize).min(n_docs);

    // Shuffle with a hand-written Fisher-Yates, so the split does not change
    // when the `rand` crate changes its own shuffle or range sampling.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n_docs).collect();
    for i in (1..n_docs).rev() {
        let j = uniform_below(&mut rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }

    let mut validation = order[..n_validation].to_vec();
    let mut train = order[n_validation..].to_vec();
    validation.sort_unstable();
    train.sort_unstable();
    Ok(TrainValidationSplit { train, validation })
}

/// Draws a uniform integer in `0..bound` (`bound >= 1`) by rejection sampling.
fn uniform_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    // `zone` is the largest multiple of `bound` that fits in u64 arithmetic;
    // values at or above it would bias the remainder and are redrawn.
    let zone = u64::MAX - (u64::MAX % bound + 1) % bound;
    loop {
        let value = rng.next_u64();
        if value <= zone {
            return value % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_follow_rounding() {
        let cases = [
            (100, 0.1, 10),
            (11314, 0.1, 1131),
            (5, 0.5, 3),
            (3, 0.5, 2),
            (10, 0.0, 0),
            (10, 1.0, 10),
            (0, 0.3, 0),
            (1, 0.4, 0),
        ];
        for (n_docs, fraction, expected) in cases {
            let split = train_validation_split(n_docs, fraction, 7).expect("valid fraction");
            assert_eq!(split.validation.len(), expected, "n={n_docs} f={fraction}");
            assert_eq!(
                split.train.len(),
                n_docs - expected,
                "n={n_docs} f={fraction}"
            );
        }
    }

    #[test]
    fn split_is_a_sorted_partition() {
        let split = train_validation_split(1000, 0.2, 42).expect("valid fraction");
        let mut all: Vec<usize> = split
            .train
            .iter()
            .chain(&split.validation)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(split.train.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(split.validation.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn same_seed_same_split() {
        let first = train_validation_split(500, 0.25, 123).expect("valid fraction");
        let second = train_validation_split(500, 0.25, 123).expect("valid fraction");
        assert_eq!(first, second);
        let other = train_validation_split(500, 0.25, 124).expect("valid fraction");
        assert_ne!(first.validation, other.validation);
    }

    #[test]
    fn validation_is_spread_over_documents() {
        // A shuffle picks from the whole range, not a prefix or suffix.
        let split = train_validation_split(10_000, 0.1, 1).expect("valid fraction");
        let in_first_half = split.validation.iter().filter(|&&i| i < 5_000).count();
        assert!(
            (400..=600).contains(&in_first_half),
            "{in_first_half} of 1000 in first half"
        );
    }

    #[test]
    fn invalid_fraction_is_rejected() {
        for fraction in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let err = train_validation_split(10, fraction, 0).expect_err("invalid fraction");
            assert!(
                matches!(err, SplitError::InvalidFraction { .. }),
                "{fraction}"
            );
        }
    }

    #[test]
    fn uniform_below_stays_in_range_and_covers_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            let value = uniform_below(&mut rng, 7);
            seen[value as usize] += 1;
        }
        for (value, count) in seen.iter().enumerate() {
            assert!(
                (800..=1200).contains(count),
                "value {value} drawn {count} times"
            );
        }
        assert_eq!(uniform_below(&mut rng, 1), 0);
    }
}
