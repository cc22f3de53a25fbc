//! The five optimizers of SageMaker NTM, following the dense update rules of Apache MXNet 1.9.1.
//!
//! Notation: `w` weight, `g` raw gradient, `r` = `rescale_grad`, `c` = `clip_gradient`,
//! `clip(x) = min(max(x, -c), c)`, `η` learning rate, `λ` weight decay, `t` update count
//! (1 on the first step). All states start at zero and all arithmetic is `f32`, except
//! Adam's bias-corrected learning rate, which MXNet computes in `f64` in Python.
//!
//! | optimizer | rule |
//! |---|---|
//! | SGD (momentum 0) | `w ← (1 − ηλ)·w − η·clip(r·g)` |
//! | Adam | `ĝ = clip(r·g + λw)`, `m ← β1·m + (1−β1)·ĝ`, `v ← β2·v + (1−β2)·ĝ²`, `w ← w − η_t·m/(√v + ε)`, `η_t = η·√(1−β2^t)/(1−β1^t)`; β1 0.9, β2 0.999, ε 1e-8 |
//! | AdaGrad | `ĝ = clip(r·g)`, `h ← h + ĝ²`, `w ← w − η·(ĝ/√(h + ε) + λw)`; ε 1e-7 |
//! | AdaDelta | `ĝ = clip(r·g)`, `A_g ← ρA_g + (1−ρ)ĝ²`, `Δ = √(A_Δ + ε)/√(A_g + ε)·ĝ`, `A_Δ ← ρA_Δ + (1−ρ)Δ²`, `w ← w − (Δ + λw)`; ρ 0.9, ε 1e-5, no learning rate |
//! | RMSProp (not centered) | `ĝ = clip(r·g + λw)`, `n ← (1−γ)ĝ² + γn`, `w ← w − η·ĝ/√(n + ε)`; γ 0.9, ε 1e-8 |
//!
//! Weight decay is clipped together with the gradient in Adam and RMSProp, and stays outside
//! the clip in SGD, AdaGrad and AdaDelta. It applies only to tensors with
//! [`Tensor::decay`](crate::Tensor::decay) set, as MXNet's name rule decays only weights and
//! batch-norm scales when the optimizer is created by name.
//!
//! Every update is element-wise, so splitting tensors into chunks for rayon cannot change a
//! result: runs are bit-identical whatever the thread count.

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;

use crate::network::kernels::simd_fn;
use crate::params::ParamSet;

/// Elements per rayon task. Element-wise updates make the split irrelevant to results.
const CHUNK_LEN: usize = 1 << 14;

/// MXNet's Adam `beta1`, the default of [`OptimizerConfig::adam_beta1`].
pub const ADAM_BETA1: f64 = 0.9;
const ADAM_BETA2: f32 = 0.999;
const ADAM_EPSILON: f32 = 1e-8;
const ADAGRAD_EPSILON: f32 = 1e-7;
const ADADELTA_RHO: f32 = 0.9;
/// MXNet computes `1 − ρ` in Python `f64` and hands the result to `f32` array operations.
const ADADELTA_ONE_MINUS_RHO: f32 = (1.0f64 - 0.9f64) as f32;
const ADADELTA_EPSILON: f32 = 1e-5;
const RMSPROP_GAMMA1: f32 = 0.9;
const RMSPROP_EPSILON: f32 = 1e-8;

/// The update rule, named as in SageMaker's `optimizer` hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OptimizerKind {
    /// Stochastic gradient descent without momentum.
    Sgd,
    /// Adam with MXNet's folding of the bias correction into the learning rate.
    Adam,
    /// AdaGrad.
    Adagrad,
    /// AdaDelta, SageMaker NTM's default; it ignores the learning rate.
    #[default]
    Adadelta,
    /// RMSProp in its plain (not centered) form.
    Rmsprop,
}

/// Error for a string that names no [`OptimizerKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown optimizer {value:?}; allowed: sgd, adam, adagrad, adadelta, rmsprop")]
pub struct ParseOptimizerKindError {
    /// The string as given.
    pub value: String,
}

impl FromStr for OptimizerKind {
    type Err = ParseOptimizerKindError;

