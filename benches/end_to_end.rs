//! End-to-end time per image, without the network: read a 1955×1841
//! JPEG-LS chest CR (`RG1_JLSN.dcm`), decode, preprocess, run DenseNet-121
//! (seeded weights, 224²) and the embedded default model (the compact
//! architecture at its manifest's input size), and draw findings with
//! regions. Prints the median of each step over 7 runs.
//! Run with `cargo bench --bench end_to_end`.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use chestnode::analysis::{Outcome, analyse_file};
use chestnode::model::manifest::{InputSpec, Label, Manifest, ModelInfo, NormalisationSpec};
use chestnode::model::{Model, seeded::SeededBackend};

fn seeded_densenet() -> anyhow::Result<Model> {
    let labels = [
        "Nodule",
        "Mass",
        "Consolidation",
        "Pneumonia",
        "Emphysema",
        "Enlarged Cardiomediastinum",
    ];
    let manifest = Manifest {
        model: ModelInfo {
            name: "seeded-densenet".into(),
            version: "bench".into(),
            architecture: "densenet121-xrv".into(),
            weights: "(generated)".into(),
            sha256: "0".repeat(64),
            research_use_only: true,
            intended_use: "benchmark".into(),
            training_data: "none".into(),
            measured_performance: "none".into(),
        },
        input: InputSpec {
            size: 224,
            channels: 1,
            crop: "center-square".into(),
            normalisation: NormalisationSpec {
                low: -1024.0,
                high: 1024.0,
            },
        },
        labels: labels
            .iter()
            .map(|n| Label {
                name: (*n).into(),
                threshold: 0.0,
            })
            .collect(),
    };
    let vb = VarBuilder::from_backend(Box::new(SeededBackend), DType::F32, Device::Cpu);
    Model::build(manifest, vb, &Device::Cpu)
}

fn main() -> anyhow::Result<()> {
    chestnode::model::configure_cpu();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/dicom/wg04/RG1_JLSN.dcm");
    let default_model = Model::from_config(None, &Device::Cpu)?;
    let default_name = format!(
        "{} {}²",
        default_model.manifest.model.name, default_model.manifest.input.size
    );
    for (name, model) in [
        ("densenet121 224²".to_owned(), seeded_densenet()?),
        (default_name, default_model),
    ] {
        analyse_file(&model, &file)?;
        let mut runs = Vec::new();
        for _ in 0..7 {
            let Outcome::Analysed(result) = analyse_file(&model, &file)? else {
                anyhow::bail!("RG1_JLSN was not analysed");
            };
            runs.push(result.timings);
        }
        let median = |f: &dyn Fn(&chestnode::analysis::Timings) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(f).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        println!(
            "{{\"model\": \"{name}\", \"read_ms\": {:.1}, \"decode_ms\": {:.1}, \"preprocess_ms\": {:.1}, \
             \"inference_ms\": {:.1}, \"findings_ms\": {:.1}, \"total_ms\": {:.1}}}",
            median(&|t| t.read_ms),
            median(&|t| t.decode_ms),
            median(&|t| t.preprocess_ms),
            median(&|t| t.inference_ms),
            median(&|t| t.findings_ms),
            median(&|t| t.total_ms)
        );
    }
    Ok(())
}
