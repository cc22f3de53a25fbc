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
//!
//! A step may name the rows of one tensor outside which the gradient is zero
//! ([`RowSupport`]), as the sparse first encoder layer gives. Without weight decay, a zero
//! gradient leaves the weight of SGD, AdaGrad, AdaDelta and RMSProp unchanged, and AdaDelta's
//! and RMSProp's accumulators only shrink by a constant factor. Those rules then update only
//! the named rows, and every other row keeps a count of the shrink steps it owes. A row applies
//! them, one multiplication at a time, when it is next named or at the next step that names no
//! rows. The results are the bits of the dense update, which reads and writes every row.

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

/// The rows of one tensor outside which a gradient is zero.
///
/// The tensor is read as rows of `row_len` values. `rows` lists, in increasing order and without
/// repeats, every row whose gradient may contain a non-zero value. The first encoder layer's
/// weight gradient has this form, with the words of the batch as rows
/// ([`Workspace::present_words`](crate::Workspace::present_words)).
#[derive(Debug, Clone, Copy)]
pub struct RowSupport<'a> {
    /// Index of the tensor in the parameter set.
    pub tensor: usize,
    /// Values per row.
    pub row_len: usize,
    /// The rows whose gradient may be non-zero, sorted.
    pub rows: &'a [u32],
}

/// An optimizer with its per-tensor state for one [`ParamSet`] layout.
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    states: Vec<TensorState>,
    /// Per tensor, when rows of its state are behind: for each row, the update count up to which
    /// its accumulators are current (see [`RowSupport`]).
    stamps: Vec<Option<RowStamps>>,
    num_update: u64,
}

/// Rows of one tensor whose accumulators may owe shrink steps.
#[derive(Debug, Clone)]
struct RowStamps {
    row_len: usize,
    /// For each row, the last update count its accumulators include.
    current_at: Vec<u64>,
}

impl Optimizer {
    /// Creates an optimizer with zero state for every tensor of `params`.
    ///
    /// Only the layout of `params` is read; later steps must pass sets with that layout.
    pub fn new(config: OptimizerConfig, params: &ParamSet) -> Self {
        let states: Vec<TensorState> = params
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
            stamps: vec![None; states.len()],
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
        self.step_with_support(params, grads, None);
    }

    /// [`Optimizer::step`] for gradients that are zero outside the rows `support` names.
    ///
    /// The result has the same bits as [`Optimizer::step`]. Without weight decay on the tensor,
    /// SGD, AdaGrad, AdaDelta and RMSProp read and write only the named rows of it (see the
    /// module documentation); Adam, and any rule with weight decay, update every row.
    ///
    /// # Panics
    /// As [`Optimizer::step`], and when `support` names a tensor that does not exist, a row
    /// length that does not divide the tensor, or rows out of order or out of range.
    pub fn step_with_support(
        &mut self,
        params: &mut ParamSet,
        grads: &ParamSet,
        support: Option<RowSupport<'_>>,
    ) {
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
        if let Some(support) = &support {
            check_support(support, params);
        }
        self.num_update += 1;
        let t = self.num_update;
        let config = self.config;
        let clip = clip_bound(config.clip_gradient);
        let adam_lr = adam_learning_rate(config.learning_rate, config.adam_beta1, t);
        let beta1 = config.adam_beta1 as f32;

        for (index, (((param, grad), state), stamps)) in params
            .tensors
            .iter_mut()
            .zip(&grads.tensors)
            .zip(&mut self.states)
            .zip(&mut self.stamps)
            .enumerate()
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
            let rows = support
                .filter(|s| s.tensor == index && wd == 0.0)
                .filter(|_| !matches!(state, TensorState::Adam { .. }));
            if let Some(support) = rows {
                let stamps = stamps.get_or_insert_with(|| RowStamps {
                    row_len: support.row_len,
                    current_at: vec![t - 1; w.len() / support.row_len.max(1)],
                });
                if stamps.row_len == support.row_len {
                    let rule = RowRule {
                        t,
                        lr,
                        r,
                        clip,
                        rows: support.rows,
                        row_len: support.row_len,
                    };
                    rule.update(state, w, g, &mut stamps.current_at);
                    continue;
                }
            }
            if let Some(stamps) = stamps.take() {
                catch_up(state, &stamps, t);
            }
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

/// Rows per rayon task of a row-sparse update.
const ROWS_PER_TASK: usize = 64;

/// Checks that `support` fits the layout of `params`.
fn check_support(support: &RowSupport<'_>, params: &ParamSet) {
    let tensor = params.tensors.get(support.tensor).unwrap_or_else(|| {
        panic!(
            "row support names tensor {}, which does not exist",
            support.tensor
        )
    });
    assert!(
        support.row_len > 0 && tensor.data.len().is_multiple_of(support.row_len),
        "row length {} does not divide the {} values of `{}`",
        support.row_len,
        tensor.data.len(),
        tensor.name
    );
    let n_rows = tensor.data.len() / support.row_len;
    assert!(
        support.rows.windows(2).all(|p| p[0] < p[1])
            && support
                .rows
                .last()
                .is_none_or(|&row| (row as usize) < n_rows),
        "row support of `{}` is not a sorted list of rows below {n_rows}",
        tensor.name
    );
}

/// One row-sparse update of a tensor without weight decay (see [`RowSupport`]).
struct RowRule<'a> {
    /// The update count of this step.
    t: u64,
    lr: f32,
    r: f32,
    clip: f32,
    rows: &'a [u32],
    row_len: usize,
}

impl RowRule<'_> {
    /// Updates the named rows of `w`, first bringing their accumulators up to step `t - 1`.
    fn update(&self, state: &mut TensorState, w: &mut [f32], g: &[f32], current_at: &mut [u64]) {
        let chunk = ROWS_PER_TASK * self.row_len;
        let tasks = w
            .par_chunks_mut(chunk)
            .zip(g.par_chunks(chunk))
            .zip(current_at.par_chunks_mut(ROWS_PER_TASK))
            .enumerate();
        let (lr, r, c) = (self.lr, self.r, self.clip);
        match state {
            TensorState::Sgd => tasks.for_each(|(task, ((w, g), _))| {
                for (_, span) in self.runs(task) {
                    sgd_update(&mut w[span.clone()], &g[span], lr, r, c, 0.0);
                }
            }),
            TensorState::Adagrad { history } => {
                tasks
                    .zip(history.par_chunks_mut(chunk))
                    .for_each(|((task, ((w, g), _)), h)| {
                        for (_, span) in self.runs(task) {
                            let (w, g, h) = (&mut w[span.clone()], &g[span.clone()], &mut h[span]);
                            adagrad_update(w, g, h, lr, r, c, 0.0);
                        }
                    });
            }
            TensorState::Adadelta {
                acc_grad,
                acc_delta,
            } => {
                tasks
                    .zip(acc_grad.par_chunks_mut(chunk))
                    .zip(acc_delta.par_chunks_mut(chunk))
                    .for_each(|(((task, ((w, g), current_at)), a_g), a_d)| {
                        for (rows, span) in self.runs(task) {
                            self.pay_owed(
                                rows.clone(),
                                current_at,
                                &mut [&mut a_g[..], &mut a_d[..]],
                                ADADELTA_RHO,
                            );
                            let (a_g, a_d) = (&mut a_g[span.clone()], &mut a_d[span.clone()]);
                            adadelta_update(&mut w[span.clone()], &g[span], a_g, a_d, r, c, 0.0);
                        }
                    });
            }
            TensorState::Rmsprop { mean_square } => {
                tasks.zip(mean_square.par_chunks_mut(chunk)).for_each(
                    |((task, ((w, g), current_at)), n)| {
                        for (rows, span) in self.runs(task) {
                            self.pay_owed(
                                rows.clone(),
                                current_at,
                                &mut [&mut n[..]],
                                RMSPROP_GAMMA1,
                            );
                            let n = &mut n[span.clone()];
                            rmsprop_update(&mut w[span.clone()], &g[span], n, lr, r, c, 0.0);
                        }
                    },
                );
            }
            TensorState::Adam { .. } => {
                unreachable!("Adam moves every weight and is never row-sparse")
            }
        }
    }

