//! The secondary-capture overlay on real chest radiographs: it is a valid
//! Secondary Capture Image by `dciodvfy`, DCMTK parses it, its pixels are
//! what the overlay renderer draws, and the research warning is burned in
//! only for research models.
//!
//! Each test writes a PNG preview next to its Part-10 file; set
//! `CHESTNODE_PREVIEW_DIR` to keep copies for looking at.

use std::path::{Path, PathBuf};

use crate::common::findings::call;
use crate::common::open_dicom as open;
use chestnode::analysis::{AnalysisResult, Timings};
use chestnode::config::ReportConfig;
use chestnode::findings::{
    Category, CategoryCall, Findings, LocalisedFinding, ModelIdentity, Region,
};
use chestnode::imaging::{Radiograph, load_radiograph};
use chestnode::report::{Banner, Rgb, category_colour, render_picture, secondary_capture};
use chestnode::report::{ResultContext, ResultObject, ResultUids};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;

fn model(research_use_only: bool) -> ModelIdentity {
    ModelIdentity {
        name: "densenet121-res224-all".into(),
        version: "1.0".into(),
        research_use_only,
        intended_use: "Flags chest radiographs with findings for a radiologist's review; \
                       does not replace reading the image."
            .into(),
    }
}

/// A closed polygon approximating an ellipse.
fn ellipse(centre: [f32; 2], radii: [f32; 2]) -> Vec<[f32; 2]> {
    (0..48)
        .map(|i| {
            let angle = i as f32 / 48.0 * std::f32::consts::TAU;
            [
                centre[0] + radii[0] * angle.cos(),
                centre[1] + radii[1] * angle.sin(),
            ]
        })
        .collect()
}

fn finding(
    category: Category,
    label: &str,
    probability: f32,
    outline: Vec<[f32; 2]>,
) -> LocalisedFinding {
    let bounding_box = outline.iter().fold(
        [f32::MAX, f32::MAX, f32::MIN, f32::MIN],
        |[x0, y0, x1, y1], &[x, y]| [x0.min(x), y0.min(y), x1.max(x), y1.max(y)],
    );
    LocalisedFinding {
        category,
        label: label.into(),
        probability,
        region: Region {
            bounding_box,
            outline,
            size_mm: None,
        },
    }
}

/// A nodule in the right upper lung (the image's left) and a consolidation
/// in the left lower lung, placed relative to the image size.
fn findings_for(radiograph: &Radiograph, research_use_only: bool) -> AnalysisResult {
    let (w, h) = (radiograph.columns as f32, radiograph.rows as f32);
    let short = w.min(h);
    let nodule = ellipse([0.32 * w, 0.38 * h], [0.045 * short, 0.04 * short]);
    let consolidation = ellipse([0.68 * w, 0.62 * h], [0.1 * short, 0.07 * short]);
    AnalysisResult {
        findings: Findings {
            model: model(research_use_only),
            categories: vec![
                call(Category::NoduleMass, 0.81, true),
                call(Category::Consolidation, 0.66, true),
                call(Category::Tuberculosis, 0.12, false),
                CategoryCall {
                    category: Category::MediastinalMass,
                    assessed: false,
                    probability: 0.0,
                    positive: false,
                    label_index: None,
                },
                call(Category::Emphysema, 0.05, false),
                call(Category::AnyAbnormality, 0.81, true),
                call(Category::Normal, 0.19, false),
            ],
            localised: vec![
                finding(Category::NoduleMass, "Nodule", 0.81, nodule),
                finding(
                    Category::Consolidation,
                    "Consolidation",
                    0.66,
                    consolidation,
                ),
            ],
        },
        timings: Timings::default(),
        image_size: [radiograph.columns, radiograph.rows],
        pixel_spacing_mm: radiograph.pixel_spacing_mm,
    }
}

