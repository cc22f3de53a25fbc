//! Early stopping on the per-epoch loss, with SageMaker NTM's log lines.
//!
//! The rule, with `P` = `num_patience_epochs` and `τ` = `tolerance`:
//!
//! 1. The window contains the losses of the last `P` epochs before the current one
//!    (fewer in the first `P` epochs, none in the first).
//! 2. With `m = min(window)` and `c` the current loss, the improvement is `m − c`. The epoch is
//!    good when `m − c > 0` and `m − c >= τ·|m|`, and bad otherwise. Using `|m|` keeps the test
//!    meaningful for negative losses, and the `> 0` part means that with `m = 0` only a strict
//!    decrease counts. For positive losses this is SageMaker's relative test: bad when
//!    `m − c < τ·m`.
//! 3. A bad epoch increments the bad count; a good epoch resets it to 0.
//!    The first epoch is never bad.
//! 4. Training stops when the bad count reaches `P`, unless `P > epochs`, which disables
//!    stopping (as SageMaker documents).
//! 5. The best epoch is the one with the lowest loss; ties keep the earlier epoch. A NaN loss
//!    is always bad and never best.
//!
//! SageMaker does not publish this rule; it is reconstructed from its documentation and one
//! public training log, and agrees with every number in that log.

use std::collections::VecDeque;
use std::fmt;

use crate::hyperparams::Hyperparameters;

/// Early-stopping state over the epochs of one training run.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    tolerance: f64,
    patience: usize,
    enabled: bool,
    window: VecDeque<f64>,
    bad_count: usize,
    epoch: usize,
    best: Option<BestEpoch>,
    stopped: bool,
}

/// The epoch with the lowest loss so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestEpoch {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Its loss.
    pub loss: f64,
}

impl BestEpoch {
    /// Formats SageMaker's final line `Best model based on early stopping at epoch E. Best loss: L`.
    pub fn best_model_line(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for BestEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Best model based on early stopping at epoch {}. Best loss: {}",
            self.epoch,
            format_loss(self.loss)
        )
    }
}

/// Early-stopping decision after one epoch's loss.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochDecision {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Losses of up to `num_patience_epochs` earlier epochs, oldest first; empty for epoch 1.
    pub window: Vec<f64>,
    /// `min(window)` ignoring NaN; `None` when the window is empty or holds only NaN.
    pub min_window_loss: Option<f64>,
    /// This epoch's loss.
    pub loss: f64,
    /// `|loss − min_window_loss|`, printed as SageMaker's "absolute loss difference".
    pub abs_difference: Option<f64>,
    /// Whether the epoch failed to improve on the window minimum by the tolerance.
    pub bad: bool,
    /// Consecutive bad epochs up to and including this one.
    pub bad_count: usize,
    /// Whether this epoch is the best so far (its model should be kept).
    pub is_best: bool,
    /// The best epoch so far, this one included.
    pub best: Option<BestEpoch>,
    /// Whether training should stop after this epoch.
    pub stop: bool,
}

impl EpochDecision {
    /// Formats SageMaker's per-epoch comparison line, or `None` for the first epoch:
    /// `patience losses:[l1, l2, l3] min patience loss:m current loss:c absolute loss difference:d`.
    pub fn patience_line(&self) -> Option<String> {
        let min = self.min_window_loss?;
        let losses: Vec<String> = self.window.iter().map(|l| format_loss(*l)).collect();
        Some(format!(
            "patience losses:[{}] min patience loss:{} current loss:{} absolute loss difference:{}",
            losses.join(", "),
            format_loss(min),
            format_loss(self.loss),
            format_loss(self.abs_difference.unwrap_or(f64::NAN)),
        ))
    }

    /// Formats `Bad epoch: loss has not improved (enough). Bad count:N` for a bad epoch.
    pub fn bad_epoch_line(&self) -> Option<String> {
        self.bad.then(|| {
            format!(
                "Bad epoch: loss has not improved (enough). Bad count:{}",
                self.bad_count
            )
        })
    }
}

