//! Models: manifests (`weights/*.toml`), one folder per architecture, and
//! [`Model`], which loads either from a manifest and runs it on a prepared
//! input.
//!
//! - `manifest`: the model card in TOML, checked at load time
//! - `embedded`: the default model built into the binary
//! - `densenet/`: DenseNet-121, compatible with torchxrayvision checkpoints,
//!   with its CPU inference kernels as private submodules (`stem_cpu`,
//!   `dense_block_cpu`, `pointwise`, `conv3x3_taps`, `scale_shift_relu`)
//! - `compact/`: the small architecture of the embedded default model, with
//!   its training-mode CPU operations as private submodules
//!   (`batch_norm_train`, `conv_im2col`)
//! - `cpu/`: the gemm and input helpers both architectures' CPU operations
//!   share
//! - `seeded`: deterministic weights for tests and the placeholder model
//!
//! Kernels are private to their architecture; callers outside use the
//! architectures' public types (`densenet::DenseNet`, `compact::CompactNet`)
//! and [`Model`].
//!
//! Every architecture yields, per label, a probability and an *evidence
//! map* over the input square (class activation map or segmentation), from
//! which `findings` draws regions.

pub mod compact;
mod cpu;
pub mod densenet;
mod embedded;
pub mod manifest;
pub mod seeded;

pub use embedded::files as default_model_files;
pub use manifest::{LoadedManifest, Manifest};

use std::path::Path;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::model::manifest::{InputSpec, Label, ModelInfo, NormalisationSpec};

/// The network behind a model.
enum Network {
    DenseNet(densenet::DenseNet),
    Compact(compact::CompactNet),
}

/// A loaded, ready-to-run model.
pub struct Model {
    pub manifest: Manifest,
    network: Network,
    device: Device,
    /// The untrained stand-in of [`Model::placeholder`].
    placeholder: bool,
}

/// Per-label values over the model's input square, in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceMap {
    /// Side of the square map; it covers the whole input.
    pub side: usize,
    /// Row-major, `side * side` values.
    pub values: Vec<f32>,
}

/// One forward pass, per label in manifest order.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
    pub evidence: Vec<EvidenceMap>,
}

/// Tunes the process for inference on the CPU, one image at a time. Call
/// it first thing in `main`, while the process has a single thread; not
/// for training (see `main`).
///
/// - candle runs element-wise work on a spinning thread pool of its own,
///   beside the rayon pool its matrix products use; on a small machine the
///   two fight over the same cores. Leaving element-wise work to the
///   calling thread measured about 12 % faster for DenseNet-121 on two
///   cores (BENCHMARKS.md). An explicit `CANDLE_NUM_THREADS` is respected.
/// - glibc keeps a forward pass's buffers for the next one
///   ([`crate::allocator::keep_inference_buffers`]).
pub fn configure_cpu() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: called at start-up, before any other thread exists, so
        // nothing reads the environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    crate::allocator::keep_inference_buffers();
}

/// Selects the compute device by name: `cpu`, or `cuda` (needs the `cuda`
/// cargo feature).
pub fn device_by_name(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if cfg!(feature = "cuda") {
                Ok(Device::new_cuda(0)?)
            } else {
                bail!("device \"cuda\" needs a build with `--features cuda`")
            }
        }
        other => bail!("unknown device {other:?} (use \"cpu\" or \"cuda\")"),
    }
}

