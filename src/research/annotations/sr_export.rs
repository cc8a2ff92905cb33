//! Doctors' annotations as DICOM SR (TID 1500 Imaging Measurement Report)
//! in research-ID space, written beside each exported radiograph, so that
//! the partner reads them with any DICOM tool (`dsrdump`, highdicom,
//! OHIF) and not only with the node's own JSON.
//!
//! One Comprehensive 3D SR per annotated image, built from the
//! de-identified image itself: its patient (the research ID, shifted
//! dates) and study, and references to its de-identified SOP Instance
//! UID. The SR's own UIDs come from the cohort's UID key
//! ([`UidRemapper`]), so a later export of the same cohort gives the same
//! ones and nobody without the key can link them to the hospital's.
//!
//! ```text
//! Imaging Measurement Report (TID 1500)
//! ├─ language, observer context: person observer per reader (TID 1002)
//! ├─ procedure reported: XR chest single view
//! └─ Imaging Measurements
//!    └─ Measurement Group per annotation
//!       ├─ observer (the reader), tracking identifier + UID
//!       ├─ Finding (the finding type's code)
//!       └─ Image Region: SCOORD POLYLINE (closed; a box or the polygon)
//!          selected from the image, or for image-level findings the
//!          image as Source of Measurement
//! ```
//!
//! Readers are staff, and their names identify them: the SR names each by
//! a pseudonym `reader-NNNNNN` derived from the reader name with the
//! cohort's key (the same reader has the same pseudonym in every image of
//! the cohort). Free text of "other" findings is not exported (it may
//! name anyone); the finding is coded "Abnormal".

use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use super::agreement::Consensus;
use super::record::{Annotation, FindingType, Location};
use crate::ledger::Ledger;
use crate::report::header::{put_seq, put_str};
use crate::report::sr::codes::{self as c, category_finding};
use crate::report::sr::content_item::{
    Code, ImageReference, Relationship, closed_polyline, code, container, image, root_container,
    text, uidref,
};
use crate::research::UidRemapper;

use Relationship::{Contains, HasConceptMod, HasObsContext};

const PERSON: Code = Code::new("121006", "DCM", "Person");
const PERSON_OBSERVER_NAME: Code = Code::new("121008", "DCM", "Person Observer Name");

/// Writes the SR of `original`'s current annotations (if it has any) into
/// `study_dir/SR_SERIES/SR_SOP.dcm`, built on `deidentified`; returns the
/// number of files written (0 or 1). Its content date is the newest
/// annotation's, shifted by the patient's `date_offset_days` like every
/// date of the export. With a `consensus` rule, the SR holds what the
/// readers settle on (one observer, "consensus") instead of each reader's
/// annotations.
pub fn write_for_image(
    ledger: &Ledger,
    original_sop: &str,
    deidentified: &InMemDicomObject,
    uids: &UidRemapper,
    date_offset_days: i32,
    study_dir: &Path,
    consensus: Option<Consensus>,
) -> anyhow::Result<usize> {
    let mut annotations = super::current_for_image(ledger, original_sop)?;
    if let Some(rule) = consensus {
        annotations = settled(&annotations, rule);
    }
    if annotations.is_empty() {
        return Ok(0);
    }
    let (document, series, sop) = build(
        deidentified,
        &annotations,
        original_sop,
        uids,
        date_offset_days,
    )?;
    let dir = study_dir.join(&series);
    std::fs::create_dir_all(&dir)?;
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::COMPREHENSIVE3_DSR_STORAGE)
        .media_storage_sop_instance_uid(sop.as_str())
        .implementation_class_uid(crate::store::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(crate::store::IMPLEMENTATION_VERSION_NAME)
        .build()?;
    document
        .with_exact_meta(meta)
        .write_to_file(dir.join(format!("{sop}.dcm")))?;
    Ok(1)
}

