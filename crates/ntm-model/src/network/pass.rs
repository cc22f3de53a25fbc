//! Forward and backward passes over a batch, and the reusable buffers they work in.

use ntm_formats::SparseRows;
use rayon::prelude::*;

use super::batchnorm::{self, BatchStats};
use super::kernels::{self, column_sums, fast_exp, fast_exp_nonpositive, matmul, simd_fn, MatRef};
use super::sparse::{self, ColumnIndex};
use super::{LossSums, Network, NetworkError, StepOptions, LOG_SIGMA_MAX, LOG_SIGMA_MIN};
use crate::params::{ParamSet, Tensor};

/// Decoder rows (documents) handled per rayon task. Rows are independent, so this only sets the
/// task size, never the result.
const DECODER_ROWS_PER_TASK: usize = 4;

/// Rows per shard of a data-parallel training step (see [`shard_count`]).
const SHARD_ROWS: usize = 128;
/// Maximum number of shards in one training step.
const MAX_SHARDS: usize = 8;
/// Gradient values summed per rayon task when the shards' gradients are added up.
const REDUCE_CHUNK: usize = 1 << 14;

/// Returns the `log_sigma` that the linear KL term `2 log_sigma` reads: itself up to
/// [`LOG_SIGMA_MAX`], mirrored about it above. Past the clamp, `exp` takes the clamped value,
/// and the mirrored linear term makes the KL rise with slope 1 instead of falling, so the
/// gradient pulls `log_sigma` back into the range.
fn reflect_above_max(log_sigma: f64) -> f64 {
    let max = f64::from(LOG_SIGMA_MAX);
    log_sigma.min(2.0 * max - log_sigma)
}

/// Returns how many shards a training batch of `rows` documents is split into: one per full
/// [`SHARD_ROWS`] documents, at least 1 and at most [`MAX_SHARDS`].
///
/// The count depends on the batch size only, never on the number of threads, so one and several
/// threads compute the same sums in the same order.
fn shard_count(rows: usize) -> usize {
    (rows / SHARD_ROWS).clamp(1, MAX_SHARDS)
}

/// One shard of a data-parallel step: its documents, buffers, gradient and loss sums.
#[derive(Debug, Clone)]
struct Shard {
    batch: SparseRows,
    ws: Workspace,
    grads: ParamSet,
    sums: LossSums,
}

impl Default for Shard {
    fn default() -> Self {
        Self {
            batch: SparseRows::new(0),
            ws: Workspace::default(),
            grads: ParamSet::default(),
            sums: LossSums::default(),
        }
    }
}

/// Reusable buffers for the passes. They grow to the largest batch seen and are then reused, so
/// a step with a warm workspace allocates none of its own buffers (`gemm` and rayon may still
/// allocate internally).
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    /// Per encoder layer: the affine output `h_{l-1} W_l + b_l`, B x width.
    pre: Vec<Vec<f32>>,
    /// Per encoder layer: the normalised affine output (training with batch norm only).
    xhat: Vec<Vec<f32>>,
    /// Per encoder layer: the activation output `h_l`.
    hidden: Vec<Vec<f32>>,
    stats: Vec<BatchStats>,
    mu: Vec<f32>,
    /// `log_sigma` as the head computes it, unclamped.
    log_sigma: Vec<f32>,
    /// 1 where `log_sigma` was inside the clamp range, else 0.
    inside: Vec<f32>,
    /// `exp` of `log_sigma` clamped to [`LOG_SIGMA_MIN`, `LOG_SIGMA_MAX`].
    sigma: Vec<f32>,
    theta: Vec<f32>,
    /// B x V: the logits, then `exp(u - max)`. The logit gradient is `N p - x =
    /// scale * exp(u - max) - x`, which the backward pass never writes out: it applies the
    /// per-row scale to the small factors and the sparse `x` term separately.
    logits: Vec<f32>,
    /// Per document: `N / sum_v exp(u_v - max)`, so that `N p = scale * exp(u - max)`.
    row_scale: Vec<f32>,
    row_recons: Vec<f64>,
    /// B x (K + 1): `scale * theta` with `scale` appended to each row.
    theta_scaled: Vec<f32>,
    /// (K + 1) x V: `theta_scaled^T E'`, the decoder weight gradient (transposed) with the
    /// decoder-bias gradient as its last row. This orientation gives the product V output
    /// columns, which fill whole vectors, where `E'^T theta_scaled` would give it K + 1.
    decoder_grad: Vec<f32>,
    /// K x V: the decoder weight transposed once per sharded step, so that every shard's
    /// forward product reads it row by row.
    decoder_t: Vec<f32>,
    grad_theta: Vec<f32>,
    grad_mu: Vec<f32>,
    grad_log_sigma: Vec<f32>,
    grad_hidden: Vec<f32>,
    grad_prev: Vec<f32>,
    acc: Vec<f64>,
    columns: ColumnIndex,
    /// Decoder batch norm only: B x V logits `theta W_d^T` before normalisation.
    dec_pre: Vec<f32>,
    /// Decoder batch norm only: B x V normalised logits of the last training pass.
    dec_xhat: Vec<f32>,
    dec_stats: BatchStats,
    /// Decoder batch norm only: V ones (the fixed scale) and V zeros (the shift is the bias).
    ones: Vec<f32>,
    zeros: Vec<f32>,
    /// Decoder batch norm only: the unused gradient of the fixed scale.
    dec_gamma_grad: Vec<f32>,
    /// Head batch norm only: the head's affine output before normalisation, B x K.
    head_pre: Vec<f32>,
    /// Head batch norm only: the normalised `mu` and log-variance of the last training pass.
    head_xhat: [Vec<f32>; 2],
    head_stats: [BatchStats; 2],
    /// Head batch norm only: K ones (the fixed scale), K zeros (the fixed shift) and the unused
    /// gradients of both (2 K).
    head_ones: Vec<f32>,
    head_zeros: Vec<f32>,
    head_unused: Vec<f32>,
    /// Mixed decoder only: per document, the plain decoder's reconstruction loss and scale.
    plain_recons: Vec<f64>,
    plain_scale: Vec<f32>,
    /// Mixed decoder only: V column sums of the plain decoder's logit gradient.
    plain_bias_grad: Vec<f32>,
    /// Theta dropout only: `softmax(z)` before dropout.
    theta_soft: Vec<f32>,
    /// Theta dropout only: 0 for a dropped proportion, `1 / (1 - p)` for a kept one.
    keep: Vec<f32>,
    /// The shards of the last data-parallel training step.
    shards: Vec<Shard>,
}

