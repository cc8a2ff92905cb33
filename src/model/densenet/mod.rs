//! DenseNet-121 (Huang et al., 2017) as torchxrayvision's
//! `densenet121-res224-all` uses it: one grey input channel, 224×224,
//! 18 outputs.
//!
//! Tensor names are torchvision's (`features.denseblock1.denselayer1.conv1.weight`,
//! `features.transition1.norm.running_var`, `classifier.bias`, ...), so a
//! converted state_dict loads as is (see `tools/convert_xrv_densenet.py`).
//! Batch normalisation is folded at load time into a per-channel scale and
//! shift: inference needs nothing else from it.
//!
//! On the CPU the forward pass runs through hand-fused operations, private
//! to this architecture (BENCHMARKS.md has their measurements): the stem
//! (`stem_cpu`), each dense block over one buffer (`dense_block_cpu`), 1×1
//! convolutions with bias and ReLU (`pointwise`), 3×3 convolutions as
//! stacked taps (`conv3x3_taps`) and folded norm + ReLU (+ pool) passes
//! (`scale_shift_relu`). Other devices run the same layers as candle
//! operations.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Conv2d, Linear, VarBuilder};

mod conv3x3_taps;
mod dense_block_cpu;
mod pointwise;
mod scale_shift_relu;
mod stem_cpu;

use conv3x3_taps::Conv3x3Taps;
use dense_block_cpu::{DenseBlockCpu, HostDenseLayer};
use pointwise::PointwiseConv;
use scale_shift_relu::{ScaleShiftRelu, ScaleShiftReluPool2};
use stem_cpu::StemCpu;

use crate::model::conv_no_bias as conv;

/// Architecture hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub in_channels: usize,
    pub num_classes: usize,
    pub growth_rate: usize,
    pub block_config: [usize; 4],
    pub num_init_features: usize,
    /// Bottleneck width, as a multiple of the growth rate.
    pub bn_size: usize,
    pub batch_norm_eps: f64,
}

impl Config {
    /// DenseNet-121 with torchxrayvision's input and output.
    pub fn densenet121_xrv(num_classes: usize) -> Config {
        Config {
            in_channels: 1,
            num_classes,
            growth_rate: 32,
            block_config: [6, 12, 24, 16],
            num_init_features: 64,
            bn_size: 4,
            batch_norm_eps: 1e-5,
        }
    }
}

/// Batch normalisation in inference mode, folded to `x * scale + shift`.
#[derive(Debug, Clone)]
struct FoldedBatchNorm {
    scale: Tensor,
    shift: Tensor,
    /// The same, on the host, for the fused CPU pass.
    fused: ScaleShiftRelu,
}

impl FoldedBatchNorm {
    fn load(channels: usize, eps: f64, vb: VarBuilder) -> Result<FoldedBatchNorm> {
        let gamma = vb.get(channels, "weight")?;
        let beta = vb.get(channels, "bias")?;
        let mean = vb.get(channels, "running_mean")?;
        let var = vb.get(channels, "running_var")?;
        let scale = gamma.div(&(var + eps)?.sqrt()?)?;
        let shift = beta.sub(&mean.mul(&scale)?)?;
        Ok(FoldedBatchNorm {
            fused: ScaleShiftRelu {
                scale: scale.to_dtype(candle_core::DType::F32)?.to_vec1()?,
                shift: shift.to_dtype(candle_core::DType::F32)?.to_vec1()?,
            },
            scale: scale.reshape((1, channels, 1, 1))?,
            shift: shift.reshape((1, channels, 1, 1))?,
        })
    }

    /// Normalise, then ReLU: every use in DenseNet is followed by one.
    fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
            return x.contiguous()?.apply_op1_no_bwd(&self.fused);
        }
        x.broadcast_mul(&self.scale)?
            .broadcast_add(&self.shift)?
            .relu()
    }

    /// Folds this normalisation into the convolution just before it:
    /// `norm(conv(x))` becomes one convolution with scaled weights and a
    /// bias.
    fn fold_into(&self, conv: &Conv2d) -> Result<Conv2d> {
        let channels = self.scale.elem_count();
        let weight = conv
            .weight()
            .broadcast_mul(&self.scale.reshape((channels, 1, 1, 1))?)?;
        Ok(Conv2d::new(
            weight,
            Some(self.shift.flatten_all()?),
            *conv.config(),
        ))
    }
}

/// norm1 → relu → 1×1 conv → norm2 → relu → 3×3 conv (norm2 folded into
/// the 1×1 convolution); its output is concatenated to its input.
#[derive(Debug, Clone)]
struct DenseLayer {
    norm1: FoldedBatchNorm,
    /// conv1 with norm2 folded in.
    conv1_norm2: PointwiseConv,
    conv2: Conv2d,
}