/// The consensus of an image's annotations, as annotations of one
/// observer: a region per kept group (its mean box), and the kept
/// image-level findings that no region already shows.
fn settled(annotations: &[Annotation], rule: Consensus) -> Vec<Annotation> {
    let Some(first) = annotations.first() else {
        return Vec::new();
    };
    let refs: Vec<&Annotation> = annotations.iter().collect();
    let agreed = super::consensus(&refs, rule);
    let newest = annotations.iter().map(|a| a.created_at).max().unwrap_or(0);
    let make = |n: usize, finding, location| Annotation {
        id: format!("consensus-{n}"),
        version: 1,
        sop_instance_uid: first.sop_instance_uid.clone(),
        reader: CONSENSUS.into(),
        finding,
        finding_text: None,
        location,
        ct: None,
        certainty: super::record::Certainty::Probable,
        confirmed: None,
        created_at: newest,
        source: first.source,
        deleted: false,
    };
    let mut settled: Vec<Annotation> = agreed
        .regions
        .iter()
        .enumerate()
        .map(|(n, (finding, [x, y, width, height]))| {
            make(
                n,
                *finding,
                Some(Location::Box {
                    x: *x,
                    y: *y,
                    width: *width,
                    height: *height,
                }),
            )
        })
        .collect();
    for finding in agreed.findings {
        if !agreed.regions.iter().any(|(f, _)| *f == finding) {
            settled.push(make(settled.len(), finding, None));
        }
    }
    settled
}

/// The observer of a consensus: not a person, so not pseudonymised.
const CONSENSUS: &str = "consensus";

/// The name an SR gives an annotation's observer: the reader's pseudonym,
/// or "consensus".
fn observer_name(reader: &str, uids: &UidRemapper) -> String {
    if reader == CONSENSUS {
        CONSENSUS.to_owned()
    } else {
        reader_pseudonym(reader, uids)
    }
}

/// The reader's pseudonym in this cohort.
pub fn reader_pseudonym(reader: &str, uids: &UidRemapper) -> String {
    let digits = uids.remap(&format!("9.9.reader.{}", hex(reader)));
    format!("reader-{}", &digits[digits.len() - 6..])
}

