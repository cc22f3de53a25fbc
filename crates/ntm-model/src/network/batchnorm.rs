//! Batch normalisation over the rows of a `batch x features` matrix, as MXNet's `BatchNorm`.
//!
//! Training mode normalises with the batch mean and the biased batch variance (divided by the
//! batch size, not by size - 1) and moves the running statistics by
//! `running = MOMENTUM * running + (1 - MOMENTUM) * batch`, using that same biased variance.
//! Inference mode normalises with the running statistics. Every reduction over the batch runs
//! over the rows in order in `f64`, so results do not depend on thread scheduling.

/// Weight of the old value in the running-statistics update (MXNet's default `momentum`).
pub const MOMENTUM: f32 = 0.9;
/// Added to the variance before the square root (MXNet's default `eps`).
pub const VARIANCE_EPSILON: f32 = 1e-3;

/// Per-feature statistics of one training-mode forward pass, kept for the backward pass.
#[derive(Debug, Default, Clone)]
pub(crate) struct BatchStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub inv_std: Vec<f32>,
}

/// Normalises `input` with its own batch statistics: writes `xhat = (a - mean) / sqrt(var + eps)`
/// and `out = gamma * xhat + beta`, and records the statistics in `stats`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_train(
    input: &[f32],
    cols: usize,
    gamma: &[f32],
    beta: &[f32],
    xhat: &mut [f32],
    out: &mut [f32],
    stats: &mut BatchStats,
    acc: &mut Vec<f64>,
) {
    let rows = input.len() / cols;
    let inv_rows = 1.0 / rows as f64;
    acc.clear();
    acc.resize(2 * cols, 0.0);
    let (sum, sum_sq) = acc.split_at_mut(cols);
    for row in input.chunks_exact(cols) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += f64::from(v);
        }
    }
    for s in sum.iter_mut() {
        *s *= inv_rows;
    }
    // Two passes (mean first, then squared deviations) avoid the cancellation of E[a^2] - E[a]^2.
    for row in input.chunks_exact(cols) {
        for ((s, &v), &m) in sum_sq.iter_mut().zip(row).zip(sum.iter()) {
            let d = f64::from(v) - m;
            *s += d * d;
        }
    }
    stats.mean.clear();
    stats.var.clear();
    stats.inv_std.clear();
    for (&m, &s) in sum.iter().zip(sum_sq.iter()) {
        let var = s * inv_rows;
        stats.mean.push(m as f32);
        stats.var.push(var as f32);
        stats
            .inv_std
            .push((1.0 / (var + f64::from(VARIANCE_EPSILON)).sqrt()) as f32);
    }
    for ((a_row, x_row), o_row) in input
        .chunks_exact(cols)
        .zip(xhat.chunks_exact_mut(cols))
        .zip(out.chunks_exact_mut(cols))
    {
        for j in 0..cols {
            let x = (a_row[j] - stats.mean[j]) * stats.inv_std[j];
            x_row[j] = x;
            o_row[j] = gamma[j] * x + beta[j];
        }
    }
}

/// Moves the running statistics towards the batch statistics of the last training pass.
pub(crate) fn update_running(
    stats: &BatchStats,
    running_mean: &mut [f32],
    running_var: &mut [f32],
) {
    for (r, &m) in running_mean.iter_mut().zip(&stats.mean) {
        *r = MOMENTUM * *r + (1.0 - MOMENTUM) * m;
    }
    for (r, &v) in running_var.iter_mut().zip(&stats.var) {
        *r = MOMENTUM * *r + (1.0 - MOMENTUM) * v;
    }
}

/// Normalises `values` in place with the running statistics (inference mode).
pub(crate) fn forward_infer(
    values: &mut [f32],
    cols: usize,
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
) {
    for row in values.chunks_exact_mut(cols) {
        for j in 0..cols {
            let inv_std = 1.0 / (running_var[j] + VARIANCE_EPSILON).sqrt();
            row[j] = gamma[j] * (row[j] - running_mean[j]) * inv_std + beta[j];
        }
    }
}

/// Back-propagates through a training-mode batch norm.
///
/// Replaces `grad` (the gradient with respect to the output) by the gradient with respect to the
/// input, `gamma * inv_std / B * (B * g - sum(g) - xhat * sum(g * xhat))`, and writes
/// `grad_gamma = sum(g * xhat)` and `grad_beta = sum(g)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    grad: &mut [f32],
    cols: usize,
    xhat: &[f32],
    gamma: &[f32],
    stats: &BatchStats,
    grad_gamma: &mut [f32],
    grad_beta: &mut [f32],
    acc: &mut Vec<f64>,
) {
    let rows = grad.len() / cols;
    acc.clear();
    acc.resize(2 * cols, 0.0);
    let (sum_g, sum_gx) = acc.split_at_mut(cols);
    for (g_row, x_row) in grad.chunks_exact(cols).zip(xhat.chunks_exact(cols)) {
        for j in 0..cols {
            sum_g[j] += f64::from(g_row[j]);
            sum_gx[j] += f64::from(g_row[j]) * f64::from(x_row[j]);
        }
    }
    for j in 0..cols {
        grad_beta[j] = sum_g[j] as f32;
        grad_gamma[j] = sum_gx[j] as f32;
    }
    let inv_rows = 1.0 / rows as f64;
    for (g_row, x_row) in grad.chunks_exact_mut(cols).zip(xhat.chunks_exact(cols)) {
        for j in 0..cols {
            let centred = f64::from(g_row[j])
                - sum_g[j] * inv_rows
                - f64::from(x_row[j]) * sum_gx[j] * inv_rows;
            g_row[j] = (f64::from(gamma[j] * stats.inv_std[j]) * centred) as f32;
        }
    }
}
