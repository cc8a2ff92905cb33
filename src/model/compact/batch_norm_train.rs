//! Batch normalisation in training mode, with the ReLU after it, as one CPU
//! operation with a hand-written backward pass.
//!
//! candle's `BatchNorm::forward_train` transposes and copies its input,
//! then runs about ten element-wise operations, each allocating a tensor as
//! large as the activation, and autograd runs as many again backwards. A
//! profile of the compact model's training step put about a quarter of its
//! samples in candle's element-wise maps and a tenth in zeroing fresh
//! memory (BENCHMARKS.md). Here the forward pass is two parallel passes
//! (statistics, then `max(0, x̂·γ + β)`), and the backward pass two more:
//!
//! ```text
//! x̂ = (x − μ)·r,  r = 1/√(σ² + ε),  g = ∂L/∂y · [y > 0]
//! ∂L/∂β = Σ g,  ∂L/∂γ = Σ g·x̂,  ∂L/∂x = γ·r/M · (M·g − ∂L/∂β − x̂·∂L/∂γ)
//! ```
//!
//! with sums over the M = batch × height × width values of each channel.
//! The running statistics are updated exactly as candle's `BatchNorm` does
//! (unbiased variance, its momentum), so inference is unchanged.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, Var};
use candle_nn::BatchNorm;
use rayon::prelude::*;

use crate::model::cpu::contiguous_f32;

/// `relu(norm(x))` in training mode, updating `norm`'s running statistics.
/// For an f32 `[n, c, h, w]` tensor on the CPU with an affine `norm`.
pub(super) fn batch_norm_relu_train(x: &Tensor, norm: &BatchNorm) -> Result<Tensor> {
    let Some((gamma, beta)) = norm.weight_and_bias() else {
        candle_core::bail!("batch_norm_relu_train needs an affine batch norm");
    };
    let statistics = Arc::new(Mutex::new(None));
    let op = BatchNormReluTrain {
        eps: norm.eps() as f32,
        statistics: statistics.clone(),
    };
    let y = x.contiguous()?.apply_op3(gamma, beta, op)?;
    let Some(batch) = statistics.lock().expect("not poisoned").clone() else {
        candle_core::bail!("batch_norm_relu_train: the forward pass left no statistics");
    };
    update_running_statistics(norm, &batch)?;
    Ok(y)
}

/// One batch's per-channel statistics.
#[derive(Debug, Clone)]
struct ChannelStatistics {
    mean: Vec<f32>,
    /// Biased variance (divided by M).
    variance: Vec<f32>,
    /// Values per channel (M).
    count: usize,
}

impl ChannelStatistics {
    /// `1/√(σ² + ε)` per channel.
    fn inverse_std(&self, eps: f32) -> Vec<f32> {
        self.variance
            .iter()
            .map(|v| 1.0 / (v + eps).sqrt())
            .collect()
    }
}

/// `running = (1 − m)·running + m·batch`, with the unbiased variance, as
/// candle's `BatchNorm::forward_train`.
fn update_running_statistics(norm: &BatchNorm, batch: &ChannelStatistics) -> Result<()> {
    let momentum = norm.momentum();
    let device = norm.running_mean().device();
    let count = batch.count as f64;
    let mean = Tensor::new(batch.mean.as_slice(), device)?;
    let variance = Tensor::new(batch.variance.as_slice(), device)?;
    let unbiased = (variance * (count / (count - 1.0).max(1.0)))?;
    // The running statistics are variables of the model's VarMap; a Var made
    // from them shares their storage, so `set` updates what is saved.
    let running_mean = Var::from_tensor(norm.running_mean())?;
    let running_var = Var::from_tensor(norm.running_var())?;
    running_mean.set(&((running_mean.as_tensor() * (1.0 - momentum))? + (mean * momentum)?)?)?;
    running_var.set(&((running_var.as_tensor() * (1.0 - momentum))? + (unbiased * momentum)?)?)?;
    Ok(())
}

/// The forward operation on (x, γ, β).
struct BatchNormReluTrain {
    eps: f32,
    /// Filled by the forward pass, for the running statistics and backward.
    statistics: Arc<Mutex<Option<ChannelStatistics>>>,
}