impl DenseLayer {
    fn load(in_channels: usize, config: &Config, vb: VarBuilder) -> Result<DenseLayer> {
        let bottleneck = config.bn_size * config.growth_rate;
        let eps = config.batch_norm_eps;
        let conv1 = conv(in_channels, bottleneck, 1, 1, 0, vb.pp("conv1"))?;
        let conv2 = conv(bottleneck, config.growth_rate, 3, 1, 1, vb.pp("conv2"))?;
        let norm2 = FoldedBatchNorm::load(bottleneck, eps, vb.pp("norm2"))?;
        Ok(DenseLayer {
            norm1: FoldedBatchNorm::load(in_channels, eps, vb.pp("norm1"))?,
            conv1_norm2: PointwiseConv::from_conv(&norm2.fold_into(&conv1)?)?,
            conv2,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self
            .conv1_norm2
            .forward_relu(&self.norm1.forward_relu(x)?)?;
        self.conv2.forward(&y)
    }

    /// The same weights, rearranged for the fused CPU block.
    fn into_host(self) -> Result<HostDenseLayer> {
        Ok(HostDenseLayer {
            norm1: self.norm1.fused,
            conv1_norm2: self.conv1_norm2.host().clone(),
            conv2: Conv3x3Taps::new(self.conv2.weight())?,
        })
    }
}

/// A dense block: one fused operation over one buffer on the CPU
/// (`dense_block_cpu`), candle operations on other devices.
#[derive(Debug, Clone)]
enum DenseBlock {
    Fused(DenseBlockCpu),
    Graph(Vec<DenseLayer>),
}

/// norm → relu → 1×1 conv halving the channels → 2×2 average pool.
#[derive(Debug, Clone)]
struct Transition {
    norm: FoldedBatchNorm,
    conv: PointwiseConv,
}

impl Transition {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Average pooling and a 1×1 convolution are both linear and act on
        // different axes, so they commute: pooling first does a quarter of
        // the arithmetic.
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            let pooled = x
                .contiguous()?
                .apply_op1_no_bwd(&ScaleShiftReluPool2(&self.norm.fused))?;
            return self.conv.forward(&pooled);
        }
        self.conv
            .forward(&self.norm.forward_relu(x)?.avg_pool2d(2)?)
    }
}

/// The network, with `forward` returning both the final feature map (for
/// class activation maps) and the logits.
#[derive(Debug, Clone)]
pub struct DenseNet {
    /// conv0 with norm0 folded in.
    conv0_norm0: Conv2d,
    /// The same, with the max pool, as one CPU operation.
    stem_cpu: Option<StemCpu>,
    blocks: Vec<DenseBlock>,
    transitions: Vec<Transition>,
    norm5: FoldedBatchNorm,
    classifier: Linear,
    growth_rate: usize,
}

/// What one forward pass yields.
#[derive(Debug, Clone)]
pub struct DenseNetOutput {
    /// After norm5 and ReLU: `[batch, 1024, 7, 7]` for a 224 input.
    pub feature_map: Tensor,
    /// `[batch, num_classes]`, before any sigmoid.
    pub logits: Tensor,
}

impl DenseNet {
    /// Loads the network; on the CPU in f32 its stem and dense blocks run
    /// as fused operations.
    pub fn load(config: &Config, vb: VarBuilder) -> Result<DenseNet> {
        let fused = vb.device().is_cpu() && vb.dtype() == DType::F32;
        Self::load_with(config, vb, fused)
    }

    fn load_with(config: &Config, vb: VarBuilder, fused: bool) -> Result<DenseNet> {
        let features = vb.pp("features");
        let eps = config.batch_norm_eps;
        let conv0 = conv(
            config.in_channels,
            config.num_init_features,
            7,
            2,
            3,
            features.pp("conv0"),
        )?;
        let norm0 = FoldedBatchNorm::load(config.num_init_features, eps, features.pp("norm0"))?;
        let conv0_norm0 = norm0.fold_into(&conv0)?;
        let mut channels = config.num_init_features;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (index, &layers) in config.block_config.iter().enumerate() {
            let block_vb = features.pp(format!("denseblock{}", index + 1));
            let mut block = Vec::with_capacity(layers);
            for layer in 0..layers {
                let in_channels = channels + layer * config.growth_rate;
                block.push(DenseLayer::load(
                    in_channels,
                    config,
                    block_vb.pp(format!("denselayer{}", layer + 1)),
                )?);
            }
            blocks.push(if fused {
                DenseBlock::Fused(DenseBlockCpu::new(
                    block
                        .into_iter()
                        .map(DenseLayer::into_host)
                        .collect::<Result<_>>()?,
                ))
            } else {
                DenseBlock::Graph(block)
            });
            channels += layers * config.growth_rate;
            if index + 1 < config.block_config.len() {
                let transition_vb = features.pp(format!("transition{}", index + 1));
                transitions.push(Transition {
                    norm: FoldedBatchNorm::load(channels, eps, transition_vb.pp("norm"))?,
                    conv: PointwiseConv::from_conv(&conv(
                        channels,
                        channels / 2,
                        1,
                        1,
                        0,
                        transition_vb.pp("conv"),
                    )?)?,
                });
                channels /= 2;
            }
        }
        let norm5 = FoldedBatchNorm::load(channels, eps, features.pp("norm5"))?;
        let classifier = candle_nn::linear(channels, config.num_classes, vb.pp("classifier"))?;
        let stem_cpu = match (fused, conv0_norm0.bias()) {
            (true, Some(bias)) => Some(StemCpu::new(conv0_norm0.weight(), bias)?),
            _ => None,
        };
        Ok(DenseNet {
            stem_cpu,
            conv0_norm0,
            blocks,
            transitions,
            norm5,
            classifier,
            growth_rate: config.growth_rate,
        })
    }

