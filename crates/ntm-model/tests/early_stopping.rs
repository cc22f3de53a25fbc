//! The early-stopping rule and the log lines it produces.

use std::path::PathBuf;

use ntm_model::early_stopping::format_loss;
use ntm_model::{BestEpoch, EarlyStopping, EpochDecision, Hyperparameters};
use serde_json::Value;

fn read_fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/early-stopping")
        .join(name);
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    serde_json::from_str(&text).expect("fixture is valid JSON")
}

/// Feeds losses until a decision requests a stop, and returns every decision.
fn run(rule: &mut EarlyStopping, losses: &[f64]) -> Vec<EpochDecision> {
    let mut decisions = Vec::new();
    for &loss in losses {
        let decision = rule.observe(loss);
        let stop = decision.stop;
        decisions.push(decision);
        if stop {
            break;
        }
    }
    decisions
}

#[test]
fn fluctuating_sequence_stops_after_epoch_five() {
    let fixture = read_fixture("loss_sequence.json");
    let tolerance = fixture["tolerance"].as_f64().unwrap();
    let patience = fixture["num_patience_epochs"].as_u64().unwrap() as usize;
    let losses: Vec<f64> = fixture["validation_loss_by_epoch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(losses, [10.0, 9.0, 9.5, 8.95, 9.4, 9.3, 9.2, 9.1]);

    let mut rule = EarlyStopping::new(tolerance, patience, 50);
    let decisions = run(&mut rule, &losses);

    // Epoch 1: empty window, never bad.
    // Epoch 2: min 10.0, improvement 1.0 >= 0.01·10.0, good.
    // Epoch 3: min 9.0, improvement −0.5 < 0.09, bad (1).
    // Epoch 4: min 9.0, improvement 0.05 < 0.09, bad (2), though 8.95 is the lowest loss.
    // Epoch 5: min 8.95 over [9.0, 9.5, 8.95], improvement −0.45, bad (3) = patience: stop.
    let bad: Vec<bool> = decisions.iter().map(|d| d.bad).collect();
    assert_eq!(bad, [false, false, true, true, true]);
    let counts: Vec<usize> = decisions.iter().map(|d| d.bad_count).collect();
    assert_eq!(counts, [0, 0, 1, 2, 3]);
    let stops: Vec<bool> = decisions.iter().map(|d| d.stop).collect();
    assert_eq!(stops, [false, false, false, false, true]);
    assert_eq!(
        decisions.len(),
        fixture["expected_stop_after_epoch"].as_u64().unwrap() as usize
    );

    assert_eq!(decisions[4].window, [9.0, 9.5, 8.95]);
    assert_eq!(decisions[4].min_window_loss, Some(8.95));
    let best = rule.best().unwrap();
    assert_eq!(
        best.epoch,
        fixture["expected_kept_epoch"].as_u64().unwrap() as usize
    );
    assert_eq!(best.loss, 8.95);
    assert!(rule.should_stop());
    let best_flags: Vec<bool> = decisions.iter().map(|d| d.is_best).collect();
    assert_eq!(best_flags, [true, true, false, true, false]);
}

#[test]
fn patience_above_epochs_never_stops() {
    let hyperparameters: Value = read_fixture("hyperparameters_disable.json");
    let hp = Hyperparameters::from_json_value(&hyperparameters).unwrap();
    assert_eq!((hp.epochs, hp.num_patience_epochs), (5, 6));
    let mut rule = EarlyStopping::from_hyperparameters(&hp);
    assert!(!rule.is_enabled());

    // Every epoch after the first is worse: bad counts grow, but stopping stays off.
    let decisions = run(&mut rule, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(decisions.len(), 5);
    assert!(decisions.iter().all(|d| !d.stop));
    assert_eq!(decisions[4].bad_count, 4);
    assert_eq!(
        rule.best(),
        Some(BestEpoch {
            epoch: 1,
            loss: 1.0
        })
    );
}

#[test]
fn patience_equal_to_epochs_can_stop() {
    let mut rule = EarlyStopping::new(0.001, 2, 2);
    assert!(rule.is_enabled());
    let decisions = run(&mut rule, &[1.0, 2.0, 3.0]);
    // Only epoch 2 can be bad before the run ends, so a count of 2 needs epoch 3.
    assert_eq!(decisions.len(), 3);
    assert!(decisions[2].stop);
}

#[test]
fn steadily_improving_sequence_never_stops() {
    let mut rule = EarlyStopping::new(0.001, 3, 100);
    let losses: Vec<f64> = (0..100).map(|i| 100.0 * 0.99f64.powi(i)).collect();
    let decisions = run(&mut rule, &losses);
    assert_eq!(decisions.len(), 100);
    assert!(decisions.iter().all(|d| !d.bad && !d.stop));
    assert_eq!(rule.best().unwrap().epoch, 100);
}

#[test]
fn good_epoch_resets_bad_count() {
    let mut rule = EarlyStopping::new(0.01, 3, 50);
    let decisions = run(&mut rule, &[10.0, 10.0, 10.0, 5.0, 5.0, 5.0, 5.0]);
    let counts: Vec<usize> = decisions.iter().map(|d| d.bad_count).collect();
    assert_eq!(counts, [0, 1, 2, 0, 1, 2, 3]);
    assert!(decisions[6].stop);
    assert_eq!(
        rule.best(),
        Some(BestEpoch {
            epoch: 4,
            loss: 5.0
        })
    );
}

#[test]
fn improvement_below_tolerance_is_bad() {
    let mut rule = EarlyStopping::new(0.01, 3, 50);
    rule.observe(100.0);
    // 0.5 % better than 100: below the 1 % tolerance.
    assert!(rule.observe(99.5).bad);
    // 1 % better than the window minimum 99.5.
    assert!(!rule.observe(99.5 - 0.995).bad);
}

#[test]
fn negative_losses_use_magnitude_of_minimum() {
    let mut rule = EarlyStopping::new(0.01, 3, 50);
    rule.observe(-100.0);
    // −100.5 improves by 0.5 < 0.01·|−100|: bad, although the loss went down.
    assert!(rule.observe(-100.5).bad);
    // −102 improves on the minimum −100.5 by 1.5 >= 1.005: good.
    assert!(!rule.observe(-102.0).bad);
    // Going up is bad.
    assert!(rule.observe(-101.0).bad);
}

#[test]
fn zero_minimum_needs_strict_decrease() {
    let mut rule = EarlyStopping::new(0.01, 3, 50);
    rule.observe(0.0);
    assert!(rule.observe(0.0).bad);
    assert!(!rule.observe(-1e-9).bad);
}

#[test]
fn nan_loss_is_bad_and_never_best() {
    let mut rule = EarlyStopping::new(0.01, 2, 50);
    rule.observe(1.0);
    let decision = rule.observe(f64::NAN);
    assert!(decision.bad);
    assert!(!decision.is_best);
    // The NaN stays in the window but is ignored by its minimum.
    let decision = rule.observe(f64::NAN);
    assert_eq!(decision.min_window_loss, Some(1.0));
    assert!(decision.stop);
    assert_eq!(
        rule.best(),
        Some(BestEpoch {
            epoch: 1,
            loss: 1.0
        })
    );
}

#[test]
fn first_epoch_prints_no_patience_line() {
    let mut rule = EarlyStopping::new(0.001, 3, 50);
    let decision = rule.observe(0.2);
    assert!(!decision.bad);
    assert_eq!(decision.patience_line(), None);
    assert_eq!(decision.bad_epoch_line(), None);
}

#[test]
fn log_lines_match_sagemaker_format() {
    let mut rule = EarlyStopping::new(0.001, 3, 50);
    for loss in [0.136693, 0.14, 0.137] {
        rule.observe(loss);
    }
    let decision = rule.observe(0.136731);
    assert_eq!(
        decision.patience_line().unwrap(),
        "patience losses:[0.136693, 0.14, 0.137] min patience loss:0.136693 \
         current loss:0.136731 absolute loss difference:3.8e-05"
    );
    assert_eq!(
        decision.bad_epoch_line().unwrap(),
        "Bad epoch: loss has not improved (enough). Bad count:3"
    );
    assert!(decision.stop);
    assert_eq!(
        rule.best().unwrap().best_model_line(),
        "Best model based on early stopping at epoch 1. Best loss: 0.136693"
    );
}

#[test]
fn format_loss_uses_six_significant_digits() {
    assert_eq!(format_loss(8.95), "8.95");
    assert_eq!(format_loss(0.1234567), "0.123457");
    assert_eq!(format_loss(2.5e-7), "2.5e-07");
    assert_eq!(format_loss(f64::NAN), "nan");
}