impl Workspace {
    /// Creates an empty workspace; buffers are sized on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the sorted ids of the words present in the batch of the last
    /// [`Network::train_step`]: the only rows of `encoder.0.weight`'s gradient that can be non-zero.
    pub fn present_words(&self) -> &[u32] {
        &self.columns.words
    }

    fn resize(&mut self, rows: usize, widths: &[usize], k: usize) {
        let layers = widths.len();
        self.pre.resize_with(layers, Vec::new);
        self.xhat.resize_with(layers, Vec::new);
        self.hidden.resize_with(layers, Vec::new);
        self.stats.resize_with(layers, BatchStats::default);
        for (l, &w) in widths.iter().enumerate() {
            self.pre[l].resize(rows * w, 0.0);
            self.xhat[l].resize(rows * w, 0.0);
            self.hidden[l].resize(rows * w, 0.0);
        }
        for buf in [
            &mut self.mu,
            &mut self.log_sigma,
            &mut self.inside,
            &mut self.sigma,
            &mut self.theta,
            &mut self.grad_theta,
            &mut self.grad_mu,
            &mut self.grad_log_sigma,
        ] {
            buf.resize(rows * k, 0.0);
        }
        self.row_recons.resize(rows, 0.0);
        self.row_scale.resize(rows, 0.0);
    }
}

impl Network {
    /// Runs one training step: the forward pass with batch statistics and the backward pass.
    ///
    /// Writes into `grads` (layout of [`Network::params`], every value overwritten) the gradient
    /// of the sum over the batch of `recons + kld`, moves the batch-norm running statistics, and
    /// returns the loss sums. `eps` is the B x K standard-normal noise, row-major. Rows of
    /// `encoder.0.weight`'s gradient for words absent from the batch are zero
    /// ([`Workspace::present_words`] lists the others). An empty batch gives zero sums and
    /// zero gradients and leaves the running statistics unchanged.
    ///
    /// # Errors
    /// [`NetworkError::InvalidConfig`], [`NetworkError::FeatureDim`],
    /// [`NetworkError::EpsLength`], or a layout error when `self.params` or `grads` does not
    /// match the configuration.
    pub fn train_step(
        &mut self,
        batch: &SparseRows,
        eps: &[f32],
        grads: &mut ParamSet,
        ws: &mut Workspace,
    ) -> Result<LossSums, NetworkError> {
        self.train_step_with(batch, eps, StepOptions::default(), grads, ws)
    }

    /// [`Network::train_step`] with a KL weight and the theta-dropout uniforms (see
    /// [`StepOptions`]). The gradient is of `recons + kl_weight * kld`; the returned sums hold
    /// the unweighted KL.
    ///
    /// # Errors
    /// As [`Network::train_step`], and [`NetworkError::DropoutLength`] when `theta_dropout > 0`
    /// and the uniforms are missing or not B x K.
    pub fn train_step_with(
        &mut self,
        batch: &SparseRows,
        eps: &[f32],
        options: StepOptions<'_>,
        grads: &mut ParamSet,
        ws: &mut Workspace,
    ) -> Result<LossSums, NetworkError> {
        self.check_inputs(batch, eps)?;
        self.check_layout("gradients", grads)?;
        let dropout = self.extensions.theta_dropout > 0.0;
        if dropout {
            let expected = batch.n_rows() * self.config.num_topics;
            let found = options.dropout_uniforms.map(<[f32]>::len);
            if found != Some(expected) {
                return Err(NetworkError::DropoutLength { expected, found });
            }
        }
        if batch.n_rows() == 0 {
            grads.fill_zero();
            return Ok(LossSums::default());
        }
        let uniforms = if dropout {
            options.dropout_uniforms
        } else {
            None
        };
        let shards = shard_count(batch.n_rows());
        let batch_statistics = self.config.batch_norm
            || self.extensions.head_batch_norm
            || self.extensions.decoder_bn_active();
        if shards > 1 && !batch_statistics {
            return Ok(self.sharded_step(
                batch,
                eps,
                options.kl_weight,
                uniforms,
                grads,
                ws,
                shards,
            ));
        }
        self.encode(batch, ws, true);
        if self.config.batch_norm {
            for l in 0..self.config.encoder_layers.len() {
                let (mean, var) = self.running.tensors.split_at_mut(2 * l + 1);
                batchnorm::update_running(&ws.stats[l], &mut mean[2 * l].data, &mut var[0].data);
            }
        }
        if self.extensions.head_batch_norm {
            let start = self.head_running_start();
            for (h, stats) in ws.head_stats.iter().enumerate() {
                let (mean, var) = self.running.tensors.split_at_mut(start + 2 * h + 1);
                batchnorm::update_running(stats, &mut mean[start + 2 * h].data, &mut var[0].data);
            }
        }
        let sums = self.decode(batch, eps, ws, true, uniforms, None);
        if self.extensions.decoder_bn_active() {
            let n = self.running.tensors.len();
            let (mean, var) = self.running.tensors.split_at_mut(n - 1);
            batchnorm::update_running(&ws.dec_stats, &mut mean[n - 2].data, &mut var[0].data);
        }
        self.backward(
            batch,
            eps,
            grads,
            ws,
            options.kl_weight,
            uniforms.is_some(),
            true,
        );
        Ok(sums)
    }

