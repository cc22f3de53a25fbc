//! The seam between the trainer and the hardware that computes the network.
//!
//! The trainer owns the schedule: epochs, batches, noise, early stopping and checkpoints. A
//! [`Backend`] owns the arithmetic: the forward and backward passes of a batch, the loss in
//! inference mode, the topic weights, and the optimizer update. Each call covers a whole batch,
//! so a backend that keeps its buffers on an accelerator moves data once per batch rather than
//! once per product.
//!
//! [`CpuBackend`] is the one implementation today: the hand-written passes of
//! [`Network`](crate::network::Network) over flat `f32` buffers, `gemm` products and rayon
//! threads. The parameters and gradients cross the seam as host [`ParamSet`]s. Another backend
//! would therefore copy them to and from its own memory, or keep a device copy and write the
//! host copy back before the trainer reads it. The trainer reads the parameters at the end of
//! each epoch, for the best-epoch snapshot and the parameter check.

use ntm_formats::SparseRows;

use crate::network::{LossSums, Network, NetworkError, StepOptions, Workspace};
use crate::optim::{Optimizer, RowSupport};
use crate::params::ParamSet;

/// Computes training steps, losses and topic weights for the trainer.
///
/// Every method has the meaning of the [`Network`] method of the same name. An implementation
/// gives the results of [`CpuBackend`] up to floating-point rounding, and the same bits when
/// called again with the same inputs.
pub trait Backend {
    /// Returns a short lower-case name for logs, such as `cpu`.
    fn name(&self) -> &'static str;

    /// Runs one training step on `batch` and writes the gradient of the summed batch loss into
    /// `grads`, as [`Network::train_step_with`] does (batch-norm running statistics included).
    ///
    /// # Errors
    /// As [`Network::train_step_with`].
    fn train_step(
        &mut self,
        network: &mut Network,
        batch: &SparseRows,
        eps: &[f32],
        options: StepOptions<'_>,
        grads: &mut ParamSet,
    ) -> Result<LossSums, NetworkError>;

    /// Computes the loss sums of `batch` in inference mode, as [`Network::eval_loss`] does.
    ///
    /// # Errors
    /// As [`Network::eval_loss`].
    fn eval_loss(
        &mut self,
        network: &Network,
        batch: &SparseRows,
        eps: &[f32],
    ) -> Result<LossSums, NetworkError>;

    /// Writes the topic weights of every document of `batch` into `out`, as
    /// [`Network::topic_weights`] does.
    ///
    /// # Errors
    /// As [`Network::topic_weights`].
    fn topic_weights(
        &mut self,
        network: &Network,
        batch: &SparseRows,
        out: &mut Vec<f32>,
    ) -> Result<(), NetworkError>;

    /// Applies one update of `optimizer` to `params` with `grads`, as [`Optimizer::step`] does.
    fn update(&mut self, optimizer: &mut Optimizer, params: &mut ParamSet, grads: &ParamSet);
}

/// The CPU backend: the network's own passes, in the caller's rayon pool.
///
/// It contains the [`Workspace`] the passes reuse from batch to batch, so a warm backend allocates
/// no buffers of its own. After a training step it remembers which rows of the first layer's
/// weight gradient can be non-zero: those of the batch's words. The next update then reads and
/// writes only those rows of that weight where the optimizer allows it, and gives the bits of
/// the full update ([`Optimizer::step_with_support`]).
#[derive(Debug, Default, Clone)]
pub struct CpuBackend {
    workspace: Workspace,
    /// The first layer's weight position and row length after a successful training step on a
    /// non-empty batch; taken by the next update.
    first_layer: Option<(usize, usize)>,
}

impl CpuBackend {
    /// Creates a backend with an empty workspace; buffers are sized by the first batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the buffers of the last call, for example to read
    /// [`Workspace::present_words`] after a training step.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn train_step(
        &mut self,
        network: &mut Network,
        batch: &SparseRows,
        eps: &[f32],
        options: StepOptions<'_>,
        grads: &mut ParamSet,
    ) -> Result<LossSums, NetworkError> {
        self.first_layer = None;
        let sums = network.train_step_with(batch, eps, options, grads, &mut self.workspace)?;
        if batch.n_rows() > 0 {
            self.first_layer = Some(network.first_layer_rows());
        }
        Ok(sums)
    }

    fn eval_loss(
        &mut self,
        network: &Network,
        batch: &SparseRows,
        eps: &[f32],
    ) -> Result<LossSums, NetworkError> {
        network.eval_loss(batch, eps, &mut self.workspace)
    }

    fn topic_weights(
        &mut self,
        network: &Network,
        batch: &SparseRows,
        out: &mut Vec<f32>,
    ) -> Result<(), NetworkError> {
        network.topic_weights(batch, &mut self.workspace, out)
    }

    fn update(&mut self, optimizer: &mut Optimizer, params: &mut ParamSet, grads: &ParamSet) {
        let support = self.first_layer.take().map(|(tensor, row_len)| RowSupport {
            tensor,
            row_len,
            rows: self.workspace.present_words(),
        });
        optimizer.step_with_support(params, grads, support);
    }
}