impl Model {
    /// Loads the model a manifest describes: checks the weights' sha256,
    /// then that every tensor the architecture needs is present with the
    /// right shape. All failures happen here, never at the first image.
    pub fn load(manifest_path: &Path, device: &Device) -> anyhow::Result<Model> {
        let loaded = LoadedManifest::read(manifest_path)?;
        let bytes = loaded.read_verified_weights()?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device)
            .with_context(|| format!("reading {}", loaded.weights_path().display()))?;
        Self::build(loaded.manifest, vb, device)
            .with_context(|| format!("loading the model of {}", manifest_path.display()))
    }

    /// Builds a model from a manifest and a source of weights.
    pub fn build(manifest: Manifest, vb: VarBuilder, device: &Device) -> anyhow::Result<Model> {
        let labels = manifest.labels.len();
        let network = match manifest.model.architecture.as_str() {
            "densenet121-xrv" => {
                let config = densenet::Config::densenet121_xrv(labels);
                Network::DenseNet(densenet::DenseNet::load(&config, vb)?)
            }
            other => match compact::Config::by_architecture(other, labels) {
                Some(config) => Network::Compact(compact::CompactNet::load(&config, vb)?),
                None => bail!("unknown architecture {other:?}"),
            },
        };
        Ok(Model {
            manifest,
            network,
            device: device.clone(),
            placeholder: false,
        })
    }

    /// A clearly labelled stand-in until trained default weights ship: the
    /// compact architecture with seeded, untrained weights. Its outputs
    /// carry no information.
    pub fn placeholder(labels: &[&str]) -> anyhow::Result<Model> {
        let manifest = Manifest {
            model: ModelInfo {
                name: "PLACEHOLDER-untrained".into(),
                version: "0".into(),
                architecture: "chestnet-compact-v1".into(),
                weights: "(generated)".into(),
                sha256: "0".repeat(64),
                research_use_only: true,
                intended_use: "PLACEHOLDER with untrained weights: outputs are meaningless. \
                               For exercising the pipeline only. Research use only, not for diagnosis."
                    .into(),
                training_data: "none (untrained)".into(),
                measured_performance: "none: untrained".into(),
            },
            input: InputSpec {
                size: 512,
                channels: 1,
                crop: "center-square".into(),
                normalisation: NormalisationSpec { low: 0.0, high: 1.0 },
            },
            labels: labels.iter().map(|name| Label { name: (*name).into(), threshold: 0.5 }).collect(),
        };
        let vb = VarBuilder::from_backend(Box::new(seeded::SeededBackend), DType::F32, Device::Cpu);
        let mut model = Self::build(manifest, vb, &Device::Cpu)?;
        model.placeholder = true;
        Ok(model)
    }

    /// The model a configuration asks for: the manifest at `manifest`, or
    /// the embedded default (`weights/chestnet-compact-default.*`).
    pub fn from_config(manifest: Option<&Path>, device: &Device) -> anyhow::Result<Model> {
        match manifest {
            Some(path) => Model::load(path, device),
            None => embedded::load(device),
        }
    }

    /// Whether this is the untrained placeholder.
    pub fn is_placeholder(&self) -> bool {
        self.placeholder
    }

    /// Runs the model on one prepared input (`size * size` values).
    pub fn predict(&self, input: &[f32]) -> anyhow::Result<Prediction> {
        let size = self.manifest.input.size as usize;
        if input.len() != size * size {
            bail!(
                "input has {} values, the model needs {size}×{size}",
                input.len()
            );
        }
        let tensor = Tensor::from_slice(input, (1, 1, size, size), &self.device)?;
        let (logits, evidence) = match &self.network {
            Network::DenseNet(network) => {
                let output = network.forward(&tensor)?;
                let maps = class_activation_maps(&output.feature_map, network.classifier_weight())?;
                (output.logits, maps)
            }
            Network::Compact(network) => {
                let output = network.forward_t(&tensor, false)?;
                let maps = candle_nn::ops::sigmoid(&output.segmentation_logits)?.squeeze(0)?;
                (output.logits, maps)
            }
        };
        let logits: Vec<f32> = logits.squeeze(0)?.to_vec1()?;
        let probabilities = logits.iter().map(|&x| sigmoid(x)).collect();
        let (labels, side, _) = evidence.dims3()?;
        let values: Vec<f32> = evidence.flatten_all()?.to_vec1()?;
        let evidence = (0..labels)
            .map(|l| EvidenceMap {
                side,
                values: values[l * side * side..(l + 1) * side * side].to_vec(),
            })
            .collect();
        Ok(Prediction {
            logits,
            probabilities,
            evidence,
        })
    }
}

/// A convolution without bias, as every architecture here loads them.
pub(crate) fn conv_no_bias(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder,
) -> candle_core::Result<candle_nn::Conv2d> {
    let config = candle_nn::Conv2dConfig {
        padding,
        stride,
        ..Default::default()
    };
    candle_nn::conv2d_no_bias(in_channels, out_channels, kernel, config, vb)
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Class activation maps (Zhou et al., 2016): for each label, the
/// classifier-weighted sum of the final feature maps, ReLU'd and scaled to
/// [0, 1] by its maximum. Returns `[labels, h, w]`.
fn class_activation_maps(
    feature_map: &Tensor,
    classifier_weight: &Tensor,
) -> candle_core::Result<Tensor> {
    let (_, channels, h, w) = feature_map.dims4()?;
    let features = feature_map.squeeze(0)?.reshape((channels, h * w))?;
    let maps = classifier_weight.matmul(&features)?.relu()?;
    let peak = maps.max_keepdim(1)?.clamp(1e-12, f32::MAX)?;
    maps.broadcast_div(&peak)?
        .reshape((classifier_weight.dim(0)?, h, w))
}

/// Largest absolute element-wise difference of two tensors of one shape,
/// for tests comparing an implementation with a reference.
#[cfg(test)]
pub(crate) fn max_abs_difference(a: &Tensor, b: &Tensor) -> f32 {
    a.sub(b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar())
        .expect("tensors of one shape")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_runs_and_says_what_it_is() {
        let model = Model::placeholder(&["nodule", "normal"]).unwrap();
        assert!(model.is_placeholder());
        assert!(model.manifest.model.intended_use.contains("PLACEHOLDER"));
        let size = model.manifest.input.size as usize;
        let prediction = model.predict(&vec![0.5; size * size]).unwrap();
        assert_eq!(prediction.probabilities.len(), 2);
        assert_eq!(prediction.evidence[0].side, size / 16);
        assert!(
            prediction.evidence[1]
                .values
                .iter()
                .all(|v| (0.0..=1.0).contains(v))
        );
        assert!(model.predict(&[0.0; 10]).is_err());
    }

    #[test]
    fn only_known_devices_are_accepted() {
        assert!(device_by_name("cpu").is_ok());
        assert!(device_by_name("tpu").is_err());
    }
}