    /// Shrinks the accumulator rows `rows` (indices within a task's block) by the steps each
    /// owes, and marks them current at this step.
    fn pay_owed(
        &self,
        rows: std::ops::Range<usize>,
        current_at: &mut [u64],
        buffers: &mut [&mut [f32]],
        factor: f32,
    ) {
        let len = self.row_len;
        for row in rows {
            let owed = self.t - 1 - current_at[row];
            if owed > 0 {
                for buffer in buffers.iter_mut() {
                    shrink(&mut buffer[row * len..(row + 1) * len], factor, owed);
                }
            }
            current_at[row] = self.t;
        }
    }

    /// Lists the runs of consecutive named rows inside task `task`'s block of rows, each as its
    /// row indices within the block and the range of its values.
    fn runs(
        &self,
        task: usize,
    ) -> impl Iterator<Item = (std::ops::Range<usize>, std::ops::Range<usize>)> + '_ {
        let first = task * ROWS_PER_TASK;
        let start = self.rows.partition_point(|&row| (row as usize) < first);
        let end = self
            .rows
            .partition_point(|&row| (row as usize) < first + ROWS_PER_TASK);
        let mut rows = self.rows[start..end]
            .iter()
            .map(move |&row| row as usize - first)
            .peekable();
        let len = self.row_len;
        std::iter::from_fn(move || {
            let begin = rows.next()?;
            let mut stop = begin + 1;
            while rows.next_if_eq(&stop).is_some() {
                stop += 1;
            }
            Some((begin..stop, begin * len..stop * len))
        })
    }
}

/// Brings every row of a tensor's accumulators up to step `t - 1`.
fn catch_up(state: &mut TensorState, stamps: &RowStamps, t: u64) {
    let (factor, buffers): (f32, Vec<&mut Vec<f32>>) = match state {
        TensorState::Adadelta {
            acc_grad,
            acc_delta,
        } => (ADADELTA_RHO, vec![acc_grad, acc_delta]),
        TensorState::Rmsprop { mean_square } => (RMSPROP_GAMMA1, vec![mean_square]),
        TensorState::Sgd | TensorState::Adagrad { .. } | TensorState::Adam { .. } => return,
    };
    for buffer in buffers {
        buffer
            .par_chunks_mut(stamps.row_len)
            .zip(&stamps.current_at)
            .for_each(|(row, &current_at)| shrink(row, factor, t - 1 - current_at));
    }
}

simd_fn! {
/// Multiplies every value of `values` by `factor`, `times` times over, rounding after each
/// multiplication as the dense update does when its gradient is zero.
fn shrink(values: &mut [f32], factor: f32, times: u64) {
    for _ in 0..times {
        for x in values.iter_mut() {
            *x *= factor;
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
