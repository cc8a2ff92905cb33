//! The embedded default model: `weights/chestnet-compact-default.*`,
//! compiled into the binary so `chestnode serve` does its whole job on a
//! fresh machine without downloading anything. It was trained here on
//! synthetic radiographs (`chestnode synth` + `chestnode train`, see
//! `weights/README.md`); it is for demonstration and research only, not
//! for diagnosis, and every result it produces says so.
//!
//! The weights are checked against the manifest's sha256 at load time,
//! exactly as a model loaded from disk is.

use anyhow::{Context, ensure};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::Model;
use super::manifest::{Manifest, sha256_hex};

const MANIFEST: &str = include_str!("../../weights/chestnet-compact-default.toml");
const WEIGHTS: &[u8] = include_bytes!("../../weights/chestnet-compact-default.safetensors");

/// The embedded default model's manifest text and weights, for
/// fine-tuning from it (`chestnode train --init default`).
pub fn files() -> (&'static str, &'static [u8]) {
    (MANIFEST, WEIGHTS)
}

/// Loads the embedded default model on `device`.
pub fn load(device: &Device) -> anyhow::Result<Model> {
    let manifest = Manifest::parse(MANIFEST).context("the embedded default model's manifest")?;
    ensure!(
        sha256_hex(WEIGHTS) == manifest.model.sha256,
        "the embedded default model's weights do not match their manifest's sha256"
    );
    let vb = VarBuilder::from_buffered_safetensors(WEIGHTS.to_vec(), DType::F32, device)?;
    Model::build(manifest, vb, device).context("building the embedded default model")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_manifest_matches_its_weights_and_says_research_only() {
        let manifest = Manifest::parse(MANIFEST).unwrap();
        assert_eq!(sha256_hex(WEIGHTS), manifest.model.sha256);
        assert!(manifest.model.research_use_only);
        assert!(
            manifest
                .model
                .intended_use
                .to_lowercase()
                .contains("not for diagnosis")
        );
        let model = load(&Device::Cpu).unwrap();
        assert!(!model.is_placeholder());
    }
}
