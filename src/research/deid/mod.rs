//! De-identification of one DICOM object to PS3.15 Annex E (the Basic
//! Application Level Confidentiality Profile with the options the hospital
//! needs), so research exports carry a research ID instead of the patient.
//!
//! The profile table is data (`profile.rs`, `annex_e.tsv`); this file
//! decides whether an object may be exported at all (burned-in text,
//! secondary captures, overlays), runs the table over the data set
//! (`walk.rs`), and writes the attributes that record what was done
//! (Patient Identity Removed, De-identification Method and its codes).

mod clean;
mod dates;
mod options;
mod pixels;
mod profile;
mod uids;
mod walk;

#[cfg(test)]
mod tests;

use crate::report::header::{code_item, put_seq};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR, header::Header};
use dicom_object::{DefaultDicomObject, InMemDicomObject};

pub use options::{DeidOptions, PixelRegion};
pub use uids::UidRemapper;

/// Who the object belongs to, in research terms (from the pseudonym vault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientKey {
    /// Put into Patient Name and Patient ID.
    pub research_id: String,
    /// Added to every date of this patient.
    pub date_offset_days: i32,
}

/// Why an object is left out of an export (goes into the export report).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exclusion {
    /// Burned In Annotation is YES and no pixel regions are to be cleaned.
    #[error("burned-in annotation (0028,0301) is YES and no clean pixel regions are configured")]
    BurnedInAnnotation,
    /// A Secondary Capture (our own overlays have findings burned in).
    #[error("secondary capture images may carry burned-in text")]
    SecondaryCapture,
    /// Overlays, which may hold burned text: planes (60xx,3000) when no
    /// pixel regions are cleaned, overlays inside the pixel data always.
    #[error("overlays (60xx) may carry burned-in text")]
    OverlayInPixelData,
    /// Pixel regions should be blanked but cannot be in this encoding.
    #[error("clean pixel regions cannot be applied: {0}")]
    PixelsNotCleanable(String),
}

/// The result of [`deidentify`].
#[derive(Debug)]
pub struct Deidentified {
    pub object: DefaultDicomObject,
    /// Elements removed (each private element, each X action).
    pub removed: usize,
    /// Elements emptied, given a dummy, cleaned, or set to the research ID.
    pub replaced: usize,
    /// UID values replaced.
    pub remapped_uids: usize,
    /// DA/DT values shifted.
    pub shifted_dates: usize,
}

/// Why [`deidentify`] gave no object.
#[derive(Debug, thiserror::Error)]
pub enum DeidError {
    /// The object must not be exported.
    #[error("excluded: {0}")]
    Excluded(Exclusion),
    /// Something went wrong; the object is not exported either.
    #[error("de-identification failed: {0:#}")]
    Failed(anyhow::Error),
}

const SOP_CLASS_UID: Tag = Tag(0x0008, 0x0016);
const SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x0018);
const BURNED_IN_ANNOTATION: Tag = Tag(0x0028, 0x0301);
const LONGITUDINAL_MODIFIED: Tag = Tag(0x0028, 0x0303);
const PATIENT_IDENTITY_REMOVED: Tag = Tag(0x0012, 0x0062);
const DEID_METHOD: Tag = Tag(0x0012, 0x0063);
const DEID_METHOD_CODES: Tag = Tag(0x0012, 0x0064);

/// Secondary Capture SOP classes: single-frame and the four multi-frame.
const SECONDARY_CAPTURE: [&str; 5] = [
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.7.1",
    "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3",
    "1.2.840.10008.5.1.4.1.1.7.4",
];

/// Free text that goes with a patient's images (clinical history,
/// pathology) cleaned as Clean Descriptors cleans a description: without
/// the patient's name parts and ID, date-like strings and runs of five or
/// more digits.
pub(crate) fn clean_free_text(text: &str, patient_name: &str, patient_id: &str) -> String {
    let identity = InMemDicomObject::from_element_iter([
        DataElement::new(
            Tag(0x0010, 0x0010),
            VR::PN,
            PrimitiveValue::from(patient_name),
        ),
        DataElement::new(
            Tag(0x0010, 0x0020),
            VR::LO,
            PrimitiveValue::from(patient_id),
        ),
    ]);
    clean::Identifiers::gather(&identity).clean(text)
}