    /// Runs a training step as `shards` independent steps over consecutive row ranges of the
    /// batch, in parallel, then adds up their gradients and loss sums in shard order.
    ///
    /// Without batch normalisation every document's forward and backward pass depends only on
    /// that document, so the result is the step over the whole batch, with the sums over the
    /// batch taken shard by shard. Each thread computes whole shards, which needs far less
    /// synchronisation than splitting every product and loop of one pass.
    #[allow(clippy::too_many_arguments)]
    fn sharded_step(
        &self,
        batch: &SparseRows,
        eps: &[f32],
        kl_weight: f32,
        uniforms: Option<&[f32]>,
        grads: &mut ParamSet,
        ws: &mut Workspace,
        shards: usize,
    ) -> LossSums {
        let rows = batch.n_rows();
        let k = self.config.num_topics;
        let per_shard = rows.div_ceil(shards);
        let shards = rows.div_ceil(per_shard);
        let first = self.index().layer_weight(0);
        ws.shards.resize_with(shards, Shard::default);
        for (s, shard) in ws.shards[..shards].iter_mut().enumerate() {
            shard.batch.clear(batch.n_cols());
            for r in s * per_shard..((s + 1) * per_shard).min(rows) {
                shard.batch.push_row_from(batch, r);
            }
            let same_layout = shard.grads.tensors.len() == grads.tensors.len()
                && shard
                    .grads
                    .tensors
                    .iter()
                    .zip(&grads.tensors)
                    .enumerate()
                    .all(|(t, (a, b))| t == first || a.data.len() == b.data.len());
            if !same_layout {
                // A shard never computes the first layer's weight gradient (see below), so its
                // copy of that tensor, V x H, stays empty.
                let tensors = grads.tensors.iter().enumerate().map(|(t, g)| {
                    if t == first {
                        Tensor::zeros(g.name.clone(), &[0], g.decay)
                    } else {
                        Tensor::zeros(g.name.clone(), &g.shape, g.decay)
                    }
                });
                shard.grads = ParamSet {
                    tensors: tensors.collect(),
                };
            }
        }
        let v = self.config.feature_dim;
        ws.decoder_t.resize(k * v, 0.0);
        let decoder = &self.params.tensors[self.index().decoder_weight].data;
        kernels::transpose(decoder, v, k, k, &mut ws.decoder_t, v);
        let decoder_t = &ws.decoder_t;
        ws.shards[..shards]
            .par_iter_mut()
            .enumerate()
            .for_each(|(s, shard)| {
                let span = s * per_shard * k..(s * per_shard + shard.batch.n_rows()) * k;
                let eps = &eps[span.clone()];
                let uniforms = uniforms.map(|u| &u[span]);
                kernels::serial(|| {
                    self.encode(&shard.batch, &mut shard.ws, true);
                    shard.sums = self.decode(
                        &shard.batch,
                        eps,
                        &mut shard.ws,
                        true,
                        uniforms,
                        Some(decoder_t),
                    );
                    self.backward(
                        &shard.batch,
                        eps,
                        &mut shard.grads,
                        &mut shard.ws,
                        kl_weight,
                        uniforms.is_some(),
                        false,
                    );
                });
            });

        // The first layer's weight gradient is sparse, so it is computed once for the whole
        // batch from the shards' output gradients instead of being added up over dense copies.
        let width = self.config.encoder_layers[0];
        ws.grad_hidden.clear();
        for shard in &ws.shards[..shards] {
            let n = shard.batch.n_rows() * width;
            ws.grad_hidden.extend_from_slice(&shard.ws.grad_hidden[..n]);
        }
        sparse::weight_grad(
            batch,
            &ws.grad_hidden,
            &mut grads.tensors[first].data,
            &mut ws.columns,
        );

        let done = &ws.shards[..shards];
        grads
            .tensors
            .par_iter_mut()
            .enumerate()
            .filter(|&(t, _)| t != first)
            .for_each(|(t, total)| {
                total
                    .data
                    .par_chunks_mut(REDUCE_CHUNK)
                    .enumerate()
                    .for_each(|(c, out)| {
                        let span = c * REDUCE_CHUNK..c * REDUCE_CHUNK + out.len();
                        let part = |s: usize| &done[s].grads.tensors[t].data[span.clone()];
                        add_into(out, part(0), part(1));
                        for s in 2..done.len() {
                            add_assign(out, part(s));
                        }
                    });
            });
        let mut sums = LossSums::default();
        for shard in done {
            sums.add(&shard.sums);
        }
        sums
    }

    /// Computes the loss sums in inference mode (running batch-norm statistics) with the given
    /// noise `eps` (B x K), without gradients.
    ///
    /// # Errors
    /// As [`Network::train_step`], without the gradient checks.
    pub fn eval_loss(
        &self,
        batch: &SparseRows,
        eps: &[f32],
        ws: &mut Workspace,
    ) -> Result<LossSums, NetworkError> {
        self.check_inputs(batch, eps)?;
        if batch.n_rows() == 0 {
            return Ok(LossSums::default());
        }
        self.encode(batch, ws, false);
        Ok(self.decode(batch, eps, ws, false, None, None))
    }

    /// Writes into `out` the topic weights `softmax(mu)` of each document in inference mode,
    /// B x K row-major; each row is non-negative and sums to 1.
    ///
    /// # Errors
    /// [`NetworkError::InvalidConfig`], [`NetworkError::FeatureDim`], or a layout error when
    /// `self.params` does not match the configuration.
    pub fn topic_weights(
        &self,
        batch: &SparseRows,
        ws: &mut Workspace,
        out: &mut Vec<f32>,
    ) -> Result<(), NetworkError> {
        self.check_layout("params", &self.params)?;
        self.check_batch(batch)?;
        out.clear();
        if batch.n_rows() == 0 {
            return Ok(());
        }
        self.encode(batch, ws, false);
        let k = self.config.num_topics;
        out.extend_from_slice(&ws.mu[..batch.n_rows() * k]);
        for row in out.chunks_exact_mut(k) {
            softmax_in_place(row);
        }
        Ok(())
    }

    fn check_batch(&self, batch: &SparseRows) -> Result<(), NetworkError> {
        if batch.n_cols() != self.config.feature_dim {
            return Err(NetworkError::FeatureDim {
                expected: self.config.feature_dim,
                found: batch.n_cols(),
            });
        }
        Ok(())
    }

    fn check_inputs(&self, batch: &SparseRows, eps: &[f32]) -> Result<(), NetworkError> {
        self.check_layout("params", &self.params)?;
        self.extensions.validate()?;
        let widths = &self.config.encoder_layers;
        let encoder_running = if self.config.batch_norm {
            2 * widths.len()
        } else {
            0
        };
        let head_running = 4 * usize::from(self.extensions.head_batch_norm);
        let expected =
            encoder_running + head_running + 2 * usize::from(self.extensions.decoder_batch_norm);
        if self.running.tensors.len() != expected {
            return Err(NetworkError::TensorCount {
                set: "running",
                expected,
                found: self.running.tensors.len(),
            });
        }
        // Running statistics come in (mean, variance) pairs, one pair per encoder layer.
        for (i, t) in self.running.tensors.iter().enumerate() {
            let width = if i < encoder_running {
                widths[i / 2]
            } else if i < encoder_running + head_running {
                self.config.num_topics
            } else {
                self.config.feature_dim
            };
            if t.shape.as_slice() != [width] || t.data.len() != width {
                return Err(NetworkError::TensorShape {
                    set: "running",
                    name: t.name.clone(),
                    expected: vec![width],
                    found: t.shape.clone(),
                    len: t.data.len(),
                });
            }
        }
        self.check_batch(batch)?;
        let expected = batch.n_rows() * self.config.num_topics;
        if eps.len() != expected {
            return Err(NetworkError::EpsLength {
                expected,
                found: eps.len(),
            });
        }
        Ok(())
    }

