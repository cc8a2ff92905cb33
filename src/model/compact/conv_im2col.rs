//! A 3×3 convolution (padding 1, stride 1 or 2) for training on the CPU:
//! im2col, then one matrix product, with a col2im backward pass.
//!
//! candle's own convolution trains correctly but slowly: the gradient with
//! respect to its input goes through `conv_transpose2d`, which issue 6
//! measured at most of a training step. Here the convolution is written as
//! `W · cols(x)`, where `cols` gathers each output pixel's 3×3×C input
//! patch into a column. The product is candle's matmul, whose backward
//! pass is two more products; the only new piece is the gradient of
//! `cols`, which scatters each column back onto the input (col2im) — a
//! single pass over memory instead of a transposed convolution.
//!
//! Same arithmetic as candle's convolution, so results agree to rounding
//! (tests below, forward and gradients). DenseNet's inference-only 3×3
//! convolution, stride 1 and no backward pass, is `densenet::conv3x3_taps`.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::model::cpu::contiguous_f32;

/// `W · cols(x)`: `x` is `[n, c, h, w]`, `weight` `[o, c, 3, 3]`; returns
/// `[n, o, ho, wo]` with `ho = (h - 1) / stride + 1` (padding 1).
/// Differentiable in both arguments.
pub(super) fn conv3x3_im2col(x: &Tensor, weight: &Tensor, stride: usize) -> Result<Tensor> {
    let (batch, channels, height, width) = x.dims4()?;
    let (out_channels, weight_channels, kh, kw) = weight.dims4()?;
    if (kh, kw) != (3, 3) || weight_channels != channels || !(1..=2).contains(&stride) {
        candle_core::bail!(
            "conv3x3_im2col: weight {:?} and stride {stride} do not fit input {:?}",
            weight.dims(),
            x.dims()
        );
    }
    let geometry = Geometry {
        channels,
        height,
        width,
        stride,
    };
    let (out_height, out_width) = geometry.output_size();
    let cols = x.contiguous()?.apply_op1(Im2Col(geometry))?;
    let kernel = weight.reshape((out_channels, channels * 9))?;
    kernel.broadcast_left(batch)?.matmul(&cols)?.reshape((
        batch,
        out_channels,
        out_height,
        out_width,
    ))
}

/// The input side of a convolution: what im2col and col2im need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    channels: usize,
    height: usize,
    width: usize,
    stride: usize,
}

impl Geometry {
    fn output_size(&self) -> (usize, usize) {
        (
            (self.height - 1) / self.stride + 1,
            (self.width - 1) / self.stride + 1,
        )
    }

    /// For kernel offset `k` (0..3) along an axis of `size`: the output
    /// positions whose input `out · stride + k − 1` lies inside, as a range.
    fn valid_outputs(&self, k: usize, size: usize, out_size: usize) -> std::ops::Range<usize> {
        if size < k {
            return 0..0;
        }
        let first = usize::from(k == 0);
        let end = ((size - k) / self.stride + 1).min(out_size);
        first.min(end)..end
    }
}

/// `[n, c, h, w]` → `[n, c·9, ho·wo]`: row `c·9 + ky·3 + kx` holds input
/// `(c, oy·s + ky − 1, ox·s + kx − 1)` for each output pixel (zero
/// outside). Its gradient is [`Col2Im`].
struct Im2Col(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-3x3"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (batch, ..) = layout.shape().dims4()?;
        let input = contiguous_f32(storage, layout, self.name())?;
        let (out_height, out_width) = g.output_size();
        let out_plane = out_height * out_width;
        let in_plane = g.height * g.width;
        let mut cols = vec![0f32; batch * g.channels * 9 * out_plane];
        // One row of `cols` per (image, channel, tap): independent.
        cols.par_chunks_mut(out_plane)
            .enumerate()
            .for_each(|(row, target)| {
                let (image_channel, tap) = (row / 9, row % 9);
                let (ky, kx) = (tap / 3, tap % 3);
                let source = &input[image_channel * in_plane..][..in_plane];
                let xs = g.valid_outputs(kx, g.width, out_width);
                for oy in g.valid_outputs(ky, g.height, out_height) {
                    let iy = oy * g.stride + ky - 1;
                    let source_row = &source[iy * g.width..][..g.width];
                    let target_row = &mut target[oy * out_width..][..out_width];
                    if g.stride == 1 {
                        let ix = xs.start + kx - 1;
                        target_row[xs.clone()].copy_from_slice(&source_row[ix..][..xs.len()]);
                    } else {
                        for ox in xs.clone() {
                            target_row[ox] = source_row[ox * g.stride + kx - 1];
                        }
                    }
                }
            });
        let shape = Shape::from((batch, g.channels * 9, out_plane));
        Ok((CpuStorage::F32(cols), shape))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?.apply_op1_no_bwd(&Col2Im(self.0))?;
        Ok(Some(grad))
    }
}

