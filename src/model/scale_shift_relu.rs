//! `max(0, x · scale[c] + shift[c])`: a folded batch normalisation and its
//! ReLU in one parallel pass on the CPU.
//!
//! In DenseNet every normalisation is followed by a ReLU, and the dense
//! layers apply one to their whole, growing input; as separate candle
//! operations the multiply, add and ReLU would each allocate and traverse a
//! tensor that large, on one thread.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

/// Per-channel scale and shift, followed by a ReLU.
#[derive(Debug, Clone)]
pub struct ScaleShiftRelu {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

impl ScaleShiftRelu {
    /// Applies it to one `[channels, plane]` image, writing `out`.
    pub fn apply(&self, input: &[f32], plane: usize, out: &mut [f32]) {
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

impl CustomOp1 for ScaleShiftRelu {
    fn name(&self) -> &'static str {
        "scale-shift-relu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(values) = storage else {
            candle_core::bail!("scale-shift-relu supports f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("scale-shift-relu needs a contiguous input");
        };
        let (_, channels, height, width) = layout.shape().dims4()?;
        if channels != self.scale.len() {
            candle_core::bail!("{channels} channels but {} scales", self.scale.len());
        }
        let plane = height * width;
        let input = &values[start..end];
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
}
