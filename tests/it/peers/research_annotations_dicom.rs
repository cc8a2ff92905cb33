//! Doctors' annotations from DICOM viewers, while `serve` runs: after a
//! chest DX is stored (and analysed), a TID 1500 SR made by highdicom, one
//! made by DCMTK's `xml2dsr`, and a GSPS made by highdicom are sent by
//! `storescu`. Each is stored as annotations of the DX (read back with
//! `research annotations list --image`), its job ends not analysed, and
//! no result goes to the PACS for it. An SR about an image the node does
//! not have stores nothing and leaves an incident in `status --json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::cli::chestnode;
use crate::common::config::{destination, write_config};
use crate::common::storescp::StoreScp;
use crate::common::{Node, combined_output, dicom_file, files_below, wait_until};

const STUDY: &str = "1.2.826.0.1.3680043.10.1002.1";
const DX: &str = "1.2.826.0.1.3680043.10.1002.1.1.1";
const ABSENT: &str = "1.2.826.0.1.3680043.10.1002.1.1.99";

/// A copy of the test DX with the given SOP Instance UID, in our study.
fn radiograph(out: &Path, sop: &str) -> PathBuf {
    std::fs::copy(dicom_file("misc/dx_thorax_small.dcm"), out).unwrap();
    let output = Command::new("dcmodify")
        .args(["-nb", "-ie"])
        .args(["-i", &format!("(0020,000D)={STUDY}")])
        .args(["-i", &format!("(0020,000E)={STUDY}.1")])
        .args(["-i", &format!("(0008,0018)={sop}")])
        .arg(out)
        .output()
        .expect("dcmodify runs");
    assert!(output.status.success(), "{}", combined_output(&output));
    out.to_path_buf()
}

/// `tests/python/make_annotations.py KIND IMAGE OUT` (highdicom).
fn highdicom(kind: &str, image: &Path, out: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_annotations.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(kind)
        .arg(image)
        .arg(out)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", combined_output(&output));
    out.to_path_buf()
}

/// A TID 1500 report by DCMTK's xml2dsr: tuberculosis, outlined by a
/// closed polyline (`data`, DCMTK's `x/y,…`) on the DX, read by
/// Reader^Anna; `n` numbers the series and file.
fn dcmtk_sr(dir: &Path, n: u32, data: &str) -> PathBuf {
    let code = |value: &str, scheme: &str, meaning: &str| {
        format!(
            "<value>{value}</value><scheme><designator>{scheme}</designator></scheme>\
             <meaning>{meaning}</meaning>"
        )
    };
    let concept = |value: &str, scheme: &str, meaning: &str| {
        format!("<concept>{}</concept>", code(value, scheme, meaning))
    };
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<report type="Comprehensive SR">
<sopclass uid="1.2.840.10008.5.1.4.1.1.88.33">ComprehensiveSRStorage</sopclass>
<modality>SR</modality>
<manufacturer>DCMTK test</manufacturer>
<patient><id>123456</id></patient>
<study uid="{STUDY}"><id>A1</id></study>
<series uid="{STUDY}.{n}"><number>{n}</number></series>
<instance uid="{STUDY}.{n}.1"><number>1</number></instance>
<document>
<completion flag="COMPLETE"></completion>
<verification flag="UNVERIFIED"></verification>
<content>
<date>2024-03-02</date>
<time>10:00:00</time>
<container flag="SEPARATE">
{report}
<pname><relationship>HAS OBS CONTEXT</relationship>{observer}
<value><first>Anna</first><last>Reader</last></value></pname>
<container flag="SEPARATE"><relationship>CONTAINS</relationship>{measurements}
<container flag="SEPARATE"><relationship>CONTAINS</relationship>{group}
<code><relationship>CONTAINS</relationship>{finding}{tuberculosis}</code>
<scoord type="POLYLINE"><relationship>CONTAINS</relationship>{region}
<image><relationship>SELECTED FROM</relationship>
<value><sopclass uid="1.2.840.10008.5.1.4.1.1.1.1">DigitalXRayImageStorageForPresentation</sopclass><instance uid="{DX}"/></value>
</image>
<data>{data}</data>
</scoord>
</container>
</container>
</container>
</content>
</document>
</report>
"#,
        report = concept("126000", "DCM", "Imaging Measurement Report"),
        observer = concept("121008", "DCM", "Person Observer Name"),
        measurements = concept("126010", "DCM", "Imaging Measurements"),
        group = concept("125007", "DCM", "Measurement Group"),
        finding = concept("121071", "DCM", "Finding"),
        tuberculosis = code("56717001", "SCT", "Tuberculosis"),
        region = concept("111030", "DCM", "Image Region"),
    );
    let source = dir.join(format!("tb{n}.xml"));
    std::fs::write(&source, xml).unwrap();
    let out = dir.join(format!("tb{n}-sr.dcm"));
    let output = Command::new("xml2dsr")
        .arg(&source)
        .arg(&out)
        .output()
        .expect("xml2dsr (DCMTK) runs");
    assert!(output.status.success(), "{}", combined_output(&output));
    out
}

