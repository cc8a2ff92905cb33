//! `chestnode evaluate` end to end on a small generated dataset: the files
//! it writes, that the JSON agrees with the label files and with itself, and
//! that it repeats exactly for a seed. The model is the embedded default
//! model, trained briefly on synthetic data, so performance is not
//! asserted; the metrics themselves are checked on hand-made cases in
//! `src/lab/evaluate/metrics/tests.rs`.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::cli::chestnode_ok;

const CATEGORIES: [&str; 7] = [
    "nodule-mass",
    "consolidation",
    "tuberculosis",
    "mediastinal-mass",
    "emphysema",
    "any-abnormality",
    "normal",
];
const LOCALISED: [&str; 5] = [
    "nodule-mass",
    "consolidation",
    "tuberculosis",
    "mediastinal-mass",
    "emphysema",
];

fn synth(out: &Path) {
    // Seed 4 gives nodules (for FROC and subgroups) and several categories.
    let args = [
        "synth", "--size", "256", "--count", "8", "--seed", "4", "--out",
    ];
    chestnode_ok(args.iter().map(OsStr::new).chain([out.as_os_str()]));
}

fn evaluate(data: &Path, out: &Path, extra: &[&str]) {
    let args = [
        OsStr::new("evaluate"),
        OsStr::new("--data"),
        data.as_os_str(),
    ];
    let args = args
        .into_iter()
        .chain([OsStr::new("--out"), out.as_os_str()]);
    chestnode_ok(args.chain(extra.iter().map(OsStr::new)));
}

/// Per category key: (images with it, located findings of it), counted
/// from the label files.
fn label_counts(data: &Path) -> std::collections::HashMap<String, (usize, usize)> {
    let mut counts = std::collections::HashMap::new();
    for entry in std::fs::read_dir(data.join("labels")).unwrap() {
        let label: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for (key, present) in label["categories"].as_object().unwrap() {
            if present.as_bool().unwrap() {
                counts.entry(key.clone()).or_insert((0, 0)).0 += 1;
            }
        }
        for finding in label["findings"].as_array().unwrap() {
            let key = finding["category"].as_str().unwrap().to_string();
            counts.entry(key).or_insert((0, 0)).1 += 1;
        }
    }
    counts
}

fn trapezoid(roc: &[Value]) -> f64 {
    roc.windows(2)
        .map(|pair| {
            let (x0, y0) = (
                pair[0]["false_positive_rate"].as_f64().unwrap(),
                pair[0]["true_positive_rate"].as_f64().unwrap(),
            );
            let (x1, y1) = (
                pair[1]["false_positive_rate"].as_f64().unwrap(),
                pair[1]["true_positive_rate"].as_f64().unwrap(),
            );
            (x1 - x0) * (y0 + y1) / 2.0
        })
        .sum()
}

fn in_unit_interval(value: &Value) -> bool {
    value.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v))
}

