//! The analysis engine end to end: `chestnode analyze` on the real test
//! files, models loaded from manifests (and refused when wrong), and a
//! server that analyses what `storescu` sends.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::cli::chestnode;
use crate::common::{Node, dicom_file as dicom, wait_until};
use candle_core::{Device, Tensor};
use chestnode::model::manifest::sha256_hex;
use chestnode::model::seeded::seeded_values;
use serde_json::Value;

fn analyze(args: &[&str], files: &[PathBuf]) -> (bool, Value, String) {
    let args = ["analyze", "--json"].iter().chain(args).map(OsStr::new);
    let output = chestnode(args.chain(files.iter().map(|file| file.as_os_str())));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.success(), json, stderr)
}

#[test]
fn analyze_finds_categories_in_chest_films_and_gives_reasons_for_the_rest() {
    let files = [
        dicom("wg04/RG1_JLSN.dcm"),
        dicom("misc/siim_cr_chest_jpeg_baseline.dcm"),
        dicom("misc/dx_thorax_small.dcm"),
        dicom("misc/CT_small.dcm"),
        dicom("wg04/RG3_UNC.dcm"),
        dicom("misc/highdicom_sr_document.dcm"),
    ];
    let (ok, json, stderr) = analyze(&[], &files);
    assert!(ok, "{stderr}");
    let results = json.as_array().unwrap();
    for analysed in &results[..3] {
        let result = &analysed["result"];
        assert_eq!(result["outcome"], "analysed", "{analysed}");
        let categories = result["findings"]["categories"].as_array().unwrap();
        assert_eq!(categories.len(), 7);
        assert!(
            result["findings"]["model"]["research_use_only"]
                .as_bool()
                .unwrap()
        );
        assert!(result["timings"]["total_ms"].as_f64().unwrap() > 0.0);
    }
    let reason = |i: usize| results[i]["result"]["reason"].as_str().unwrap().to_owned();
    assert_eq!(results[3]["result"]["outcome"], "not-analysed");
    assert!(reason(3).contains("modality CT"), "{}", reason(3));
    assert!(reason(4).contains("EXTREMITY"), "{}", reason(4));
    assert!(reason(5).contains("not an image"), "{}", reason(5));
}

/// Writes a DenseNet-121 safetensors file with the seeded weights (names
/// and shapes from the parity fixture) and a manifest for it. Returns the
/// manifest path.
/// The JPEG 2000 decoder logs its progress at INFO ("Start to read j2k
/// main header", "Header of tile 1 / 1 has been read"); third-party crates
/// log at WARN and above unless RUST_LOG asks for more, so `analyze` of a
/// JPEG 2000 file prints nothing to stderr.
#[test]
fn third_party_crates_stay_quiet_unless_rust_log_asks() {
    let file = dicom("wg04/RG1_J2KI.dcm");
    let run = |rust_log: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chestnode"));
        command.args([
            OsStr::new("analyze"),
            OsStr::new("--json"),
            file.as_os_str(),
        ]);
        command.env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let output = command.output().expect("chestnode runs");
        assert!(output.status.success(), "{output:?}");
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json[0]["result"]["outcome"], "analysed", "{json}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let quiet = run(None);
    assert!(
        !quiet.contains("j2k") && !quiet.contains("jpeg2k"),
        "{quiet}"
    );
    // The decoder does log at INFO when asked: the check above is not empty.
    let verbose = run(Some("info"));
    assert!(verbose.contains("j2k main header"), "{verbose}");
}

