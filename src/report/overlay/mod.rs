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
mod picture;

pub use picture::{Banner, Rgb, category_colour, render as render_picture};

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
use picture::Picture;

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
mod tests;