/// What one test made.
struct Made {
    object: ResultObject,
    expected_pixels: Vec<u8>,
    columns: u32,
    rows: u32,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

fn make_overlay(relative: &str, research_use_only: bool) -> Made {
    let mut source = open(relative);
    // The SIIM sample's Patient's Age is "62", not a valid AS ("062Y");
    // identity is copied as it is, so repair the source, not the result.
    if source
        .element(tags::PATIENT_AGE)
        .is_ok_and(|e| e.to_str().is_ok_and(|a| a.trim().len() != 4))
    {
        source.put(DataElement::new(
            tags::PATIENT_AGE,
            VR::AS,
            PrimitiveValue::from("062Y"),
        ));
    }
    let radiograph = load_radiograph(&source).expect("the radiograph decodes");
    let result = findings_for(&radiograph, research_use_only);
    let settings = ReportConfig::default();
    let uids = ResultUids::new(None).unwrap();
    let identity = model(research_use_only);
    let context = ResultContext {
        source: &source,
        settings: &settings,
        uids: &uids,
        model: &identity,
        created_date: "20250101".into(),
        created_time: "120000".into(),
    };
    let object = secondary_capture(&context, &result, &radiograph).expect("the overlay builds");
    let banner = Banner {
        warning: research_use_only.then(|| chestnode::report::RESEARCH_USE_ONLY.into()),
        model: "densenet121-res224-all 1.0".into(),
        intended_use: identity.intended_use.clone(),
    };
    let expected = render_picture(&radiograph, &result.findings, &banner).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let stem = Path::new(relative)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let file = dir.path().join(format!("{stem}_sc.dcm"));
    std::fs::write(&file, object.to_part10().unwrap()).unwrap();
    let preview = dir.path().join(format!("{stem}_sc.png"));
    image::RgbImage::from_raw(expected.columns, expected.rows, expected.rgb.clone())
        .unwrap()
        .save(&preview)
        .unwrap();
    if let Some(keep) = std::env::var_os("CHESTNODE_PREVIEW_DIR") {
        std::fs::copy(
            &preview,
            Path::new(&keep).join(preview.file_name().unwrap()),
        )
        .unwrap();
    }
    Made {
        object,
        expected_pixels: expected.rgb,
        columns: expected.columns,
        rows: expected.rows,
        file,
        _dir: dir,
    }
}

fn tool_output(tool: &str, file: &Path) -> String {
    let (output, text) = crate::common::cli::tool_output(tool, file);
    assert!(
        output.status.success() || tool == "dciodvfy",
        "{tool} failed"
    );
    text
}

/// `dciodvfy` finds no errors; DCMTK reads it back as an RGB secondary
/// capture with burned-in annotation.
fn check_valid(made: &Made) {
    let verdict = tool_output("dciodvfy", &made.file);
    let errors: Vec<&str> = verdict.lines().filter(|l| l.contains("Error")).collect();
    assert!(errors.is_empty(), "dciodvfy errors: {errors:#?}");
    assert!(
        verdict.contains("SCImage"),
        "dciodvfy did not recognise the IOD"
    );

    let dump = tool_output("dcmdump", &made.file);
    for expected in [
        "=SecondaryCaptureImageStorage",
        "[RGB]",
        "(0028,0301) CS [YES]",
        "(0008,0008) CS [DERIVED\\SECONDARY]",
        "(0008,0064) CS [WSD]",
        "(0008,2112) SQ",
        "[121322]",
        &format!("(0028,0010) US {}", made.rows),
        &format!("(0028,0011) US {}", made.columns),
    ] {
        assert!(dump.contains(expected), "dcmdump lacks {expected}");
    }
}

fn pixel_data(object: &ResultObject) -> Vec<u8> {
    object
        .dataset
        .element(tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap()
        .into_owned()
}

fn count_colour(rgb: &[u8], colour: [u8; 3], rows: std::ops::Range<u32>, columns: u32) -> usize {
    let row_bytes = columns as usize * 3;
    rgb[rows.start as usize * row_bytes..rows.end as usize * row_bytes]
        .chunks_exact(3)
        .filter(|p| p == &colour)
        .count()
}

fn check_pixels(made: &Made, research_use_only: bool) {
    let pixels = pixel_data(&made.object);
    let length = made.expected_pixels.len();
    assert_eq!(length, (made.columns * made.rows * 3) as usize);
    assert_eq!(&pixels[..length], &made.expected_pixels[..]);
    assert!(pixels[length..].iter().all(|&b| b == 0) && pixels.len() - length <= 1);
    for category in [Category::NoduleMass, Category::Consolidation] {
        let Rgb(r, g, b) = category_colour(category);
        let count = count_colour(&pixels, [r, g, b], 0..made.rows, made.columns);
        assert!(
            count > 200,
            "{category:?}: only {count} pixels in its colour"
        );
    }
    // The warning band (dark red) is in the top tenth only for research models.
    let band = count_colour(&pixels, [140, 0, 0], 0..made.rows / 10, made.columns);
    assert_eq!(band > 1000, research_use_only, "{band} warning-band pixels");
}

#[test]
fn cr_chest_1955x1841_jpeg_ls_research_model() {
    let made = make_overlay("wg04/RG1_JLSN.dcm", true);
    check_valid(&made);
    check_pixels(&made, true);
    // Derived from a near-lossless JPEG-LS image: lossy, and said so.
    assert_eq!(text(&made.object, tags::LOSSY_IMAGE_COMPRESSION), "01");
    assert_eq!(text(&made.object, tags::LOSSY_IMAGE_COMPRESSION_RATIO), "2");
    assert_eq!(text(&made.object, tags::PATIENT_ORIENTATION), "L\\F");
}

#[test]
fn cr_chest_1024_jpeg_baseline_cleared_model() {
    let made = make_overlay("misc/siim_cr_chest_jpeg_baseline.dcm", false);
    check_valid(&made);
    check_pixels(&made, false);
}

#[test]
fn small_dx_thorax_is_enlarged_to_stay_legible() {
    let made = make_overlay("misc/dx_thorax_small.dcm", true);
    check_valid(&made);
    check_pixels(&made, true);
    // 211 × 169 is enlarged by a whole factor (4) to at least 512 pixels
    // on its shorter side.
    assert_eq!(made.columns, 211 * 4);
    assert_eq!(text(&made.object, tags::LOSSY_IMAGE_COMPRESSION), "00");
}

fn text(object: &ResultObject, tag: dicom_core::Tag) -> String {
    object
        .dataset
        .element(tag)
        .unwrap()
        .to_str()
        .unwrap()
        .trim()
        .to_owned()
}