impl EarlyStopping {
    /// Creates the rule for a run of at most `epochs` epochs.
    ///
    /// `num_patience_epochs > epochs` disables stopping; decisions and the best epoch are
    /// still reported. A `num_patience_epochs` of 0 is treated as 1.
    pub fn new(tolerance: f64, num_patience_epochs: usize, epochs: usize) -> Self {
        let patience = num_patience_epochs.max(1);
        Self {
            tolerance,
            patience,
            enabled: patience <= epochs,
            window: VecDeque::with_capacity(patience),
            bad_count: 0,
            epoch: 0,
            best: None,
            stopped: false,
        }
    }

    /// Creates the rule from `tolerance`, `num_patience_epochs` and `epochs`.
    pub fn from_hyperparameters(hyperparameters: &Hyperparameters) -> Self {
        Self::new(
            hyperparameters.tolerance,
            hyperparameters.num_patience_epochs,
            hyperparameters.epochs,
        )
    }

    /// Returns whether stopping can happen at all (`num_patience_epochs <= epochs`).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Returns whether an earlier decision requested a stop.
    pub fn should_stop(&self) -> bool {
        self.stopped
    }

    /// Returns the best epoch so far, `None` before the first finite loss.
    pub fn best(&self) -> Option<BestEpoch> {
        self.best
    }

    /// Records the loss of the next epoch and returns the decision for it.
    pub fn observe(&mut self, loss: f64) -> EpochDecision {
        self.epoch += 1;
        let window: Vec<f64> = self.window.iter().copied().collect();
        let min_window_loss = window
            .iter()
            .copied()
            .filter(|l| !l.is_nan())
            .reduce(f64::min);

        let bad = match min_window_loss {
            // The first epoch has nothing to compare with.
            None if window.is_empty() => false,
            None => loss.is_nan(),
            Some(min) => {
                let improvement = min - loss;
                // Written so that a NaN loss makes the comparison false, so the epoch is bad.
                let good = improvement > 0.0 && improvement >= self.tolerance * min.abs();
                !good
            }
        };
        if bad {
            self.bad_count += 1;
        } else {
            self.bad_count = 0;
        }

        let is_best = !loss.is_nan() && self.best.is_none_or(|best| loss < best.loss);
        if is_best {
            self.best = Some(BestEpoch {
                epoch: self.epoch,
                loss,
            });
        }

        let stop = self.enabled && self.bad_count >= self.patience;
        self.stopped |= stop;

        if self.window.len() == self.patience {
            self.window.pop_front();
        }
        self.window.push_back(loss);

        EpochDecision {
            epoch: self.epoch,
            min_window_loss,
            abs_difference: min_window_loss.map(|min| (loss - min).abs()),
            window,
            loss,
            bad,
            bad_count: self.bad_count,
            is_best,
            best: self.best,
            stop,
        }
    }
}

/// Formats a loss as Python's `%g` does: 6 significant digits, trailing zeros removed,
/// exponent form (`3.8e-05`) below 1e-4 and from 1e6 on.
pub fn format_loss(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if value == 0.0 {
        return "0".to_string();
    }
    let scientific = format!("{value:.5e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        let decimals = usize::try_from(5 - exponent).unwrap_or(0);
        trim_fraction(&format!("{value:.decimals$}")).to_string()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_fraction(mantissa), exponent.abs())
    }
}

fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_loss_matches_python_g() {
        assert_eq!(format_loss(0.136731), "0.136731");
        assert_eq!(format_loss(3.8e-5), "3.8e-05");
        assert_eq!(format_loss(8.95), "8.95");
        assert_eq!(format_loss(10.0), "10");
        assert_eq!(format_loss(1234567.0), "1.23457e+06");
        assert_eq!(format_loss(-0.5), "-0.5");
        assert_eq!(format_loss(0.0001), "0.0001");
        assert_eq!(format_loss(123456.0), "123456");
    }
}
