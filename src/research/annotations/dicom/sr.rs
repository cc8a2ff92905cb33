//! Reading a TID 1500 Imaging Measurement Report as annotations.
//!
//! ```text
//! Imaging Measurement Report (126000, DCM; TID 1500)
//! ├─ observer context: Person Observer Name (121008) → the reader
//! ├─ Image Library (111028): the images, for image-level findings
//! ├─ Imaging Measurements (126010)
//! │  └─ Measurement Group (125007; TID 1501 / 1410)
//! │     ├─ Finding (121071) or Finding Category (276214006) → finding type
//! │     ├─ a certainty, as words or percent (optional; default probable)
//! │     ├─ source IMAGE items (TID 1501)
//! │     └─ SCOORD region ─ SELECTED FROM ─ IMAGE → location on that image
//! └─ Qualitative Evaluations (126011): Finding codes of the whole study
//! ```
//!
//! A finding with no region is about the whole image: the group's source
//! images, else the Image Library, else the Current Requested Procedure
//! Evidence. A group that names no finding (a plain measurement) is
//! skipped; a group the reader cannot place (3-D coordinates, a region
//! without its image) refuses the whole document.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::NotAnAnnotation;
use super::content::{
    Code, children, coded_value, concept, images_below, item_text, named, numeric_value, points,
    referenced_instances, relationship, value_type,
};
use super::shape::{Shape, shape};
use super::vocabulary::{certainty_of_percent, certainty_of_text, finding_of_code};
use crate::imaging::attributes::{first_item, text};
use crate::research::annotations::{Certainty, FindingType, Location, NewAnnotation};

const REPORT: (&str, &str) = ("126000", "DCM");
const IMAGING_MEASUREMENTS: (&str, &str) = ("126010", "DCM");
const MEASUREMENT_GROUP: (&str, &str) = ("125007", "DCM");
const FINDING: (&str, &str) = ("121071", "DCM");
const FINDING_CATEGORY: (&str, &str) = ("276214006", "SCT");
const QUALITATIVE_EVALUATIONS: (&str, &str) = ("126011", "DCM");
const IMAGE_LIBRARY: (&str, &str) = ("111028", "DCM");
const PERSON_OBSERVER_NAME: (&str, &str) = ("121008", "DCM");
const DEVICE_OBSERVER_NAME: (&str, &str) = ("121013", "DCM");
const OBSERVER_TYPE: (&str, &str) = ("121005", "DCM");
const DEVICE: (&str, &str) = ("121007", "DCM");
const ALGORITHM_NAME: (&str, &str) = ("111001", "DCM");

/// The annotations of an SR document, with its reader when it names one.
pub fn annotations(document: &InMemDicomObject) -> Result<Vec<NewAnnotation>, NotAnAnnotation> {
    let title = concept(document);
    let template = first_item(document, tags::CONTENT_TEMPLATE_SEQUENCE)
        .and_then(|t| text(t, tags::TEMPLATE_IDENTIFIER));
    let is_report = title.as_ref().is_some_and(|t| t.is(REPORT.0, REPORT.1))
        || template.as_deref() == Some("1500");
    if !is_report {
        return Err(NotAnAnnotation::Refused(format!(
            "SR template not understood: the document is {}{}; only TID 1500 \
             Imaging Measurement Reports are read as annotations",
            title.map_or_else(|| "untitled".to_owned(), |t| t.describe()),
            template.map_or_else(String::new, |t| format!(" (TID {t})")),
        )));
    }
    let top = children(document);
    let library: Vec<String> = top
        .iter()
        .filter(|i| named(i, IMAGE_LIBRARY.0, IMAGE_LIBRARY.1))
        .flat_map(|i| images_below(children(i)))
        .collect();
    let whole_study = if library.is_empty() {
        evidence(document)
    } else {
        library
    };

    let groups: Vec<&InMemDicomObject> = top
        .iter()
        .filter(|i| named(i, IMAGING_MEASUREMENTS.0, IMAGING_MEASUREMENTS.1))
        .flat_map(children)
        .filter(|i| named(i, MEASUREMENT_GROUP.0, MEASUREMENT_GROUP.1))
        .collect();
    let mut found = Vec::new();
    for (index, group) in groups.iter().enumerate() {
        let annotations = group_annotations(group, &whole_study).map_err(|reason| {
            NotAnAnnotation::Refused(format!("measurement group {}: {reason}", index + 1))
        })?;
        found.extend(annotations);
    }
    // Findings of the whole study, outside any group.
    for evaluation in top
        .iter()
        .filter(|i| named(i, QUALITATIVE_EVALUATIONS.0, QUALITATIVE_EVALUATIONS.1))
        .flat_map(children)
        .filter(|i| named(i, FINDING.0, FINDING.1))
    {
        if let Some(code) = coded_value(evaluation) {
            if whole_study.is_empty() {
                return Err(NotAnAnnotation::Refused(format!(
                    "the finding {} names no image",
                    code.describe()
                )));
            }
            found.extend(image_level(&code, Certainty::Probable, &whole_study));
        }
    }
    if found.is_empty() {
        return Err(NotAnAnnotation::Nothing(format!(
            "the measurement report's {} measurement group(s) name no finding",
            groups.len()
        )));
    }
    let reader = observer(document);
    for annotation in &mut found {
        annotation.reader = reader.clone();
    }
    Ok(found)
}

