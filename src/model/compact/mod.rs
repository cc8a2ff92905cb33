//! The compact architectures the node trains itself (`chestnet-compact-v1`
//! and `-v2`): small convolutional networks that output for every label
//! both an image-level logit and a segmentation map, so regions come from
//! the model itself.
//!
//! Layers are chosen to train with candle on a CPU: strided 3×3
//! convolutions (no pooling with overlapping windows), batch
//! normalisation, ReLU, a global mean, a spatial maximum, integer nearest
//! upsampling and 1×1 convolutions (as matrix products). On the CPU two of
//! them run as hand-written operations with their own backward passes,
//! private to this architecture: the 3×3 convolution (`conv_im2col`) and
//! batch norm + ReLU in training mode (`batch_norm_train`).
//!
//! ```text
//! input 1×S×S                                   (S = 256 for the default model)
//! stem    conv3×3/2 →16                   S/2
//! stage1  conv3×3/2 →32,  conv3×3 →32     S/4 ─────────────┐ v2: 1×1 →32 ─┐
//! stage2  conv3×3/2 →64,  conv3×3 →64     S/8 ──────────┐  │ v2: 1×1 →32 ─┤ top-down sum,
//! stage3  conv3×3/2 →96,  conv3×3 →96     S/16 ─────┐   │  │ v2: 1×1 →32 ─┘ ×2 nearest each
//! stage4  conv3×3/2 →128, conv3×3 →128    S/32      │   │  │   → conv3×3 →32 → 1×1 → labels  (S/4)
//!           → mean → classifier (labels)           v1: 1×1 → labels           (S/16)
//! ```
//!
//! **Why v2.** v1's map had one cell per 16 input pixels (22 mm on the
//! default model's field) and its image-level logit came from a mean over
//! the whole image. A 5–20 mm nodule moved neither: it covered a fraction
//! of one cell, and was diluted to nothing by the mean. v2 segments at
//! stride 4 (a 5.6 mm cell) with a small feature pyramid, so a region's
//! centre can land on a small nodule, and adds each map's maximum to the
//! label's image-level logit, so one strong spot can make an image
//! positive.
//!
//! That maximum is a fixed input to the image logit (its gradient is
//! stopped): the map learns only from its segmentation target. With the
//! gradient flowing (multiple-instance pooling), every positive image whose
//! nodule the network cannot yet see pushed up whichever lung cell was
//! highest, and after 8 epochs of the default run the nodule map had
//! become a diffuse outline of both lungs, with no lesion localised.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{BatchNorm, Conv2d, Linear, ModuleT, VarBuilder};

mod batch_norm_train;
mod conv_im2col;

use batch_norm_train::batch_norm_relu_train;
use conv_im2col::conv3x3_im2col;

use crate::model::conv_no_bias;

/// Architecture hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub num_labels: usize,
    /// Output channels of the stem and the four stages.
    pub widths: [usize; 5],
    pub batch_norm_eps: f64,
    /// v2's top-down decoder: its channel count; `None` is v1.
    pub decoder_width: Option<usize>,
}

impl Config {
    pub fn v1(num_labels: usize) -> Config {
        Config {
            num_labels,
            widths: [16, 32, 64, 96, 128],
            batch_norm_eps: 1e-5,
            decoder_width: None,
        }
    }

    pub fn v2(num_labels: usize) -> Config {
        Config {
            decoder_width: Some(32),
            ..Config::v1(num_labels)
        }
    }

    /// The configuration a manifest's `architecture` names.
    pub fn by_architecture(architecture: &str, num_labels: usize) -> Option<Config> {
        match architecture {
            ARCHITECTURE_V1 => Some(Config::v1(num_labels)),
            ARCHITECTURE_V2 => Some(Config::v2(num_labels)),
            _ => None,
        }
    }

    /// The manifest's name for this configuration.
    pub fn architecture(&self) -> &'static str {
        match self.decoder_width {
            None => ARCHITECTURE_V1,
            Some(_) => ARCHITECTURE_V2,
        }
    }

    /// Input pixels per segmentation-map cell.
    pub fn segmentation_stride(&self) -> usize {
        match self.decoder_width {
            None => 16,
            Some(_) => 4,
        }
    }
}

