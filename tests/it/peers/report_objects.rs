//! The SR and GSPS chestnode makes, checked by independent readers:
//! `dciodvfy` (no errors), `dsrdump` (reads the SR) and highdicom (reads it
//! back as a TID 1500 measurement report with our findings, codes and
//! regions). Inputs are real chest radiographs with findings placed by
//! hand, so the expected content is known.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::cli::dciodvfy_errors;
use crate::common::findings::call;
use chestnode::analysis::{AnalysisResult, Timings};
use chestnode::config::{ReportConfig, ResultKind};
use chestnode::findings::{Category, Findings, LocalisedFinding, ModelIdentity, Region};
use chestnode::report::{
    ResultContext, ResultObject, ResultUids, presentation_state, structured_report,
};
use dicom_dictionary_std::tags;
use dicom_object::open_file;

/// Real radiographs of different kinds: DX MONOCHROME1, CR JPEG-LS, CR JPEG.
const SOURCES: &[&str] = &[
    "dicom/misc/dx_thorax_small.dcm",
    "dicom/wg04/RG1_JLSN.dcm",
    "dicom/misc/siim_cr_chest_jpeg_baseline.dcm",
];

fn model() -> ModelIdentity {
    ModelIdentity {
        name: "chestnet-compact".into(),
        version: "1.0.0".into(),
        research_use_only: true,
        intended_use: "Demonstration and research".into(),
    }
}

/// A nodule behind the heart and a consolidation in the right upper zone,
/// scaled to the image.
fn result_for(columns: u32, rows: u32) -> AnalysisResult {
    let (w, h) = (columns as f32, rows as f32);
    let square = |x0: f32, y0: f32, x1: f32, y1: f32| Region {
        bounding_box: [x0 * w, y0 * h, x1 * w, y1 * h],
        outline: vec![
            [x0 * w, y0 * h],
            [x1 * w, y0 * h],
            [x1 * w, y1 * h],
            [x0 * w, y1 * h],
        ],
        size_mm: None,
    };
    AnalysisResult {
        findings: Findings {
            model: model(),
            categories: vec![
                call(Category::NoduleMass, 0.91, true),
                call(Category::Consolidation, 0.72, true),
                call(Category::Tuberculosis, 0.05, false),
                call(Category::MediastinalMass, 0.02, false),
                call(Category::Emphysema, 0.10, false),
                call(Category::AnyAbnormality, 0.95, true),
                call(Category::Normal, 0.05, false),
            ],
            localised: vec![
                LocalisedFinding {
                    category: Category::NoduleMass,
                    label: "nodule-mass".into(),
                    probability: 0.91,
                    region: square(0.55, 0.60, 0.60, 0.65),
                },
                LocalisedFinding {
                    category: Category::Consolidation,
                    label: "consolidation".into(),
                    probability: 0.72,
                    region: square(0.20, 0.20, 0.35, 0.35),
                },
            ],
        },
        timings: Timings::default(),
        image_size: [columns, rows],
        pixel_spacing_mm: Some([0.2, 0.2]),
    }
}

struct Built {
    source_uid: String,
    sr: PathBuf,
    gsps: PathBuf,
    sr_uid: String,
}

fn build(source_path: &Path, out: &Path) -> Built {
    let source = open_file(source_path).unwrap();
    let columns = source.get(tags::COLUMNS).unwrap().to_int::<u32>().unwrap();
    let rows = source.get(tags::ROWS).unwrap().to_int::<u32>().unwrap();
    let settings = ReportConfig::default();
    let uids = ResultUids::new(None).unwrap();
    let model = model();
    let context = ResultContext {
        source: &source,
        settings: &settings,
        uids: &uids,
        model: &model,
        created_date: "20261129".into(),
        created_time: "120000".into(),
    };
    let result = result_for(columns, rows);
    let write = |object: ResultObject, name: &str| {
        let path = out.join(name);
        std::fs::write(&path, object.to_part10().unwrap()).unwrap();
        path
    };
    let report = structured_report(&context, &result).unwrap();
    let sr_uid = report.sop_instance_uid.clone();
    assert_eq!(report.kind, ResultKind::Sr);
    Built {
        source_uid: context.source_instance_uid(),
        sr: write(report, "sr.dcm"),
        gsps: write(presentation_state(&context, &result).unwrap(), "gsps.dcm"),
        sr_uid,
    }
}