#[test]
#[ignore = "soak: generates a dataset and runs a full evaluation"]
fn evaluate_writes_a_consistent_report_and_plots() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("dataset");
    synth(&data);
    let out = root.path().join("evaluation");
    evaluate(&data, &out, &["--bootstrap", "300", "--seed", "5"]);

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("evaluation.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], "chestnode-evaluation/1");
    assert_eq!(
        json["model"]["placeholder"], false,
        "the embedded default model"
    );
    assert_eq!(json["dataset"]["cases"], 8);
    assert_eq!(json["dataset"]["evaluated"], 8);

    let counts = label_counts(&data);
    let categories = json["categories"].as_array().unwrap();
    let keys: Vec<&str> = categories
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, CATEGORIES);
    for category in categories {
        let key = category["key"].as_str().unwrap();
        assert_eq!(category["assessed"], true, "{key}");
        let positives = category["positives"].as_u64().unwrap() as usize;
        assert_eq!(
            positives,
            counts.get(key).map_or(0, |c| c.0),
            "{key}: positives as the labels say"
        );
        assert_eq!(
            category["negatives"].as_u64().unwrap() as usize,
            8 - positives
        );
        let auc = &category["auc"];
        if positives == 0 || positives == 8 {
            assert!(auc.is_null() && category["auc_interval"].is_null(), "{key}");
            assert!(category["roc"].as_array().unwrap().is_empty(), "{key}");
        } else {
            assert!(in_unit_interval(auc), "{key}: {auc}");
            let auc = auc.as_f64().unwrap();
            let roc = category["roc"].as_array().unwrap();
            assert!(
                (trapezoid(roc) - auc).abs() < 1e-9,
                "{key}: the ROC curve's area is the AUC"
            );
            let interval = category["auc_interval"].as_array().unwrap();
            let (low, high) = (interval[0].as_f64().unwrap(), interval[1].as_f64().unwrap());
            assert!(low <= auc && auc <= high, "{key}: {low} {auc} {high}");
        }
        // Calls at the manifest threshold cover every image.
        let confusion = &category["confusion"];
        let total: u64 = [
            "true_positives",
            "false_positives",
            "true_negatives",
            "false_negatives",
        ]
        .iter()
        .map(|k| confusion[*k].as_u64().unwrap())
        .sum();
        assert_eq!(total, 8, "{key}");
    }

    let froc = json["froc"].as_array().unwrap();
    let froc_keys: Vec<&str> = froc.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(froc_keys, LOCALISED);
    for entry in froc {
        let key = entry["key"].as_str().unwrap();
        let lesions = entry["lesions"].as_u64().unwrap() as usize;
        assert_eq!(lesions, counts.get(key).map_or(0, |c| c.1), "{key}");
        let rates: Vec<f64> = entry["at_rates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["false_positives_per_image"].as_f64().unwrap())
            .collect();
        assert_eq!(rates, [0.125, 0.25, 0.5, 1.0, 2.0, 4.0]);
        for at in entry["at_rates"].as_array().unwrap() {
            if lesions == 0 {
                assert!(at["sensitivity"].is_null(), "{key}");
            } else {
                assert!(in_unit_interval(&at["sensitivity"]), "{key}: {at}");
            }
        }
    }
    assert!(
        counts["nodule-mass"].1 > 0,
        "the dataset has nodules to localise"
    );
    let subgroups = json["nodule_subgroups"].as_array().unwrap();
    let all = subgroups.iter().find(|s| s["key"] == "all").unwrap();
    assert_eq!(
        all["lesions"].as_u64().unwrap() as usize,
        counts["nodule-mass"].1
    );
    for key in [
        "overlaps_heart",
        "overlaps_diaphragm",
        "overlaps_hilum",
        "free_lung",
        "size_5_10mm",
    ] {
        assert!(subgroups.iter().any(|s| s["key"] == key), "{key}");
    }

    let markdown = std::fs::read_to_string(out.join("evaluation.md")).unwrap();
    assert!(markdown.contains("chestnet-compact-default"));
    assert!(markdown.contains("Research use only, not for diagnosis"));
    assert!(markdown.contains("| Lung nodule / mass |"));
    assert!(markdown.contains("Localisation (FROC)"));
    for plot in ["roc.png", "froc.png"] {
        let image = image::open(out.join(plot))
            .unwrap_or_else(|e| panic!("{plot} does not decode: {e}"))
            .to_rgb8();
        assert_eq!(image.dimensions(), (900, 700), "{plot}");
        let drawn = image.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(drawn > 10_000, "{plot} has axes, text and curves: {drawn}");
    }

    // The same seed gives the same report; no bootstrap gives no intervals.
    let again = root.path().join("again");
    evaluate(&data, &again, &["--bootstrap", "300", "--seed", "5"]);
    assert_eq!(
        std::fs::read(out.join("evaluation.json")).unwrap(),
        std::fs::read(again.join("evaluation.json")).unwrap(),
        "deterministic for a seed"
    );
    let none = root.path().join("none");
    evaluate(&data, &none, &["--bootstrap", "0"]);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(none.join("evaluation.json")).unwrap())
            .unwrap();
    assert!(
        json["categories"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["auc_interval"].is_null())
    );
}

#[test]
#[ignore = "soak: with the evaluation test it checks"]
fn a_missing_dataset_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .arg("evaluate")
        .arg("--data")
        .arg(root.path().join("absent"))
        .arg("--out")
        .arg(root.path().join("out"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        crate::common::combined_output(&output).contains("absent"),
        "{}",
        crate::common::combined_output(&output)
    );
    assert!(
        !root.path().join("out").exists(),
        "nothing written on error"
    );
}
