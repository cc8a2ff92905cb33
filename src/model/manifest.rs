//! Model manifests: the TOML file beside each weights file in `weights/`
//! that says what the model is, how to feed it and how to read its output.
//!
//! A manifest is the model card in machine-readable form: architecture,
//! input size and normalisation, the label list with an operating threshold
//! per label, the sha256 of the safetensors file, and the provenance text
//! (training data, intended use, measured performance) that reports repeat.
//! Everything is checked when the model loads, so a wrong hash or a missing
//! field is an error at start-up, never at the first image.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model: ModelInfo,
    pub input: InputSpec,
    pub labels: Vec<Label>,
}

/// Identity and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    /// Which implementation in `model/` runs it, e.g. `densenet121-xrv`.
    pub architecture: String,
    /// Safetensors file, relative to the manifest.
    pub weights: PathBuf,
    /// Lowercase hex sha256 of the weights file.
    pub sha256: String,
    /// Shown wherever the model's results appear.
    pub research_use_only: bool,
    pub intended_use: String,
    pub training_data: String,
    pub measured_performance: String,
}

/// How an image becomes the model's input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Side of the square input, in pixels.
    pub size: u32,
    pub channels: u32,
    /// How the radiograph is fitted to a square; only `center-square`.
    pub crop: String,
    pub normalisation: NormalisationSpec,
}

/// Display grey 0 (black) to 1 (white) maps linearly onto `low..high`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalisationSpec {
    pub low: f32,
    pub high: f32,
}

/// One model output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub name: String,
    /// Operating threshold on the output probability; NaN when the model
    /// has none for this label (the label is then never called positive).
    pub threshold: f32,
}

/// A manifest together with where it was read from.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    pub manifest: Manifest,
    pub path: PathBuf,
}

impl LoadedManifest {
    /// Reads and validates a manifest file.
    pub fn read(path: &Path) -> anyhow::Result<LoadedManifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading model manifest {}", path.display()))?;
        let manifest =
            Manifest::parse(&text).with_context(|| format!("model manifest {}", path.display()))?;
        Ok(LoadedManifest {
            manifest,
            path: path.to_path_buf(),
        })
    }

    /// Path of the weights file.
    pub fn weights_path(&self) -> PathBuf {
        self.path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.manifest.model.weights)
    }

    /// Reads the weights file and checks its sha256 against the manifest.
    pub fn read_verified_weights(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.weights_path();
        let bytes =
            std::fs::read(&path).with_context(|| format!("reading weights {}", path.display()))?;
        let actual = sha256_hex(&bytes);
        if actual != self.manifest.model.sha256.to_ascii_lowercase() {
            bail!(
                "weights {} have sha256 {actual}, but the manifest {} says {}",
                path.display(),
                self.path.display(),
                self.manifest.model.sha256
            );
        }
        Ok(bytes)
    }
}

impl Manifest {
    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let manifest: Manifest = toml::from_str(text)?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let sha = &self.model.sha256;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("model.sha256 must be 64 hexadecimal digits");
        }
        if self.input.size < 16 {
            bail!("input.size {} is too small", self.input.size);
        }
        if self.input.channels != 1 {
            bail!("input.channels must be 1 (grey radiographs)");
        }
        if self.input.crop != "center-square" {
            bail!(
                "input.crop {:?} is not supported (only \"center-square\")",
                self.input.crop
            );
        }
        let n = &self.input.normalisation;
        if !(n.low.is_finite() && n.high.is_finite() && n.low < n.high) {
            bail!("input.normalisation needs finite low < high");
        }
        if self.labels.is_empty() {
            bail!("a model needs at least one label");
        }
        for label in &self.labels {
            if !label.threshold.is_nan() && !(0.0..=1.0).contains(&label.threshold) {
                bail!("threshold of {:?} must be in [0, 1] or nan", label.name);
            }
        }
        Ok(())
    }
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
[model]
name = "example"
version = "1"
architecture = "densenet121-xrv"
weights = "example.safetensors"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
research_use_only = true
intended_use = "Research use only, not for diagnosis."
training_data = "none"
measured_performance = "none"

[input]
size = 224
channels = 1
crop = "center-square"
normalisation = { low = -1024.0, high = 1024.0 }

[[labels]]
name = "Nodule"
threshold = 0.5

[[labels]]
name = "Unused"
threshold = nan
"#;

    #[test]
    fn parses_a_complete_manifest() {
        let manifest = Manifest::parse(EXAMPLE).unwrap();
        assert_eq!(manifest.input.size, 224);
        assert_eq!(manifest.labels.len(), 2);
        assert!(manifest.labels[1].threshold.is_nan());
    }

    #[test]
    fn rejects_bad_fields() {
        for (from, to) in [
            ("sha256 = \"0000", "sha256 = \"zz00"),
            ("crop = \"center-square\"", "crop = \"letterbox\""),
            ("threshold = 0.5", "threshold = 1.5"),
            ("channels = 1", "channels = 3"),
            ("low = -1024.0", "low = 2000.0"),
        ] {
            let text = EXAMPLE.replacen(from, to, 1);
            assert!(Manifest::parse(&text).is_err(), "accepted {to}");
        }
        assert!(Manifest::parse(&EXAMPLE.replace("[input]", "[input]\nextra = 1")).is_err());
    }

    #[test]
    fn a_wrong_hash_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("example.safetensors"), b"not the weights").unwrap();
        std::fs::write(dir.path().join("example.toml"), EXAMPLE).unwrap();
        let loaded = LoadedManifest::read(&dir.path().join("example.toml")).unwrap();
        let error = loaded.read_verified_weights().unwrap_err().to_string();
        assert!(error.contains("sha256"), "{error}");
    }
}