/// Per-channel mean and biased variance of an `[n, c, plane]` buffer.
fn channel_statistics(x: &[f32], channels: usize, plane: usize) -> ChannelStatistics {
    let batch = x.len() / (channels * plane);
    let count = batch * plane;
    let (mean, variance) = (0..channels)
        .into_par_iter()
        .map(|channel| {
            let planes =
                || (0..batch).map(move |n| &x[(n * channels + channel) * plane..][..plane]);
            let sum: f64 = planes()
                .map(|p| p.iter().map(|&v| f64::from(v)).sum::<f64>())
                .sum();
            let mean = sum / count as f64;
            let squares: f64 = planes()
                .map(|p| {
                    p.iter()
                        .map(|&v| (f64::from(v) - mean).powi(2))
                        .sum::<f64>()
                })
                .sum();
            (mean as f32, (squares / count as f64) as f32)
        })
        .unzip();
    ChannelStatistics {
        mean,
        variance,
        count,
    }
}

fn check_shapes(l1: &Layout, l2: &Layout, l3: &Layout) -> Result<(usize, usize)> {
    let (_, channels, height, width) = l1.shape().dims4()?;
    if l2.shape().dims() != [channels] || l3.shape().dims() != [channels] {
        candle_core::bail!("batch-norm-relu: γ and β need {channels} values");
    }
    Ok((channels, height * width))
}

impl CustomOp3 for BatchNormReluTrain {
    fn name(&self) -> &'static str {
        "batch-norm-relu-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s1, l1, self.name())?;
        let gamma = contiguous_f32(s2, l2, self.name())?;
        let beta = contiguous_f32(s3, l3, self.name())?;
        let (channels, plane) = check_shapes(l1, l2, l3)?;
        let statistics = channel_statistics(x, channels, plane);
        let inverse_std = statistics.inverse_std(self.eps);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(plane)
            .zip(x.par_chunks(plane))
            .enumerate()
            .for_each(|(index, (target, source))| {
                let c = index % channels;
                let scale = gamma[c] * inverse_std[c];
                let shift = beta[c] - statistics.mean[c] * scale;
                for (t, &s) in target.iter_mut().zip(source) {
                    *t = (s * scale + shift).max(0.0);
                }
            });
        *self.statistics.lock().expect("not poisoned") = Some(statistics);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        grad_y: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(statistics) = self.statistics.lock().expect("not poisoned").clone() else {
            candle_core::bail!("batch-norm-relu: backward before forward");
        };
        let channels = statistics.mean.len();
        let backward = BatchNormReluBackward {
            eps: self.eps,
            gamma: gamma.to_dtype(DType::F32)?.to_vec1()?,
            statistics,
        };
        let packed =
            grad_y
                .contiguous()?
                .apply_op3_no_bwd(&x.contiguous()?, &y.contiguous()?, &backward)?;
        let total = x.elem_count();
        let grad_x = packed.narrow(0, 0, total)?.reshape(x.shape())?;
        let grad_gamma = packed.narrow(0, total, channels)?;
        let grad_beta = packed.narrow(0, total + channels, channels)?;
        Ok((Some(grad_x), Some(grad_gamma), Some(grad_beta)))
    }
}

/// The backward pass on (∂L/∂y, x, y); yields `[∂L/∂x (flat), ∂L/∂γ,
/// ∂L/∂β]` packed in one vector, as a custom operation has one output.
struct BatchNormReluBackward {
    eps: f32,
    gamma: Vec<f32>,
    statistics: ChannelStatistics,
}

