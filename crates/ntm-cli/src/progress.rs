//! A progress bar for training, shown only when standard error is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use ntm_model::trainer::BatchCallback;

/// Returns a batch callback for the trainer that draws a bar per epoch, or `None`
/// when standard error is not a terminal (logs, CI, SageMaker), where it would only add noise.
pub fn batch_callback() -> Option<BatchCallback> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("epoch {prefix:>3} [{bar:40}] {pos}/{len} batches {per_sec}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(Box::new(move |epoch, done, total| {
        if done == 1 {
            bar.reset();
            bar.set_length(total as u64);
            bar.set_prefix(epoch.to_string());
        }
        // A streamed channel's batch count is an estimate (0 when unknown): grow the bar with it.
        if done as u64 > bar.length().unwrap_or(0) {
            bar.set_length(done as u64);
        }
        bar.set_position(done as u64);
        if done == total {
            bar.finish_and_clear();
        }
    }))
}