    /// Parses `sgd`, `adam`, `adagrad`, `adadelta` or `rmsprop`, ignoring ASCII case and
    /// surrounding whitespace.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sgd" => Ok(Self::Sgd),
            "adam" => Ok(Self::Adam),
            "adagrad" => Ok(Self::Adagrad),
            "adadelta" => Ok(Self::Adadelta),
            "rmsprop" => Ok(Self::Rmsprop),
            _ => Err(ParseOptimizerKindError {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sgd => "sgd",
            Self::Adam => "adam",
            Self::Adagrad => "adagrad",
            Self::Adadelta => "adadelta",
            Self::Rmsprop => "rmsprop",
        })
    }
}

/// Settings shared by all five update rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerConfig {
    /// Update rule.
    pub kind: OptimizerKind,
    /// Learning rate `η`; AdaDelta ignores it.
    pub learning_rate: f32,
    /// Factor `r` applied to every raw gradient before clipping.
    pub rescale_grad: f32,
    /// Bound `c` for each gradient element. Clipping applies only when `c` is finite and
    /// at least 0, so infinity (SageMaker's default) means no clipping.
    pub clip_gradient: f32,
    /// L2 weight decay `λ`, applied only to tensors whose `decay` flag is set.
    pub weight_decay: f32,
    /// Adam's decay rate `β1` of the first moment ([`ADAM_BETA1`] by default), read only by Adam.
    /// It is an `f64` because MXNet computes the bias correction with the Python float.
    pub adam_beta1: f64,
}

impl Default for OptimizerConfig {
    /// SageMaker's defaults: AdaDelta, learning rate 0.001, no rescaling, clipping or decay.
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Adadelta,
            learning_rate: 0.001,
            rescale_grad: 1.0,
            clip_gradient: f32::INFINITY,
            weight_decay: 0.0,
            adam_beta1: ADAM_BETA1,
        }
    }
}

/// Per-tensor state, all buffers of the tensor's length.
#[derive(Debug, Clone)]
enum TensorState {
    Sgd,
    Adam {
        mean: Vec<f32>,
        var: Vec<f32>,
    },
    Adagrad {
        history: Vec<f32>,
    },
    Adadelta {
        acc_grad: Vec<f32>,
        acc_delta: Vec<f32>,
    },
    Rmsprop {
        mean_square: Vec<f32>,
    },
}

/// An optimizer with its per-tensor state for one [`ParamSet`] layout.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    states: Vec<TensorState>,
    num_update: u64,
}

impl Optimizer {
    /// Creates an optimizer with zero state for every tensor of `params`.
    ///
    /// Only the layout of `params` is read; later steps must pass sets with that layout.
    pub fn new(config: OptimizerConfig, params: &ParamSet) -> Self {
        let states = params
            .tensors
            .iter()
            .map(|tensor| {
                let zeros = || vec![0.0f32; tensor.len()];
                match config.kind {
                    OptimizerKind::Sgd => TensorState::Sgd,
                    OptimizerKind::Adam => TensorState::Adam {
                        mean: zeros(),
                        var: zeros(),
                    },
                    OptimizerKind::Adagrad => TensorState::Adagrad { history: zeros() },
                    OptimizerKind::Adadelta => TensorState::Adadelta {
                        acc_grad: zeros(),
                        acc_delta: zeros(),
                    },
                    OptimizerKind::Rmsprop => TensorState::Rmsprop {
                        mean_square: zeros(),
                    },
                }
            })
            .collect();
        Self {
            config,
            states,
            num_update: 0,
        }
    }

    /// Returns the current settings.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Returns the number of completed steps (`t` of the last step).
    pub fn num_update(&self) -> u64 {
        self.num_update
    }

    /// Sets the gradient factor `r` for the following steps.
    ///
    /// The trainer sets `r = rescale_gradient / batch_len` before each step, so that a
    /// gradient summed over a batch becomes a mean.
    pub fn set_rescale_grad(&mut self, r: f32) {
        self.config.rescale_grad = r;
    }

    /// Sets the learning rate for the following steps (for a schedule); AdaDelta ignores it.
    pub fn set_learning_rate(&mut self, learning_rate: f32) {
        self.config.learning_rate = learning_rate;
    }