/// The annotations of one measurement group; none when it names no finding.
fn group_annotations(
    group: &InMemDicomObject,
    whole_study: &[String],
) -> Result<Vec<NewAnnotation>, String> {
    let items = children(group);
    let coded = |wanted: (&str, &str)| {
        items
            .iter()
            .filter(|i| value_type(i) == "CODE" && named(i, wanted.0, wanted.1))
            .find_map(coded_value)
    };
    let codes: Vec<Code> = [coded(FINDING), coded(FINDING_CATEGORY)]
        .into_iter()
        .flatten()
        .collect();
    // The most specific: the first code that maps to one of our findings.
    let Some(code) = codes
        .iter()
        .find(|c| finding_of_code(c).0 != FindingType::Other)
        .or(codes.first())
    else {
        return Ok(Vec::new());
    };
    let certainty = certainty(items).unwrap_or(Certainty::Probable);

    let mut found = Vec::new();
    let mut placed = false;
    for region in items.iter().filter(|i| value_type(i).starts_with("SCOORD")) {
        if value_type(region) != "SCOORD" {
            return Err("3-D coordinates (SCOORD3D) cannot be placed on a radiograph".into());
        }
        let graphic = text(region, tags::GRAPHIC_TYPE).unwrap_or_default();
        let outline = points(region).ok_or("a region without valid graphic data")?;
        let images = images_below(children(region));
        if images.is_empty() {
            return Err(format!(
                "a {graphic} region without the image it was drawn on"
            ));
        }
        let located = match shape(&graphic, &outline)? {
            Shape::Region(location) => Some(location),
            Shape::Point | Shape::Line => None,
        };
        for sop in images {
            found.push(annotation(code, certainty, &sop, located.clone()));
        }
        placed = true;
    }
    if !placed {
        let sources: Vec<String> = items
            .iter()
            .filter(|i| value_type(i) == "IMAGE")
            .flat_map(referenced_instances)
            .collect();
        let images = if sources.is_empty() {
            whole_study
        } else {
            &sources
        };
        if images.is_empty() {
            return Err(format!(
                "the finding {} has no region and names no image",
                code.describe()
            ));
        }
        found.extend(image_level(code, certainty, images));
    }
    Ok(found)
}

/// One image-level annotation per image (each image once).
fn image_level(code: &Code, certainty: Certainty, images: &[String]) -> Vec<NewAnnotation> {
    let mut seen = std::collections::BTreeSet::new();
    images
        .iter()
        .filter(|sop| seen.insert(sop.as_str()))
        .map(|sop| annotation(code, certainty, sop, None))
        .collect()
}

