//! What a training run is told: the dataset, the model, the schedule and
//! the operating points, with quick defaults and the named presets that
//! rebuild the default model. Kept apart from the loop so that the CLI
//! and tests can build options without reading the training code.

use std::path::PathBuf;

use anyhow::bail;

use super::augment::AugmentationRanges;
use crate::lab::dataset::Selection;
use crate::model::compact::ARCHITECTURE_V2;

/// Everything a training run is told.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Dataset directories, read together.
    pub data: Vec<PathBuf>,
    /// Which of their label files to take (never the test split).
    pub selection: Selection,
    pub out: PathBuf,
    /// Model name: the output files are `NAME.safetensors` and `NAME.toml`.
    pub name: String,
    /// `chestnet-compact-v2` (default) or `chestnet-compact-v1`.
    pub architecture: String,
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub warmup_steps: u64,
    pub input_size: usize,
    pub seed: u64,
    /// Continue from `OUT/checkpoint` instead of starting afresh.
    pub resume: bool,
    /// Start from this model instead of the seeded initialisation:
    /// `default` (the embedded default model), a manifest (`.toml`) or a
    /// `.safetensors` of the same architecture.
    pub init: Option<PathBuf>,
    pub validation_fraction: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Operating point of the thresholds where the validation split has
    /// no real normal radiographs.
    pub min_sensitivity: f64,
    /// Where it has them: the share of real normals that any-abnormality
    /// may not call positive (0.80: at most one normal in five flagged)...
    pub normal_specificity: f64,
    /// ...and that each finding label may not.
    pub finding_specificity: f64,
    /// Weight of the segmentation loss beside the image-level loss.
    pub segmentation_weight: f64,
    pub augmentation: AugmentationRanges,
    /// `cpu` or `cuda`.
    pub device: String,
}

impl TrainOptions {
    /// Quick settings for trying things out.
    pub fn new(data: Vec<PathBuf>, out: PathBuf) -> TrainOptions {
        TrainOptions {
            data,
            selection: Selection::training(Vec::new(), false),
            out,
            name: "chestnet-compact".into(),
            architecture: ARCHITECTURE_V2.into(),
            epochs: 10,
            batch: 8,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            warmup_steps: 20,
            input_size: 256,
            seed: 1,
            resume: false,
            init: None,
            validation_fraction: 0.15,
            patience: 4,
            min_sensitivity: 0.90,
            normal_specificity: 0.80,
            finding_specificity: 0.90,
            segmentation_weight: 1.0,
            augmentation: AugmentationRanges::default(),
            device: "cpu".into(),
        }
    }

    /// Named settings. `default` is what rebuilds the embedded default
    /// model (`scripts/train_default_model.sh`, weights/README.md): a
    /// 256-pixel input (a 5 mm nodule spans about 3.5 pixels of a 360 mm
    /// field), batch 16, up to 25 epochs, peak learning rate 2e-3 after
    /// 200 warm-up steps, patience 5, seed 1; about an hour on 2 CPU cores
    /// for 2,400 images.
    pub fn preset(name: &str, data: Vec<PathBuf>, out: PathBuf) -> anyhow::Result<TrainOptions> {
        match name {
            "default" => Ok(TrainOptions {
                name: "chestnet-compact-default".into(),
                epochs: 25,
                batch: 16,
                learning_rate: 2e-3,
                warmup_steps: 200,
                input_size: 256,
                seed: 1,
                patience: 5,
                ..TrainOptions::new(data, out)
            }),
            // Real radiographs (a corpus and lesions inserted into its
            // training patients' normals): wider acquisition augmentation
            // and fewer, longer epochs; about an hour on 2 CPU cores for
            // 4,000 images at 256².
            "real" => Ok(TrainOptions {
                name: "chestnet-compact-default".into(),
                epochs: 12,
                batch: 16,
                learning_rate: 2e-3,
                warmup_steps: 150,
                input_size: 256,
                seed: 1,
                patience: 4,
                augmentation: AugmentationRanges::real_world(),
                // A finding label may call at most 5 % of real normals
                // positive: the report shows every positive finding, and
                // several labels at 10 % each add up on a normal film.
                finding_specificity: 0.95,
                ..TrainOptions::new(data, out)
            }),
            other => bail!("unknown preset {other:?} (known: default, real)"),
        }
    }
}
