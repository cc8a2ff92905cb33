//! A DenseNet dense block on the CPU as one operation over one buffer.
//!
//! Through candle, each dense layer is a chain of operations that each
//! allocate their output — normalised input, bottleneck, stacked taps, new
//! channels, then a copy into the block — about four hundred allocations
//! per forward pass, many of them megabytes, so much of the time went to
//! the allocator, page faults and zeroing rather than arithmetic
//! (BENCHMARKS.md). Here the block's output is allocated once at its final
//! width, every layer writes its new channels straight into it, and three
//! scratch buffers sized for the widest layer serve every layer in turn.
//!
//! Per layer, on channels `0..c` of the buffer:
//! 1. `normed = max(0, norm1(x))`;
//! 2. `bottleneck = max(0, W1·normed + b1)` (norm2 folded into W1, b1);
//! 3. the 3×3 convolution of `bottleneck` as stacked taps and shifted sums,
//!    written to channels `c..c + growth`.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};

use super::conv3x3_taps::Conv3x3Taps;
use super::pointwise::HostPointwise;
use super::scale_shift_relu::ScaleShiftRelu;
use crate::model::cpu::contiguous_f32;

/// One dense layer's weights on the host.
#[derive(Debug, Clone)]
pub(super) struct HostDenseLayer {
    pub(super) norm1: ScaleShiftRelu,
    /// conv1 with norm2 folded in.
    pub(super) conv1_norm2: HostPointwise,
    pub(super) conv2: Conv3x3Taps,
}

/// A dense block's layers, applied to `[n, c, h, w]` f32 input.
#[derive(Debug, Clone)]
pub(super) struct DenseBlockCpu {
    layers: Vec<HostDenseLayer>,
}

impl DenseBlockCpu {
    pub(super) fn new(layers: Vec<HostDenseLayer>) -> DenseBlockCpu {
        DenseBlockCpu { layers }
    }

    /// Channels the block adds to its input.
    fn added_channels(&self) -> usize {
        self.layers.iter().map(|l| l.conv2.out_channels()).sum()
    }

    /// Scratch buffers for every layer of the block on `height × width`
    /// planes, whose input has `channels` channels.
    fn scratch(&self, channels: usize, (height, width): (usize, usize)) -> Scratch {
        let plane = height * width;
        let widest = |size: &dyn Fn(&HostDenseLayer) -> usize| {
            self.layers.iter().map(size).max().unwrap_or(0)
        };
        Scratch {
            normed: vec![0f32; (channels + self.added_channels()) * plane],
            bottleneck: vec![0f32; widest(&|l| l.conv1_norm2.out_channels()) * plane],
            stacked: vec![0f32; widest(&|l| l.conv2.scratch_len(height, width))],
        }
    }

    /// Runs the layers on one image whose first `channels` planes of
    /// `buffer` hold the block input; fills the rest of `buffer`.
    fn run_image(
        &self,
        buffer: &mut [f32],
        mut channels: usize,
        (height, width): (usize, usize),
        scratch: &mut Scratch,
    ) {
        let plane = height * width;
        for layer in &self.layers {
            let (input, rest) = buffer.split_at_mut(channels * plane);
            layer.norm1.apply(input, plane, &mut scratch.normed);
            layer
                .conv1_norm2
                .apply(&scratch.normed, plane, &mut scratch.bottleneck, true);
            let new_channels = layer.conv2.out_channels();
            layer.conv2.convolve(
                &scratch.bottleneck,
                (height, width),
                &mut scratch.stacked,
                &mut rest[..new_channels * plane],
            );
            channels += new_channels;
        }
    }
}

/// The buffers every layer of a block reuses in turn.
struct Scratch {
    normed: Vec<f32>,
    bottleneck: Vec<f32>,
    stacked: Vec<f32>,
}

impl CustomOp1 for DenseBlockCpu {
    fn name(&self) -> &'static str {
        "dense-block"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let input = contiguous_f32(storage, layout, "dense-block")?;
        let (batch, channels, height, width) = layout.shape().dims4()?;
        let expected = self.layers.first().map(|l| l.norm1.scale.len());
        if expected != Some(channels) {
            candle_core::bail!("dense-block expects {expected:?} input channels, got {channels}");
        }
        let plane = height * width;
        let total = channels + self.added_channels();
        let mut out = vec![0f32; batch * total * plane];
        let mut scratch = self.scratch(channels, (height, width));
        for (image, target) in out.chunks_exact_mut(total * plane).enumerate() {
            target[..channels * plane]
                .copy_from_slice(&input[image * channels * plane..][..channels * plane]);
            self.run_image(target, channels, (height, width), &mut scratch);
        }
        Ok((
            CpuStorage::F32(out),
            Shape::from((batch, total, height, width)),
        ))
    }
}
