//! Patient and study identity copied from the source image into every
//! result object, so a PACS files results in the same study as the image,
//! under the same patient.
//!
//! The Patient module and the General Study module attributes are copied
//! as they are (values, VRs and the character set they are encoded in);
//! nothing is invented, and the Study Instance UID is never new.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Attributes copied from the source, in the order of PS3.3 C.7.1.1 and
/// C.7.2.1. Type 2 attributes missing from the source are added empty.
const COPIED: &[(Tag, bool)] = &[
    (tags::SPECIFIC_CHARACTER_SET, false),
    (tags::STUDY_DATE, true),
    (tags::STUDY_TIME, true),
    (tags::ACCESSION_NUMBER, true),
    (tags::REFERRING_PHYSICIAN_NAME, true),
    (tags::STUDY_DESCRIPTION, false),
    (tags::PATIENT_NAME, true),
    (tags::PATIENT_ID, true),
    (tags::ISSUER_OF_PATIENT_ID, false),
    (tags::PATIENT_BIRTH_DATE, true),
    (tags::PATIENT_SEX, true),
    (tags::PATIENT_AGE, false),
    (tags::STUDY_INSTANCE_UID, true),
    (tags::STUDY_ID, true),
];

/// Why identity cannot be copied.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the source has no Study Instance UID")]
    NoStudyInstanceUid,
}

/// Copies patient and study identity from `source` into `target`.
pub fn copy_identity(
    source: &InMemDicomObject,
    target: &mut InMemDicomObject,
) -> Result<(), IdentityError> {
    if source.get(tags::STUDY_INSTANCE_UID).is_none() {
        return Err(IdentityError::NoStudyInstanceUid);
    }
    for &(tag, type_2) in COPIED {
        match source.get(tag) {
            Some(element) if is_well_formed(element) => {
                target.put(element.clone());
            }
            // A malformed value in the source (an age without its unit,
            // say) is not repeated: PACS would reject the result for it.
            Some(_) | None if type_2 => {
                let vr = dicom_core::dictionary::DataDictionary::by_tag(
                    &dicom_dictionary_std::StandardDataDictionary,
                    tag,
                )
                .map(|entry| entry.vr.relaxed())
                .unwrap_or(dicom_core::VR::LO);
                target.put(dicom_core::DataElement::new(
                    tag,
                    vr,
                    dicom_core::PrimitiveValue::Empty,
                ));
            }
            Some(_) => tracing::debug!(?tag, "not copying a malformed source attribute"),
            None => {}
        }
    }
    Ok(())
}

/// Whether a copied value fits its VR where a slip is common: AS (`nnnD`,
/// `nnnW`, `nnnM`, `nnnY`) and DA (`YYYYMMDD`).
fn is_well_formed(element: &dicom_core::DataElement<InMemDicomObject>) -> bool {
    let Ok(value) = element.to_str() else {
        return true;
    };
    let value = value.trim_end_matches(['\0', ' ']);
    if value.is_empty() {
        return true;
    }
    match element.vr() {
        dicom_core::VR::AS => {
            value.len() == 4
                && value[..3].bytes().all(|b| b.is_ascii_digit())
                && matches!(value.as_bytes()[3], b'D' | b'W' | b'M' | b'Y')
        }
        dicom_core::VR::DA => value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR};

    fn source() -> InMemDicomObject {
        InMemDicomObject::from_element_iter([
            DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("Doe^Jane")),
            DataElement::new(tags::PATIENT_ID, VR::LO, PrimitiveValue::from("12345")),
            DataElement::new(
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.2.3.4"),
            ),
            DataElement::new(tags::ACCESSION_NUMBER, VR::SH, PrimitiveValue::from("A77")),
            DataElement::new(tags::STUDY_DATE, VR::DA, PrimitiveValue::from("20260102")),
            DataElement::new(
                tags::SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.2.3.4.5"),
            ),
        ])
    }

    fn text(object: &InMemDicomObject, tag: Tag) -> String {
        object
            .get(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(['\0', ' '])
            .to_owned()
    }

    #[test]
    fn copies_patient_and_study_and_nothing_else() {
        let mut target = InMemDicomObject::new_empty();
        copy_identity(&source(), &mut target).unwrap();
        assert_eq!(text(&target, tags::PATIENT_NAME), "Doe^Jane");
        assert_eq!(text(&target, tags::PATIENT_ID), "12345");
        assert_eq!(text(&target, tags::STUDY_INSTANCE_UID), "1.2.3.4");
        assert_eq!(text(&target, tags::ACCESSION_NUMBER), "A77");
        assert!(
            target.get(tags::SOP_INSTANCE_UID).is_none(),
            "instance identity is not copied"
        );
        // Type 2 attributes absent from the source are present and empty.
        assert_eq!(text(&target, tags::STUDY_ID), "");
        assert_eq!(text(&target, tags::REFERRING_PHYSICIAN_NAME), "");
        assert!(
            target.get(tags::PATIENT_AGE).is_none(),
            "type 3 stays absent"
        );
    }

    #[test]
    fn malformed_ages_and_dates_are_not_copied() {
        let mut source = source();
        source.put(DataElement::new(
            tags::PATIENT_AGE,
            VR::AS,
            PrimitiveValue::from("62"),
        ));
        source.put(DataElement::new(
            tags::PATIENT_BIRTH_DATE,
            VR::DA,
            PrimitiveValue::from("1970-1-1"),
        ));
        let mut target = InMemDicomObject::new_empty();
        copy_identity(&source, &mut target).unwrap();
        assert!(target.get(tags::PATIENT_AGE).is_none());
        assert_eq!(
            text(&target, tags::PATIENT_BIRTH_DATE),
            "",
            "type 2: kept empty"
        );
        source.put(DataElement::new(
            tags::PATIENT_AGE,
            VR::AS,
            PrimitiveValue::from("062Y"),
        ));
        copy_identity(&source, &mut target).unwrap();
        assert_eq!(text(&target, tags::PATIENT_AGE), "062Y");
    }

    #[test]
    fn a_source_without_study_uid_is_an_error() {
        let mut source = source();
        source.remove_element(tags::STUDY_INSTANCE_UID);
        assert!(copy_identity(&source, &mut InMemDicomObject::new_empty()).is_err());
    }
}
