//! Forward and backward passes of the encoder non-linearities.
//!
//! The enum itself is [`crate::hyperparams::Activation`], shared with the hyperparameters.

use super::kernels::{fast_exp, simd_fn};
use crate::hyperparams::Activation;

/// Replaces every value `a` of `values` by `act(a)`.
pub(crate) fn apply(activation: Activation, values: &mut [f32]) {
    match activation {
        Activation::Sigmoid => sigmoid(values),
        Activation::Tanh => values.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        // max(a, 0) + ln(1 + e^-|a|) never overflows.
        Activation::Softplus => values
            .iter_mut()
            .for_each(|v| *v = v.max(0.0) + (-v.abs()).exp().ln_1p()),
    }
}

simd_fn! {
    /// Replaces each value `a` by the logistic function `1 / (1 + e^-a)`, using [`fast_exp`] so
    /// that the loop vectorises. Large negative inputs give a tiny positive value rather than 0,
    /// since `fast_exp` clamps instead of overflowing.
    fn sigmoid(values: &mut [f32]) {
        for v in values.iter_mut() {
            *v = 1.0 / (1.0 + fast_exp(-*v));
        }
    }
}

/// Multiplies the output gradient `grad` by `act'(a)`, written in terms of the output `y = act(a)`.
///
/// The ReLU derivative is 1 where `y > 0` and 0 elsewhere, including at exactly 0. The softplus
/// derivative is the logistic function of the input, which is `1 - e^-y` at the output `y`.
pub(crate) fn backward(activation: Activation, outputs: &[f32], grad: &mut [f32]) {
    debug_assert_eq!(outputs.len(), grad.len());
    match activation {
        Activation::Sigmoid => sigmoid_backward(outputs, grad),
        Activation::Tanh => {
            for (g, &y) in grad.iter_mut().zip(outputs) {
                *g *= 1.0 - y * y;
            }
        }
        Activation::Relu => {
            for (g, &y) in grad.iter_mut().zip(outputs) {
                if y <= 0.0 {
                    *g = 0.0;
                }
            }
        }
        Activation::Softplus => {
            for (g, &y) in grad.iter_mut().zip(outputs) {
                *g *= -(-y).exp_m1();
            }
        }
    }
}

simd_fn! {
    /// Multiplies `grad` by the sigmoid's derivative `y (1 - y)` at the outputs `y`.
    fn sigmoid_backward(outputs: &[f32], grad: &mut [f32]) {
        for (g, &y) in grad.iter_mut().zip(outputs) {
            *g *= y * (1.0 - y);
        }
    }
}
