//! `chestnode train` end to end: a tiny model trained for a few steps on a
//! small synthetic dataset lowers its loss, writes safetensors with a
//! manifest whose sha256 matches, resumes from its checkpoint, and the
//! result loads and runs in `chestnode analyze`.

use std::path::Path;
use std::process::Command;

use crate::common::cli::chestnode_ok as chestnode;

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn state(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("checkpoint/state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn step_losses(epoch: &serde_json::Value) -> Vec<f64> {
    epoch["step_losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
#[ignore = "soak: trains a model and runs it"]
fn training_a_tiny_model_lowers_the_loss_and_writes_a_model_analyze_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("model");
    let (data_arg, out_arg) = (data.to_str().unwrap(), out.to_str().unwrap());
    chestnode([
        "synth", "--size", "128", "--count", "12", "--seed", "3", "--out", data_arg,
    ]);
    let common = [
        "train",
        "--data",
        data_arg,
        "--out",
        out_arg,
        "--input-size",
        "128",
        "--batch",
        "4",
        "--warmup",
        "3",
        "--patience",
        "100",
        "--name",
        "tiny",
    ];
    let mut args = common.to_vec();
    args.extend(["--epochs", "8"]);
    chestnode(&args);

    // The loss went down: the last two epochs' steps against the first's.
    let trained = state(&out);
    let history = trained["history"].as_array().unwrap();
    assert_eq!(history.len(), 8);
    let first = step_losses(&history[0]);
    let last: Vec<f64> = history[6..].iter().flat_map(step_losses).collect();
    assert_eq!(first.len(), 3, "10 training images in batches of 4 (+2)");
    assert!(first.iter().chain(&last).all(|l| l.is_finite() && *l > 0.0));
    assert!(
        mean(&last) < 0.9 * mean(&first),
        "training loss did not fall: first epoch {first:?}, last epochs {last:?}"
    );
    assert_eq!(trained["thresholds"].as_array().unwrap().len(), 7);

    // Manifest and weights, with the hash of the file as sha256sum sees it.
    let manifest_path = out.join("tiny.toml");
    let weights_path = out.join("tiny.safetensors");
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let sha256sum = Command::new("sha256sum")
        .arg(&weights_path)
        .output()
        .expect("sha256sum (coreutils) is installed");
    assert!(sha256sum.status.success());
    let actual = String::from_utf8(sha256sum.stdout).unwrap();
    assert_eq!(
        manifest["model"]["sha256"].as_str().unwrap(),
        actual.split_whitespace().next().unwrap()
    );
    assert_eq!(
        manifest["model"]["architecture"].as_str(),
        Some("chestnet-compact-v2")
    );
    assert_eq!(
        manifest["model"]["weights"].as_str(),
        Some("tiny.safetensors")
    );
    assert_eq!(manifest["input"]["size"].as_integer(), Some(128));
    let labels: Vec<&str> = manifest["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "nodule-mass",
            "consolidation",
            "tuberculosis",
            "mediastinal-mass",
            "emphysema",
            "pleural-effusion",
            "any-abnormality"
        ]
    );
    for label in manifest["labels"].as_array().unwrap() {
        let threshold = label["threshold"].as_float().unwrap();
        assert!((0.0..=1.0).contains(&threshold), "{label:?}");
    }
    let performance = manifest["model"]["measured_performance"].as_str().unwrap();
    assert!(performance.contains("sensitivity >= 0.90"), "{performance}");

    // analyze loads the model (hash and tensors checked) and runs it.
    let image = data.join("images/case-000000.dcm");
    let analysed = chestnode([
        "analyze",
        "--json",
        "--model",
        manifest_path.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    let results: serde_json::Value = serde_json::from_slice(&analysed.stdout).unwrap();
    let text = results.to_string();
    assert!(text.contains("\"tiny\""), "{text}");
    assert!(text.contains("nodule-mass"), "{text}");

    // Resume continues from the checkpoint instead of starting again.
    let mut args = common.to_vec();
    args.extend(["--epochs", "9", "--resume"]);
    chestnode(&args);
    let resumed = state(&out);
    assert_eq!(resumed["epochs_done"].as_u64(), Some(9));
    assert_eq!(resumed["steps_done"].as_u64(), Some(27));
    assert_eq!(
        resumed["history"].as_array().unwrap()[..8],
        history[..],
        "resuming rewrote the earlier epochs"
    );
}
