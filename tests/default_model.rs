//! The embedded default model does its job out of the box: on a generated
//! radiograph with an obvious mass, `chestnode analyze` (no `--model`)
//! calls nodule/mass positive and puts the region on the mass.

use std::process::Command;

use chestnode::synth::findings::{FindingKind, PlannedFinding};
use chestnode::synth::lesions::Site;
use chestnode::synth::{SynthConfig, generate_with};

#[test]
fn analyze_with_the_default_model_finds_an_obvious_mass_and_boxes_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        size: 512,
        ..SynthConfig::default()
    };
    let planned = [PlannedFinding {
        kind: FindingKind::Mass,
        site: Site::AnyLung,
        diameter_mm: Some(55.0),
    }];
    let case = generate_with(&config, 1234, 7, &planned);
    let truth = case.label("images/mass.dcm").findings[0].bbox;
    let path = dir.path().join("mass.dcm");
    case.dx().write(&path).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args(["analyze", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let result = &json[0]["result"];
    let findings = &result["findings"];
    assert!(
        findings["model"]["research_use_only"].as_bool().unwrap(),
        "the default model is research use only"
    );
    let nodule = findings["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == "nodule-mass")
        .unwrap();
    assert_eq!(nodule["positive"], true, "{findings:#}");
    let region = findings["localised"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "nodule-mass")
        .unwrap_or_else(|| panic!("no nodule-mass region: {findings:#}"));
    let b: Vec<f64> = region["region"]["bounding_box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let t: Vec<f64> = truth.iter().map(|&v| v as f64).collect();
    // The region's centre lies on the mass's box (a little margin for the
    // model's coarse map).
    let margin = 16.0;
    assert!(
        cx >= t[0] - margin && cx <= t[2] + margin && cy >= t[1] - margin && cy <= t[3] + margin,
        "region {b:?} is not on the mass {t:?}"
    );
}