/// A stride-16 map and a mean-pooled image logit.
pub const ARCHITECTURE_V1: &str = "chestnet-compact-v1";
/// A stride-4 map from a top-down decoder; map maxima join the image logit.
pub const ARCHITECTURE_V2: &str = "chestnet-compact-v2";

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
            conv3x3_im2col(x, self.conv.weight(), self.conv.config().stride)?
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

/// A 1×1 convolution with bias, computed as a batched matrix product
/// (candle's 1×1 convolution would take its slow transposed-convolution
/// path backwards). Unlike `densenet::pointwise`, DenseNet's host-side
/// inference kernel, it stays in candle's graph so that it trains. Tensor names are a `Conv2d`'s: `weight [out, in, 1, 1]`
/// and `bias [out]`.
#[derive(Debug, Clone)]
struct Conv1x1Matmul {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1x1Matmul {
    fn load(in_channels: usize, out_channels: usize, vb: VarBuilder) -> Result<Conv1x1Matmul> {
        let conv = candle_nn::conv2d(in_channels, out_channels, 1, Default::default(), vb)?;
        Ok(Conv1x1Matmul {
            weight: conv.weight().flatten_from(1)?,
            bias: conv.bias().expect("conv2d has a bias").clone(),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, channels, height, width) = x.dims4()?;
        let out_channels = self.weight.dim(0)?;
        let columns = x.reshape((batch, channels, height * width))?;
        let weight = self.weight.broadcast_left(batch)?;
        weight
            .matmul(&columns)?
            .broadcast_add(&self.bias.reshape((1, out_channels, 1))?)?
            .reshape((batch, out_channels, height, width))
    }
}

/// v2's top-down decoder: lateral 1×1 projections of stages 1–3, summed
/// from coarse to fine with ×2 nearest upsampling, then one 3×3 block.
#[derive(Debug, Clone)]
struct Decoder {
    /// For stages 1, 2 and 3.
    laterals: [Conv1x1Matmul; 3],
    refine: ConvBnRelu,
}

impl Decoder {
    fn forward_t(&self, stage_outputs: &[Tensor], train: bool) -> Result<Tensor> {
        let mut top = self.laterals[2].forward(&stage_outputs[2])?;
        for stage in [1, 0] {
            let lateral = self.laterals[stage].forward(&stage_outputs[stage])?;
            let (_, _, height, width) = lateral.dims4()?;
            top = (top.upsample_nearest2d(height, width)? + lateral)?;
        }
        self.refine.forward_t(&top, train)
    }
}

/// Where the segmentation map comes from.
#[derive(Debug, Clone)]
enum SegmentationHead {
    /// v1: a 1×1 convolution on stage 3.
    Stage3(Conv2d),
    /// v2: the decoder, then a 1×1 convolution.
    Decoded(Decoder, Conv1x1Matmul),
}

/// The network.
#[derive(Debug, Clone)]
pub struct CompactNet {
    stem: ConvBnRelu,
    stages: Vec<[ConvBnRelu; 2]>,
    segmentation: SegmentationHead,
    classifier: Linear,
}

/// What one forward pass yields.
#[derive(Debug, Clone)]
pub struct CompactOutput {
    /// `[batch, labels]`, before the sigmoid.
    pub logits: Tensor,
    /// `[batch, labels, input/stride, input/stride]`, before the sigmoid
    /// ([`Config::segmentation_stride`]).
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
        let segmentation = match config.decoder_width {
            None => SegmentationHead::Stage3(candle_nn::conv2d(
                w[3],
                config.num_labels,
                1,
                Default::default(),
                vb.pp("segmentation"),
            )?),
            Some(width) => {
                let decoder_vb = vb.pp("decoder");
                let lateral = |stage: usize| {
                    Conv1x1Matmul::load(w[stage], width, decoder_vb.pp(format!("lateral{stage}")))
                };
                let decoder = Decoder {
                    laterals: [lateral(1)?, lateral(2)?, lateral(3)?],
                    refine: ConvBnRelu::load(width, width, 1, eps, decoder_vb.pp("refine"))?,
                };
                let head = Conv1x1Matmul::load(width, config.num_labels, vb.pp("segmentation"))?;
                SegmentationHead::Decoded(decoder, head)
            }
        };
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
        let mut stage_outputs = Vec::with_capacity(self.stages.len());
        for [down, refine] in &self.stages {
            x = refine.forward_t(&down.forward_t(&x, train)?, train)?;
            stage_outputs.push(x.clone());
        }
        let pooled = x.mean(D::Minus1)?.mean(D::Minus1)?;
        let logits = self.classifier.forward(&pooled)?;
        Ok(match &self.segmentation {
            SegmentationHead::Stage3(head) => CompactOutput {
                logits,
                segmentation_logits: head.forward(&stage_outputs[2])?,
            },
            SegmentationHead::Decoded(decoder, head) => {
                let segmentation_logits =
                    head.forward(&decoder.forward_t(&stage_outputs, train)?)?;
                let strongest_spot = segmentation_logits
                    .flatten_from(2)?
                    .max(D::Minus1)?
                    .detach();
                CompactOutput {
                    logits: (logits + strongest_spot)?,
                    segmentation_logits,
                }
            }
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
        let vb = VarBuilder::from_backend(Box::new(SeededBackend), DType::F32, Device::Cpu);
        let model = CompactNet::load(&Config::v2(7), vb).unwrap();
        let output = model.forward_t(&input, false).unwrap();
        assert_eq!(output.logits.dims(), &[2, 7]);
        assert_eq!(output.segmentation_logits.dims(), &[2, 7, 32, 32]);
    }

    /// The 1×1 convolution as a matrix product equals candle's convolution.
    #[test]
    fn the_matrix_product_matches_a_1x1_convolution() {
        let device = Device::Cpu;
        let vb = VarBuilder::from_backend(Box::new(SeededBackend), DType::F32, device.clone());
        let conv = candle_nn::conv2d(5, 3, 1, Default::default(), vb.pp("p")).unwrap();
        let as_matmul = Conv1x1Matmul::load(5, 3, vb.pp("p")).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 5, 4, 6), &device).unwrap();
        let difference = (conv.forward(&x).unwrap() - as_matmul.forward(&x).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(difference < 1e-5, "{difference}");
    }