    pub fn forward(&self, input: &Tensor) -> Result<DenseNetOutput> {
        // On the CPU, run the pass on a rayon worker: each parallel step
        // then starts from inside the pool instead of waking it from
        // outside and sleeping until it is done (measured ~9 % faster).
        if self.stem_cpu.is_some() && rayon::current_thread_index().is_none() {
            return rayon::scope(|_| self.forward(input));
        }
        let mut x = self.stem(input)?;
        for (index, block) in self.blocks.iter().enumerate() {
            x = self.dense_block(block, &x)?;
            if let Some(transition) = self.transitions.get(index) {
                x = transition.forward(&x)?;
            }
        }
        let feature_map = self.norm5.forward_relu(&x)?;
        let pooled = feature_map.mean(D::Minus1)?.mean(D::Minus1)?;
        let logits = self.classifier.forward(&pooled)?;
        Ok(DenseNetOutput {
            feature_map,
            logits,
        })
    }

    /// conv0 → ReLU → 3×3/2 max pool with padding 1.
    fn stem(&self, input: &Tensor) -> Result<Tensor> {
        if let Some(stem) = &self.stem_cpu {
            return input.contiguous()?.apply_op1_no_bwd(stem);
        }
        let x = self.conv0_norm0.forward(input)?.relu()?;
        // The input is post-ReLU (≥ 0), so zero padding gives the same
        // maxima as the usual -∞ padding.
        x.pad_with_zeros(D::Minus2, 1, 1)?
            .pad_with_zeros(D::Minus1, 1, 1)?
            .max_pool2d_with_stride(3, 2)
    }

    /// Runs a dense block. Every layer reads all channels so far and adds
    /// `growth_rate` more; they are written into one buffer allocated for
    /// the block's final width, so no layer copies the ones before it.
    fn dense_block(&self, block: &DenseBlock, x: &Tensor) -> Result<Tensor> {
        let layers = match block {
            DenseBlock::Fused(fused) => return x.contiguous()?.apply_op1_no_bwd(fused),
            DenseBlock::Graph(layers) => layers,
        };
        let (batch, mut channels, height, width) = x.dims4()?;
        let total = channels + layers.len() * self.growth_rate;
        let buffer = Tensor::zeros((batch, total, height, width), x.dtype(), x.device())?;
        buffer.slice_set(&x.contiguous()?, 1, 0)?;
        for layer in layers {
            let new = layer.forward(&buffer.narrow(1, 0, channels)?)?;
            buffer.slice_set(&new.contiguous()?, 1, channels)?;
            channels += self.growth_rate;
        }
        Ok(buffer)
    }

    /// Classifier weights `[num_classes, channels]`, for class activation maps.
    pub fn classifier_weight(&self) -> &Tensor {
        self.classifier.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::seeded::SeededBackend;
    use candle_core::{DType, Device};

    #[test]
    fn forward_gives_feature_map_and_logits_of_the_right_shapes() {
        let config = Config::densenet121_xrv(18);
        let vb = VarBuilder::from_backend(Box::new(SeededBackend), DType::F32, Device::Cpu);
        let model = DenseNet::load(&config, vb).unwrap();
        let input = Tensor::zeros((1, 1, 64, 64), DType::F32, &Device::Cpu).unwrap();
        let output = model.forward(&input).unwrap();
        assert_eq!(output.feature_map.dims(), &[1, 1024, 2, 2]);
        assert_eq!(output.logits.dims(), &[1, 18]);
        assert_eq!(model.classifier_weight().dims(), &[18, 1024]);
    }

    #[test]
    fn fused_cpu_stem_and_blocks_match_the_candle_graph() {
        let config = Config::densenet121_xrv(18);
        let load = |fused| {
            let vb = VarBuilder::from_backend(Box::new(SeededBackend), DType::F32, Device::Cpu);
            DenseNet::load_with(&config, vb, fused).unwrap()
        };
        let input = Tensor::randn(0f32, 1.0, (2, 1, 70, 66), &Device::Cpu).unwrap();
        let graph = load(false).forward(&input).unwrap();
        let fused = load(true).forward(&input).unwrap();
        let logits = crate::model::max_abs_difference(&graph.logits, &fused.logits);
        let features = crate::model::max_abs_difference(&graph.feature_map, &fused.feature_map);
        assert!(logits < 1e-4 && features < 1e-4, "{logits} {features}");
    }
}