/// `[n, c·9, ho·wo]` → `[n, c, h, w]`: adds each column entry back onto
/// the input pixel [`Im2Col`] took it from.
struct Col2Im(Geometry);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im-3x3"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (batch, _, _) = layout.shape().dims3()?;
        let cols = contiguous_f32(storage, layout, self.name())?;
        let (out_height, out_width) = g.output_size();
        let out_plane = out_height * out_width;
        let in_plane = g.height * g.width;
        let mut image = vec![0f32; batch * g.channels * in_plane];
        // One input plane per (image, channel): its nine rows of `cols`
        // write only into it.
        image
            .par_chunks_mut(in_plane)
            .enumerate()
            .for_each(|(image_channel, target)| {
                for tap in 0..9 {
                    let (ky, kx) = (tap / 3, tap % 3);
                    let source = &cols[(image_channel * 9 + tap) * out_plane..][..out_plane];
                    let xs = g.valid_outputs(kx, g.width, out_width);
                    for oy in g.valid_outputs(ky, g.height, out_height) {
                        let iy = oy * g.stride + ky - 1;
                        let source_row = &source[oy * out_width..][..out_width];
                        let target_row = &mut target[iy * g.width..][..g.width];
                        if g.stride == 1 {
                            let ix = xs.start + kx - 1;
                            let target_part = &mut target_row[ix..][..xs.len()];
                            for (t, s) in target_part.iter_mut().zip(&source_row[xs.clone()]) {
                                *t += s;
                            }
                        } else {
                            for ox in xs.clone() {
                                target_row[ox * g.stride + kx - 1] += source_row[ox];
                            }
                        }
                    }
                }
            });
        let shape = Shape::from((batch, g.channels, g.height, g.width));
        Ok((CpuStorage::F32(image), shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::max_abs_difference;
    use candle_core::{Device, Var};

    /// Forward and both gradients against candle's own convolution, for
    /// even and odd sizes and both strides.
    #[test]
    fn matches_candles_convolution_and_its_gradients() {
        let device = Device::Cpu;
        for (height, width, stride) in [(6, 7, 1), (7, 7, 2), (8, 6, 2), (5, 9, 1)] {
            let x = Var::randn(0f32, 1.0, (2, 3, height, width), &device).unwrap();
            let weight = Var::randn(0f32, 1.0, (4, 3, 3, 3), &device).unwrap();
            let probe = Tensor::randn(
                0f32,
                1.0,
                (2, 4, (height - 1) / stride + 1, (width - 1) / stride + 1),
                &device,
            )
            .unwrap();

            let ours = conv3x3_im2col(x.as_tensor(), weight.as_tensor(), stride).unwrap();
            let reference = x
                .as_tensor()
                .conv2d(weight.as_tensor(), 1, stride, 1, 1)
                .unwrap();
            assert_eq!(ours.dims(), reference.dims(), "{height}×{width}/{stride}");
            assert!(max_abs_difference(&ours, &reference) < 1e-4);

            let ours_grads = (ours * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let reference_grads = (reference * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for var in [&x, &weight] {
                let a = ours_grads.get(var).unwrap();
                let b = reference_grads.get(var).unwrap();
                let difference = max_abs_difference(a, b);
                assert!(difference < 1e-3, "{height}×{width}/{stride}: {difference}");
            }
        }
    }
}