#[test]
fn sr_and_gsps_pass_dciodvfy_for_real_sources() {
    for source in SOURCES {
        let dir = tempfile::tempdir().unwrap();
        let built = build(&crate::common::test_data().join(source), dir.path());
        for path in [&built.sr, &built.gsps] {
            let (errors, text) = dciodvfy_errors(path);
            assert!(
                errors.is_empty(),
                "{source}: dciodvfy errors in {}:\n{text}",
                path.display()
            );
        }
    }
}

#[test]
fn dsrdump_reads_the_sr() {
    let dir = tempfile::tempdir().unwrap();
    let built = build(&crate::common::test_data().join(SOURCES[1]), dir.path());
    let output = Command::new("dsrdump")
        .args(["+Pc"])
        .arg(&built.sr)
        .output()
        .expect("dsrdump (DCMTK) is installed");
    let text = crate::common::combined_output(&output);
    assert!(output.status.success(), "{text}");
    for expected in [
        "Comprehensive 3D SR",
        "(126000,DCM,\"Imaging Measurement Report\")",
        "(36554-4,LN,\"XR Chest Single view\")",
        "(27925004,SCT,\"Nodule\")",
        "(80891009,SCT,\"Heart\")",
        "(95436008,SCT,\"Lung consolidation\")",
        "(75958009,SCT,\"Bounded by\")",
        "SCOORD:(111030,DCM,\"Image Region\")=(POLYLINE",
        "RESEARCH USE ONLY",
        "UNVERIFIED",
        "COMPLETE",
    ] {
        assert!(text.contains(expected), "dsrdump lacks {expected}:\n{text}");
    }
}

#[test]
fn highdicom_reads_the_sr_as_a_tid_1500_report() {
    let dir = tempfile::tempdir().unwrap();
    let built = build(&crate::common::test_data().join(SOURCES[2]), dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_sr.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(&built.sr)
        .output()
        .expect("python3 runs");
    let text = crate::common::combined_output(&output);
    assert!(
        output.status.success(),
        "highdicom could not read the SR:\n{text}"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["template"], "1500");

    let image_groups = report["image_groups"].as_array().unwrap();
    assert_eq!(image_groups.len(), 1, "{report}");
    assert_eq!(image_groups[0]["finding"][0], "263654008", "abnormal");
    let certainties: Vec<f64> = image_groups[0]["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"][0] == "111012")
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    // The image-level certainty plus one per assessed category.
    assert_eq!(certainties.len(), 8, "{report}");
    assert!(certainties.contains(&91.0) && certainties.contains(&72.0));

    let groups = report["roi_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{report}");
    let nodule = &groups[0];
    assert_eq!(nodule["finding"][0], "27925004");
    assert_eq!(nodule["category"][0], "49755003");
    let sites: Vec<&str> = nodule["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    assert_eq!(
        sites,
        ["39607008", "80891009"],
        "lung, overlapping the heart"
    );
    assert_eq!(nodule["graphic_type"], "POLYLINE");
    let points = nodule["points"].as_array().unwrap();
    assert_eq!(points.len(), 5, "closed: first point repeated");
    assert_eq!(points[0], points[4]);
    // 1024 × 1024 image: the nodule box starts at (0.55, 0.60) of it.
    assert!((points[0][0].as_f64().unwrap() - 0.55 * 1024.0).abs() < 1e-3);
    assert!((points[0][1].as_f64().unwrap() - 0.60 * 1024.0).abs() < 1e-3);
    assert_eq!(nodule["source"], built.source_uid);
    let axes: Vec<(String, f64)> = nodule["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"][0].as_str().unwrap().to_owned(),
                m["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(axes.contains(&("111012".into(), 91.0)), "{axes:?}");
    // A 51.2 px square at 0.2 mm: long axis is its diagonal, 14.5 mm.
    let long = axes.iter().find(|(name, _)| name == "103339001").unwrap().1;
    assert!((long - 14.5).abs() < 0.1, "{long}");

    assert_eq!(groups[1]["finding"][0], "95436008");
}

#[test]
fn building_twice_gives_the_same_uids() {
    let source = crate::common::test_data().join(SOURCES[0]);
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let first = build(&source, one.path());
    let second = build(&source, two.path());
    assert_eq!(first.sr_uid, second.sr_uid);
    let uid = |path: &Path| {
        open_file(path)
            .unwrap()
            .get(tags::SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(uid(&first.gsps), uid(&second.gsps));
    assert_ne!(uid(&first.gsps), first.sr_uid);
}