    /// Runs the encoder and the two heads: fills `ws.hidden`, `ws.mu`, `ws.log_sigma`,
    /// `ws.sigma` and `ws.inside`.
    fn encode(&self, batch: &SparseRows, ws: &mut Workspace, training: bool) {
        let rows = batch.n_rows();
        let (k, widths) = (self.config.num_topics, &self.config.encoder_layers);
        let index = self.index();
        let p = &self.params.tensors;
        ws.resize(rows, widths, k);

        for (l, &width) in widths.iter().enumerate() {
            {
                let pre = &mut ws.pre[l][..rows * width];
                let bias = &p[index.layer_bias(l)].data;
                let weight = &p[index.layer_weight(l)].data;
                if l == 0 {
                    sparse::forward(batch, weight, bias, pre);
                } else {
                    let fan_in = widths[l - 1];
                    for row in pre.chunks_exact_mut(width) {
                        row.copy_from_slice(bias);
                    }
                    let input = MatRef::row_major(&ws.hidden[l - 1], rows, fan_in);
                    matmul(pre, input, MatRef::row_major(weight, fan_in, width), true);
                }
            }
            if !self.config.batch_norm {
                // The affine output itself becomes the layer output: swapping the buffers saves
                // a copy, and the backward pass needs only the activation's output.
                std::mem::swap(&mut ws.pre[l], &mut ws.hidden[l]);
            }
            let hidden = &mut ws.hidden[l][..rows * width];
            if self.config.batch_norm {
                let pre = &ws.pre[l][..rows * width];
                let gamma = &p[index.layer_gamma(l)].data;
                let beta = &p[index.layer_beta(l)].data;
                if training {
                    let xhat = &mut ws.xhat[l][..rows * width];
                    batchnorm::forward_train(
                        pre,
                        width,
                        gamma,
                        beta,
                        xhat,
                        hidden,
                        &mut ws.stats[l],
                        &mut ws.acc,
                    );
                } else {
                    hidden.copy_from_slice(pre);
                    let mean = &self.running.tensors[2 * l].data;
                    let var = &self.running.tensors[2 * l + 1].data;
                    batchnorm::forward_infer(hidden, width, gamma, beta, mean, var);
                }
            }
            super::activation::apply(self.config.activation, hidden);
        }

        let h = *widths.last().unwrap_or(&0);
        let top = MatRef::row_major(&ws.hidden[widths.len() - 1], rows, h);
        let heads = [
            (index.mu_weight, index.mu_bias, &mut ws.mu),
            (
                index.log_sigma_weight,
                index.log_sigma_bias,
                &mut ws.log_sigma,
            ),
        ];
        for (w, b, out) in heads {
            let out = &mut out[..rows * k];
            for row in out.chunks_exact_mut(k) {
                row.copy_from_slice(&p[b].data);
            }
            matmul(out, top, MatRef::row_major(&p[w].data, h, k), true);
        }
        if self.extensions.head_batch_norm {
            self.head_bn_forward(rows, ws, training);
        }
        for ((ls, inside), sigma) in ws
            .log_sigma
            .iter_mut()
            .zip(&mut ws.inside)
            .zip(&mut ws.sigma)
        {
            *inside = if (LOG_SIGMA_MIN..=LOG_SIGMA_MAX).contains(ls) {
                1.0
            } else {
                0.0
            };
            *sigma = fast_exp(ls.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX));
        }
    }

    /// Samples `theta`, runs the decoder and returns the loss sums. Leaves `exp(u - max)` in
    /// `ws.logits` and the per-row scales in `ws.row_scale`. `training` selects batch or
    /// running statistics for the decoder batch norm; `uniforms` applies theta dropout;
    /// `decoder_t`, when given, is the decoder weight transposed to K x V.
    fn decode(
        &self,
        batch: &SparseRows,
        eps: &[f32],
        ws: &mut Workspace,
        training: bool,
        uniforms: Option<&[f32]>,
        decoder_t: Option<&[f32]>,
    ) -> LossSums {
        let rows = batch.n_rows();
        let (k, v) = (self.config.num_topics, self.config.feature_dim);
        let index = self.index();
        let p = &self.params.tensors;

        let mut kld = 0.0f64;
        let n = rows * k;
        let terms = ws.mu[..n]
            .iter()
            .zip(&ws.log_sigma[..n])
            .zip(&ws.sigma[..n])
            .zip(eps);
        if self.extensions.prior_alpha > 0.0 {
            let (prior_mean, prior_var) = self.extensions.prior(k);
            let (prior_mean, prior_var) = (f64::from(prior_mean), f64::from(prior_var));
            let log_var = prior_var.ln();
            for (theta, (((&mu, &ls), &sigma), &e)) in ws.theta[..n].iter_mut().zip(terms) {
                *theta = mu + sigma * e;
                let (d, ls, sigma) = (f64::from(mu) - prior_mean, f64::from(ls), f64::from(sigma));
                let ls = reflect_above_max(ls);
                kld += 0.5 * ((sigma * sigma + d * d) / prior_var - 1.0 + log_var - 2.0 * ls);
            }
        } else {
            for (theta, (((&mu, &ls), &sigma), &e)) in ws.theta[..n].iter_mut().zip(terms) {
                *theta = mu + sigma * e;
                let (mu, ls, sigma) = (f64::from(mu), f64::from(ls), f64::from(sigma));
                let ls = reflect_above_max(ls);
                kld += -0.5 * (1.0 + 2.0 * ls - mu * mu - sigma * sigma);
            }
        }
        for row in ws.theta[..rows * k].chunks_exact_mut(k) {
            softmax_in_place(row);
        }
        if let Some(uniforms) = uniforms {
            let p = self.extensions.theta_dropout;
            let kept = 1.0 / (1.0 - p);
            ws.theta_soft.clear();
            ws.theta_soft.extend_from_slice(&ws.theta[..n]);
            ws.keep.resize(n, 0.0);
            for ((t, keep), &u) in ws.theta[..n].iter_mut().zip(&mut ws.keep).zip(uniforms) {
                *keep = if u < p { 0.0 } else { kept };
                *t *= *keep;
            }
        }

        ws.logits.resize(rows * v, 0.0);
        let logits = &mut ws.logits[..rows * v];
        let theta = MatRef::row_major(&ws.theta, rows, k);
        // The decoder weight is stored V x K; the product reads it as K x V, transposed by the
        // caller when it gives `decoder_t`.
        let decoder_t = match decoder_t {
            Some(t) => MatRef::row_major(t, k, v),
            None => MatRef::row_major(&p[index.decoder_weight].data, v, k).t(),
        };
        if self.extensions.decoder_bn_active() {
            ws.dec_pre.resize(rows * v, 0.0);
            let pre = &mut ws.dec_pre[..rows * v];
            matmul(pre, theta, decoder_t, false);
            ws.ones.resize(v, 1.0);
            ws.zeros.resize(v, 0.0);
            if training {
                ws.dec_xhat.resize(rows * v, 0.0);
                batchnorm::forward_train(
                    pre,
                    v,
                    &ws.ones,
                    &ws.zeros,
                    &mut ws.dec_xhat[..rows * v],
                    logits,
                    &mut ws.dec_stats,
                    &mut ws.acc,
                );
            } else {
                logits.copy_from_slice(pre);
                let r = self.running.tensors.len();
                let mean = &self.running.tensors[r - 2].data;
                let var = &self.running.tensors[r - 1].data;
                batchnorm::forward_infer(logits, v, &ws.ones, &ws.zeros, mean, var);
            }
        } else {
            matmul(logits, theta, decoder_t, false);
        }
        let bias = &p[index.decoder_bias].data;
        decoder_rows(
            batch,
            bias,
            logits,
            &mut ws.row_recons[..rows],
            &mut ws.row_scale[..rows],
        );
        if self.extensions.decoder_mixed() {
            // The plain decoder reads the logits before normalisation, which the batch-norm
            // backward pass no longer needs, and leaves its exponentials in their place.
            ws.plain_recons.resize(rows, 0.0);
            ws.plain_scale.resize(rows, 0.0);
            decoder_rows(
                batch,
                bias,
                &mut ws.dec_pre[..rows * v],
                &mut ws.plain_recons[..rows],
                &mut ws.plain_scale[..rows],
            );
            let share = f64::from(self.extensions.plain_decoder_share);
            for (rec, &plain) in ws.row_recons[..rows].iter_mut().zip(&ws.plain_recons) {
                *rec = (1.0 - share) * *rec + share * plain;
            }
        }

        let words: f64 = batch.values().iter().map(|&x| f64::from(x)).sum();
        LossSums {
            recons: ws.row_recons[..rows].iter().sum(),
            kld,
            docs: rows,
            words,
        }
    }

    /// Back-propagates from the logit gradient `scale * ws.logits - x` into `grads`.
    ///
    /// With `first_layer_weight` false, the gradient of `encoder.0.weight` is left untouched and
    /// the gradient of the first layer's output stays in `ws.grad_hidden` for the caller.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        batch: &SparseRows,
        eps: &[f32],
        grads: &mut ParamSet,
        ws: &mut Workspace,
        kl_weight: f32,
        dropout: bool,
        first_layer_weight: bool,
    ) {
        let rows = batch.n_rows();
        let (k, v, widths) = (
            self.config.num_topics,
            self.config.feature_dim,
            &self.config.encoder_layers,
        );
        let index = self.index();
        let p = &self.params.tensors;
        if self.extensions.decoder_bn_active() {
            self.decoder_bn_backward(batch, grads, ws);
        }
        let g = &mut grads.tensors;
        if !self.extensions.decoder_bn_active() {
            // Decoder, with the logit gradient G = S E - X (S the diagonal of row scales, E the
            // exponentials, X the counts). The counts are folded into E first, E' = E - S^-1 X,
            // which touches only the non-zeros, so that G = S E' and each gradient is one dense
            // product: dW_d = E'^T (S theta), db_d = E'^T s, g_theta = S (E' W_d).
            fold_counts(batch, &mut ws.logits[..rows * v], &ws.row_scale[..rows]);
            let exps = MatRef::row_major(&ws.logits[..rows * v], rows, v);
            ws.theta_scaled.resize(rows * (k + 1), 0.0);
            let scaled_rows = ws.theta_scaled.chunks_exact_mut(k + 1);
            for ((out, th), &scale) in scaled_rows.zip(ws.theta.chunks_exact(k)).zip(&ws.row_scale)
            {
                for (o, &t) in out.iter_mut().zip(th) {
                    *o = scale * t;
                }
                out[k] = scale;
            }
            ws.decoder_grad.resize(v * (k + 1), 0.0);
            matmul(
                &mut ws.decoder_grad[..v * (k + 1)],
                MatRef::row_major(&ws.theta_scaled[..rows * (k + 1)], rows, k + 1).t(),
                exps,
                false,
            );
            {
                let (lo, hi) = g.split_at_mut(index.decoder_bias.max(index.decoder_weight));
                let (weight_grad, bias_grad) = if index.decoder_weight < index.decoder_bias {
                    (&mut lo[index.decoder_weight].data, &mut hi[0].data)
                } else {
                    (&mut hi[0].data, &mut lo[index.decoder_bias].data)
                };
                // The first K rows of the product are dW_d^T, the last is db_d.
                let dense = &ws.decoder_grad[..v * (k + 1)];
                kernels::transpose(dense, k, v, v, weight_grad, k);
                bias_grad.copy_from_slice(&dense[k * v..]);
            }
            matmul(
                &mut ws.grad_theta[..rows * k],
                exps,
                MatRef::row_major(&p[index.decoder_weight].data, v, k),
                false,
            );
            for (gt, &scale) in ws.grad_theta[..rows * k]
                .chunks_exact_mut(k)
                .zip(&ws.row_scale)
            {
                for g in gt {
                    *g *= scale;
                }
            }
        }
        if dropout {
            for (gt, &keep) in ws.grad_theta[..rows * k].iter_mut().zip(&ws.keep) {
                *gt *= keep;
            }
        }

        // Softmax Jacobian, then the KL terms: g_z = theta (g_theta - <theta, g_theta>).
        let plain_kl = self.extensions.prior_alpha == 0.0 && kl_weight == 1.0;
        let (prior_mean, prior_var) = self.extensions.prior(k);
        let inv_var = 1.0 / prior_var;
        let soft = if dropout { &ws.theta_soft } else { &ws.theta };
        for r in 0..rows {
            let span = r * k..(r + 1) * k;
            let th = &soft[span.clone()];
            let gt = &ws.grad_theta[span.clone()];
            let dot: f32 = th.iter().zip(gt).map(|(a, b)| a * b).sum();
            for i in span {
                let grad_z = soft[i] * (ws.grad_theta[i] - dot);
                let sigma = ws.sigma[i];
                // The linear KL term's slope in log_sigma: -1 up to the upper clamp, +1 above it
                // (see `reflect_above_max`), written as the sign of the term subtracted here.
                let linear = if ws.log_sigma[i] <= LOG_SIGMA_MAX {
                    1.0
                } else {
                    -1.0
                };
                if plain_kl {
                    ws.grad_mu[i] = grad_z + ws.mu[i];
                    ws.grad_log_sigma[i] =
                        ws.inside[i] * (grad_z * sigma * eps[i] + sigma * sigma) - linear;
                } else {
                    ws.grad_mu[i] = grad_z + kl_weight * (ws.mu[i] - prior_mean) * inv_var;
                    ws.grad_log_sigma[i] = ws.inside[i]
                        * (grad_z * sigma * eps[i] + kl_weight * sigma * sigma * inv_var)
                        - kl_weight * linear;
                }
            }
        }

        if self.extensions.head_batch_norm {
            self.head_bn_backward(rows, ws);
        }

        // Heads: dW = h^T g, db = column sums of g, g_h = g_mu W_mu^T + g_ls W_ls^T.
        let h = *widths.last().unwrap_or(&0);
        let last = widths.len() - 1;
        let top = MatRef::row_major(&ws.hidden[last][..rows * h], rows, h);
        ws.grad_hidden.resize(rows * h, 0.0);
        let heads = [
            (index.mu_weight, index.mu_bias, &ws.grad_mu),
            (
                index.log_sigma_weight,
                index.log_sigma_bias,
                &ws.grad_log_sigma,
            ),
        ];
        for (n, (w, b, grad_values)) in heads.into_iter().enumerate() {
            let grad_values = &grad_values[..rows * k];
            let grad_out = MatRef::row_major(grad_values, rows, k);
            matmul(&mut g[w].data, top.t(), grad_out, false);
            column_sums(grad_values, k, &mut ws.acc, &mut g[b].data);
            let weight = MatRef::row_major(&p[w].data, h, k);
            matmul(&mut ws.grad_hidden[..rows * h], grad_out, weight.t(), n > 0);
        }

        // Encoder layers, top down.
        for l in (0..widths.len()).rev() {
            let width = widths[l];
            let grad = &mut ws.grad_hidden[..rows * width];
            super::activation::backward(
                self.config.activation,
                &ws.hidden[l][..rows * width],
                grad,
            );
            if self.config.batch_norm {
                let (gamma_grad, beta_grad) = {
                    let (lo, hi) = g.split_at_mut(index.layer_beta(l));
                    (&mut lo[index.layer_gamma(l)].data, &mut hi[0].data)
                };
                let gamma = &p[index.layer_gamma(l)].data;
                let xhat = &ws.xhat[l][..rows * width];
                batchnorm::backward(
                    grad,
                    width,
                    xhat,
                    gamma,
                    &ws.stats[l],
                    gamma_grad,
                    beta_grad,
                    &mut ws.acc,
                );
            }
            column_sums(grad, width, &mut ws.acc, &mut g[index.layer_bias(l)].data);
            if l == 0 {
                if !first_layer_weight {
                    continue;
                }
                sparse::weight_grad(
                    batch,
                    grad,
                    &mut g[index.layer_weight(0)].data,
                    &mut ws.columns,
                );
            } else {
                let fan_in = widths[l - 1];
                let input = MatRef::row_major(&ws.hidden[l - 1][..rows * fan_in], rows, fan_in);
                let grad_ref = MatRef::row_major(grad, rows, width);
                matmul(
                    &mut g[index.layer_weight(l)].data,
                    input.t(),
                    grad_ref,
                    false,
                );
                ws.grad_prev.resize(rows * fan_in, 0.0);
                let weight = MatRef::row_major(&p[index.layer_weight(l)].data, fan_in, width);
                matmul(
                    &mut ws.grad_prev[..rows * fan_in],
                    grad_ref,
                    weight.t(),
                    false,
                );
                std::mem::swap(&mut ws.grad_hidden, &mut ws.grad_prev);
            }
        }
    }
}

