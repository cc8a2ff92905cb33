//! The loop closes, end to end while `serve` runs: four radiographs of two
//! patients (three annotated by two readers, one not), their annotations
//! imported from CSV, `research dataset` → `chestnode evaluate` on it →
//! `chestnode train --init default` for one epoch, and the research export
//! carrying the annotations as TID 1500 SR that `dciodvfy` and `dsrdump`
//! accept. The dataset's labels are the readers' consensus, and no patient
//! name or ID is in any of its files.
//!
//! About 20 s: the node analyses a 1841×1955 CR, and evaluation and
//! training decode every image (at 128² for training).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::cli::{chestnode, chestnode_ok, dciodvfy_errors, tool_output};
use crate::common::config::write_config;
use crate::common::research::{ResearchCli, dcmodify_copy};
use crate::common::{Node, combined_output, dicom_file, files_below, wait_until};

const PHI: [&str; 5] = ["ALPHA", "PAT-ALPHA-1", "BETA", "PAT-BETA-2", "19500505"];
const ORIGINAL_UIDS: &str = "1.2.826.0.1.3680043.10.2002";

/// One radiograph: patient, study number, date.
fn radiograph(dir: &Path, source: &str, patient: (&str, &str), study: u32, day: &str) -> PathBuf {
    let uid = format!("{ORIGINAL_UIDS}.{study}");
    let settings = vec![
        ("(0010,0020)", patient.0.to_owned()),
        ("(0010,0010)", patient.1.to_owned()),
        ("(0010,0030)", "19500505".into()),
        ("(0010,0040)", "F".into()),
        ("(0020,000D)", uid.clone()),
        ("(0020,000E)", format!("{uid}.1")),
        ("(0008,0018)", format!("{uid}.1.1")),
        ("(0008,0020)", day.into()),
        ("(0008,0022)", day.into()),
    ];
    let settings: Vec<(&str, &str)> = settings.iter().map(|(t, v)| (*t, v.as_str())).collect();
    dcmodify_copy(
        &dicom_file(source),
        &dir.join(format!("study{study}.dcm")),
        &settings,
    )
}

fn sop(study: u32) -> String {
    format!("{ORIGINAL_UIDS}.{study}.1.1")
}