    /// Applies one update to every tensor of `params` using the matching tensor of `grads`.
    ///
    /// # Panics
    /// When `params` or `grads` do not have the layout given to [`Optimizer::new`]
    /// (tensor count or lengths differ), which is a programming error.
    pub fn step(&mut self, params: &mut ParamSet, grads: &ParamSet) {
        assert_eq!(
            params.tensors.len(),
            self.states.len(),
            "optimizer built for {} tensors, got {} parameters",
            self.states.len(),
            params.tensors.len()
        );
        assert_eq!(
            grads.tensors.len(),
            self.states.len(),
            "optimizer built for {} tensors, got {} gradients",
            self.states.len(),
            grads.tensors.len()
        );
        self.num_update += 1;
        let config = self.config;
        let clip = clip_bound(config.clip_gradient);
        let adam_lr = adam_learning_rate(config.learning_rate, config.adam_beta1, self.num_update);
        let beta1 = config.adam_beta1 as f32;

        for ((param, grad), state) in params
            .tensors
            .iter_mut()
            .zip(&grads.tensors)
            .zip(&mut self.states)
        {
            assert_eq!(
                param.data.len(),
                grad.data.len(),
                "gradient of `{}` has {} values, the parameter has {}",
                param.name,
                grad.data.len(),
                param.data.len()
            );
            let wd = if param.decay {
                config.weight_decay
            } else {
                0.0
            };
            let w = param.data.as_mut_slice();
            let g = grad.data.as_slice();
            let r = config.rescale_grad;
            let lr = config.learning_rate;
            match state {
                TensorState::Sgd => {
                    w.par_chunks_mut(CHUNK_LEN)
                        .zip(g.par_chunks(CHUNK_LEN))
                        .for_each(|(w, g)| sgd_update(w, g, lr, r, clip, wd));
                }
                TensorState::Adam { mean, var } => {
                    assert_state_len(&param.name, mean.len(), w.len());
                    w.par_chunks_mut(CHUNK_LEN)
                        .zip(g.par_chunks(CHUNK_LEN))
                        .zip(mean.par_chunks_mut(CHUNK_LEN))
                        .zip(var.par_chunks_mut(CHUNK_LEN))
                        .for_each(|(((w, g), m), v)| {
                            adam_update(w, g, m, v, adam_lr, beta1, r, clip, wd)
                        });
                }
                TensorState::Adagrad { history } => {
                    assert_state_len(&param.name, history.len(), w.len());
                    w.par_chunks_mut(CHUNK_LEN)
                        .zip(g.par_chunks(CHUNK_LEN))
                        .zip(history.par_chunks_mut(CHUNK_LEN))
                        .for_each(|((w, g), h)| adagrad_update(w, g, h, lr, r, clip, wd));
                }
                TensorState::Adadelta {
                    acc_grad,
                    acc_delta,
                } => {
                    assert_state_len(&param.name, acc_grad.len(), w.len());
                    w.par_chunks_mut(CHUNK_LEN)
                        .zip(g.par_chunks(CHUNK_LEN))
                        .zip(acc_grad.par_chunks_mut(CHUNK_LEN))
                        .zip(acc_delta.par_chunks_mut(CHUNK_LEN))
                        .for_each(|(((w, g), a_g), a_d)| {
                            adadelta_update(w, g, a_g, a_d, r, clip, wd)
                        });
                }
                TensorState::Rmsprop { mean_square } => {
                    assert_state_len(&param.name, mean_square.len(), w.len());
                    w.par_chunks_mut(CHUNK_LEN)
                        .zip(g.par_chunks(CHUNK_LEN))
                        .zip(mean_square.par_chunks_mut(CHUNK_LEN))
                        .for_each(|((w, g), n)| rmsprop_update(w, g, n, lr, r, clip, wd));
                }
            }
        }
    }
}

fn assert_state_len(name: &str, state_len: usize, param_len: usize) {
    assert_eq!(
        state_len, param_len,
        "optimizer state of `{name}` has {state_len} values, the parameter has {param_len}"
    );
}

/// Returns the clip bound, or infinity when clipping is off (`c` negative, NaN or infinite).
fn clip_bound(c: f32) -> f32 {
    if c.is_finite() && c >= 0.0 {
        c
    } else {
        f32::INFINITY
    }
}

