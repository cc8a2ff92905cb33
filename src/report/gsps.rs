//! The Grayscale Softcopy Presentation State: each finding's outline, box
//! and label as graphic annotations on the source image, for viewers that
//! show presentation states. Unlike the overlay, the original pixels stay
//! untouched and a viewer can hide the AI layer.
//!
//! Applying a presentation state replaces the image's own VOI, so the
//! source's window (or VOI LUT) and rescale are carried over: the image
//! looks as it did, with annotations on top.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use super::header::{
    ResultContext, ResultObject, closed_graphic_data, put_empty, put_seq, put_str, put_u16,
};
use crate::analysis::AnalysisResult;
use crate::config::ResultKind;
use crate::findings::LocalisedFinding;
use crate::imaging::attributes::text as read_text;

/// The graphic layer that holds every annotation.
const LAYER: &str = "AI_FINDINGS";

/// Builds the GSPS for one analysed image.
pub fn presentation_state(
    context: &ResultContext,
    result: &AnalysisResult,
) -> anyhow::Result<ResultObject> {
    let sop_class_uid = uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE;
    let (mut state, sop_instance_uid) = context.header(ResultKind::Gsps, sop_class_uid, "PR")?;
    let source = context.source;

    // Presentation State Identification.
    put_str(&mut state, tags::CONTENT_LABEL, VR::CS, "AI_FINDINGS");
    put_str(
        &mut state,
        tags::CONTENT_DESCRIPTION,
        VR::LO,
        &truncate(
            &format!("{} {}", context.model.name, context.model.version),
            64,
        ),
    );
    put_str(
        &mut state,
        tags::PRESENTATION_CREATION_DATE,
        VR::DA,
        &context.created_date,
    );
    put_str(
        &mut state,
        tags::PRESENTATION_CREATION_TIME,
        VR::TM,
        &context.created_time,
    );
    put_empty(&mut state, tags::CONTENT_CREATOR_NAME, VR::PN);
    // General Series: Laterality is type 2C and a presentation state has
    // no Body Part Examined to waive it, so it is always present: the
    // source's value, or empty ("unknown").
    let laterality = source
        .get(tags::LATERALITY)
        .cloned()
        .unwrap_or_else(|| DataElement::new(tags::LATERALITY, VR::CS, PrimitiveValue::Empty));
    state.put(laterality);

    // Presentation State Relationship: the one source image.
    let mut series = InMemDicomObject::new_empty();
    put_seq(
        &mut series,
        tags::REFERENCED_IMAGE_SEQUENCE,
        vec![context.source_reference()],
    );
    put_str(
        &mut series,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &read_text(source, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
    );
    put_seq(&mut state, tags::REFERENCED_SERIES_SEQUENCE, vec![series]);

    displayed_area(&mut state, result.image_size);
    carry_greyscale_transforms(source, &mut state);

    // Graphic Layer and Graphic Annotation.
    let mut layer = InMemDicomObject::new_empty();
    put_str(&mut layer, tags::GRAPHIC_LAYER, VR::CS, LAYER);
    put_str(&mut layer, tags::GRAPHIC_LAYER_ORDER, VR::IS, "1");
    put_str(
        &mut layer,
        tags::GRAPHIC_LAYER_DESCRIPTION,
        VR::LO,
        "AI findings",
    );
    put_seq(&mut state, tags::GRAPHIC_LAYER_SEQUENCE, vec![layer]);

    let mut annotation = InMemDicomObject::new_empty();
    put_seq(
        &mut annotation,
        tags::REFERENCED_IMAGE_SEQUENCE,
        vec![context.source_reference()],
    );
    put_str(&mut annotation, tags::GRAPHIC_LAYER, VR::CS, LAYER);
    let mut texts = vec![banner_text(context)];
    let mut graphics = Vec::new();
    for finding in &result.findings.localised {
        texts.push(finding_text(finding));
        graphics.push(polyline(&finding.region.outline));
        let [x0, y0, x1, y1] = finding.region.bounding_box;
        graphics.push(polyline(&[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]));
    }
    put_seq(&mut annotation, tags::TEXT_OBJECT_SEQUENCE, texts);
    if !graphics.is_empty() {
        put_seq(&mut annotation, tags::GRAPHIC_OBJECT_SEQUENCE, graphics);
    }
    put_seq(
        &mut state,
        tags::GRAPHIC_ANNOTATION_SEQUENCE,
        vec![annotation],
    );

    Ok(ResultObject {
        kind: ResultKind::Gsps,
        sop_class_uid,
        sop_instance_uid,
        dataset: state,
    })
}

fn truncate(text: &str, characters: usize) -> String {
    text.chars().take(characters).collect()
}

/// The whole image, scaled to fit.
fn displayed_area(state: &mut InMemDicomObject, [columns, rows]: [u32; 2]) {
    let mut area = InMemDicomObject::new_empty();
    area.put(DataElement::new(
        tags::DISPLAYED_AREA_TOP_LEFT_HAND_CORNER,
        VR::SL,
        PrimitiveValue::from([1i32, 1]),
    ));
    area.put(DataElement::new(
        tags::DISPLAYED_AREA_BOTTOM_RIGHT_HAND_CORNER,
        VR::SL,
        PrimitiveValue::from([columns as i32, rows as i32]),
    ));
    put_str(
        &mut area,
        tags::PRESENTATION_SIZE_MODE,
        VR::CS,
        "SCALE TO FIT",
    );
    put_str(
        &mut area,
        tags::PRESENTATION_PIXEL_ASPECT_RATIO,
        VR::IS,
        "1\\1",
    );
    put_seq(state, tags::DISPLAYED_AREA_SELECTION_SEQUENCE, vec![area]);
}

/// Rescale, window or VOI LUT, and the presentation LUT of the source.
fn carry_greyscale_transforms(source: &InMemDicomObject, state: &mut InMemDicomObject) {
    if let (Some(slope), Some(intercept)) = (
        source.get(tags::RESCALE_SLOPE),
        source.get(tags::RESCALE_INTERCEPT),
    ) {
        state.put(slope.clone());
        state.put(intercept.clone());
        let rescale_type = read_text(source, tags::RESCALE_TYPE)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "US".into());
        put_str(state, tags::RESCALE_TYPE, VR::LO, &rescale_type);
    }
    let mut voi = InMemDicomObject::new_empty();
    let mut has_voi = false;
    if let (Some(center), Some(width)) = (
        source.get(tags::WINDOW_CENTER),
        source.get(tags::WINDOW_WIDTH),
    ) {
        voi.put(center.clone());
        voi.put(width.clone());
        if let Some(function) = source.get(tags::VOILUT_FUNCTION) {
            voi.put(function.clone());
        }
        has_voi = true;
    } else if let Some(lut) = source.get(tags::VOILUT_SEQUENCE) {
        voi.put(lut.clone());
        has_voi = true;
    }
    if has_voi {
        put_seq(state, tags::SOFTCOPY_VOILUT_SEQUENCE, vec![voi]);
    }
    let inverse =
        read_text(source, tags::PHOTOMETRIC_INTERPRETATION).as_deref() == Some("MONOCHROME1");
    put_str(
        state,
        tags::PRESENTATION_LUT_SHAPE,
        VR::CS,
        if inverse { "INVERSE" } else { "IDENTITY" },
    );
}

