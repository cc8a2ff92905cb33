//! Unit tests of `overlay`.

use super::*;
use crate::analysis::Timings;
use crate::config::ReportConfig;
use crate::findings::{Category, CategoryCall, Findings, LocalisedFinding, ModelIdentity, Region};
use crate::report::ResultUids;

const SOURCE_INSTANCE: &str = "1.2.826.0.1.3680043.8.498.1";

fn source(extra: &[(Tag, VR, &str)]) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    for &(tag, vr, value) in [
        (tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.1"),
        (tags::SOP_INSTANCE_UID, VR::UI, SOURCE_INSTANCE),
        (
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.8.498.2",
        ),
        (tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
        (tags::PATIENT_ORIENTATION, VR::CS, "L\\F"),
    ]
    .iter()
    .chain(extra)
    {
        put_str(&mut object, tag, vr, value);
    }
    object
}

fn model() -> ModelIdentity {
    ModelIdentity {
        name: "test-model".into(),
        version: "2".into(),
        research_use_only: true,
        intended_use: "Testing.".into(),
    }
}

fn radiograph() -> Radiograph {
    Radiograph {
        rows: 513,
        columns: 521,
        grey: vec![0.5; 513 * 521],
        pixel_spacing_mm: None,
    }
}

fn result() -> AnalysisResult {
    AnalysisResult {
        findings: Findings {
            model: model(),
            categories: vec![CategoryCall {
                category: Category::NoduleMass,
                assessed: true,
                probability: 0.9,
                positive: true,
                label_index: Some(0),
            }],
            localised: vec![LocalisedFinding {
                category: Category::NoduleMass,
                label: "Nodule".into(),
                probability: 0.9,
                region: Region {
                    bounding_box: [100.0, 100.0, 150.0, 160.0],
                    outline: vec![[100.0, 100.0], [150.0, 100.0], [150.0, 160.0]],
                    size_mm: None,
                },
            }],
        },
        timings: Timings::default(),
        image_size: [521, 513],
        pixel_spacing_mm: None,
    }
}

fn build(source: &InMemDicomObject, radiograph: &Radiograph) -> anyhow::Result<ResultObject> {
    let settings = ReportConfig::default();
    let uids = ResultUids::new(None)?;
    let model = model();
    let context = ResultContext {
        source,
        settings: &settings,
        uids: &uids,
        model: &model,
        created_date: "20250102".into(),
        created_time: "030405".into(),
    };
    secondary_capture(&context, &result(), radiograph)
}

fn value(object: &InMemDicomObject, tag: Tag) -> String {
    object
        .element(tag)
        .unwrap_or_else(|_| panic!("{tag} missing"))
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_owned()
}

#[test]
fn the_secondary_capture_says_what_it_is_and_where_it_came_from() {
    let sc = build(&source(&[]), &radiograph()).unwrap();
    let object = &sc.dataset;
    assert_eq!(sc.sop_class_uid, SOP_CLASS);
    assert_eq!(value(object, tags::SOP_CLASS_UID), SOP_CLASS);
    assert_eq!(value(object, tags::SOP_INSTANCE_UID), sc.sop_instance_uid);
    assert_eq!(value(object, tags::MODALITY), "OT");
    assert_eq!(value(object, tags::CONVERSION_TYPE), "WSD");
    assert_eq!(value(object, tags::IMAGE_TYPE), "DERIVED\\SECONDARY");
    assert_eq!(value(object, tags::BURNED_IN_ANNOTATION), "YES");
    assert_eq!(value(object, tags::PATIENT_ORIENTATION), "L\\F");
    assert_eq!(value(object, tags::CONTENT_DATE), "20250102");
    assert_eq!(value(object, tags::LOSSY_IMAGE_COMPRESSION), "00");
    assert!(value(object, tags::DERIVATION_DESCRIPTION).contains("test-model 2"));

    let source_item = &object
        .element(tags::SOURCE_IMAGE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        value(source_item, tags::REFERENCED_SOP_INSTANCE_UID),
        SOURCE_INSTANCE
    );
    let purpose = &source_item
        .element(tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(value(purpose, tags::CODE_VALUE), "121322");
}

#[test]
fn pixels_are_8_bit_rgb_of_the_whole_canvas() {
    let sc = build(&source(&[]), &radiograph()).unwrap();
    let object = &sc.dataset;
    let number = |tag| object.element(tag).unwrap().to_int::<u32>().unwrap();
    assert_eq!(number(tags::SAMPLES_PER_PIXEL), 3);
    assert_eq!(value(object, tags::PHOTOMETRIC_INTERPRETATION), "RGB");
    assert_eq!(number(tags::BITS_ALLOCATED), 8);
    assert_eq!(number(tags::COLUMNS), 521);
    let rows = number(tags::ROWS);
    assert!(rows > 513, "banner and legend add rows: {rows}");
    let pixels = object
        .element(tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap();
    // 521 × rows × 3 is odd when rows is; the value is padded to even.
    let length = (521 * rows * 3) as usize;
    assert_eq!(pixels.len(), length + length % 2);
}

#[test]
fn the_same_inputs_give_the_same_object() {
    let first = build(&source(&[]), &radiograph()).unwrap();
    let second = build(&source(&[]), &radiograph()).unwrap();
    assert_eq!(first.to_part10().unwrap(), second.to_part10().unwrap());
}

#[test]
fn lossy_compression_of_the_source_is_inherited() {
    let lossy = source(&[
        (tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "01"),
        (tags::LOSSY_IMAGE_COMPRESSION_RATIO, VR::DS, "10"),
    ]);
    let sc = build(&lossy, &radiograph()).unwrap();
    assert_eq!(value(&sc.dataset, tags::LOSSY_IMAGE_COMPRESSION), "01");
    assert_eq!(
        value(&sc.dataset, tags::LOSSY_IMAGE_COMPRESSION_RATIO),
        "10"
    );
}

#[test]
fn laterality_is_absent_for_a_chest_and_copied_otherwise() {
    let chest = source(&[(tags::BODY_PART_EXAMINED, VR::CS, "CHEST")]);
    let sc = build(&chest, &radiograph()).unwrap();
    assert!(sc.dataset.element(tags::LATERALITY).is_err());
    assert_eq!(value(&sc.dataset, tags::BODY_PART_EXAMINED), "CHEST");
    let unknown = build(&source(&[]), &radiograph()).unwrap();
    assert_eq!(value(&unknown.dataset, tags::LATERALITY), "");
    let left = source(&[(tags::LATERALITY, VR::CS, "L")]);
    assert_eq!(
        value(
            &build(&left, &radiograph()).unwrap().dataset,
            tags::LATERALITY
        ),
        "L"
    );
}

#[test]
fn findings_from_an_image_of_another_size_are_refused() {
    let mut other = radiograph();
    other.rows = 512;
    other.grey.truncate(512 * 521);
    assert!(build(&source(&[]), &other).is_err());
}
