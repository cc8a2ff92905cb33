//! `chestnode synth` end to end: the dataset directory it writes, its
//! determinism, DICOM validity (dciodvfy) and that the node's own pipeline
//! accepts and analyses the images it makes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::cli::{chestnode_ok, tool_output};

fn synth(out: &Path, backgrounds: &Path) {
    let out = [OsStr::new("synth"), OsStr::new("--out"), out.as_os_str()];
    let options = ["--count", "6", "--seed", "7", "--size", "128"];
    let fractions = ["--monochrome1-fraction", "0.5", "--insert-fraction", "0.4"];
    let backgrounds = [OsStr::new("--insert-into"), backgrounds.as_os_str()];
    let options = options.iter().chain(&fractions).map(OsStr::new);
    chestnode_ok(out.into_iter().chain(options).chain(backgrounds));
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn synth_writes_a_valid_deterministic_dataset_that_the_node_analyses() {
    let root = tempfile::tempdir().unwrap();
    // A folder of healthy real radiographs to insert findings into.
    let backgrounds = root.path().join("healthy");
    std::fs::create_dir(&backgrounds).unwrap();
    let healthy = crate::common::test_data().join("cxr/tbx11k/h0001.png");
    assert!(healthy.exists(), "missing {}", healthy.display());
    std::os::unix::fs::symlink(&healthy, backgrounds.join("h0001.png")).unwrap();

    let first = root.path().join("first");
    let second = root.path().join("second");
    synth(&first, &backgrounds);
    synth(&second, &backgrounds);

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(manifest["schema"], "chestnode-dataset/1");
    assert_eq!(manifest["seed"], 7);
    assert_eq!(manifest["count"], 6);
    assert_eq!(manifest["config"]["size"], 128);
    assert_eq!(manifest["labels"].as_array().unwrap().len(), 6);

    let images = files(&first.join("images"));
    let labels = files(&first.join("labels"));
    assert_eq!(images.len(), 6);
    assert_eq!(labels.len(), 6);
    let mut sources = Vec::new();
    for label_path in &labels {
        let label: serde_json::Value =
            serde_json::from_slice(&std::fs::read(label_path).unwrap()).unwrap();
        assert_eq!(label["schema"], "chestnode-labels/1");
        assert_eq!(label["rows"], 128);
        let image = first.join(label["image"].as_str().unwrap());
        assert!(
            image.exists(),
            "{} names a missing image",
            label_path.display()
        );
        sources.push(label["source"].as_str().unwrap().to_string());
        for finding in label["findings"].as_array().unwrap() {
            let bbox: Vec<u64> = finding["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert!(bbox[0] < bbox[2] && bbox[1] < bbox[3] && bbox[2] <= 128 && bbox[3] <= 128);
            assert!(finding["area_px"].as_u64().unwrap() > 0);
        }
    }
    assert!(sources.iter().any(|s| s == "synthetic"), "{sources:?}");
    assert!(sources.iter().any(|s| s == "inserted"), "{sources:?}");

    // Same seed, same bytes: images, labels and manifest.
    for sub in ["images", "labels"] {
        for (a, b) in files(&first.join(sub)).iter().zip(files(&second.join(sub))) {
            assert_eq!(
                std::fs::read(a).unwrap(),
                std::fs::read(&b).unwrap(),
                "{}",
                a.display()
            );
        }
    }
    assert_eq!(
        std::fs::read(first.join("dataset.json")).unwrap(),
        std::fs::read(second.join("dataset.json")).unwrap()
    );

    // Valid DX objects, synthetic and inserted alike.
    for (image, source) in images.iter().zip(&sources) {
        let (_, messages) = tool_output("dciodvfy", image);
        assert!(
            !messages.lines().any(|l| l.starts_with("Error")),
            "{source} {}:\n{messages}",
            image.display()
        );
    }

    // The node's gate lets them through and the pipeline analyses them.
    let output = Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args(["analyze", "--json"])
        .args(&images[..2])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for result in results.as_array().unwrap() {
        assert_eq!(result["result"]["outcome"], "analysed", "{result}");
        assert_eq!(
            result["result"]["image_size"],
            serde_json::json!([128, 128])
        );
    }
}

/// `--mix` changes how often findings appear, records the mix in
/// dataset.json, and refuses an unknown key.
#[test]
fn synth_mix_makes_a_nodule_only_dataset_and_refuses_unknown_keys() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("nodules");
    chestnode_ok([
        OsStr::new("synth"),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--count"),
        OsStr::new("5"),
        OsStr::new("--size"),
        OsStr::new("128"),
        OsStr::new("--mix"),
        OsStr::new("normal=0,mass=0,consolidation=0,ground_glass=0,tuberculosis=0"),
        OsStr::new("--mix"),
        OsStr::new("mediastinal=0,emphysema=0,pleural_effusion=0,second_finding=0,nodule=1"),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(manifest["config"]["mix"]["nodule"], 1.0);
    assert_eq!(manifest["config"]["mix"]["normal"], 0.0);
    for label in files(&out.join("labels")) {
        let label: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&label).unwrap()).unwrap();
        let findings = label["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{label}");
        assert_eq!(findings[0]["type"], "nodule", "{label}");
    }

    let refused = Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args(["synth", "--count", "1", "--mix", "nodules=0.5", "--out"])
        .arg(root.path().join("refused"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown key \"nodules\""), "{stderr}");
    assert!(!root.path().join("refused").exists());
}