impl CustomOp3 for BatchNormReluBackward {
    fn name(&self) -> &'static str {
        "batch-norm-relu-train-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let grad_y = contiguous_f32(s1, l1, self.name())?;
        let x = contiguous_f32(s2, l2, self.name())?;
        let y = contiguous_f32(s3, l3, self.name())?;
        let (_, channels, height, width) = l2.shape().dims4()?;
        let plane = height * width;
        let batch = x.len() / (channels * plane);
        let stats = &self.statistics;
        let inverse_std = stats.inverse_std(self.eps);
        // Pass 1: ∂L/∂β and ∂L/∂γ per channel.
        let (grad_beta, grad_gamma): (Vec<f32>, Vec<f32>) = (0..channels)
            .into_par_iter()
            .map(|c| {
                let (mut sum_g, mut sum_gx) = (0f64, 0f64);
                for n in 0..batch {
                    let offset = (n * channels + c) * plane;
                    for i in offset..offset + plane {
                        if y[i] > 0.0 {
                            let normalised = (x[i] - stats.mean[c]) * inverse_std[c];
                            sum_g += f64::from(grad_y[i]);
                            sum_gx += f64::from(grad_y[i] * normalised);
                        }
                    }
                }
                (sum_g as f32, sum_gx as f32)
            })
            .unzip();
        // Pass 2: ∂L/∂x.
        let count = stats.count as f32;
        let mut packed = vec![0f32; x.len() + 2 * channels];
        let (grad_x, rest) = packed.split_at_mut(x.len());
        grad_x
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(index, target)| {
                let c = index % channels;
                let offset = index * plane;
                let factor = self.gamma[c] * inverse_std[c] / count;
                for (j, t) in target.iter_mut().enumerate() {
                    let i = offset + j;
                    let normalised = (x[i] - stats.mean[c]) * inverse_std[c];
                    let g = if y[i] > 0.0 { grad_y[i] } else { 0.0 };
                    *t = factor * (count * g - grad_beta[c] - normalised * grad_gamma[c]);
                }
            });
        rest[..channels].copy_from_slice(&grad_gamma);
        rest[channels..].copy_from_slice(&grad_beta);
        let length = packed.len();
        Ok((CpuStorage::F32(packed), Shape::from(length)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{ModuleT, VarBuilder, VarMap};

    /// A batch norm whose running statistics live in a VarMap, as in
    /// training, with non-trivial γ and β.
    fn norm(varmap: &VarMap, channels: usize) -> BatchNorm {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        let norm = candle_nn::batch_norm(channels, 1e-5, vb).unwrap();
        let (gamma, beta) = norm.weight_and_bias().unwrap();
        Var::from_tensor(gamma)
            .unwrap()
            .set(&Tensor::new(&[1.5f32, -0.7, 0.9], &Device::Cpu).unwrap())
            .unwrap();
        Var::from_tensor(beta)
            .unwrap()
            .set(&Tensor::new(&[0.1f32, 0.3, -0.2], &Device::Cpu).unwrap())
            .unwrap();
        norm
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        crate::model::max_abs_difference(a, b)
    }

    #[test]
    fn matches_candles_batch_norm_forward_backward_and_running_statistics() {
        let device = Device::Cpu;
        let x = Var::randn(0.5f32, 2.0, (4, 3, 5, 6), &device).unwrap();
        // Weights on the output, so the loss's gradient differs per value.
        let weights = Tensor::randn(0f32, 1.0, (4, 3, 5, 6), &device).unwrap();

        let (reference_map, ours_map) = (VarMap::new(), VarMap::new());
        let (reference_norm, ours_norm) = (norm(&reference_map, 3), norm(&ours_map, 3));

        let reference = reference_norm
            .forward_t(x.as_tensor(), true)
            .unwrap()
            .relu()
            .unwrap();
        let ours = batch_norm_relu_train(x.as_tensor(), &ours_norm).unwrap();
        assert!(max_diff(&reference, &ours) < 1e-5);

        let reference_grads = (reference * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let ours_grads = (ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let grad =
            |grads: &candle_core::backprop::GradStore, t: &Tensor| grads.get(t).unwrap().clone();
        assert!(
            max_diff(
                &grad(&reference_grads, x.as_tensor()),
                &grad(&ours_grads, x.as_tensor())
            ) < 1e-4
        );
        let (rg, rb) = reference_norm.weight_and_bias().unwrap();
        let (og, ob) = ours_norm.weight_and_bias().unwrap();
        assert!(max_diff(&grad(&reference_grads, rg), &grad(&ours_grads, og)) < 1e-4);
        assert!(max_diff(&grad(&reference_grads, rb), &grad(&ours_grads, ob)) < 1e-4);

        assert!(max_diff(reference_norm.running_mean(), ours_norm.running_mean()) < 1e-5);
        assert!(max_diff(reference_norm.running_var(), ours_norm.running_var()) < 1e-4);
    }
}