impl Network {
    /// Decoder gradients with decoder batch norm: writes out the logit gradient `S E - X`,
    /// takes it back through the normalisation (the bias gradient is its column sums), then
    /// `dW_d = G'^T theta` and `g_theta = G' W_d`.
    fn decoder_bn_backward(&self, batch: &SparseRows, grads: &mut ParamSet, ws: &mut Workspace) {
        let rows = batch.n_rows();
        let (k, v) = (self.config.num_topics, self.config.feature_dim);
        let index = self.index();
        let g = &mut grads.tensors;
        let mixed = self.extensions.decoder_mixed();
        let share = self.extensions.plain_decoder_share;
        let bn_weight = if mixed { 1.0 - share } else { 1.0 };
        let logits = &mut ws.logits[..rows * v];
        logit_gradient(batch, logits, &ws.row_scale[..rows], bn_weight);
        if mixed {
            logit_gradient(
                batch,
                &mut ws.dec_pre[..rows * v],
                &ws.plain_scale[..rows],
                share,
            );
        }
        ws.dec_gamma_grad.resize(v, 0.0);
        batchnorm::backward(
            logits,
            v,
            &ws.dec_xhat[..rows * v],
            &ws.ones,
            &ws.dec_stats,
            &mut ws.dec_gamma_grad,
            &mut g[index.decoder_bias].data,
            &mut ws.acc,
        );
        if mixed {
            // The plain decoder's logit gradient joins after the normalisation's backward pass:
            // its logits are `W_d theta + b_d` directly.
            let plain = &ws.dec_pre[..rows * v];
            ws.plain_bias_grad.resize(v, 0.0);
            column_sums(plain, v, &mut ws.acc, &mut ws.plain_bias_grad);
            add_assign(&mut g[index.decoder_bias].data, &ws.plain_bias_grad);
            logits
                .par_chunks_mut(v * DECODER_ROWS_PER_TASK)
                .zip(plain.par_chunks(v * DECODER_ROWS_PER_TASK))
                .for_each(|(out, part)| add_assign(out, part));
        }
        let grad = MatRef::row_major(logits, rows, v);
        matmul(
            &mut g[index.decoder_weight].data,
            grad.t(),
            MatRef::row_major(&ws.theta[..rows * k], rows, k),
            false,
        );
        matmul(
            &mut ws.grad_theta[..rows * k],
            grad,
            MatRef::row_major(&self.params.tensors[index.decoder_weight].data, v, k),
            false,
        );
    }
}

