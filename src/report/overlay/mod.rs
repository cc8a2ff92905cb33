//! The secondary-capture overlay: the source image, windowed, with each
//! finding's outline, box and label burned in, a legend and a banner
//! naming the model and its intended use.
//!
//! This file is the DICOM side — a Secondary Capture Image (PS3.3 A.8.1)
//! in RGB that says what it is (derived, annotations burned in) and which
//! image it was derived from. What the picture shows is `picture`'s
//! business.

mod banner;
mod canvas;
mod legend;
pub(crate) mod lettering;
pub mod picture;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::analysis::AnalysisResult;
use crate::config::ResultKind;
use crate::imaging::Radiograph;
use crate::imaging::attributes::text;
use crate::report::header::{
    RESEARCH_USE_ONLY, ResultContext, ResultObject, code_item, put_empty, put_seq, put_str, put_u16,
};
use picture::{Banner, Picture};

/// Secondary Capture Image Storage.
pub const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";

/// Purpose of Reference for the source image (CID 7202): it is what the
/// overlay was made from.
const SOURCE_PURPOSE: (&str, &str, &str) = (
    "121322",
    "DCM",
    "Source image for image processing operation",
);

/// Builds the RGB Secondary Capture for one analysed image.
pub fn secondary_capture(
    context: &ResultContext,
    result: &AnalysisResult,
    radiograph: &Radiograph,
) -> anyhow::Result<ResultObject> {
    let [columns, rows] = result.image_size;
    anyhow::ensure!(
        [radiograph.columns, radiograph.rows] == result.image_size,
        "the findings were made on a {columns}×{rows} image, not this {}×{} one",
        radiograph.columns,
        radiograph.rows
    );
    let banner = Banner {
        warning: context
            .model
            .research_use_only
            .then(|| RESEARCH_USE_ONLY.to_owned()),
        model: format!("{} {}", context.model.name, context.model.version),
        intended_use: context.model.intended_use.clone(),
    };
    let picture = picture::render(radiograph, &result.findings, &banner)?;

    let (mut object, sop_instance_uid) = context.header(ResultKind::Sc, SOP_CLASS, "OT")?;
    put_series_anatomy(&mut object, context.source);
    put_sc_equipment(&mut object, context);
    put_general_image(&mut object, context, &picture);
    put_image_pixel(&mut object, picture)?;
    Ok(ResultObject {
        kind: ResultKind::Sc,
        sop_class_uid: SOP_CLASS,
        sop_instance_uid,
        dataset: object,
    })
}

/// General Series anatomy: Body Part Examined as the source has it, and
/// Laterality (type 2C: for paired structures) copied from the source;
/// absent for a chest, which is not paired, and empty (unknown) when the
/// body part is not known to be unpaired.
fn put_series_anatomy(object: &mut InMemDicomObject, source: &InMemDicomObject) {
    if let Some(element) = source.get(tags::BODY_PART_EXAMINED) {
        object.put(element.clone());
    }
    let body_part = text(source, tags::BODY_PART_EXAMINED);
    if text(source, tags::LATERALITY).is_some() || body_part.as_deref() != Some("CHEST") {
        copy_or_empty(object, source, tags::LATERALITY, VR::CS);
    }
}

/// SC Equipment (C.8.6.1): a workstation made this image.
fn put_sc_equipment(object: &mut InMemDicomObject, context: &ResultContext) {
    put_str(object, tags::CONVERSION_TYPE, VR::CS, "WSD");
    put_str(
        object,
        tags::SECONDARY_CAPTURE_DEVICE_MANUFACTURER,
        VR::LO,
        &context.settings.manufacturer,
    );
    put_str(
        object,
        tags::SECONDARY_CAPTURE_DEVICE_MANUFACTURER_MODEL_NAME,
        VR::LO,
        "chestnode",
    );
    put_str(
        object,
        tags::SECONDARY_CAPTURE_DEVICE_SOFTWARE_VERSIONS,
        VR::LO,
        env!("CARGO_PKG_VERSION"),
    );
    put_str(
        object,
        tags::DATE_OF_SECONDARY_CAPTURE,
        VR::DA,
        &context.created_date,
    );
    put_str(
        object,
        tags::TIME_OF_SECONDARY_CAPTURE,
        VR::TM,
        &context.created_time,
    );
}

