//! Annotations that arrive by C-STORE from any DICOM viewer: a TID 1500
//! measurement report SR (OHIF, 3D Slicer, highdicom, DCMTK) or a
//! grayscale presentation state with graphic annotations (Horos, most
//! PACS viewers) is a doctor's annotation of the images it references,
//! not an image to analyse.
//!
//! [`annotations_of`] only reads the object; the worker checks the
//! result against the stored images (`store::Preparer`) and saves it, all
//! of one object or nothing. Our own AI results (the node's SR and GSPS,
//! sent back by a PACS that forwards whole studies) are recognised and
//! never become a doctor's annotation, nor do other devices' SRs (those
//! that name an algorithm, or have no person observer but a device).

mod content;
mod gsps;
mod shape;
mod sr;
mod vocabulary;

use dicom_dictionary_std::{tags, uids};
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use super::record::NewAnnotation;
use crate::imaging::attributes::text;

/// Why an object gave no annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotAnAnnotation {
    /// Neither an SR nor a grayscale presentation state: analyse it as usual.
    OtherClass,
    /// One of this node's own AI results.
    OwnResult,
    /// Another device's result (an SR naming an algorithm, or observed
    /// by a device alone): not a doctor's annotation.
    DeviceResult,
    /// A well-formed object that holds nothing to store, e.g. a
    /// presentation state that only sets the window, or a report whose
    /// measurement groups name no finding; the reason.
    Nothing(String),
    /// An object the node cannot read as annotations (a template it does
    /// not understand, a region without its image, …); the reason, which
    /// names codes and UIDs but never patient data.
    Refused(String),
}

impl std::fmt::Display for NotAnAnnotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAnAnnotation::OtherClass => f.write_str("not an SR or presentation state"),
            NotAnAnnotation::OwnResult => f.write_str("our own AI result"),
            NotAnAnnotation::DeviceResult => {
                f.write_str("an AI result (made by a device), not a doctor's annotation")
            }
            NotAnAnnotation::Nothing(reason) | NotAnAnnotation::Refused(reason) => {
                f.write_str(reason)
            }
        }
    }
}

/// The SR storage classes whose documents may be measurement reports.
const SR_CLASSES: [&str; 4] = [
    uids::BASIC_TEXT_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::COMPREHENSIVE3_DSR_STORAGE,
];

/// Whether objects of this SOP class are read as annotations rather than
/// analysed.
pub fn is_annotation_class(sop_class_uid: &str) -> bool {
    let class = sop_class_uid.trim_end_matches(['\0', ' ']);
    SR_CLASSES.contains(&class) || class == uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE
}

/// The annotations an SR or GSPS holds: one per region (or one per image
/// for an image-level finding). Each carries a stable id made from the
/// object's SOP Instance UID, so a resent object makes new versions of the
/// same annotations, not copies; the reader is the object's author when
/// it names one (else `None`, for the caller's default).
pub fn annotations_of(object: &DefaultDicomObject) -> Result<Vec<NewAnnotation>, NotAnAnnotation> {
    let object: &InMemDicomObject = object;
    let class = text(object, tags::SOP_CLASS_UID).unwrap_or_default();
    if !is_annotation_class(&class) {
        return Err(NotAnAnnotation::OtherClass);
    }
    if made_by_us(object) {
        return Err(NotAnAnnotation::OwnResult);
    }
    let found = if class == uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE {
        gsps::annotations(object)?
    } else if sr::made_by_a_device(object) {
        return Err(NotAnAnnotation::DeviceResult);
    } else {
        sr::annotations(object)?
    };
    let instance = text(object, tags::SOP_INSTANCE_UID).unwrap_or_default();
    Ok(found
        .into_iter()
        .enumerate()
        .map(|(index, mut annotation)| {
            annotation.id = Some(stable_id(&instance, index));
            annotation
        })
        .collect())
}

/// Whether the node made this object: its software versions, or the SR's
/// device observer, name chestnode.
fn made_by_us(object: &InMemDicomObject) -> bool {
    let ours = |value: &str| value.trim().to_ascii_lowercase().starts_with("chestnode");
    let software = object
        .get(tags::SOFTWARE_VERSIONS)
        .and_then(|e| e.to_str().ok())
        .is_some_and(|v| v.split('\\').any(ours));
    software || sr::device_observer_name(object).is_some_and(|name| ours(&name))
}

/// `dicom-` and 32 hex digits of the SHA-256 of the object's UID, then
/// the annotation's index in it.
fn stable_id(instance: &str, index: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(instance.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("dicom-{hex}-{index}")
}

/// A person name as a reader: the alphabetic form, trimmed, at most 64
/// characters.
fn reader_name(name: &str) -> Option<String> {
    let alphabetic = name.split('=').next().unwrap_or_default();
    let trimmed = alphabetic
        .trim_matches(|c: char| c == ' ' || c == '\0' || c == '^')
        .to_owned();
    (!trimmed.is_empty()).then(|| trimmed.chars().take(64).collect())
}

#[cfg(test)]
mod tests;