impl Network {
    /// Position of the heads' running statistics in [`Network::running`], after the encoder's.
    fn head_running_start(&self) -> usize {
        if self.config.batch_norm {
            2 * self.config.encoder_layers.len()
        } else {
            0
        }
    }

    /// Normalises `ws.mu` and the `log_sigma` head's affine output in place, with batch
    /// statistics in training and the running ones otherwise. The normalised second head is the
    /// log-variance, so `log_sigma` is half of it.
    fn head_bn_forward(&self, rows: usize, ws: &mut Workspace, training: bool) {
        let k = self.config.num_topics;
        let start = self.head_running_start();
        ws.head_ones.resize(k, 1.0);
        ws.head_zeros.resize(k, 0.0);
        for (h, out) in [&mut ws.mu, &mut ws.log_sigma].into_iter().enumerate() {
            let out = &mut out[..rows * k];
            if training {
                ws.head_pre.clear();
                ws.head_pre.extend_from_slice(out);
                ws.head_xhat[h].resize(rows * k, 0.0);
                batchnorm::forward_train(
                    &ws.head_pre,
                    k,
                    &ws.head_ones,
                    &ws.head_zeros,
                    &mut ws.head_xhat[h][..rows * k],
                    out,
                    &mut ws.head_stats[h],
                    &mut ws.acc,
                );
            } else {
                let mean = &self.running.tensors[start + 2 * h].data;
                let var = &self.running.tensors[start + 2 * h + 1].data;
                batchnorm::forward_infer(out, k, &ws.head_ones, &ws.head_zeros, mean, var);
            }
        }
        for ls in &mut ws.log_sigma[..rows * k] {
            *ls *= 0.5;
        }
    }

