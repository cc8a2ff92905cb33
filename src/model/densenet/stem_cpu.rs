//! DenseNet's stem on the CPU: the 7×7, stride-2 convolution (with norm0
//! folded in), its ReLU, and the 3×3, stride-2 max pool, as one operation.
//!
//! The stem does under 1 % of the network's arithmetic, yet through candle
//! it took about 15 ms of a 70 ms forward pass: candle's convolution
//! gathers its patches and pools on one thread, element by element. Here
//! the patch matrix is gathered row-parallel, one gemm writes onto the bias,
//! and the ReLU and pool run together, a channel per task.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::model::cpu::{contiguous_f32, matmul_into};

/// The stem's convolution geometry: DenseNet's 7×7, stride 2, padding 3.
const KERNEL: usize = 7;
const STRIDE: usize = 2;
const PADDING: usize = 3;

/// conv0 (norm0 folded in) → ReLU → 3×3/2 max pool with padding 1.
#[derive(Debug, Clone)]
pub(super) struct StemCpu {
    /// Row-major `[out, in × 7 × 7]`.
    weight: Vec<f32>,
    /// One per output channel.
    bias: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
}

impl StemCpu {
    /// From conv0's `[out, in, 7, 7]` weight and `[out]` bias.
    pub(super) fn new(weight: &Tensor, bias: &Tensor) -> Result<StemCpu> {
        let (out_channels, in_channels, kh, kw) = weight.dims4()?;
        if (kh, kw) != (KERNEL, KERNEL) {
            candle_core::bail!("the stem needs a 7×7 kernel, got {kh}×{kw}");
        }
        Ok(StemCpu {
            weight: weight.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            bias: bias.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            out_channels,
            in_channels,
        })
    }
}

/// The output side of a convolution or pool.
fn output_side(input: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (input + 2 * padding - kernel) / stride + 1
}

/// Gathers the `[in × 49, oh × ow]` patch matrix of one `[in, h, w]` image.
fn gather_patches(
    image: &[f32],
    (height, width): (usize, usize),
    (out_height, out_width): (usize, usize),
    patches: &mut [f32],
) {
    let out_plane = out_height * out_width;
    patches
        .par_chunks_mut(out_plane)
        .enumerate()
        .for_each(|(row, target)| {
            let channel = row / (KERNEL * KERNEL);
            let (ky, kx) = ((row / KERNEL) % KERNEL, row % KERNEL);
            let source = &image[channel * height * width..][..height * width];
            for oy in 0..out_height {
                let target_row = &mut target[oy * out_width..][..out_width];
                let Some(y) = (oy * STRIDE + ky)
                    .checked_sub(PADDING)
                    .filter(|&y| y < height)
                else {
                    target_row.fill(0.0);
                    continue;
                };
                for (ox, t) in target_row.iter_mut().enumerate() {
                    *t = match (ox * STRIDE + kx).checked_sub(PADDING) {
                        Some(x) if x < width => source[y * width + x],
                        _ => 0.0,
                    };
                }
            }
        });
}

/// ReLU, then a 3×3, stride-2 max pool with padding 1, over `[c, h, w]`
/// planes. After a ReLU every value is ≥ 0, so starting each maximum at 0
/// does both at once, and the padding may count as zero. The pool runs in
/// two passes, along rows and then down columns, over a scratch plane.
fn relu_max_pool_3x3_stride2(
    planes: &[f32],
    (height, width): (usize, usize),
    (out_height, out_width): (usize, usize),
    out: &mut [f32],
) {
    out.par_chunks_mut(out_height * out_width)
        .zip(planes.par_chunks(height * width))
        .for_each(|(target, source)| {
            // Row pass: `height` rows of `out_width` maxima.
            let mut rows = vec![0f32; height * out_width];
            for (row, pooled) in source
                .chunks_exact(width)
                .zip(rows.chunks_exact_mut(out_width))
            {
                for (ox, p) in pooled.iter_mut().enumerate() {
                    let x = 2 * ox;
                    let mut best = row[x].max(0.0);
                    if x > 0 {
                        best = best.max(row[x - 1]);
                    }
                    if x + 1 < width {
                        best = best.max(row[x + 1]);
                    }
                    *p = best;
                }
            }
            // Column pass over the pooled rows.
            for (oy, target_row) in target.chunks_exact_mut(out_width).enumerate() {
                let y = 2 * oy;
                target_row.copy_from_slice(&rows[y * out_width..][..out_width]);
                for neighbour in [y.checked_sub(1), Some(y + 1).filter(|&n| n < height)]
                    .into_iter()
                    .flatten()
                {
                    let other = &rows[neighbour * out_width..][..out_width];
                    for (t, &o) in target_row.iter_mut().zip(other) {
                        *t = t.max(o);
                    }
                }
            }
        });
}

impl CustomOp1 for StemCpu {
    fn name(&self) -> &'static str {
        "densenet-stem"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let input = contiguous_f32(storage, layout, "densenet-stem")?;
        let (batch, channels, height, width) = layout.shape().dims4()?;
        if channels != self.in_channels {
            candle_core::bail!(
                "densenet-stem expects {} channels, got {channels}",
                self.in_channels
            );
        }
        let conv_side = (
            output_side(height, KERNEL, STRIDE, PADDING),
            output_side(width, KERNEL, STRIDE, PADDING),
        );
        let pool_side = (
            output_side(conv_side.0, 3, 2, 1),
            output_side(conv_side.1, 3, 2, 1),
        );
        let conv_plane = conv_side.0 * conv_side.1;
        let pool_plane = pool_side.0 * pool_side.1;
        let depth = self.in_channels * KERNEL * KERNEL;
        let mut patches = vec![0f32; depth * conv_plane];
        let mut convolved = vec![0f32; self.out_channels * conv_plane];
        let mut out = vec![0f32; batch * self.out_channels * pool_plane];
        for (image, target) in out
            .chunks_exact_mut(self.out_channels * pool_plane)
            .enumerate()
        {
            let source = &input[image * channels * height * width..][..channels * height * width];
            gather_patches(source, (height, width), conv_side, &mut patches);
            for (row, &b) in convolved.chunks_exact_mut(conv_plane).zip(&self.bias) {
                row.fill(b);
            }
            matmul_into(
                (self.out_channels, conv_plane, depth),
                &self.weight,
                &patches,
                &mut convolved,
                true,
            );
            relu_max_pool_3x3_stride2(&convolved, conv_side, pool_side, target);
        }
        Ok((
            CpuStorage::F32(out),
            Shape::from((batch, self.out_channels, pool_side.0, pool_side.1)),
        ))
    }
}