/// Clamps `x` to `[-c, c]` as MXNet does: NaN passes through, and `c = ∞` changes nothing.
#[inline(always)]
fn clip(x: f32, c: f32) -> f32 {
    if x > c {
        c
    } else if x < -c {
        -c
    } else {
        x
    }
}

/// Returns Adam's step-`t` learning rate `η·√(1 − β2^t)/(1 − β1^t)`, computed in `f64`
/// with Python's `β1` (`0.9` by default) and `0.999`, then rounded to `f32`.
fn adam_learning_rate(learning_rate: f32, beta1: f64, t: u64) -> f32 {
    let exponent = i32::try_from(t).unwrap_or(i32::MAX);
    let coef1 = 1.0 - beta1.powi(exponent);
    let coef2 = 1.0 - 0.999f64.powi(exponent);
    (f64::from(learning_rate) * coef2.sqrt() / coef1) as f32
}

simd_fn! {
fn sgd_update(w: &mut [f32], g: &[f32], lr: f32, r: f32, c: f32, wd: f32) {
    let keep = 1.0 - lr * wd;
    for (w, &g) in w.iter_mut().zip(g) {
        *w = keep * *w - lr * clip(r * g, c);
    }
}
}

simd_fn! {
#[allow(clippy::too_many_arguments)]
fn adam_update(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr_t: f32,
    beta1: f32,
    r: f32,
    c: f32,
    wd: f32,
) {
    let one_minus_beta1 = 1.0 - beta1;
    let one_minus_beta2 = 1.0 - ADAM_BETA2;
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g_hat = clip(g * r + *w * wd, c);
        *m = beta1 * *m + one_minus_beta1 * g_hat;
        *v = ADAM_BETA2 * *v + one_minus_beta2 * g_hat * g_hat;
        *w -= lr_t * *m / (v.sqrt() + ADAM_EPSILON);
    }
}
}

simd_fn! {
fn adagrad_update(w: &mut [f32], g: &[f32], h: &mut [f32], lr: f32, r: f32, c: f32, wd: f32) {
    for ((w, &g), h) in w.iter_mut().zip(g).zip(h.iter_mut()) {
        let g_hat = clip(g * r, c);
        *h += g_hat * g_hat;
        let div = g_hat / (*h + ADAGRAD_EPSILON).sqrt();
        *w += (div + *w * wd) * -lr;
    }
}
}

simd_fn! {
fn adadelta_update(
    w: &mut [f32],
    g: &[f32],
    acc_grad: &mut [f32],
    acc_delta: &mut [f32],
    r: f32,
    c: f32,
    wd: f32,
) {
    for (((w, &g), a_g), a_d) in w
        .iter_mut()
        .zip(g)
        .zip(acc_grad.iter_mut())
        .zip(acc_delta.iter_mut())
    {
        let g_hat = clip(g * r, c);
        *a_g = *a_g * ADADELTA_RHO + ADADELTA_ONE_MINUS_RHO * g_hat * g_hat;
        // sqrt(a / b) equals MXNet's sqrt(a) / sqrt(b) up to rounding and costs one square
        // root fewer, the most expensive operation of the update.
        let delta = ((*a_d + ADADELTA_EPSILON) / (*a_g + ADADELTA_EPSILON)).sqrt() * g_hat;
        *a_d = *a_d * ADADELTA_RHO + ADADELTA_ONE_MINUS_RHO * delta * delta;
        *w -= delta + wd * *w;
    }
}
}

simd_fn! {
fn rmsprop_update(w: &mut [f32], g: &[f32], n: &mut [f32], lr: f32, r: f32, c: f32, wd: f32) {
    let one_minus_gamma1 = 1.0 - RMSPROP_GAMMA1;
    for ((w, &g), n) in w.iter_mut().zip(g).zip(n.iter_mut()) {
        let g_hat = clip(r * g + wd * *w, c);
        *n = one_minus_gamma1 * g_hat * g_hat + RMSPROP_GAMMA1 * *n;
        *w -= lr * g_hat / (*n + RMSPROP_EPSILON).sqrt();
    }
}
}
