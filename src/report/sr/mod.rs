//! The TID 1500 Imaging Measurement Report, as IHE AI Results (AIR)
//! profiles it, in a Comprehensive 3D SR document.
//!
//! ```text
//! Imaging Measurement Report (TID 1500)
//! ├─ language, observer context (device: UID, name, manufacturer, model)
//! ├─ procedure reported: XR chest single view (LOINC)
//! └─ Imaging Measurements
//!    ├─ Measurement Group (TID 1501): image-level result
//!    │  ├─ tracking identifier + UID, algorithm (TID 4019)
//!    │  ├─ Finding = Normal | Abnormal, Certainty of Finding %
//!    │  └─ Certainty of Finding % per category (Finding = category code)
//!    └─ Measurement Group (TID 1410) per localised finding
//!       ├─ tracking identifier + UID, category, finding, sites, algorithm
//!       ├─ Certainty of Finding %, long and short axis in mm
//!       └─ Bounded by: SCOORD POLYLINE (closed) selected from the source image
//! ```
//!
//! Images that were not analysed get no SR at all (see `worker`).

pub(crate) mod codes;
pub(crate) mod content_item;
mod sites;

use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use self::codes::*;
use self::content_item::{
    Code, ImageReference, Relationship, closed_polyline, code, container, image, num,
    root_container, text, uidref, with_children,
};
use self::sites::overlapped_structures;
use super::header::{ResultContext, ResultObject, put_seq, put_str};
use super::uids::UidRole;
use crate::analysis::AnalysisResult;
use crate::config::ResultKind;
use crate::findings::{Category, CategoryCall, LocalisedFinding, axes_mm};
use crate::imaging::attributes::text as read_text;

use Relationship::{Contains, HasConceptMod, HasObsContext};

/// Builds the Comprehensive 3D SR for one analysed image.
pub fn structured_report(
    context: &ResultContext,
    result: &AnalysisResult,
) -> anyhow::Result<ResultObject> {
    let sop_class_uid = uids::COMPREHENSIVE3_DSR_STORAGE;
    let (mut document, sop_instance_uid) = context.header(ResultKind::Sr, sop_class_uid, "SR")?;
    document_modules(context, &mut document);

    let source = ImageReference {
        sop_class_uid: context.source_class_uid(),
        sop_instance_uid: context.source_instance_uid(),
    };
    let mut groups = vec![image_level_group(context, result, &source)];
    for (index, finding) in result.findings.localised.iter().enumerate() {
        groups.push(finding_group(context, result, index, finding, &source));
    }

    let mut content = vec![
        code(HasConceptMod, LANGUAGE_OF_CONTENT, ENGLISH_US),
        code(HasObsContext, OBSERVER_TYPE, DEVICE),
        uidref(
            HasObsContext,
            DEVICE_OBSERVER_UID,
            &context.uid(ResultKind::Sr, UidRole::Device),
        ),
        text(HasObsContext, DEVICE_OBSERVER_NAME, &device_name(context)),
        text(
            HasObsContext,
            DEVICE_OBSERVER_MANUFACTURER,
            &context.settings.manufacturer,
        ),
        text(
            HasObsContext,
            DEVICE_OBSERVER_MODEL_NAME,
            &context.model.name,
        ),
        code(HasConceptMod, PROCEDURE_REPORTED, XR_CHEST_SINGLE_VIEW),
    ];
    content.push(container(Contains, IMAGING_MEASUREMENTS, groups));
    root_container(&mut document, IMAGING_MEASUREMENT_REPORT, "1500", content);

    Ok(ResultObject {
        kind: ResultKind::Sr,
        sop_class_uid,
        sop_instance_uid,
        dataset: document,
    })
}

/// The device observer's name: the node and the model, with the
/// research-use statement when it applies.
fn device_name(context: &ResultContext) -> String {
    let name = format!("chestnode {}", context.model.name);
    if context.model.research_use_only {
        format!("{name} (research use only, not for diagnosis)")
    } else {
        name
    }
}