/// `research annotations list --image SOP`, as JSON (no vault key needed).
fn annotations_of(root: &Path, node: &Node, sop: &str) -> Vec<serde_json::Value> {
    let config = root.join("chestnode.toml").display().to_string();
    let data = node.data_dir.display().to_string();
    let output = chestnode([
        "research",
        "--config",
        &config,
        "--data-dir",
        &data,
        "annotations",
        "list",
        "--image",
        sop,
    ]);
    let text = combined_output(&output);
    assert!(output.status.success(), "{text}");
    let json = &text[text.find('[').unwrap_or_else(|| panic!("{text}"))..];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The job of one instance in `status --json`'s recent jobs.
fn job_of(status: &serde_json::Value, sop: &str) -> Option<serde_json::Value> {
    status["recent_jobs"]
        .as_array()?
        .iter()
        .find(|j| j["sop_instance_uid"] == sop)
        .cloned()
}

#[test]
fn annotations_from_viewers_arrive_by_c_store_and_are_not_analysed() {
    let root = tempfile::tempdir().unwrap();
    let inputs = root.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let pacs_dir = root.path().join("pacs");
    std::fs::create_dir_all(&pacs_dir).unwrap();
    let pacs = StoreScp::start(&pacs_dir, &[]);
    let config = write_config(
        root.path(),
        &destination("pacs", "STORESCP", pacs.port, "\"sr\""),
    );
    let config = config.display().to_string();
    let node = Node::start(root.path(), &["--config", &config, "--workers", "1"]);

    // The radiograph, analysed, its SR at the PACS.
    let dx = radiograph(&inputs.join("dx.dcm"), DX);
    node.storescu_ok(&[], &[&dx]);
    assert!(
        wait_until(Duration::from_secs(120), || {
            !files_below(&pacs_dir).is_empty()
                && node.status()["jobs_by_state"]["delivered"].as_u64() == Some(1)
        }),
        "the DX was not analysed and delivered: {}\n{}",
        node.status(),
        node.log()
    );
    let results_at_pacs = files_below(&pacs_dir).len();

    // Three viewers' annotations of it.
    let highdicom_sr = highdicom("sr", &dx, &inputs.join("nodule-sr.dcm"));
    let gsps = highdicom("gsps", &dx, &inputs.join("pneumonia-pr.dcm"));
    let dcmtk = dcmtk_sr(&inputs, 3, "30/100,90/100,90/150,30/150,30/100");
    node.storescu_ok(&["-R"], &[&highdicom_sr, &dcmtk, &gsps]);
    assert!(
        wait_until(Duration::from_secs(60), || {
            node.status()["jobs_by_state"]["not-analysed"].as_u64() == Some(3)
        }),
        "the annotation objects were not taken: {}\n{}",
        node.status(),
        node.log()
    );

    let mut stored = annotations_of(root.path(), &node, DX);
    stored.sort_by_key(|a| a["finding"].as_str().unwrap_or_default().to_owned());
    assert_eq!(stored.len(), 3, "{stored:#?}");
    let (nodule, pneumonia, tb) = (&stored[0], &stored[1], &stored[2]);
    assert_eq!(nodule["finding"], "nodule-mass", "{nodule:#}");
    assert_eq!(nodule["reader"], "Doe^Jane");
    assert_eq!(nodule["source"], "dicom-sr");
    assert_eq!(
        nodule["location"]["polygon"],
        serde_json::json!([[20.0, 30.0], [80.0, 30.0], [80.0, 90.0], [20.0, 90.0]])
    );
    assert_eq!(pneumonia["finding"], "pneumonia", "{pneumonia:#}");
    assert_eq!(pneumonia["reader"], "Roe^Richard");
    assert_eq!(pneumonia["source"], "dicom-gsps");
    assert_eq!(
        pneumonia["location"]["polygon"],
        serde_json::json!([[100.0, 40.0], [160.0, 40.0], [160.0, 100.0], [100.0, 100.0]])
    );
    assert_eq!(tb["finding"], "tuberculosis", "{tb:#}");
    assert_eq!(tb["reader"], "Reader^Anna");
    assert_eq!(tb["source"], "dicom-sr");
    assert_eq!(
        tb["location"]["polygon"],
        serde_json::json!([[30.0, 100.0], [90.0, 100.0], [90.0, 150.0], [30.0, 150.0]])
    );

    // Not analysed, nothing made or sent for them.
    let status = node.status();
    let dcmtk_uid = dicom_uid(&dcmtk);
    for sop in [
        dicom_uid(&highdicom_sr),
        dicom_uid(&gsps),
        dcmtk_uid.clone(),
    ] {
        let job = job_of(&status, &sop).unwrap_or_else(|| panic!("no job for {sop}: {status:#}"));
        assert_eq!(job["state"], "not-analysed", "{job:#}");
        assert_eq!(job["reason"], "annotation: 1 stored", "{job:#}");
        assert!(job.get("results").is_none(), "{job:#}");
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(files_below(&pacs_dir).len(), results_at_pacs);

    // Our own AI result, sent back by the PACS: not a doctor's annotation.
    let ours = files_below(&pacs_dir).remove(0);
    node.storescu_ok(&["-R"], &[&ours]);
    let ours_uid = dicom_uid(&ours);
    assert!(
        wait_until(Duration::from_secs(30), || {
            job_of(&node.status(), &ours_uid)
                .is_some_and(|job| job["reason"] == "our own AI result")
        }),
        "our own SR was not recognised: {:#}",
        node.status()
    );

    // A region outside the image (211 × 169): refused whole, with an
    // incident; nothing stored changes.
    let outside = dcmtk_sr(&inputs, 4, "30/100,290/100,290/150,30/150,30/100");
    node.storescu_ok(&["-R"], &[&outside]);
    let outside_uid = dicom_uid(&outside);
    assert!(
        wait_until(Duration::from_secs(30), || {
            job_of(&node.status(), &outside_uid).is_some_and(|job| {
                job["state"] == "not-analysed"
                    && job["reason"].as_str().is_some_and(|r| {
                        r.starts_with("annotation refused") && r.contains("outside the image")
                    })
            })
        }),
        "the SR outside the image was not refused: {:#}",
        node.status()
    );
    assert!(incident_about(&node.status(), &outside_uid));
    assert_eq!(annotations_of(root.path(), &node, DX).len(), 3);

    // An SR about an image the node does not have: nothing stored, an
    // incident, the node still running.
    let absent = radiograph(&inputs.join("absent.dcm"), ABSENT);
    let orphan = highdicom("sr", &absent, &inputs.join("orphan-sr.dcm"));
    node.storescu_ok(&["-R"], &[&orphan]);
    let orphan_uid = dicom_uid(&orphan);
    assert!(
        wait_until(Duration::from_secs(30), || {
            node.status()["last_errors"]
                .as_array()
                .is_some_and(|errors| {
                    errors.iter().any(|e| {
                        e["stage"] == "annotations"
                            && e["message"]
                                .as_str()
                                .is_some_and(|m| m.contains(&orphan_uid) && m.contains(ABSENT))
                    })
                })
        }),
        "no incident for the SR about an unknown image: {:#}",
        node.status()
    );
    assert!(annotations_of(root.path(), &node, ABSENT).is_empty());
    assert_eq!(annotations_of(root.path(), &node, DX).len(), 3);
    let status = node.status();
    let job = job_of(&status, &orphan_uid).unwrap();
    assert_ne!(job["state"], "not-analysed", "{job:#}");
    assert!(status["server_running"].as_bool().unwrap_or(false));
}

#[test]
fn a_gsps_without_its_author_is_the_senders_and_other_devices_srs_are_skipped() {
    let root = tempfile::tempdir().unwrap();
    let config = write_config(root.path(), "").display().to_string();
    let node = Node::start(root.path(), &["--config", &config, "--workers", "1"]);
    let image = dicom_file("reference/source_dx_for_reference.dcm");
    let gsps = dicom_file("reference/gsps_cxr_nodule_box.dcm");
    let ai_sr = dicom_file("reference/tid1500_cxr_nodule_comprehensive3dsr.dcm");
    node.storescu_ok(&["-R"], &[&image, &gsps, &ai_sr]);
    let (gsps_uid, ai_sr_uid) = (dicom_uid(&gsps), dicom_uid(&ai_sr));
    assert!(
        wait_until(Duration::from_secs(120), || {
            let status = node.status();
            [&gsps_uid, &ai_sr_uid]
                .iter()
                .all(|uid| job_of(&status, uid).is_some_and(|j| j["state"] == "not-analysed"))
        }),
        "{:#}",
        node.status()
    );
    let status = node.status();
    let ai = job_of(&status, &ai_sr_uid).unwrap();
    assert!(
        ai["reason"].as_str().unwrap().contains("AI result"),
        "{ai:#}"
    );
    let found = annotations_of(root.path(), &node, &dicom_uid(&image));
    assert_eq!(found.len(), 1, "only the GSPS's box: {found:#?}");
    assert_eq!(found[0]["finding"], "nodule-mass");
    assert_eq!(found[0]["source"], "dicom-gsps");
    assert_eq!(found[0]["reader"], "STORESCU", "the calling AE title");
}

/// Whether `status --json` shows an annotations incident naming `uid`.
fn incident_about(status: &serde_json::Value, uid: &str) -> bool {
    status["last_errors"].as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            e["stage"] == "annotations" && e["message"].as_str().is_some_and(|m| m.contains(uid))
        })
    })
}

/// The SOP Instance UID of a file, by dcmdump.
fn dicom_uid(file: &Path) -> String {
    let output = Command::new("dcmdump")
        .args(["+P", "0008,0018"])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text.find('[').unwrap() + 1;
    let end = text[start..].find(']').unwrap() + start;
    text[start..end].to_owned()
}
