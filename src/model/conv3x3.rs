//! A 3×3, stride-1, padding-1 convolution for the CPU, computed as one
//! matrix product followed by nine shifted sums.
//!
//! candle's generic path copies every input pixel nine times (im2col) and
//! then multiplies by a matrix with as few columns as the layer has output
//! channels — 32 in a DenseNet layer, which suits gemm poorly. Here the
//! nine kernel taps are stacked instead: `Z = W_taps · X` is one product
//! with `9 × out` rows over all pixels, and the output is the sum of the
//! nine `out`-channel slabs of `Z`, each shifted by its tap's offset. Same
//! arithmetic, a quarter of the memory traffic, and a product shape gemm
//! likes.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The weights of one 3×3 convolution, rearranged for the product.
#[derive(Debug, Clone)]
pub struct Conv3x3 {
    /// `[9 × out, in]`: row `tap × out + o` holds kernel tap `tap` of
    /// output channel `o`.
    taps: Tensor,
    out_channels: usize,
}

impl Conv3x3 {
    /// From a `[out, in, 3, 3]` convolution weight.
    pub fn new(weight: &Tensor) -> Result<Conv3x3> {
        let (out_channels, in_channels, kh, kw) = weight.dims4()?;
        if (kh, kw) != (3, 3) {
            candle_core::bail!("Conv3x3 needs a 3×3 kernel, got {kh}×{kw}");
        }
        let taps = weight
            .permute((2, 3, 0, 1))?
            .contiguous()?
            .reshape((9 * out_channels, in_channels))?;
        Ok(Conv3x3 { taps, out_channels })
    }

    /// Convolves a `[1, in, h, w]` input.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, channels, height, width) = x.dims4()?;
        if batch != 1 {
            candle_core::bail!("Conv3x3 handles one image at a time");
        }
        let pixels = x.contiguous()?.reshape((channels, height * width))?;
        let stacked = self.taps.matmul(&pixels)?;
        stacked
            .reshape((9, self.out_channels, height, width))?
            .apply_op1_no_bwd(&ShiftedTapSum)
    }
}

/// `[9, c, h, w]` → `[1, c, h, w]`: the sum over taps of each slab shifted
/// by the tap's offset, with zeros beyond the border.
struct ShiftedTapSum;

impl CustomOp1 for ShiftedTapSum {
    fn name(&self) -> &'static str {
        "shifted-tap-sum"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (taps, channels, height, width) = layout.shape().dims4()?;
        if taps != 9 {
            candle_core::bail!("expected 9 taps, got {taps}");
        }
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("shifted-tap-sum supports f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("shifted-tap-sum needs a contiguous input");
        };
        let values = &values[start..end];
        let plane = height * width;
        let mut out = vec![0f32; channels * plane];
        // Output planes are independent: one task per channel.
        out.par_chunks_mut(plane)
            .enumerate()
            .for_each(|(channel, target)| {
                for tap in 0..9 {
                    let (dy, dx) = (tap / 3, tap % 3);
                    let source = &values[(tap * channels + channel) * plane..][..plane];
                    // Output (y, x) takes source (y + dy - 1, x + dx - 1).
                    for y in 0..height {
                        let sy = y + dy;
                        if sy == 0 || sy > height {
                            continue;
                        }
                        let source_row = &source[(sy - 1) * width..][..width];
                        let target_row = &mut target[y * width..][..width];
                        match dx {
                            0 => add_into(&mut target_row[1..], &source_row[..width - 1]),
                            1 => add_into(target_row, source_row),
                            _ => add_into(&mut target_row[..width - 1], &source_row[1..]),
                        }
                    }
                }
            });
        Ok((
            CpuStorage::F32(out),
            Shape::from((1, channels, height, width)),
        ))
    }
}

/// `target[i] += source[i]`, in a form the compiler vectorises.
fn add_into(target: &mut [f32], source: &[f32]) {
    for (t, s) in target.iter_mut().zip(source) {
        *t += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module};
    use candle_nn::{Conv2d, Conv2dConfig};

    #[test]
    fn matches_candles_convolution() {
        let device = Device::Cpu;
        let weight = Tensor::randn(0f32, 1.0, (5, 4, 3, 3), &device).unwrap();
        let input = Tensor::randn(0f32, 1.0, (1, 4, 6, 7), &device).unwrap();
        let reference = Conv2d::new(
            weight.clone(),
            None,
            Conv2dConfig {
                padding: 1,
                ..Default::default()
            },
        )
        .forward(&input)
        .unwrap();
        let ours = Conv3x3::new(&weight).unwrap().forward(&input).unwrap();
        assert_eq!(ours.dims(), reference.dims());
        let diff = crate::model::max_abs_difference(&ours, &reference);
        assert!(diff < 1e-4, "{diff}");
    }
}
