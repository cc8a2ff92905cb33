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
//! likes. `dense_block_cpu` runs it inside DenseNet's dense layers.
//!
//! Inference only, with no backward pass: the compact model's trainable
//! 3×3 convolution is `compact::conv_im2col` instead.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use crate::model::cpu::matmul_into;

/// The weights of one 3×3 convolution, rearranged as stacked taps for the
/// product.
#[derive(Debug, Clone)]
pub(super) struct Conv3x3Taps {
    /// Row-major `[9 × out, in]`: row `tap × out + o` holds kernel tap
    /// `tap` of output channel `o`.
    taps: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
}

impl Conv3x3Taps {
    /// From a `[out, in, 3, 3]` convolution weight.
    pub(super) fn new(weight: &Tensor) -> Result<Conv3x3Taps> {
        let (out_channels, in_channels, kh, kw) = weight.dims4()?;
        if (kh, kw) != (3, 3) {
            candle_core::bail!("Conv3x3Taps needs a 3×3 kernel, got {kh}×{kw}");
        }
        let taps = weight
            .to_dtype(DType::F32)?
            .permute((2, 3, 0, 1))?
            .flatten_all()?
            .to_vec1()?;
        Ok(Conv3x3Taps {
            taps,
            out_channels,
            in_channels,
        })
    }

    pub(super) fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// How many floats [`Conv3x3Taps::convolve`] needs as scratch for a
    /// `height × width` input.
    pub(super) fn scratch_len(&self, height: usize, width: usize) -> usize {
        9 * self.out_channels * height * width
    }

    /// Convolves one `[in, height, width]` image into `out`
    /// (`[out, height, width]`), overwriting it; `scratch` holds at least
    /// [`Conv3x3Taps::scratch_len`] floats.
    pub(super) fn convolve(
        &self,
        input: &[f32],
        (height, width): (usize, usize),
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        let plane = height * width;
        let stacked = &mut scratch[..self.scratch_len(height, width)];
        matmul_into(
            (9 * self.out_channels, plane, self.in_channels),
            &self.taps,
            &input[..self.in_channels * plane],
            stacked,
            false,
        );
        sum_shifted_taps(stacked, self.out_channels, (height, width), out);
    }
}

/// `[9, c, h, w]` → `[c, h, w]`: the sum over taps of each slab shifted by
/// the tap's offset, with zeros beyond the border. Overwrites `out`.
fn sum_shifted_taps(
    stacked: &[f32],
    channels: usize,
    (height, width): (usize, usize),
    out: &mut [f32],
) {
    let plane = height * width;
    // Output planes are independent: one task per channel, or several
    // channels per task when planes are small.
    out[..channels * plane]
        .par_chunks_mut(plane)
        .with_min_len((4096 / plane.max(1)).max(1))
        .enumerate()
        .for_each(|(channel, target)| {
            target.fill(0.0);
            for tap in 0..9 {
                let (dy, dx) = (tap / 3, tap % 3);
                let source = &stacked[(tap * channels + channel) * plane..][..plane];
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
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
        let conv = Conv3x3Taps::new(&weight).unwrap();
        let mut scratch = vec![0.0; conv.scratch_len(6, 7)];
        let mut ours = vec![f32::NAN; 5 * 6 * 7];
        let pixels = input.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        conv.convolve(&pixels, (6, 7), &mut scratch, &mut ours);
        let diff = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-4, "{diff}");
    }
}