/// SR Document General and Enhanced General Equipment, beyond the header.
fn document_modules(context: &ResultContext, document: &mut InMemDicomObject) {
    put_seq(
        document,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        Vec::new(),
    );
    put_str(document, tags::DEVICE_SERIAL_NUMBER, VR::LO, "1");
    put_str(document, tags::CONTENT_DATE, VR::DA, &context.created_date);
    put_str(document, tags::CONTENT_TIME, VR::TM, &context.created_time);
    put_str(document, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put_str(document, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    put_seq(
        document,
        tags::PERFORMED_PROCEDURE_CODE_SEQUENCE,
        Vec::new(),
    );

    // The evidence: the one source image, in its study and series.
    let mut series = InMemDicomObject::new_empty();
    put_seq(
        &mut series,
        tags::REFERENCED_SOP_SEQUENCE,
        vec![context.source_reference()],
    );
    put_str(
        &mut series,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &read_text(context.source, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
    );
    let mut study = InMemDicomObject::new_empty();
    put_seq(&mut study, tags::REFERENCED_SERIES_SEQUENCE, vec![series]);
    put_str(
        &mut study,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        &read_text(context.source, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
    );
    put_seq(
        document,
        tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
        vec![study],
    );

    // The model as contributing equipment.
    let mut equipment = InMemDicomObject::new_empty();
    put_str(
        &mut equipment,
        tags::MANUFACTURER,
        VR::LO,
        &context.settings.manufacturer,
    );
    put_str(
        &mut equipment,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        &context.model.name,
    );
    put_str(
        &mut equipment,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        &context.model.version,
    );
    put_str(
        &mut equipment,
        tags::CONTRIBUTION_DESCRIPTION,
        VR::ST,
        &format!(
            "Processing algorithm: {} {}. {}",
            context.model.name,
            context.model.version,
            context.intended_use()
        ),
    );
    put_seq(
        &mut equipment,
        tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
        vec![PROCESSING_EQUIPMENT.item()],
    );
    put_seq(
        document,
        tags::CONTRIBUTING_EQUIPMENT_SEQUENCE,
        vec![equipment],
    );
}

/// TID 4019 Algorithm Identification.
fn algorithm(context: &ResultContext) -> Vec<InMemDicomObject> {
    vec![
        text(HasConceptMod, ALGORITHM_NAME, &context.model.name),
        text(HasConceptMod, ALGORITHM_VERSION, &context.model.version),
        text(
            HasConceptMod,
            ALGORITHM_MANUFACTURER,
            &context.settings.manufacturer,
        ),
    ]
}

fn percent(probability: f32) -> f64 {
    (probability as f64 * 100.0).clamp(0.0, 100.0)
}

/// Whether the image as a whole is abnormal, and how certain that is.
fn image_level_call(categories: &[CategoryCall]) -> (Code, f32) {
    let call = |category| categories.iter().find(|c| c.category == category);
    let abnormality = call(Category::AnyAbnormality).filter(|c| c.assessed);
    let any_positive = categories
        .iter()
        .any(|c| c.positive && c.category != Category::Normal);
    let p_abnormal = abnormality.map_or_else(
        || {
            categories
                .iter()
                .filter(|c| c.assessed && c.category != Category::Normal)
                .map(|c| c.probability)
                .fold(0.0, f32::max)
        },
        |c| c.probability,
    );
    if any_positive {
        (ABNORMAL, p_abnormal)
    } else {
        (NORMAL, 1.0 - p_abnormal)
    }
}

/// TID 1501: the image-level result and every category's probability.
fn image_level_group(
    context: &ResultContext,
    result: &AnalysisResult,
    source: &ImageReference,
) -> InMemDicomObject {
    let categories = &result.findings.categories;
    let (finding, certainty) = image_level_call(categories);
    let mut items = vec![
        text(HasObsContext, TRACKING_IDENTIFIER, "Image-level result"),
        uidref(
            HasObsContext,
            TRACKING_UID,
            &context.uid(ResultKind::Sr, UidRole::Tracking(0)),
        ),
        code(Contains, FINDING, finding),
    ];
    items.extend(algorithm(context));
    items.push(num(
        Contains,
        CERTAINTY_OF_FINDING,
        percent(certainty),
        1,
        PERCENT,
    ));
    for call in categories.iter().filter(|c| c.assessed) {
        let mut modifiers = vec![code(
            HasConceptMod,
            FINDING,
            codes::category_finding(call.category),
        )];
        if call.category == Category::MediastinalMass {
            modifiers.push(code(HasConceptMod, FINDING_SITE, MEDIASTINUM));
        }
        items.push(with_children(
            num(
                Contains,
                CERTAINTY_OF_FINDING,
                percent(call.probability),
                1,
                PERCENT,
            ),
            modifiers,
        ));
    }
    items.push(image(Contains, SOURCE_OF_MEASUREMENT, source));
    container(Contains, MEASUREMENT_GROUP, items)
}

/// TID 1410: one localised finding with its outline on the source image.
fn finding_group(
    context: &ResultContext,
    result: &AnalysisResult,
    index: usize,
    finding: &LocalisedFinding,
    source: &ImageReference,
) -> InMemDicomObject {
    let region = &finding.region;
    let axes = result
        .pixel_spacing_mm
        .and_then(|spacing| axes_mm(&region.outline, spacing));
    let finding_code =
        codes::localised_finding(finding.category, &finding.label, axes.map(|[long, _]| long));
    let number = index as u32 + 1;
    let mut items = vec![
        text(
            HasObsContext,
            TRACKING_IDENTIFIER,
            &format!("Finding {number}: {}", finding.category.title()),
        ),
        uidref(
            HasObsContext,
            TRACKING_UID,
            &context.uid(ResultKind::Sr, UidRole::Tracking(number)),
        ),
        code(
            Contains,
            FINDING_CATEGORY,
            MORPHOLOGICALLY_ABNORMAL_STRUCTURE,
        ),
        code(Contains, FINDING, finding_code),
    ];
    let sites = codes::primary_site(finding.category)
        .into_iter()
        .chain(overlapped_structures(
            region.bounding_box,
            result.image_size,
        ));
    for site in sites {
        items.push(code(HasConceptMod, FINDING_SITE, site));
    }
    items.extend(algorithm(context));
    items.push(num(
        Contains,
        CERTAINTY_OF_FINDING,
        percent(finding.probability),
        1,
        PERCENT,
    ));
    if let Some([long, short]) = axes {
        items.push(num(Contains, LONG_AXIS, long, 1, MILLIMETRE));
        items.push(num(Contains, SHORT_AXIS, short, 1, MILLIMETRE));
    }
    items.push(code(Contains, GEOMETRIC_PURPOSE, BOUNDED_BY));
    items.push(closed_polyline(
        Contains,
        IMAGE_REGION,
        &region.outline,
        source,
        SOURCE,
    ));
    container(Contains, MEASUREMENT_GROUP, items)
}