    /// Takes `ws.grad_mu` and `ws.grad_log_sigma` back through the heads' normalisation.
    fn head_bn_backward(&self, rows: usize, ws: &mut Workspace) {
        let k = self.config.num_topics;
        // log_sigma = xhat / 2: the normalised log-variance gets half of log_sigma's gradient.
        for g in &mut ws.grad_log_sigma[..rows * k] {
            *g *= 0.5;
        }
        ws.head_unused.resize(2 * k, 0.0);
        let (gamma_grad, beta_grad) = ws.head_unused.split_at_mut(k);
        for (h, grad) in [&mut ws.grad_mu, &mut ws.grad_log_sigma]
            .into_iter()
            .enumerate()
        {
            batchnorm::backward(
                &mut grad[..rows * k],
                k,
                &ws.head_xhat[h][..rows * k],
                &ws.head_ones,
                &ws.head_stats[h],
                gamma_grad,
                beta_grad,
                &mut ws.acc,
            );
        }
    }
}

/// Runs [`decoder_row`] over every document of `logits` (B x V, without bias on entry), in
/// parallel tasks of [`DECODER_ROWS_PER_TASK`] rows.
fn decoder_rows(
    batch: &SparseRows,
    bias: &[f32],
    logits: &mut [f32],
    row_recons: &mut [f64],
    row_scale: &mut [f32],
) {
    let v = bias.len();
    logits
        .par_chunks_mut(v * DECODER_ROWS_PER_TASK)
        .zip(row_recons.par_chunks_mut(DECODER_ROWS_PER_TASK))
        .zip(row_scale.par_chunks_mut(DECODER_ROWS_PER_TASK))
        .enumerate()
        .for_each(|(task, ((chunk, recons), scales))| {
            let rows = chunk.chunks_exact_mut(v).zip(recons).zip(scales);
            for (r, ((row, rec), scale)) in rows.enumerate() {
                let (indices, counts) = batch.row(task * DECODER_ROWS_PER_TASK + r);
                (*rec, *scale) = decoder_row(row, bias, indices, counts);
            }
        });
}

/// Turns the exponentials `exp(u - max)` in `exps` (B x V) into `weight * (N p - x)`, the
/// gradient of `weight * recons` with respect to the logits, given the per-row scales.
fn logit_gradient(batch: &SparseRows, exps: &mut [f32], scales: &[f32], weight: f32) {
    let v = batch.n_cols();
    exps.par_chunks_mut(v * DECODER_ROWS_PER_TASK)
        .zip(scales.par_chunks(DECODER_ROWS_PER_TASK))
        .enumerate()
        .for_each(|(task, (chunk, scales))| {
            for (r, (row, &scale)) in chunk.chunks_exact_mut(v).zip(scales).enumerate() {
                let scale = scale * weight;
                for x in row.iter_mut() {
                    *x *= scale;
                }
                let (indices, counts) = batch.row(task * DECODER_ROWS_PER_TASK + r);
                for (&c, &x) in indices.iter().zip(counts) {
                    row[c as usize] -= x * weight;
                }
            }
        });
}

simd_fn! {
    /// Writes `a + b` into `out` element by element.
    fn add_into(out: &mut [f32], a: &[f32], b: &[f32]) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = x + y;
        }
    }
}

simd_fn! {
    /// Adds `values` into `out` element by element.
    fn add_assign(out: &mut [f32], values: &[f32]) {
        for (o, &v) in out.iter_mut().zip(values) {
            *o += v;
        }
    }
}

simd_fn! {
/// Replaces `row` by its softmax, subtracting the maximum first. The exponentials are summed in
/// [`LANES`] `f32` lanes, which are then added in `f64`.
fn softmax_in_place(row: &mut [f32]) {
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            lane_max[i] = if c[i] > lane_max[i] { c[i] } else { lane_max[i] };
        }
    }
    let mut max = lane_max.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for &x in chunks.remainder() {
        max = max.max(x);
    }
    let mut lanes = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            c[i] = fast_exp_nonpositive(c[i] - max);
            lanes[i] += c[i];
        }
    }
    let mut sum = 0.0f64;
    for x in chunks.into_remainder() {
        *x = fast_exp_nonpositive(*x - max);
        sum += f64::from(*x);
    }
    sum += lanes.iter().map(|&s| f64::from(s)).sum::<f64>();
    let inv = (1.0 / sum) as f32;
    for x in row.iter_mut() {
        *x *= inv;
    }
}
}

/// Lanes of the running maximum and sum in [`decoder_row`], wide enough for the compiler to use
/// full vector registers.
const LANES: usize = 16;
/// Values summed in `f32` lanes before the partial sums move to `f64`.
const SUM_BLOCK: usize = 1024;

simd_fn! {
/// Processes one document's logits `row` (without bias on entry): adds the bias, computes the
/// log-sum-exp with max subtraction, leaves `exp(u - max)` in `row`, and returns
/// `(recons, scale)` with `recons = -sum_v x_v log p_v` and `scale = N / sum_v exp(u_v - max)`,
/// so that `N p = scale * row`.
fn decoder_row(
    row: &mut [f32],
    bias: &[f32],
    indices: &[u32],
    counts: &[f32],
) -> (f64, f32) {
    let mut lane_max = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    let mut bias_chunks = bias.chunks_exact(LANES);
    for (c, b) in (&mut chunks).zip(&mut bias_chunks) {
        for i in 0..LANES {
            c[i] += b[i];
            lane_max[i] = if c[i] > lane_max[i] {
                c[i]
            } else {
                lane_max[i]
            };
        }
    }
    let mut max = lane_max.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (x, &b) in chunks
        .into_remainder()
        .iter_mut()
        .zip(bias_chunks.remainder())
    {
        *x += b;
        max = max.max(*x);
    }

    let mut dot = 0.0f64;
    let mut total = 0.0f64;
    for (&c, &x) in indices.iter().zip(counts) {
        dot += f64::from(x) * f64::from(row[c as usize]);
        total += f64::from(x);
    }

    let mut sum = 0.0f64;
    for block in row.chunks_mut(SUM_BLOCK) {
        let mut lanes = [0.0f32; LANES];
        let mut chunks = block.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for i in 0..LANES {
                let e = fast_exp_nonpositive(c[i] - max);
                c[i] = e;
                lanes[i] += e;
            }
        }
        for x in chunks.into_remainder() {
            *x = fast_exp_nonpositive(*x - max);
            sum += f64::from(*x);
        }
        sum += lanes.iter().map(|&s| f64::from(s)).sum::<f64>();
    }
    // The maximum's own term is exp(0) = 1, so sum >= 1 and its log is finite.
    let log_sum_exp = f64::from(max) + sum.ln();
    (total * log_sum_exp - dot, (total / sum) as f32)
}
}

