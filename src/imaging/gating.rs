//! Which instances are analysed: frontal chest radiographs, nothing else.
//!
//! The node accepts every image a PACS sends (refusing would make the PACS
//! retry forever), but the model has only ever seen frontal chest
//! radiographs: its output on a CT slice, a hand or a lateral view would be
//! confident nonsense. The gate lets through
//!
//! - Modality CR or DX,
//! - Body Part Examined CHEST (the defined term) or THORAX (which several
//!   vendors send for the same film), or absent (many sites leave it empty),
//! - View Position PA or AP, or absent,
//!
//! and gives everything else a reason a person can read in `chestnode
//! status` or a report ("view position LL is not frontal (PA/AP)"), checked
//! in that order so the reason names the most basic mismatch. An object
//! without Pixel Data (an SR document, a presentation state) is "not an
//! image" before anything else. Values are compared without regard to case
//! or padding, since senders differ in both.

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use super::attributes::text;

/// The gate's decision for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Analyse,
    NotAnalysed { reason: String },
}

/// Modalities that are radiographs.
const RADIOGRAPH_MODALITIES: [&str; 2] = ["CR", "DX"];
/// View positions of a frontal chest film.
const FRONTAL_VIEW_POSITIONS: [&str; 2] = ["PA", "AP"];
/// Body Part Examined values of a chest film.
const CHEST_BODY_PARTS: [&str; 2] = ["CHEST", "THORAX"];

/// Decides whether `object` is analysed.
pub fn gate(object: &DefaultDicomObject) -> Gate {
    gate_data_set(object)
}

fn gate_data_set(object: &InMemDicomObject) -> Gate {
    let not_analysed = |reason: String| Gate::NotAnalysed { reason };
    if object.get(tags::PIXEL_DATA).is_none() {
        return not_analysed("not an image".into());
    }
    match upper_text(object, tags::MODALITY) {
        Some(modality) if RADIOGRAPH_MODALITIES.contains(&modality.as_str()) => {}
        Some(modality) => return not_analysed(format!("modality {modality} is not a radiograph")),
        None => return not_analysed("modality is absent, so not known to be a radiograph".into()),
    }
    match upper_text(object, tags::BODY_PART_EXAMINED) {
        Some(body_part) if !CHEST_BODY_PARTS.contains(&body_part.as_str()) => {
            return not_analysed(format!("body part {body_part} is not CHEST"));
        }
        _ => {}
    }
    match upper_text(object, tags::VIEW_POSITION) {
        Some(view) if !FRONTAL_VIEW_POSITIONS.contains(&view.as_str()) => {
            return not_analysed(format!("view position {view} is not frontal (PA/AP)"));
        }
        _ => {}
    }
    Gate::Analyse
}

fn upper_text(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    text(object, tag).map(|value| value.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, Tag, VR, dicom_value};

    fn image(attributes: &[(Tag, &str)]) -> InMemDicomObject {
        let mut object = InMemDicomObject::from_element_iter([DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(vec![0u16; 4].into()),
        )]);
        for &(tag, value) in attributes {
            object.put(DataElement::new(tag, VR::CS, dicom_value!(Str, value)));
        }
        object
    }

    fn reason(object: &InMemDicomObject) -> String {
        match gate_data_set(object) {
            Gate::Analyse => "analysed".into(),
            Gate::NotAnalysed { reason } => reason,
        }
    }

    #[test]
    fn frontal_chest_radiographs_are_analysed() {
        for modality in ["CR", "DX", "dx "] {
            let object = image(&[
                (tags::MODALITY, modality),
                (tags::BODY_PART_EXAMINED, "CHEST"),
                (tags::VIEW_POSITION, "AP"),
            ]);
            assert_eq!(gate_data_set(&object), Gate::Analyse, "{modality}");
        }
    }

    #[test]
    fn absent_or_empty_body_part_and_view_are_allowed() {
        assert_eq!(
            gate_data_set(&image(&[(tags::MODALITY, "CR")])),
            Gate::Analyse
        );
        let empty = image(&[
            (tags::MODALITY, "DX"),
            (tags::BODY_PART_EXAMINED, ""),
            (tags::VIEW_POSITION, " "),
        ]);
        assert_eq!(gate_data_set(&empty), Gate::Analyse);
    }

    #[test]
    fn reasons_name_the_first_mismatch() {
        let ct = image(&[(tags::MODALITY, "CT"), (tags::VIEW_POSITION, "LL")]);
        assert_eq!(reason(&ct), "modality CT is not a radiograph");
        let hand = image(&[
            (tags::MODALITY, "CR"),
            (tags::BODY_PART_EXAMINED, "HAND"),
            (tags::VIEW_POSITION, "LL"),
        ]);
        assert_eq!(reason(&hand), "body part HAND is not CHEST");
        let lateral = image(&[(tags::MODALITY, "DX"), (tags::VIEW_POSITION, "LL")]);
        assert_eq!(reason(&lateral), "view position LL is not frontal (PA/AP)");
        let unknown = image(&[]);
        assert_eq!(
            reason(&unknown),
            "modality is absent, so not known to be a radiograph"
        );
    }

    #[test]
    fn objects_without_pixel_data_are_not_images() {
        let sr = InMemDicomObject::from_element_iter([DataElement::new(
            tags::MODALITY,
            VR::CS,
            dicom_value!(Str, "SR"),
        )]);
        assert_eq!(reason(&sr), "not an image");
    }
}
