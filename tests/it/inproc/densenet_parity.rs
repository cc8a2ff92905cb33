//! chestnode's DenseNet-121 against torchxrayvision's PyTorch output.
//!
//! Both sides use the deterministic weights of `chestnode::model::seeded`
//! (the fixture's README states the scheme); the fixture
//! (`tests/fixtures/densenet121_parity/`, made by
//! `tools/xrv_parity_fixture.py` with torch 2.15 and torchxrayvision 1.5.7)
//! holds a real radiograph preprocessed the torchxrayvision way and the
//! outputs PyTorch computed. This test needs no torch.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use chestnode::model::densenet::{Config, DenseNet};
use chestnode::model::seeded::SeededBackend;

fn fixture(name: &str) -> std::collections::HashMap<String, Tensor> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/densenet121_parity")
        .join(name);
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.sub(b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// torchxrayvision's operating-point calibration of a sigmoid output.
fn calibrated(p: f32, threshold: f32) -> f32 {
    if p < threshold {
        p / (2.0 * threshold)
    } else {
        1.0 - (1.0 - p) / (2.0 * (1.0 - threshold))
    }
}

#[test]
fn densenet121_matches_torchxrayvision_within_1e_4() {
    let vb = VarBuilder::from_backend(Box::new(SeededBackend), DType::F32, Device::Cpu);
    let model = DenseNet::load(&Config::densenet121_xrv(18), vb).unwrap();
    let input = &fixture("input.safetensors")["input"];
    let expected = fixture("expected.safetensors");
    let output = model.forward(input).unwrap();

    let features = output.feature_map.mean(3).unwrap().mean(2).unwrap();
    let features_diff = max_abs_diff(&features, &expected["features"]);
    let logits_diff = max_abs_diff(&output.logits, &expected["logits"]);
    let probabilities = candle_nn::ops::sigmoid(&output.logits).unwrap();
    let probabilities_diff = max_abs_diff(&probabilities, &expected["probabilities"]);
    println!(
        "max |diff|: features {features_diff:e}, logits {logits_diff:e}, probabilities {probabilities_diff:e}"
    );
    assert!(logits_diff <= 1e-4, "logits differ by {logits_diff}");
    assert!(
        probabilities_diff <= 1e-4,
        "probabilities differ by {probabilities_diff}"
    );
    assert!(
        features_diff <= 1e-3,
        "pooled features (peak ~150) differ by {features_diff}"
    );

    let labels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/densenet121_parity/labels.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let thresholds: Vec<f32> = labels["op_threshs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap() as f32)
        .collect();
    let ours: Vec<f32> = probabilities.squeeze(0).unwrap().to_vec1().unwrap();
    let theirs: Vec<f32> = expected["calibrated"]
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    for (index, ((p, t), expected)) in ours.iter().zip(&thresholds).zip(&theirs).enumerate() {
        let diff = (calibrated(*p, *t) - expected).abs();
        assert!(diff <= 1e-4, "calibrated output {index} differs by {diff}");
    }
}
