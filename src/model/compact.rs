//! The compact architecture of the embedded default model
//! (`chestnet-compact-v1`): a small convolutional network that runs at a
//! 512×512 input, where a 5 mm nodule still spans several pixels, and that
//! outputs for every label both an image-level logit and a coarse
//! segmentation map, so regions come from the model itself.
//!
//! Layers are chosen to train with candle on a CPU: strided 3×3
//! convolutions (no pooling with overlapping windows), batch
//! normalisation, ReLU, a global mean and 1×1 convolutions.
//!
//! ```text
//! input 1×512×512
//! stem    conv3×3/2 →16                       256²
//! stage1  conv3×3/2 →32,  conv3×3 →32         128²
//! stage2  conv3×3/2 →64,  conv3×3 →64          64²
//! stage3  conv3×3/2 →96,  conv3×3 →96          32²   → segmentation head (1×1 conv → labels)
//! stage4  conv3×3/2 →128, conv3×3 →128         16²   → mean → classifier (labels)
//! ```

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{BatchNorm, Conv2d, Linear, ModuleT, VarBuilder};

use crate::model::batch_norm_train::batch_norm_relu_train;
use crate::model::conv_im2col::conv3x3;
use crate::model::conv_no_bias;

/// Architecture hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub num_labels: usize,
    /// Output channels of the stem and the four stages.
    pub widths: [usize; 5],
    pub batch_norm_eps: f64,
}

impl Config {
    pub fn v1(num_labels: usize) -> Config {
        Config {
            num_labels,
            widths: [16, 32, 64, 96, 128],
            batch_norm_eps: 1e-5,
        }
    }
}

/// conv3×3 → batch norm → ReLU.
#[derive(Debug, Clone)]
struct ConvBnRelu {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvBnRelu {
    fn load(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        eps: f64,
        vb: VarBuilder,
    ) -> Result<ConvBnRelu> {
        Ok(ConvBnRelu {
            conv: conv_no_bias(in_channels, out_channels, 3, stride, 1, vb.pp("conv"))?,
            norm: candle_nn::batch_norm(out_channels, eps, vb.pp("norm"))?,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        // On the CPU, im2col + matmul: same result, and a backward pass
        // several times faster than candle's (see `conv_im2col`).
        let convolved = if x.device().is_cpu() {
            conv3x3(x, self.conv.weight(), self.conv.config().stride)?
        } else {
            self.conv.forward(x)?
        };
        if train && convolved.device().is_cpu() && convolved.dtype() == DType::F32 {
            // One operation with a hand-written backward pass instead of
            // candle's chain of element-wise ones (see `batch_norm_train`).
            return batch_norm_relu_train(&convolved, &self.norm);
        }
        self.norm.forward_t(&convolved, train)?.relu()
    }
}

/// The network.
#[derive(Debug, Clone)]
pub struct CompactNet {
    stem: ConvBnRelu,
    stages: Vec<[ConvBnRelu; 2]>,
    segmentation: Conv2d,
    classifier: Linear,
}

/// What one forward pass yields.
#[derive(Debug, Clone)]
pub struct CompactOutput {
    /// `[batch, labels]`, before the sigmoid.
    pub logits: Tensor,
    /// `[batch, labels, input/16, input/16]`, before the sigmoid.
    pub segmentation_logits: Tensor,
}

impl CompactNet {
    pub fn load(config: &Config, vb: VarBuilder) -> Result<CompactNet> {
        let eps = config.batch_norm_eps;
        let w = config.widths;
        let stem = ConvBnRelu::load(1, w[0], 2, eps, vb.pp("stem"))?;
        let mut stages = Vec::new();
        for stage in 0..4 {
            let stage_vb = vb.pp(format!("stage{}", stage + 1));
            stages.push([
                ConvBnRelu::load(w[stage], w[stage + 1], 2, eps, stage_vb.pp("down"))?,
                ConvBnRelu::load(w[stage + 1], w[stage + 1], 1, eps, stage_vb.pp("refine"))?,
            ]);
        }
        let segmentation = candle_nn::conv2d(
            w[3],
            config.num_labels,
            1,
            Default::default(),
            vb.pp("segmentation"),
        )?;
        let classifier = candle_nn::linear(w[4], config.num_labels, vb.pp("classifier"))?;
        Ok(CompactNet {
            stem,
            stages,
            segmentation,
            classifier,
        })
    }

    /// `train` selects batch statistics (training) or running statistics.
    pub fn forward_t(&self, input: &Tensor, train: bool) -> Result<CompactOutput> {
        let mut x = self.stem.forward_t(input, train)?;
        let mut segmentation_logits = None;
        for (index, [down, refine]) in self.stages.iter().enumerate() {
            x = refine.forward_t(&down.forward_t(&x, train)?, train)?;
            if index == 2 {
                segmentation_logits = Some(self.segmentation.forward(&x)?);
            }
        }
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
        Ok(CompactOutput {
            logits: self.classifier.forward(&pooled)?,
            segmentation_logits: segmentation_logits.expect("four stages"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::seeded::SeededBackend;
    use candle_core::{DType, Device};

    #[test]
    fn outputs_have_the_documented_shapes() {
        let vb = VarBuilder::from_backend(Box::new(SeededBackend), DType::F32, Device::Cpu);
        let model = CompactNet::load(&Config::v1(7), vb).unwrap();
        let input = Tensor::zeros((2, 1, 128, 128), DType::F32, &Device::Cpu).unwrap();
        let output = model.forward_t(&input, false).unwrap();
        assert_eq!(output.logits.dims(), &[2, 7]);
        assert_eq!(output.segmentation_logits.dims(), &[2, 7, 8, 8]);
    }
}