/// A closed POLYLINE graphic in image pixels (first point repeated).
fn polyline(points: &[[f32; 2]]) -> InMemDicomObject {
    let data = closed_graphic_data(points);
    let mut graphic = InMemDicomObject::new_empty();
    put_str(
        &mut graphic,
        tags::GRAPHIC_ANNOTATION_UNITS,
        VR::CS,
        "PIXEL",
    );
    put_u16(&mut graphic, tags::GRAPHIC_DIMENSIONS, 2);
    put_u16(
        &mut graphic,
        tags::NUMBER_OF_GRAPHIC_POINTS,
        (data.len() / 2).min(u16::MAX as usize) as u16,
    );
    graphic.put(DataElement::new(
        tags::GRAPHIC_DATA,
        VR::FL,
        PrimitiveValue::F32(data.into()),
    ));
    put_str(&mut graphic, tags::GRAPHIC_TYPE, VR::CS, "POLYLINE");
    put_str(&mut graphic, tags::GRAPHIC_FILLED, VR::CS, "N");
    graphic
}

/// The label of a finding, anchored at its box's top edge.
fn finding_text(finding: &LocalisedFinding) -> InMemDicomObject {
    let [x0, y0, x1, _] = finding.region.bounding_box;
    let mut object = InMemDicomObject::new_empty();
    put_str(
        &mut object,
        tags::UNFORMATTED_TEXT_VALUE,
        VR::ST,
        &format!(
            "{} {:.0}%",
            finding.category.title(),
            finding.probability * 100.0
        ),
    );
    put_str(
        &mut object,
        tags::ANCHOR_POINT_ANNOTATION_UNITS,
        VR::CS,
        "PIXEL",
    );
    object.put(DataElement::new(
        tags::ANCHOR_POINT,
        VR::FL,
        PrimitiveValue::from([(x0 + x1) / 2.0, y0]),
    ));
    put_str(&mut object, tags::ANCHOR_POINT_VISIBILITY, VR::CS, "Y");
    object
}

/// The model and intended use, at the top of the display.
fn banner_text(context: &ResultContext) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    put_str(
        &mut object,
        tags::BOUNDING_BOX_ANNOTATION_UNITS,
        VR::CS,
        "DISPLAY",
    );
    put_str(
        &mut object,
        tags::UNFORMATTED_TEXT_VALUE,
        VR::ST,
        &format!(
            "{} {}: {}",
            context.model.name,
            context.model.version,
            context.intended_use()
        ),
    );
    object.put(DataElement::new(
        tags::BOUNDING_BOX_TOP_LEFT_HAND_CORNER,
        VR::FL,
        PrimitiveValue::from([0.01f32, 0.01]),
    ));
    object.put(DataElement::new(
        tags::BOUNDING_BOX_BOTTOM_RIGHT_HAND_CORNER,
        VR::FL,
        PrimitiveValue::from([0.99f32, 0.06]),
    ));
    put_str(
        &mut object,
        tags::BOUNDING_BOX_TEXT_HORIZONTAL_JUSTIFICATION,
        VR::CS,
        "LEFT",
    );
    object
}
