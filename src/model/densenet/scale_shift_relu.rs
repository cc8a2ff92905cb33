//! `max(0, x · scale[c] + shift[c])`: a folded batch normalisation and its
//! ReLU in one parallel pass on the CPU.
//!
//! In DenseNet every normalisation is followed by a ReLU, and the dense
//! layers apply one to their whole, growing input; as separate candle
//! operations the multiply, add and ReLU would each allocate and traverse a
//! tensor that large, on one thread.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

use crate::model::cpu::contiguous_f32;

/// Per-channel scale and shift, followed by a ReLU.
#[derive(Debug, Clone)]
pub(super) struct ScaleShiftRelu {
    pub(super) scale: Vec<f32>,
    pub(super) shift: Vec<f32>,
}

impl ScaleShiftRelu {
    /// Applies it to one `[channels, plane]` image, writing `out`.
    pub(super) fn apply(&self, input: &[f32], plane: usize, out: &mut [f32]) {
        let channels = self.scale.len();
        out[..channels * plane]
            .par_chunks_mut(plane)
            .zip(input[..channels * plane].par_chunks(plane))
            .with_min_len((4096 / plane.max(1)).max(1))
            .enumerate()
            .for_each(|(channel, (target, source))| {
                let (scale, shift) = (self.scale[channel], self.shift[channel]);
                for (t, &s) in target.iter_mut().zip(source) {
                    *t = (s * scale + shift).max(0.0);
                }
            });
    }
}

/// [`ScaleShiftRelu`] followed by a 2×2, stride-2 average pool (odd edges
/// dropped), in one pass: DenseNet's transitions, whose pool commutes with
/// the 1×1 convolution after it and so comes first.
pub(super) struct ScaleShiftReluPool2<'a>(pub(super) &'a ScaleShiftRelu);

impl CustomOp1 for ScaleShiftReluPool2<'_> {
    fn name(&self) -> &'static str {
        "scale-shift-relu-pool2"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let input = contiguous_f32(storage, layout, "scale-shift-relu-pool2")?;
        let (batch, channels, height, width) = layout.shape().dims4()?;
        let norm = self.0;
        if channels != norm.scale.len() {
            candle_core::bail!("{channels} channels but {} scales", norm.scale.len());
        }
        let (out_height, out_width) = (height / 2, width / 2);
        let mut out = vec![0f32; batch * channels * out_height * out_width];
        out.par_chunks_mut(out_height * out_width)
            .zip(input.par_chunks(height * width))
            .enumerate()
            .for_each(|(index, (target, source))| {
                let channel = index % channels;
                let (scale, shift) = (norm.scale[channel], norm.shift[channel]);
                let normed = |v: f32| (v * scale + shift).max(0.0);
                for oy in 0..out_height {
                    let top = &source[2 * oy * width..][..width];
                    let bottom = &source[(2 * oy + 1) * width..][..width];
                    for (ox, t) in target[oy * out_width..][..out_width].iter_mut().enumerate() {
                        let x = 2 * ox;
                        *t = 0.25
                            * (normed(top[x])
                                + normed(top[x + 1])
                                + normed(bottom[x])
                                + normed(bottom[x + 1]));
                    }
                }
            });
        Ok((
            CpuStorage::F32(out),
            Shape::from((batch, channels, out_height, out_width)),
        ))
    }
}

impl CustomOp1 for ScaleShiftRelu {
    fn name(&self) -> &'static str {
        "scale-shift-relu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let input = contiguous_f32(storage, layout, "scale-shift-relu")?;
        let (_, channels, height, width) = layout.shape().dims4()?;
        if channels != self.scale.len() {
            candle_core::bail!("{channels} channels but {} scales", self.scale.len());
        }
        let plane = height * width;
        let mut out = vec![0f32; input.len()];
        let image = channels * plane;
        for (target, source) in out.chunks_mut(image).zip(input.chunks(image)) {
            self.apply(source, plane, target);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn scales_shifts_and_rectifies_each_channel() {
        let op = ScaleShiftRelu {
            scale: vec![2.0, -1.0],
            shift: vec![1.0, 0.5],
        };
        let x = Tensor::new(&[1f32, -1.0, 3.0, 0.25], &Device::Cpu)
            .unwrap()
            .reshape((1, 2, 1, 2))
            .unwrap();
        let y = x.apply_op1_no_bwd(&op).unwrap();
        let values = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values, [3.0, 0.0, 0.0, 0.25]);
    }

    #[test]
    fn the_pooled_form_averages_rectified_2x2_windows_and_drops_odd_edges() {
        let op = ScaleShiftRelu {
            scale: vec![1.0],
            shift: vec![0.0],
        };
        // 3×3: the last row and column are dropped.
        let x = Tensor::new(
            &[1f32, -4.0, 9.0, 3.0, 4.0, 9.0, 9.0, 9.0, 9.0],
            &Device::Cpu,
        )
        .unwrap()
        .reshape((1, 1, 3, 3))
        .unwrap();
        let y = x.apply_op1_no_bwd(&ScaleShiftReluPool2(&op)).unwrap();
        assert_eq!(y.dims(), &[1, 1, 1, 1]);
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [2.0]);
    }
}
