//! Reading a Grayscale Softcopy Presentation State's graphic annotations
//! as annotations: each item of the Graphic Annotation Sequence applies
//! to its referenced images (or every image of the state), its text
//! objects name the finding ("pneumonia", "RUL nodule?"), and each of its
//! graphic objects is one annotation.
//!
//! Closed outlines and interpolated curves become polygons, circles and
//! ellipses boxes; a line (a ruler) is not a region and is left out, and
//! so is a graphic in DISPLAY units that cannot be mapped back to pixels
//! (no displayed area, or a rotated or flipped display). A state with no
//! graphics (only a window) holds nothing; one whose graphics cannot be
//! read (no image, bad points, an unknown graphic type) is refused whole.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::NotAnAnnotation;
use super::content::{item_text, points};
use super::shape::{Shape, shape};
use super::vocabulary::{certainty_of_text, finding_of_text};
use crate::imaging::attributes::{all_f64, first_int, text};
use crate::research::annotations::{Certainty, FindingType, Location, NewAnnotation};

/// The annotations of a presentation state, with its content creator as
/// the reader when it names one.
pub fn annotations(state: &InMemDicomObject) -> Result<Vec<NewAnnotation>, NotAnAnnotation> {
    let refused = |reason: String| NotAnAnnotation::Refused(reason);
    let label = item_text(state, tags::CONTENT_DESCRIPTION)
        .or_else(|| item_text(state, tags::CONTENT_LABEL))
        .unwrap_or_else(|| "unlabelled presentation state".into());
    let every_image: Vec<String> = sequence(state, tags::REFERENCED_SERIES_SEQUENCE)
        .iter()
        .flat_map(referenced_images)
        .collect();
    let reader = item_text(state, tags::CONTENT_CREATOR_NAME).and_then(|n| super::reader_name(&n));

    let mut found = Vec::new();
    let mut left_out = Vec::new();
    for (n, item) in sequence(state, tags::GRAPHIC_ANNOTATION_SEQUENCE)
        .iter()
        .enumerate()
    {
        let n = n + 1;
        let own = referenced_images(item);
        let images = if own.is_empty() { &every_image } else { &own };
        if images.is_empty() {
            return Err(refused(format!("graphic annotation {n} names no image")));
        }
        let texts: Vec<String> = sequence(item, tags::TEXT_OBJECT_SEQUENCE)
            .iter()
            .filter_map(|t| item_text(t, tags::UNFORMATTED_TEXT_VALUE))
            .collect();
        let words = if texts.is_empty() {
            label.clone()
        } else {
            texts.join(" ")
        };
        let (finding, finding_text) = finding_of_text(&words);
        let certainty = certainty_of_text(&words).unwrap_or(Certainty::Probable);
        let new = |sop: &str, location: Option<Location>| NewAnnotation {
            id: None,
            sop_instance_uid: sop.to_owned(),
            reader: reader.clone(),
            finding,
            finding_text: finding_text.clone(),
            location,
            ct: None,
            certainty,
            confirmed: None,
            deleted: false,
        };

        let graphics = sequence(item, tags::GRAPHIC_OBJECT_SEQUENCE);
        if graphics.is_empty() && !texts.is_empty() && finding != FindingType::Other {
            // A label alone ("COPD") marks the whole image.
            found.extend(images.iter().map(|sop| new(sop, None)));
        }
        for (g, graphic) in graphics.iter().enumerate() {
            let at = format!("graphic annotation {n}, object {}", g + 1);
            if first_int(graphic, tags::GRAPHIC_DIMENSIONS).is_some_and(|d| d != 2) {
                return Err(refused(format!("{at}: only 2-D graphics are understood")));
            }
            let kind = text(graphic, tags::GRAPHIC_TYPE).unwrap_or_default();
            let drawn =
                points(graphic).ok_or_else(|| refused(format!("{at}: no valid graphic data")))?;
            let units = text(graphic, tags::GRAPHIC_ANNOTATION_UNITS).unwrap_or_default();
            for sop in images {
                let pixels = match units.as_str() {
                    "PIXEL" => drawn.clone(),
                    "DISPLAY" => match display_to_pixels(state, sop, &drawn) {
                        Some(pixels) => pixels,
                        None => {
                            left_out.push(format!(
                                "{at}: DISPLAY units without a plain displayed area"
                            ));
                            continue;
                        }
                    },
                    other => {
                        return Err(refused(format!(
                            "{at}: graphic units {other:?} not understood"
                        )));
                    }
                };
                match shape(&kind, &pixels).map_err(|e| refused(format!("{at}: {e}")))? {
                    Shape::Region(location) => found.push(new(sop, Some(location))),
                    Shape::Point => found.push(new(sop, None)),
                    Shape::Line => left_out.push(format!("{at}: a line is not a region")),
                }
            }
        }
    }
    if found.is_empty() {
        return Err(NotAnAnnotation::Nothing(if left_out.is_empty() {
            "the presentation state has no graphic annotations".to_owned()
        } else {
            format!(
                "no region in the presentation state ({})",
                left_out.join("; ")
            )
        }));
    }
    for reason in left_out {
        tracing::debug!(%reason, "a graphic of a presentation state left out");
    }
    Ok(found)
}

/// The items of a sequence (none when absent).
fn sequence(object: &InMemDicomObject, tag: dicom_core::Tag) -> &[InMemDicomObject] {
    object.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

/// The SOP Instance UIDs of an item's Referenced Image Sequence.
fn referenced_images(item: &InMemDicomObject) -> Vec<String> {
    sequence(item, tags::REFERENCED_IMAGE_SEQUENCE)
        .iter()
        .filter_map(|r| text(r, tags::REFERENCED_SOP_INSTANCE_UID))
        .collect()
}

/// DISPLAY units (fractions of the displayed area) as image pixels, when
/// the image is shown unrotated and unflipped and its displayed area is
/// known.
fn display_to_pixels(
    state: &InMemDicomObject,
    sop: &str,
    points: &[[f64; 2]],
) -> Option<Vec<[f64; 2]>> {
    let rotated = first_int(state, tags::IMAGE_ROTATION).is_some_and(|r| r != 0);
    let flipped = text(state, tags::IMAGE_HORIZONTAL_FLIP).is_some_and(|f| f == "Y");
    if rotated || flipped {
        return None;
    }
    let area = sequence(state, tags::DISPLAYED_AREA_SELECTION_SEQUENCE)
        .iter()
        .find(|a| {
            let images = referenced_images(a);
            images.is_empty() || images.iter().any(|i| i == sop)
        })?;
    let top_left = all_f64(area, tags::DISPLAYED_AREA_TOP_LEFT_HAND_CORNER)?;
    let bottom_right = all_f64(area, tags::DISPLAYED_AREA_BOTTOM_RIGHT_HAND_CORNER)?;
    if top_left.len() != 2 || bottom_right.len() != 2 {
        return None;
    }
    // The corners are 1-based pixel positions, both included.
    let x0 = top_left[0] - 1.0;
    let y0 = top_left[1] - 1.0;
    let width = bottom_right[0] - top_left[0] + 1.0;
    let height = bottom_right[1] - top_left[1] + 1.0;
    (width > 0.0 && height > 0.0).then(|| {
        points
            .iter()
            .map(|p| [x0 + p[0] * width, y0 + p[1] * height])
            .collect()
    })
}