    /// v2's image logit is the classifier's plus the map's maximum, and
    /// its gradient does not reach the map.
    #[test]
    fn the_strongest_spot_joins_the_image_logit_without_training_the_map() {
        let device = Device::Cpu;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = CompactNet::load(&Config::v2(2), vb).unwrap();
        let input = Tensor::randn(0f32, 1.0, (2, 1, 64, 64), &device).unwrap();
        let output = model.forward_t(&input, true).unwrap();

        let SegmentationHead::Decoded(decoder, head) = &model.segmentation else {
            panic!("v2 has a decoder")
        };
        // Shifting the map's bias by 1 shifts every image logit by 1.
        let shifted_head = Conv1x1Matmul {
            weight: head.weight.clone(),
            bias: (&head.bias + 1.0).unwrap(),
        };
        let shifted = CompactNet {
            segmentation: SegmentationHead::Decoded(decoder.clone(), shifted_head),
            ..model.clone()
        };
        let image_logits = |net: &CompactNet| -> Vec<f32> {
            let output = net.forward_t(&input, false).unwrap();
            output.logits.flatten_all().unwrap().to_vec1().unwrap()
        };
        for (b, a) in image_logits(&model).iter().zip(image_logits(&shifted)) {
            assert!((a - b - 1.0).abs() < 1e-4, "{b} → {a}");
        }

        let grads = output.logits.sum_all().unwrap().backward().unwrap();
        assert!(
            grads.get(&head.bias).is_none(),
            "the map's bias got a gradient"
        );
        assert!(grads.get(&model.classifier.weight().clone()).is_some());
    }
}