fn seeded_densenet(dir: &Path, drop_tensor: Option<&str>, reshape: Option<&str>) -> PathBuf {
    let listing = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/densenet121_parity/state_dict.txt"),
    )
    .unwrap();
    let mut tensors = HashMap::new();
    for line in listing.lines().filter(|l| l.contains(" float32 ")) {
        let (name, rest) = line.split_once(' ').unwrap();
        if Some(name) == drop_tensor {
            continue;
        }
        let shape = rest.split_once('[').unwrap().1.trim_end_matches(']');
        let mut dims: Vec<usize> = shape
            .split(',')
            .map(|d| d.trim().parse().unwrap())
            .collect();
        if Some(name) == reshape {
            dims[0] += 1;
        }
        let values = seeded_values(name, &dims);
        tensors.insert(
            name.to_owned(),
            Tensor::from_vec(values, dims, &Device::Cpu).unwrap(),
        );
    }
    let weights = dir.join("seeded.safetensors");
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let sha = sha256_hex(&std::fs::read(&weights).unwrap());
    let labels: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/densenet121_parity/labels.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut manifest = format!(
        "[model]\nname = \"seeded-densenet\"\nversion = \"test\"\narchitecture = \"densenet121-xrv\"\n\
         weights = \"seeded.safetensors\"\nsha256 = \"{sha}\"\nresearch_use_only = true\n\
         intended_use = \"tests\"\ntraining_data = \"none\"\nmeasured_performance = \"none\"\n\n\
         [input]\nsize = 224\nchannels = 1\ncrop = \"center-square\"\n\
         normalisation = {{ low = -1024.0, high = 1024.0 }}\n"
    );
    for (name, threshold) in labels["labels"]
        .as_array()
        .unwrap()
        .iter()
        .zip(labels["op_threshs"].as_array().unwrap())
    {
        manifest += &format!("\n[[labels]]\nname = {name}\nthreshold = {threshold}\n");
    }
    let path = dir.join("seeded.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

#[test]
fn a_densenet_manifest_runs_with_torchxrayvision_labels_mapped_to_categories() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = seeded_densenet(dir.path(), None, None);
    let (ok, json, stderr) = analyze(
        &["--model", manifest.to_str().unwrap()],
        &[dicom("misc/siim_cr_chest_jpeg_baseline.dcm")],
    );
    assert!(ok, "{stderr}");
    let findings = &json[0]["result"]["findings"];
    assert_eq!(findings["model"]["name"], "seeded-densenet");
    let categories = findings["categories"].as_array().unwrap();
    let tuberculosis = categories
        .iter()
        .find(|c| c["category"] == "tuberculosis")
        .unwrap();
    assert_eq!(
        tuberculosis["assessed"], false,
        "torchxrayvision has no tuberculosis label"
    );
    let nodule = categories
        .iter()
        .find(|c| c["category"] == "nodule-mass")
        .unwrap();
    assert_eq!(nodule["assessed"], true);
    // Every positive localised category has one to four regions inside the
    // 1024² image, and no other category has any.
    let positives: Vec<&serde_json::Value> = categories
        .iter()
        .filter(|c| {
            c["positive"] == true && c["category"] != "normal" && c["category"] != "any-abnormality"
        })
        .map(|c| &c["category"])
        .collect();
    let regions = findings["localised"].as_array().unwrap();
    for category in &positives {
        let count = regions
            .iter()
            .filter(|r| &&r["category"] == category)
            .count();
        assert!((1..=4).contains(&count), "{category}: {count} regions");
    }
    assert!(regions.iter().all(|r| positives.contains(&&r["category"])));
    for region in regions {
        let bbox: Vec<f64> = region["region"]["bounding_box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            bbox[0] >= 0.0 && bbox[1] >= 0.0 && bbox[2] <= 1024.0 && bbox[3] <= 1024.0,
            "{bbox:?}"
        );
        assert!(
            region["region"]["size_mm"].is_array(),
            "the SIIM image has a pixel spacing"
        );
    }
}