/// Replaces the exponentials `E` (B x V) by `E - S^-1 X`: subtracts `x / scale_r` at every
/// count `x` of document `r`, so that `scale_r * row_r` becomes the logit gradient
/// `scale_r E_r - X_r`. Rows without words have no counts and are left alone.
fn fold_counts(batch: &SparseRows, exps: &mut [f32], scales: &[f32]) {
    let v = batch.n_cols();
    for (r, (row, &scale)) in exps.chunks_exact_mut(v).zip(scales).enumerate() {
        let (indices, counts) = batch.row(r);
        for (&c, &x) in indices.iter().zip(counts) {
            row[c as usize] -= x / scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    use super::super::kernels::{with_tier_limit, Tier};
    use super::*;
    use crate::network::{Activation, NetworkConfig};
    use crate::optim::{Optimizer, OptimizerConfig};

    /// Runs two training steps and AdaDelta updates on a one-thread pool, with the vectorised
    /// kernels limited to `limit`, and returns the network, the last gradients and the losses.
    fn two_steps(limit: Tier, batch_norm: bool) -> (Network, ParamSet, Vec<f64>) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("thread pool");
        pool.install(|| {
            with_tier_limit(limit, || {
                let mut rng = ChaCha8Rng::seed_from_u64(5);
                let config = NetworkConfig {
                    feature_dim: 400,
                    num_topics: 6,
                    encoder_layers: vec![20, 10],
                    activation: Activation::Sigmoid,
                    batch_norm,
                };
                let mut network = Network::new(config, &mut rng);
                let mut optimizer = Optimizer::new(OptimizerConfig::default(), &network.params);
                let mut grads = network.zero_grads();
                let mut ws = Workspace::new();
                let mut losses = Vec::new();
                for _ in 0..2 {
                    let mut batch = SparseRows::new(400);
                    for _ in 0..300 {
                        let mut words: Vec<u32> =
                            (0..25).map(|_| rng.random_range(0..400)).collect();
                        words.sort_unstable();
                        words.dedup();
                        let counts: Vec<f32> = words
                            .iter()
                            .map(|_| rng.random_range(1..4) as f32)
                            .collect();
                        batch.push_row(&words, &counts);
                    }
                    let eps: Vec<f32> = (0..300 * 6).map(|_| rng.sample(StandardNormal)).collect();
                    let sums = network
                        .train_step(&batch, &eps, &mut grads, &mut ws)
                        .expect("train step");
                    losses.push(sums.total());
                    optimizer.step(&mut network.params, &grads);
                }
                (network, grads, losses)
            })
        })
    }

    #[test]
    fn shards_keep_no_first_layer_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let config = NetworkConfig {
            feature_dim: 3000,
            num_topics: 4,
            encoder_layers: vec![16, 8],
            activation: Activation::Tanh,
            batch_norm: false,
        };
        let mut network = Network::new(config, &mut rng);
        let mut batch = SparseRows::new(3000);
        for d in 0..300u32 {
            batch.push_row(&[d, d + 1000], &[1.0, 2.0]);
        }
        let eps: Vec<f32> = (0..300 * 4).map(|_| rng.sample(StandardNormal)).collect();
        let mut grads = network.zero_grads();
        let mut ws = Workspace::new();
        network
            .train_step(&batch, &eps, &mut grads, &mut ws)
            .expect("train step");

        assert_eq!(ws.shards.len(), shard_count(300));
        assert_eq!(ws.shards.len(), 2);
        let first = network.index().layer_weight(0);
        for shard in &ws.shards {
            assert!(shard.grads.tensors[first].data.is_empty());
            assert_eq!(shard.batch.n_rows(), 150);
        }
        assert_eq!(grads.tensors[first].data.len(), 3000 * 16);
    }

    #[test]
    fn instruction_tiers_agree_bitwise() {
        // The AVX2 and plain copies of every loop give the same bits, and both use `gemm` for
        // the dense products.
        for batch_norm in [false, true] {
            let avx2 = two_steps(Tier::Avx2, batch_norm);
            let portable = two_steps(Tier::Portable, batch_norm);
            let case = format!("Portable with batch_norm {batch_norm}");
            assert_eq!(avx2.2, portable.2, "losses differ: {case}");
            assert!(avx2.1 == portable.1, "gradients differ: {case}");
            assert!(avx2.0 == portable.0, "parameters differ: {case}");
        }
    }

    #[test]
    fn avx512_products_stay_close_to_gemm() {
        // With AVX-512 the dense products run on ntm's own kernel, which sums in its own order,
        // so two steps agree with the AVX2 tier to rounding, not bit for bit.
        for batch_norm in [false, true] {
            let widest = two_steps(Tier::Avx512, batch_norm);
            let avx2 = two_steps(Tier::Avx2, batch_norm);
            for (a, b) in widest.2.iter().zip(&avx2.2) {
                assert!((a - b).abs() <= 1e-5 * b.abs(), "loss {a} against {b}");
            }
            for (wide, narrow) in widest.0.params.tensors.iter().zip(&avx2.0.params.tensors) {
                // Batch norm cancels the encoder biases, so their gradient is rounding noise,
                // which the optimizer's normalised step turns into arbitrary small moves.
                if batch_norm
                    && narrow.name.starts_with("encoder.")
                    && narrow.name.ends_with(".bias")
                {
                    continue;
                }
                let scale = narrow.data.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                for (a, b) in wide.data.iter().zip(&narrow.data) {
                    assert!(
                        (a - b).abs() <= 1e-4 * scale.max(1e-3),
                        "{} differs: {a} against {b} (batch_norm {batch_norm})",
                        narrow.name
                    );
                }
            }
        }
    }
}