/// General Image (C.7.6.1): derived from the source, annotations burned in.
fn put_general_image(object: &mut InMemDicomObject, context: &ResultContext, picture: &Picture) {
    put_str(object, tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY");
    // The canvas keeps the source's row and column directions.
    copy_or_empty(object, context.source, tags::PATIENT_ORIENTATION, VR::CS);
    put_str(object, tags::CONTENT_DATE, VR::DA, &context.created_date);
    put_str(object, tags::CONTENT_TIME, VR::TM, &context.created_time);
    put_str(object, tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
    put_str(
        object,
        tags::DERIVATION_DESCRIPTION,
        VR::ST,
        &derivation_description(context, picture),
    );
    let mut source = context.source_reference();
    put_seq(
        &mut source,
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        vec![code_item(
            SOURCE_PURPOSE.0,
            SOURCE_PURPOSE.1,
            SOURCE_PURPOSE.2,
        )],
    );
    put_seq(object, tags::SOURCE_IMAGE_SEQUENCE, vec![source]);
    put_lossy_compression(object, context.source);
}

fn derivation_description(context: &ResultContext, picture: &Picture) -> String {
    let resampled = if picture.scale == 1.0 {
        String::new()
    } else {
        format!(", resampled by {:.3}", picture.scale)
    };
    let text = format!(
        "Source image as displayed (window applied{resampled}), with outlines, boxes and \
         labels of findings by {} {}, a legend and a banner burned in",
        context.model.name, context.model.version
    );
    // ST: at most 1024 characters.
    text.chars().take(1024).collect()
}

/// Lossy Image Compression: once an image has been lossy compressed, every
/// image derived from it says so (C.7.6.1.1.5).
fn put_lossy_compression(object: &mut InMemDicomObject, source: &InMemDicomObject) {
    if text(source, tags::LOSSY_IMAGE_COMPRESSION).as_deref() == Some("01") {
        put_str(object, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "01");
        for tag in [
            tags::LOSSY_IMAGE_COMPRESSION_RATIO,
            tags::LOSSY_IMAGE_COMPRESSION_METHOD,
        ] {
            if let Some(element) = source.get(tag) {
                object.put(element.clone());
            }
        }
    } else {
        put_str(object, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    }
}

/// Image Pixel (C.7.6.3): 8-bit RGB, colour-by-pixel.
fn put_image_pixel(object: &mut InMemDicomObject, picture: Picture) -> anyhow::Result<()> {
    put_u16(object, tags::SAMPLES_PER_PIXEL, 3);
    put_str(object, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB");
    put_u16(object, tags::PLANAR_CONFIGURATION, 0);
    let too_large = || {
        anyhow::anyhow!(
            "a {}×{} picture does not fit DICOM's 16-bit Rows and Columns",
            picture.columns,
            picture.rows
        )
    };
    put_u16(
        object,
        tags::ROWS,
        u16::try_from(picture.rows).map_err(|_| too_large())?,
    );
    put_u16(
        object,
        tags::COLUMNS,
        u16::try_from(picture.columns).map_err(|_| too_large())?,
    );
    put_u16(object, tags::BITS_ALLOCATED, 8);
    put_u16(object, tags::BITS_STORED, 8);
    put_u16(object, tags::HIGH_BIT, 7);
    put_u16(object, tags::PIXEL_REPRESENTATION, 0);
    let mut pixels = picture.rgb;
    // Values have even length; OB pads with a zero byte.
    if pixels.len() % 2 == 1 {
        pixels.push(0);
    }
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(pixels),
    ));
    Ok(())
}

fn copy_or_empty(target: &mut InMemDicomObject, source: &InMemDicomObject, tag: Tag, vr: VR) {
    match source.get(tag) {
        Some(element) => {
            target.put(element.clone());
        }
        None => put_empty(target, tag, vr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Timings;
    use crate::config::ReportConfig;
    use crate::findings::{
        Category, CategoryCall, Findings, LocalisedFinding, ModelIdentity, Region,
    };
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
}
