//! The neural topic model: hyperparameters, network, optimizers and training.
//!
//! 1. [`params`]: named flat `f32` tensors shared by the network, the optimizers and the artifact.

pub mod params;

pub use params::{ParamSet, Tensor};