fn annotation(
    code: &Code,
    certainty: Certainty,
    sop: &str,
    location: Option<Location>,
) -> NewAnnotation {
    let (finding, finding_text) = finding_of_code(code);
    NewAnnotation {
        id: None,
        sop_instance_uid: sop.to_owned(),
        reader: None,
        finding,
        finding_text,
        location,
        ct: None,
        certainty,
        confirmed: None,
        deleted: false,
    }
}

/// A certainty among a group's items: a coded value or a percentage whose
/// concept speaks of certainty, likelihood, probability or confidence.
fn certainty(items: &[InMemDicomObject]) -> Option<Certainty> {
    items.iter().find_map(|item| {
        let name = concept(item)?.meaning.to_lowercase();
        let about = ["certainty", "likelihood", "probability", "confidence"]
            .iter()
            .any(|w| name.contains(w));
        if !about {
            return None;
        }
        match value_type(item).as_str() {
            "CODE" => certainty_of_text(&coded_value(item)?.meaning),
            "NUM" => Some(certainty_of_percent(numeric_value(item)?)),
            "TEXT" => certainty_of_text(&item_text(item, tags::TEXT_VALUE)?),
            _ => None,
        }
    })
}

/// The person who made the report: the Person Observer Name of the
/// observer context, else the Author Observer Sequence.
fn observer(document: &InMemDicomObject) -> Option<String> {
    let context = children(document)
        .iter()
        .filter(|i| relationship(i) == "HAS OBS CONTEXT")
        .filter(|i| named(i, PERSON_OBSERVER_NAME.0, PERSON_OBSERVER_NAME.1))
        .find_map(|i| item_text(i, tags::PERSON_NAME).or_else(|| item_text(i, tags::TEXT_VALUE)));
    let author = || {
        document
            .get(tags::AUTHOR_OBSERVER_SEQUENCE)?
            .items()?
            .iter()
            .filter(|a| text(a, tags::OBSERVER_TYPE).is_none_or(|t| t == "PSN"))
            .find_map(|a| item_text(a, tags::PERSON_NAME))
    };
    context.or_else(author).and_then(|n| super::reader_name(&n))
}

/// Whether a device made the report: it names an algorithm (TID 4019)
/// anywhere, or its only observer is a device.
pub fn made_by_a_device(document: &InMemDicomObject) -> bool {
    fn names_algorithm(items: &[InMemDicomObject]) -> bool {
        items
            .iter()
            .any(|i| named(i, ALGORITHM_NAME.0, ALGORITHM_NAME.1) || names_algorithm(children(i)))
    }
    let top = children(document);
    let device_observer = top.iter().any(|i| {
        named(i, OBSERVER_TYPE.0, OBSERVER_TYPE.1)
            && coded_value(i).is_some_and(|c| c.is(DEVICE.0, DEVICE.1))
    });
    names_algorithm(top) || (device_observer && observer(document).is_none())
}

/// The Device Observer Name of the document's observer context.
pub fn device_observer_name(document: &InMemDicomObject) -> Option<String> {
    children(document)
        .iter()
        .filter(|i| named(i, DEVICE_OBSERVER_NAME.0, DEVICE_OBSERVER_NAME.1))
        .find_map(|i| item_text(i, tags::TEXT_VALUE))
}

/// The instances of the Current Requested Procedure Evidence Sequence.
fn evidence(document: &InMemDicomObject) -> Vec<String> {
    let items = |object: &InMemDicomObject, tag| {
        object
            .get(tag)
            .and_then(|e| e.items())
            .map(|i| i.to_vec())
            .unwrap_or_default()
    };
    items(
        document,
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
    )
    .iter()
    .flat_map(|study| items(study, tags::REFERENCED_SERIES_SEQUENCE))
    .flat_map(|series| items(&series, tags::REFERENCED_SOP_SEQUENCE))
    .filter_map(|sop| text(&sop, tags::REFERENCED_SOP_INSTANCE_UID))
    .collect()
}
