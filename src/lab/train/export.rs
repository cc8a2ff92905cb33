//! Writing the trained model: the safetensors file and a complete manifest
//! (`model::manifest::Manifest`) beside it, with the sha256 of the weights,
//! the input specification training used, one threshold per label chosen
//! on the validation split, and a model card in its text fields that
//! states the operating point, the data and the validation results.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::thresholds::ChosenThreshold;
use crate::model::manifest::{
    InputSpec, Label, Manifest, ModelInfo, NormalisationSpec, sha256_hex,
};

/// What goes into the manifest besides the weights.
pub struct ModelCard<'a> {
    pub name: &'a str,
    /// `chestnet-compact-v1` or `-v2`.
    pub architecture: &'a str,
    pub version: String,
    pub input_size: usize,
    pub normalisation: NormalisationSpec,
    pub labels: &'a [String],
    pub thresholds: &'a [ChosenThreshold],
    pub min_sensitivity: f64,
    pub training_data: String,
    pub validation_images: usize,
}

/// Copies `weights` to `OUT/NAME.safetensors`, writes `OUT/NAME.toml`, and
/// returns the manifest's path.
pub fn write_model(out: &Path, weights: &Path, card: &ModelCard) -> anyhow::Result<PathBuf> {
    let weights_name = format!("{}.safetensors", card.name);
    let bytes = std::fs::read(weights).with_context(|| format!("reading {}", weights.display()))?;
    std::fs::write(out.join(&weights_name), &bytes)
        .with_context(|| format!("writing {weights_name}"))?;
    let manifest = Manifest {
        model: ModelInfo {
            name: card.name.to_string(),
            version: card.version.clone(),
            architecture: card.architecture.into(),
            weights: weights_name.into(),
            sha256: sha256_hex(&bytes),
            research_use_only: true,
            intended_use: "Demonstration and research only, NOT FOR DIAGNOSIS. Trained by \
                           `chestnode train`; not a medical device."
                .into(),
            training_data: card.training_data.clone(),
            measured_performance: performance_text(card),
        },
        input: InputSpec {
            size: card.input_size as u32,
            channels: 1,
            crop: "center-square".into(),
            normalisation: card.normalisation,
        },
        labels: card
            .labels
            .iter()
            .zip(card.thresholds)
            .map(|(name, chosen)| Label {
                name: name.clone(),
                threshold: chosen.threshold,
            })
            .collect(),
    };
    // The manifest must load as the node will load it.
    Manifest::parse(&toml::to_string(&manifest)?).context("the written manifest is invalid")?;
    let path = out.join(format!("{}.toml", card.name));
    std::fs::write(&path, toml::to_string_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn performance_text(card: &ModelCard) -> String {
    let mut text = format!(
        "Thresholds chosen on the validation split ({} images; default rule sensitivity >= {:.2}, \
         each label's rule below). Validation results (not a held-out test; see chestnode evaluate):",
        card.validation_images, card.min_sensitivity
    );
    for (name, chosen) in card.labels.iter().zip(card.thresholds) {
        let metric = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
        if chosen.from_validation {
            let _ = write!(
                text,
                " {name}: threshold {:.4} ({}), AUC {}, sensitivity {}, specificity {} ({} pos / {} neg);",
                chosen.threshold,
                chosen.rule,
                metric(chosen.auc),
                metric(chosen.sensitivity),
                metric(chosen.specificity),
                chosen.positives,
                chosen.negatives
            );
        } else {
            let _ = write!(
                text,
                " {name}: threshold {:.2} by default, the validation split has {} positive and {} \
                 negative images;",
                chosen.threshold, chosen.positives, chosen.negatives
            );
        }
    }
    text
}