#[test]
fn manifest_errors_are_clear_and_stop_the_node_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = [dicom("misc/siim_cr_chest_jpeg_baseline.dcm")];

    let missing = dir.path().join("missing");
    std::fs::create_dir(&missing).unwrap();
    let manifest = seeded_densenet(
        &missing,
        Some("features.denseblock2.denselayer3.conv2.weight"),
        None,
    );
    let (ok, _, stderr) = analyze(&["--model", manifest.to_str().unwrap()], &file);
    assert!(
        !ok && stderr.contains("denseblock2.denselayer3.conv2.weight"),
        "{stderr}"
    );

    let reshaped = dir.path().join("reshaped");
    std::fs::create_dir(&reshaped).unwrap();
    let manifest = seeded_densenet(&reshaped, None, Some("classifier.bias"));
    let (ok, _, stderr) = analyze(&["--model", manifest.to_str().unwrap()], &file);
    assert!(!ok && stderr.contains("shape"), "{stderr}");

    let tampered = dir.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    let manifest = seeded_densenet(&tampered, None, None);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let sha_start = text.find("sha256 = \"").unwrap() + 10;
    let mut tampered_text = text.clone();
    tampered_text.replace_range(
        sha_start..sha_start + 1,
        if &text[sha_start..sha_start + 1] == "0" {
            "1"
        } else {
            "0"
        },
    );
    std::fs::write(&manifest, tampered_text).unwrap();
    let (ok, _, stderr) = analyze(&["--model", manifest.to_str().unwrap()], &file);
    assert!(!ok && stderr.contains("sha256"), "{stderr}");

    // The server refuses to start with it, before opening its port.
    let config = dir.path().join("node.toml");
    std::fs::write(&config, format!("[analysis]\nmodel = {:?}\n", manifest)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args([
            "serve",
            "--port",
            &crate::common::free_port().to_string(),
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("sha256"));
}

#[test]
fn the_server_analyses_what_storescu_sends() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &["--workers", "1"]);
    let chest = dicom("misc/siim_cr_chest_jpeg_baseline.dcm");
    let ct = dicom("misc/CT_small.dcm");
    assert!(node.storescu(&["-xy"], &[&chest, &ct]).status.success());
    let done = wait_until(Duration::from_secs(120), || {
        let status = node.status();
        status["jobs_by_state"]["analysed"].as_u64() == Some(1)
            && status["jobs_by_state"]["not-analysed"].as_u64() == Some(1)
    });
    let status = node.status();
    assert!(done, "{status:#}");
    let jobs = status["recent_jobs"].as_array().unwrap();
    let analysed = jobs.iter().find(|j| j["state"] == "analysed").unwrap();
    assert!(
        analysed["model"]
            .as_str()
            .unwrap()
            .contains("chestnet-compact-default")
    );
    assert!(analysed["regions"].is_u64());
    let skipped = jobs.iter().find(|j| j["state"] == "not-analysed").unwrap();
    assert!(skipped["reason"].as_str().unwrap().contains("modality CT"));
    assert!(node.log().contains("model=chestnet-compact-default"));
    assert!(node.log().contains("research_use_only=true"));
    node.stop();
}

#[test]
fn an_undecodable_image_is_retried_a_few_times_then_marked_failed() {
    // A chest CR whose JPEG-LS fragments are garbage: the data set is well
    // formed, so the SCP stores it, but no decoder can read the pixels.
    let root = tempfile::tempdir().unwrap();
    let mut object = dicom_object::open_file(dicom("wg04/RG1_JLSN.dcm")).unwrap();
    object.update_value(dicom_dictionary_std::tags::PIXEL_DATA, |value| {
        for fragment in value.fragments_mut().expect("encapsulated") {
            fragment
                .iter_mut()
                .enumerate()
                .for_each(|(i, byte)| *byte = (i * 7 % 251) as u8);
        }
    });
    let broken = root.path().join("broken.dcm");
    object.write_to_file(&broken).unwrap();

    // No delay between attempts, so the test need not wait.
    let mut node = Node::start(root.path(), &["--workers", "1", "--retry-delay", "0"]);
    assert!(node.storescu(&["-xu", "-R"], &[&broken]).status.success());
    let failed = wait_until(Duration::from_secs(60), || {
        node.status()["jobs_by_state"]["dead-letter"].as_u64() == Some(1)
    });
    let status = node.status();
    assert!(failed, "{status:#}");
    let job = &status["recent_jobs"][0];
    assert_eq!(
        job["attempts"].as_u64(),
        Some(chestnode::queue::MAX_ATTEMPTS as u64)
    );
    assert!(
        job["reason"].as_str().unwrap().contains("decoding"),
        "{job}"
    );
    assert!(
        status["last_errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("analysis of")
    );
    // The node carries on.
    assert!(node.echoscu(&[]).status.success());
    node.stop();
}