fn hex(text: &str) -> String {
    text.bytes()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// PNAME content item.
fn person(relationship: Relationship, name: Code, value: &str) -> InMemDicomObject {
    // A TEXT item, re-typed: the relationship and concept name are the same.
    let mut item = text(relationship, name, "");
    item.remove_element(tags::TEXT_VALUE);
    put_str(&mut item, tags::VALUE_TYPE, VR::CS, "PNAME");
    put_str(&mut item, tags::PERSON_NAME, VR::PN, value);
    item
}

fn observer(reader: &str) -> [InMemDicomObject; 2] {
    [
        code(HasObsContext, c::OBSERVER_TYPE, PERSON),
        person(HasObsContext, PERSON_OBSERVER_NAME, reader),
    ]
}

fn finding_code(annotation: &Annotation) -> Code {
    match annotation.finding {
        FindingType::Other => c::ABNORMAL,
        other => other.category().map_or(c::ABNORMAL, category_finding),
    }
}

fn read(object: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    crate::imaging::attributes::text(object, tag).unwrap_or_default()
}

/// The SR document, its series UID and its SOP Instance UID.
fn build(
    source: &InMemDicomObject,
    annotations: &[Annotation],
    original_sop: &str,
    uids: &UidRemapper,
    date_offset_days: i32,
) -> anyhow::Result<(InMemDicomObject, String, String)> {
    let study = read(source, tags::STUDY_INSTANCE_UID);
    anyhow::ensure!(!study.is_empty(), "the image has no Study Instance UID");
    let sop = uids.remap(&format!("{original_sop}.9.1"));
    let series = uids.remap(&format!("{study}.9.2"));
    let reference = ImageReference {
        sop_class_uid: read(source, tags::SOP_CLASS_UID),
        sop_instance_uid: read(source, tags::SOP_INSTANCE_UID),
    };
    let created = annotations.iter().map(|a| a.created_at).max().unwrap_or(0);
    let when = chrono::DateTime::from_timestamp(created as i64, 0).unwrap_or_default()
        + chrono::Duration::days(i64::from(date_offset_days));
    let (date, time) = (
        when.format("%Y%m%d").to_string(),
        when.format("%H%M%S").to_string(),
    );

    let mut document = InMemDicomObject::new_empty();
    crate::report::identity::copy_identity(source, &mut document)?;
    put_str(
        &mut document,
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::COMPREHENSIVE3_DSR_STORAGE,
    );
    put_str(&mut document, tags::SOP_INSTANCE_UID, VR::UI, &sop);
    put_str(&mut document, tags::MODALITY, VR::CS, "SR");
    put_str(&mut document, tags::SERIES_INSTANCE_UID, VR::UI, &series);
    put_str(&mut document, tags::SERIES_NUMBER, VR::IS, "9100");
    put_str(
        &mut document,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "Doctors' annotations",
    );
    put_str(&mut document, tags::INSTANCE_NUMBER, VR::IS, "1");
    put_str(&mut document, tags::MANUFACTURER, VR::LO, "chestnode");
    put_str(
        &mut document,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        "chestnode research export",
    );
    put_str(&mut document, tags::DEVICE_SERIAL_NUMBER, VR::LO, "1");
    put_str(
        &mut document,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        env!("CARGO_PKG_VERSION"),
    );
    put_seq(
        &mut document,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        Vec::new(),
    );
    put_str(&mut document, tags::CONTENT_DATE, VR::DA, &date);
    put_str(&mut document, tags::CONTENT_TIME, VR::TM, &time);
    put_str(&mut document, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put_str(&mut document, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    put_seq(
        &mut document,
        tags::PERFORMED_PROCEDURE_CODE_SEQUENCE,
        Vec::new(),
    );
    let mut series_ref = InMemDicomObject::new_empty();
    put_seq(
        &mut series_ref,
        tags::REFERENCED_SOP_SEQUENCE,
        vec![reference.item()],
    );
    put_str(
        &mut series_ref,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &read(source, tags::SERIES_INSTANCE_UID),
    );
    let mut study_ref = InMemDicomObject::new_empty();
    put_seq(
        &mut study_ref,
        tags::REFERENCED_SERIES_SEQUENCE,
        vec![series_ref],
    );
    put_str(&mut study_ref, tags::STUDY_INSTANCE_UID, VR::UI, &study);
    put_seq(
        &mut document,
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![study_ref],
    );

    let mut readers: Vec<String> = annotations
        .iter()
        .map(|a| observer_name(&a.reader, uids))
        .collect();
    readers.sort();
    readers.dedup();
    let mut content = vec![code(HasConceptMod, c::LANGUAGE_OF_CONTENT, c::ENGLISH_US)];
    for reader in &readers {
        content.extend(observer(reader));
    }
    content.push(code(
        HasConceptMod,
        c::PROCEDURE_REPORTED,
        c::XR_CHEST_SINGLE_VIEW,
    ));
    let groups = annotations
        .iter()
        .enumerate()
        .map(|(index, a)| group(a, index, original_sop, uids, &reference))
        .collect();
    content.push(container(Contains, c::IMAGING_MEASUREMENTS, groups));
    root_container(
        &mut document,
        c::IMAGING_MEASUREMENT_REPORT,
        "1500",
        content,
    );
    Ok((document, series, sop))
}

/// One annotation's measurement group.
fn group(
    annotation: &Annotation,
    index: usize,
    original_sop: &str,
    uids: &UidRemapper,
    source: &ImageReference,
) -> InMemDicomObject {
    let number = index + 1;
    let mut items = Vec::from(observer(&observer_name(&annotation.reader, uids)));
    items.push(text(
        HasObsContext,
        c::TRACKING_IDENTIFIER,
        &format!("Annotation {number}: {}", annotation.finding.key()),
    ));
    items.push(uidref(
        HasObsContext,
        c::TRACKING_UID,
        &uids.remap(&format!("{original_sop}.9.3.{}", hex(&annotation.id))),
    ));
    if annotation.location.is_some() {
        items.push(code(
            Contains,
            c::FINDING_CATEGORY,
            c::MORPHOLOGICALLY_ABNORMAL_STRUCTURE,
        ));
    }
    items.push(code(Contains, c::FINDING, finding_code(annotation)));
    match &annotation.location {
        Some(location) => {
            let points: Vec<[f32; 2]> = match location {
                Location::Box {
                    x,
                    y,
                    width,
                    height,
                } => vec![
                    [*x as f32, *y as f32],
                    [(x + width) as f32, *y as f32],
                    [(x + width) as f32, (y + height) as f32],
                    [*x as f32, (y + height) as f32],
                ],
                Location::Polygon(points) => {
                    points.iter().map(|p| [p[0] as f32, p[1] as f32]).collect()
                }
            };
            items.push(closed_polyline(
                Contains,
                c::IMAGE_REGION,
                &points,
                source,
                c::SOURCE,
            ));
        }
        None => items.push(image(Contains, c::SOURCE_OF_MEASUREMENT, source)),
    }
    container(Contains, c::MEASUREMENT_GROUP, items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::research::annotations::{Certainty, Source};

    fn annotation(reader: &str, location: Option<Location>) -> Annotation {
        Annotation {
            id: format!("id-{reader}"),
            version: 1,
            sop_instance_uid: "1.2.3.4".into(),
            reader: reader.into(),
            finding: FindingType::NoduleMass,
            finding_text: None,
            location,
            ct: None,
            certainty: Certainty::Definite,
            confirmed: None,
            created_at: 1_700_000_000,
            source: Source::File,
            deleted: false,
        }
    }

    #[test]
    fn the_sr_references_the_de_identified_image_and_hides_reader_names() {
        let uids = UidRemapper::new([7; 32]);
        let mut image = InMemDicomObject::new_empty();
        put_str(&mut image, tags::STUDY_INSTANCE_UID, VR::UI, "2.25.1");
        put_str(&mut image, tags::SERIES_INSTANCE_UID, VR::UI, "2.25.2");
        put_str(&mut image, tags::SOP_INSTANCE_UID, VR::UI, "2.25.3");
        put_str(
            &mut image,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        );
        put_str(&mut image, tags::PATIENT_ID, VR::LO, "YCU-000001");
        let list = [
            annotation(
                "Dr Alice Example",
                Some(Location::Box {
                    x: 1.0,
                    y: 2.0,
                    width: 3.0,
                    height: 4.0,
                }),
            ),
            annotation("Dr Bob Example", None),
        ];
        let (sr, series, sop) = build(&image, &list, "1.2.3.4", &uids, -10).unwrap();
        assert_eq!(read(&sr, tags::PATIENT_ID), "YCU-000001");
        assert_eq!(
            read(&sr, tags::CONTENT_DATE),
            "20231104",
            "shifted 10 days back"
        );
        assert_eq!(read(&sr, tags::SOP_INSTANCE_UID), sop);
        assert_eq!(read(&sr, tags::SERIES_INSTANCE_UID), series);
        let again = build(&image, &list, "1.2.3.4", &uids, -10).unwrap();
        assert_eq!((again.1, again.2), (series, sop));
        let text = format!("{sr:?}");
        assert!(text.contains("2.25.3"));
        assert!(!text.contains("Alice") && !text.contains("Bob"));
        assert!(text.contains(&reader_pseudonym("Dr Alice Example", &uids)));
        assert_ne!(
            reader_pseudonym("Dr Alice Example", &uids),
            reader_pseudonym("Dr Bob Example", &uids)
        );
    }
}
