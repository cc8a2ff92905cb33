//! A 1×1 convolution computed as one matrix product over all pixels, with
//! its bias and an optional ReLU applied in the same pass on the CPU.
//!
//! Most of DenseNet's arithmetic is in these. Through candle, a 1×1
//! convolution with bias and ReLU is three operations — a product into a
//! freshly zeroed tensor, a broadcast add and a ReLU — the last two each
//! allocating and traversing the whole output on one thread. Here gemm
//! writes the product onto the bias itself (`dst = bias + W·X`), and the
//! ReLU follows in place, in parallel: one allocation, one extra pass.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use candle_nn::Conv2d;

use crate::model::cpu::{contiguous_f32, matmul_into, relu_in_place};

/// A 1×1 convolution, optionally followed by a ReLU.
#[derive(Debug, Clone)]
pub(super) struct PointwiseConv {
    /// `[out, in]`.
    weight: Tensor,
    /// `[out, 1]`.
    bias: Option<Tensor>,
    /// The same weights on the host, for the fused CPU pass.
    host: HostPointwise,
}

impl PointwiseConv {
    /// From a `[out, in, 1, 1]` convolution with stride 1 and no padding.
    pub(super) fn from_conv(conv: &Conv2d) -> Result<PointwiseConv> {
        let (out_channels, in_channels, kh, kw) = conv.weight().dims4()?;
        if (kh, kw) != (1, 1) {
            candle_core::bail!("PointwiseConv needs a 1×1 kernel, got {kh}×{kw}");
        }
        let weight = conv.weight().reshape((out_channels, in_channels))?;
        let bias = conv
            .bias()
            .map(|b| b.reshape((out_channels, 1)))
            .transpose()?;
        let host = HostPointwise {
            weight: weight.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            bias: match &bias {
                Some(b) => b.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                None => vec![0.0; out_channels],
            },
            out_channels,
            in_channels,
        };
        Ok(PointwiseConv { weight, bias, host })
    }

    /// `W·x + b` over an `[n, in, h, w]` input.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, false)
    }

    /// `max(0, W·x + b)`.
    pub(super) fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, true)
    }

    /// The weights on the host, for fused CPU passes.
    pub(super) fn host(&self) -> &HostPointwise {
        &self.host
    }

    fn run(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            let op = FusedPass {
                conv: &self.host,
                relu,
            };
            return x.contiguous()?.apply_op1_no_bwd(&op);
        }
        let (batch, channels, height, width) = x.dims4()?;
        let pixels = x.contiguous()?.reshape((batch, channels, height * width))?;
        let y = self.weight.broadcast_matmul(&pixels)?;
        let y = match &self.bias {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        };
        let y = y.reshape((batch, self.weight.dim(0)?, height, width))?;
        if relu { y.relu() } else { Ok(y) }
    }
}

/// The convolution's weights and bias on the host.
#[derive(Debug, Clone)]
pub(super) struct HostPointwise {
    /// Row-major `[out, in]`.
    weight: Vec<f32>,
    /// One per output channel (zeros when the convolution has none).
    bias: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
}

impl HostPointwise {
    pub(super) fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Convolves one `[in, plane]` image into `out` (`[out, plane]`),
    /// overwriting it, then rectifies it when `relu`.
    pub(super) fn apply(&self, input: &[f32], plane: usize, out: &mut [f32], relu: bool) {
        let out = &mut out[..self.out_channels * plane];
        for (row, &b) in out.chunks_exact_mut(plane).zip(&self.bias) {
            row.fill(b);
        }
        matmul_into(
            (self.out_channels, plane, self.in_channels),
            &self.weight,
            &input[..self.in_channels * plane],
            out,
            true,
        );
        if relu {
            relu_in_place(out);
        }
    }
}

/// The fused CPU pass over one input.
struct FusedPass<'a> {
    conv: &'a HostPointwise,
    relu: bool,
}

impl CustomOp1 for FusedPass<'_> {
    fn name(&self) -> &'static str {
        "pointwise-conv"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let input = contiguous_f32(storage, layout, "pointwise-conv")?;
        let (batch, channels, height, width) = layout.shape().dims4()?;
        if channels != self.conv.in_channels {
            candle_core::bail!(
                "pointwise-conv expects {} input channels, got {channels}",
                self.conv.in_channels
            );
        }
        let plane = height * width;
        let (m, k, n) = (self.conv.out_channels, self.conv.in_channels, plane);
        let mut out = vec![0.0; batch * m * n];
        for image in 0..batch {
            self.conv.apply(
                &input[image * k * n..][..k * n],
                n,
                &mut out[image * m * n..][..m * n],
                self.relu,
            );
        }
        Ok((CpuStorage::F32(out), Shape::from((batch, m, height, width))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module};
    use candle_nn::Conv2dConfig;

    fn reference_and_ours(bias: bool, relu: bool) -> f32 {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 1.0, (6, 5, 1, 1), &device).unwrap();
        let bias = bias.then(|| Tensor::randn(0f32, 1.0, 6, &device).unwrap());
        let conv = Conv2d::new(weight, bias, Conv2dConfig::default());
        let input = Tensor::randn(0f32, 1.0, (2, 5, 7, 9), &device).unwrap();
        let mut reference = conv.forward(&input).unwrap();
        let pointwise = PointwiseConv::from_conv(&conv).unwrap();
        let ours = if relu {
            reference = reference.relu().unwrap();
            pointwise.forward_relu(&input).unwrap()
        } else {
            pointwise.forward(&input).unwrap()
        };
        assert_eq!(ours.dims(), reference.dims());
        crate::model::max_abs_difference(&ours, &reference)
    }

    #[test]
    fn matches_candles_convolution_with_and_without_bias_and_relu() {
        for bias in [false, true] {
            for relu in [false, true] {
                let diff = reference_and_ours(bias, relu);
                assert!(diff < 1e-4, "bias {bias}, relu {relu}: {diff}");
            }
        }
    }

    #[test]
    fn reads_a_narrowed_channel_prefix_as_its_input() {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 1.0, (3, 4, 1, 1), &device).unwrap();
        let conv = Conv2d::new(weight, None, Conv2dConfig::default());
        let wide = Tensor::randn(0f32, 1.0, (1, 6, 5, 5), &device).unwrap();
        let prefix = wide.narrow(1, 0, 4).unwrap();
        let reference = conv.forward(&prefix.contiguous().unwrap()).unwrap();
        let ours = PointwiseConv::from_conv(&conv)
            .unwrap()
            .forward(&prefix)
            .unwrap();
        assert!(crate::model::max_abs_difference(&ours, &reference) < 1e-4);
    }
}