fn research(data: &Path, secrets: &Path, args: &[&str]) -> String {
    ResearchCli::new(data, &secrets.join("vault-pass")).ok(args)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn annotations_become_a_dataset_that_evaluate_and_train_read_and_an_sr_any_tool_reads() {
    let root = tempfile::tempdir().unwrap();
    let secrets = root.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("vault-pass"), "correct horse battery staple\n").unwrap();
    let config = write_config(
        root.path(),
        "[research]\nseries_stable_secs = 1\nresearch_id_pattern = \"YCU-######\"\n",
    );
    let config = config.display().to_string();
    let mut node = Node::start(root.path(), &["--config", &config, "--workers", "1"]);
    let data = node.data_dir.clone();

    // ALPHA: a DX and a CR; BETA: two DX, one of them never annotated.
    let inputs = root.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let alpha = ("PAT-ALPHA-1", "ALPHA^ANNA");
    let beta = ("PAT-BETA-2", "BETA^BORIS");
    let dx = "misc/dx_thorax_small.dcm";
    let files = [
        radiograph(&inputs, dx, alpha, 1, "20240301"),
        radiograph(&inputs, "wg04/RG1_JLSN.dcm", alpha, 2, "20240302"),
        radiograph(&inputs, dx, beta, 3, "20240303"),
        radiograph(&inputs, dx, beta, 4, "20240304"),
    ];
    let plain: Vec<&Path> = [&files[0], &files[2], &files[3]]
        .into_iter()
        .map(PathBuf::as_path)
        .collect();
    node.storescu_ok(&[], &plain);
    node.storescu_ok(&["-xu", "-R"], &[&files[1]]);
    assert!(
        wait_until(Duration::from_secs(240), || {
            let status = node.status();
            let count = |s: &str| status["jobs_by_state"][s].as_u64().unwrap_or(0);
            count("analysed") + count("delivered") + count("not-analysed") >= 4
        }),
        "analysis did not finish: {}",
        node.status()
    );
    std::thread::sleep(Duration::from_secs(3)); // series become stable

    research(&data, &secrets, &["init"]);
    let cohort = research(
        &data,
        &secrets,
        &[
            "cohort",
            "create",
            "loop-2024",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--json",
        ],
    );
    let cohort: serde_json::Value =
        serde_json::from_str(&cohort[cohort.find('{').unwrap()..]).unwrap();
    assert_eq!(
        cohort["radiographs"].as_array().unwrap().len(),
        4,
        "{cohort:#}"
    );

    // Two readers: a nodule on ALPHA's DX, a consolidation on the CR (one
    // reader's polygon, the other's box), BETA's first DX normal.
    let csv = root.path().join("readers.csv");
    let header = "sop_instance_uid,reader,finding,certainty,x,y,width,height,polygon\n";
    let rows = [
        format!("{},dr-a,nodule-mass,definite,40,50,30,20,", sop(1)),
        format!("{},dr-b,nodule-mass,probable,42,50,30,20,", sop(1)),
        format!(
            "{},dr-a,pneumonia,definite,,,,,400 500; 900 500; 900 1100; 400 1100",
            sop(2)
        ),
        format!("{},dr-b,pneumonia,definite,400,500,500,600,", sop(2)),
        format!("{},dr-a,normal,definite,,,,,", sop(3)),
        format!("{},dr-b,normal,definite,,,,,", sop(3)),
    ];
    std::fs::write(&csv, format!("{header}{}\n", rows.join("\n"))).unwrap();
    let imported = research(
        &data,
        &secrets,
        &["annotations", "import", csv.to_str().unwrap()],
    );
    assert!(
        imported.contains("imported 6 annotation(s) of 3 image(s)"),
        "{imported}"
    );

    // The dataset: three images, the unannotated one left out.
    let dataset = root.path().join("dataset");
    let built = research(
        &data,
        &secrets,
        &["dataset", "loop-2024", "--out", dataset.to_str().unwrap()],
    );
    assert!(
        built.contains("wrote 3 annotated image(s) of 2 patient(s)"),
        "{built}"
    );
    assert!(built.contains("1 without annotations"), "{built}");
    assert!(
        !data.join("research/staging/loop-2024").exists()
            || files_below(&data.join("research/staging/loop-2024")).is_empty(),
        "the staging copy is gone"
    );
    let manifest = json(&dataset.join("dataset.json"));
    let labels: Vec<serde_json::Value> = manifest["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json(&dataset.join(l.as_str().unwrap())))
        .collect();
    assert_eq!(labels.len(), 3);
    let mut splits: Vec<&str> = labels
        .iter()
        .map(|l| l["split"].as_str().unwrap())
        .collect();
    splits.sort();
    splits.dedup();
    assert_eq!(splits, ["train", "validation"], "two patients, one each");
    for label in &labels {
        assert_eq!(label["source"], "hospital:loop-2024-v1");
        assert!(label["patient"].as_str().unwrap().starts_with("YCU-"));
    }
    let by_category = |key: &str| {
        labels
            .iter()
            .find(|l| l["categories"][key] == true)
            .unwrap_or_else(|| panic!("no {key} label: {labels:#?}"))
    };
    let nodule = &by_category("nodule-mass")["findings"][0];
    assert_eq!(
        nodule["box"],
        serde_json::json!([41, 50, 71, 70]),
        "the readers' mean box"
    );
    assert_eq!(nodule["area_px"], 600);
    let consolidation = &by_category("consolidation")["findings"][0];
    assert_eq!(
        consolidation["box"],
        serde_json::json!([400, 500, 900, 1100])
    );
    assert_eq!(consolidation["mask_from"], "polygon");
    let normal = by_category("normal");
    assert_eq!(normal["categories"]["any-abnormality"], false);
    for file in files_below(&dataset) {
        // DICOM files as dcmdump shows them (pixel data left out).
        let text = if file.extension().is_some_and(|e| e == "dcm") {
            tool_output("dcmdump", &file).1
        } else {
            std::fs::read_to_string(&file).unwrap()
        };
        for secret in PHI.iter().chain(&[ORIGINAL_UIDS, "dr-a", "dr-b"]) {
            assert!(!text.contains(secret), "{} holds {secret}", file.display());
        }
    }
    let busy = chestnode([
        "research",
        "--config",
        &config,
        "--data-dir",
        data.to_str().unwrap(),
        "--vault-passphrase-file",
        secrets.join("vault-pass").to_str().unwrap(),
        "dataset",
        "loop-2024",
        "--out",
        dataset.to_str().unwrap(),
    ]);
    assert!(!busy.status.success() && combined_output(&busy).contains("not empty"));

    // --identified keeps the originals (and says so in the audit log).
    let identified = root.path().join("identified");
    let built = research(
        &data,
        &secrets,
        &[
            "dataset",
            "loop-2024",
            "--identified",
            "--consensus",
            "union",
            "--out",
            identified.to_str().unwrap(),
        ],
    );
    assert!(built.contains("IDENTIFIED"), "{built}");
    let originals: Vec<String> = files_below(&identified.join("images"))
        .iter()
        .map(|f| tool_output("dcmdump", f).1)
        .collect();
    assert!(originals.iter().any(|d| d.contains("PAT-ALPHA-1")));

    // evaluate compares the default model's findings with the doctors'.
    let evaluation = root.path().join("evaluation");
    chestnode_ok([
        "evaluate",
        "--data",
        dataset.to_str().unwrap(),
        "--out",
        evaluation.to_str().unwrap(),
        "--bootstrap",
        "0",
    ]);
    let report = json(&evaluation.join("evaluation.json"));
    assert!(
        report.to_string().contains("hospital:loop-2024-v1"),
        "{report:#}"
    );

    // train --init default: one epoch of fine-tuning writes a model.
    let model = root.path().join("model");
    chestnode_ok([
        "train",
        "--data",
        dataset.to_str().unwrap(),
        "--init",
        "default",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--input-size",
        "128",
        "--warmup",
        "1",
        "--name",
        "fine",
        "--out",
        model.to_str().unwrap(),
    ]);
    let manifest = std::fs::read_to_string(model.join("fine.toml")).unwrap();
    assert!(manifest.contains("chestnet-compact-v2"), "{manifest}");
    assert!(model.join("fine.safetensors").exists());
    let wrong = chestnode([
        "train",
        "--data",
        dataset.to_str().unwrap(),
        "--init",
        "default",
        "--architecture",
        "chestnet-compact-v1",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--input-size",
        "64",
        "--out",
        root.path().join("wrong").to_str().unwrap(),
    ]);
    assert!(!wrong.status.success());
    assert!(
        combined_output(&wrong).contains("chestnet-compact-v2"),
        "{}",
        combined_output(&wrong)
    );

    // The export carries the annotations as SR in research-ID space.
    let export = root.path().join("export");
    research(
        &data,
        &secrets,
        &["export", "loop-2024", "--out", export.to_str().unwrap()],
    );
    let exported: Vec<PathBuf> = files_below(&export)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "dcm"))
        .collect();
    let names: Vec<String> = exported
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut srs = 0;
    for file in &exported {
        let (_, dump) = tool_output("dcmdump", file);
        if !dump.contains("Doctors' annotations") {
            continue;
        }
        srs += 1;
        let (errors, text) = dciodvfy_errors(file);
        assert!(errors.is_empty(), "{}:\n{text}", file.display());
        let (output, text) = tool_output("dsrdump", file);
        assert!(output.status.success(), "{text}");
        assert!(text.contains("Imaging Measurement Report"), "{text}");
        assert!(text.contains("reader-"), "{text}");
        for secret in PHI.iter().chain(&[ORIGINAL_UIDS, "dr-a", "dr-b"]) {
            assert!(
                !text.contains(secret) && !dump.contains(secret),
                "{secret} in {text}"
            );
        }
        let referenced = dump
            .lines()
            .filter(|l| l.contains("(0008,1155)"))
            .filter_map(|l| Some(l[l.find('[')? + 1..l.find(']')?].to_owned()))
            .collect::<Vec<_>>();
        assert!(
            !referenced.is_empty() && referenced.iter().all(|uid| names.contains(uid)),
            "the SR references the de-identified image: {referenced:?} in {names:?}"
        );
    }
    assert_eq!(srs, 3, "one SR per annotated radiograph");

    let audit = std::fs::read_to_string(data.join("research/audit.jsonl")).unwrap();
    assert!(audit.contains("\"dataset\""), "{audit}");
    assert!(audit.contains("\"dataset.deliver\""), "{audit}");
    assert!(audit.contains("\"phi\":true"), "{audit}");
    node.stop();
}
