//! Fine-tuning: the weights a run starts from instead of the seeded
//! initialisation (`chestnode train --init MODEL`).
//!
//! MODEL is `default` (the embedded default model, so a hospital can
//! fine-tune it on its own annotated radiographs without the weights
//! files), a model manifest (`NAME.toml`, whose weights are checked
//! against its sha256 as `analyze` checks them), or a bare
//! `.safetensors`. A manifest must name the architecture being trained
//! and the same output labels; every variable of the network must be in
//! the weights with the same shape, or the run stops before the first
//! step with the name that differs.

use std::path::Path;

use anyhow::{Context, bail, ensure};
use candle_core::Device;
use candle_nn::VarMap;

use crate::model::manifest::{LoadedManifest, Manifest, sha256_hex};

/// What `--init` names the embedded default model by.
pub const DEFAULT_MODEL: &str = "default";

/// Overwrites every variable of `varmap` from the model `spec` names;
/// returns how to describe where the weights came from.
pub fn load_initial(
    varmap: &VarMap,
    spec: &Path,
    architecture: &str,
    labels: &[&str],
    device: &Device,
) -> anyhow::Result<String> {
    let (bytes, described) = if spec.as_os_str() == DEFAULT_MODEL {
        let (text, weights) = crate::model::default_model_files();
        let manifest = Manifest::parse(text).context("the embedded default model's manifest")?;
        ensure!(
            sha256_hex(weights) == manifest.model.sha256,
            "the embedded default model's weights do not match their manifest"
        );
        check_manifest(&manifest, architecture, labels)?;
        let described = format!(
            "the embedded default model {} {}",
            manifest.model.name, manifest.model.version
        );
        (weights.to_vec(), described)
    } else if spec.extension().is_some_and(|e| e == "toml") {
        let loaded = LoadedManifest::read(spec)?;
        check_manifest(&loaded.manifest, architecture, labels)
            .with_context(|| format!("--init {}", spec.display()))?;
        (loaded.read_verified_weights()?, spec.display().to_string())
    } else {
        let bytes =
            std::fs::read(spec).with_context(|| format!("reading weights {}", spec.display()))?;
        (bytes, spec.display().to_string())
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .with_context(|| format!("reading the weights of {described}"))?;
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let Some(tensor) = tensors.get(name) else {
            bail!("{described} has no variable {name}: it is not a {architecture} model");
        };
        ensure!(
            tensor.dims() == var.dims(),
            "{name} is {:?} in {described} but {:?} in {architecture}: the architectures differ",
            tensor.dims(),
            var.dims()
        );
        var.set(&tensor.to_dtype(var.dtype())?)?;
    }
    Ok(described)
}

/// A manifest's architecture and labels must be the run's.
fn check_manifest(manifest: &Manifest, architecture: &str, labels: &[&str]) -> anyhow::Result<()> {
    ensure!(
        manifest.model.architecture == architecture,
        "the model is {}, this run trains {architecture} (--architecture)",
        manifest.model.architecture
    );
    let names: Vec<&str> = manifest.labels.iter().map(|l| l.name.as_str()).collect();
    ensure!(
        names == labels,
        "the model's labels {names:?} are not the ones trained here {labels:?}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::train::LABELS;
    use crate::model::compact::{ARCHITECTURE_V2, CompactNet, Config};
    use candle_core::DType;
    use candle_nn::VarBuilder;

    fn network(architecture: &str) -> VarMap {
        let varmap = VarMap::new();
        let config = Config::by_architecture(architecture, LABELS.len()).unwrap();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        CompactNet::load(&config, vb).unwrap();
        varmap
    }

    #[test]
    fn the_default_model_initialises_its_own_architecture_only() {
        let varmap = network(ARCHITECTURE_V2);
        let described = load_initial(
            &varmap,
            Path::new(DEFAULT_MODEL),
            ARCHITECTURE_V2,
            &LABELS,
            &Device::Cpu,
        )
        .unwrap();
        assert!(described.contains("default"), "{described}");
        let (_, weights) = crate::model::default_model_files();
        let stored = candle_core::safetensors::load_buffer(weights, &Device::Cpu).unwrap();
        let data = varmap.data().lock().unwrap();
        let (name, var) = data.iter().next().unwrap();
        let diff = (var.as_tensor() - &stored[name])
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0, "{name}");
        drop(data);

        let v1 = network("chestnet-compact-v1");
        let error = load_initial(
            &v1,
            Path::new(DEFAULT_MODEL),
            "chestnet-compact-v1",
            &LABELS,
            &Device::Cpu,
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("chestnet-compact-v2"),
            "{error:#}"
        );
    }
}
