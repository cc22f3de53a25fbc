//! The neural topic model: hyperparameters, network, optimizers and training.
//!
//! 1. [`params`]: named flat `f32` tensors shared by the network, the optimizers and the artifact.
//! 2. [`hyperparams`]: SageMaker NTM hyperparameters, parsed from strings and validated.
//! 3. [`optim`]: the five MXNet 1.x update rules (SGD, Adam, AdaGrad, AdaDelta, RMSProp).
//! 4. [`early_stopping`]: the patience rule on the per-epoch loss and its log lines.
//! 5. [`network`]: the VAE network with hand-written forward and backward passes.
//! 6. [`batches`]: channels in memory or streamed, and the mini-batches drawn from them.
//! 7. [`trainer`]: epochs, sub-sampling, mini-batches, validation and early stopping.
//! 8. [`artifact`]: the model file, `model.tar.gz`, and its folder form.

pub mod artifact;
pub mod backend;
pub mod batches;
pub mod early_stopping;
pub mod hyperparams;
pub mod network;
pub mod optim;
pub mod params;
pub mod trainer;

pub use backend::{Backend, CpuBackend};
pub use early_stopping::{BestEpoch, EarlyStopping, EpochDecision};
pub use hyperparams::{
    Activation, EncoderLayers, HyperparameterBuilder, HyperparameterError, Hyperparameters,
    RestartSelection,
};
pub use network::{LossSums, Network, NetworkConfig, NetworkError, Workspace};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind, RowSupport};
pub use params::{ParamSet, Tensor};