/// De-identify one Part-10 object. `Err(Excluded(reason))` when it must
/// not be exported.
pub fn deidentify(
    object: &DefaultDicomObject,
    patient: &PatientKey,
    uids: &UidRemapper,
    options: &DeidOptions,
) -> Result<Deidentified, DeidError> {
    let data_set: &InMemDicomObject = object;
    let clean_pixels = check_exportable(object, data_set, options)?;

    let identifiers = clean::Identifiers::gather(data_set);
    let mut walker = walk::Walker {
        patient,
        uids,
        options,
        identifiers: &identifiers,
        counts: walk::Counts::default(),
    };
    let mut result = walker.data_set(data_set);
    let counts = walker.counts;

    // the profile removes overlay data (60xx,3000); the rest of each
    // overlay group would then describe an overlay in the pixel data's bits
    let overlays = overlay_groups(data_set);
    result.retain(|e| !overlays.contains(&e.tag().0));

    let mut pixels_cleaned = false;
    if clean_pixels {
        pixels_cleaned = pixels::blank_regions(&mut result, &options.clean_pixel_regions)
            .map_err(DeidError::Excluded)?;
        if pixels_cleaned {
            result.put(DataElement::new(
                BURNED_IN_ANNOTATION,
                VR::CS,
                PrimitiveValue::from("NO"),
            ));
        }
    }
    record_method(&mut result, options, pixels_cleaned);

    let sop_instance = result
        .get(SOP_INSTANCE_UID)
        .and_then(|e| e.to_str().ok())
        .map(|s| uids::trim_uid(&s).to_owned())
        .unwrap_or_else(|| uids.remap(object.meta().media_storage_sop_instance_uid()));
    let mut meta = object.meta().clone();
    meta.media_storage_sop_instance_uid = sop_instance;
    meta.implementation_class_uid = crate::store::IMPLEMENTATION_CLASS_UID.to_owned();
    meta.implementation_version_name = Some(crate::store::IMPLEMENTATION_VERSION_NAME.to_owned());
    meta.source_application_entity_title = None;
    meta.sending_application_entity_title = None;
    meta.receiving_application_entity_title = None;
    meta.private_information_creator_uid = None;
    meta.private_information = None;
    meta.update_information_group_length();

    Ok(Deidentified {
        object: result.with_exact_meta(meta),
        removed: counts.removed,
        replaced: counts.replaced,
        remapped_uids: counts.remapped_uids,
        shifted_dates: counts.shifted_dates,
    })
}

/// Whether the object may be exported; `Ok(true)` when its pixel regions
/// must be blanked on the way.
fn check_exportable(
    object: &DefaultDicomObject,
    data_set: &InMemDicomObject,
    options: &DeidOptions,
) -> Result<bool, DeidError> {
    let text = |tag: Tag| {
        data_set
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' ').to_owned())
    };
    let sop_class = text(SOP_CLASS_UID)
        .unwrap_or_else(|| uids::trim_uid(object.meta().media_storage_sop_class_uid()).to_owned());
    if SECONDARY_CAPTURE.contains(&sop_class.as_str()) {
        return Err(DeidError::Excluded(Exclusion::SecondaryCapture));
    }
    let cleaning = !options.clean_pixel_regions.is_empty();
    let burned_in = text(BURNED_IN_ANNOTATION).is_some_and(|v| v.eq_ignore_ascii_case("YES"));
    if burned_in && !cleaning {
        return Err(DeidError::Excluded(Exclusion::BurnedInAnnotation));
    }
    let groups = overlay_groups(data_set);
    let planes = groups
        .iter()
        .filter(|&&g| data_set.get(Tag(g, 0x3000)).is_some())
        .count();
    // an overlay without its own data plane lives in the pixel data's
    // unused bits, which blanking regions does not reach
    if planes < groups.len() || planes > 0 && !cleaning {
        return Err(DeidError::Excluded(Exclusion::OverlayInPixelData));
    }
    Ok(cleaning && pixels::has_pixel_data(data_set))
}

/// The repeating overlay groups (6000–601E) present in `data_set`.
fn overlay_groups(data_set: &InMemDicomObject) -> Vec<u16> {
    let mut groups: Vec<u16> = data_set
        .iter()
        .map(|e| e.tag().0)
        .filter(|g| (0x6000..=0x601E).contains(g) && g.is_multiple_of(2))
        .collect();
    groups.dedup();
    groups
}

/// Writes Patient Identity Removed, De-identification Method and its code
/// sequence, and the Longitudinal Temporal Information Modified flag.
fn record_method(result: &mut InMemDicomObject, options: &DeidOptions, pixels_cleaned: bool) {
    result.put(DataElement::new(
        PATIENT_IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    if options.retain_longitudinal_modified_dates {
        result.put(DataElement::new(
            LONGITUDINAL_MODIFIED,
            VR::CS,
            PrimitiveValue::from("MODIFIED"),
        ));
    }
    let codes = options.method_codes(pixels_cleaned);
    let method: Vec<String> = std::iter::once("chestnode PS3.15 Annex E".to_owned())
        .chain(codes.iter().map(|(_, meaning)| (*meaning).to_owned()))
        .collect();
    result.put(DataElement::new(
        DEID_METHOD,
        VR::LO,
        PrimitiveValue::Strs(method.into()),
    ));
    let items = codes
        .iter()
        .map(|(value, meaning)| code_item(value, "DCM", meaning))
        .collect();
    put_seq(result, DEID_METHOD_CODES, items);
}
