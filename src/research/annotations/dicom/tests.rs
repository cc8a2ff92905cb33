//! The SR and GSPS readers on objects built here, shaped as highdicom,
//! DCMTK and viewers write them.

use dicom_core::value::{DataSetSequence, Value};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject, mem::InMemElement};

use super::*;
use crate::research::annotations::{Certainty, FindingType, Location};

const IMAGE: &str = "1.2.826.0.1.3680043.10.1001.1.1.1";
const OTHER_IMAGE: &str = "1.2.826.0.1.3680043.10.1001.1.1.2";

fn file(class: &str, elements: Vec<InMemElement>) -> DefaultDicomObject {
    let mut all = vec![
        text(tags::SOP_CLASS_UID, VR::UI, class),
        text(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            "1.2.826.0.1.3680043.10.1001.9.1",
        ),
    ];
    all.extend(elements);
    InMemDicomObject::from_element_iter(all)
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .unwrap()
}

fn text(tag: Tag, vr: VR, value: &str) -> InMemElement {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

fn floats(tag: Tag, values: &[f32]) -> InMemElement {
    DataElement::new(
        tag,
        VR::FL,
        PrimitiveValue::F32(values.iter().copied().collect()),
    )
}

fn seq(tag: Tag, items: Vec<InMemDicomObject>) -> InMemElement {
    DataElement::new(
        tag,
        VR::SQ,
        Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
    )
}

fn item(elements: Vec<InMemElement>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    item(vec![
        text(tags::CODE_VALUE, VR::SH, value),
        text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        text(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

/// A content item: relationship, value type, concept name, then its own
/// elements and children.
fn content(
    relationship: &str,
    value_type: &str,
    name: (&str, &str, &str),
    mut elements: Vec<InMemElement>,
    children: Vec<InMemDicomObject>,
) -> InMemDicomObject {
    elements.extend([
        text(tags::RELATIONSHIP_TYPE, VR::CS, relationship),
        text(tags::VALUE_TYPE, VR::CS, value_type),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code_item(name.0, name.1, name.2)],
        ),
    ]);
    if !children.is_empty() {
        elements.push(seq(tags::CONTENT_SEQUENCE, children));
    }
    item(elements)
}

fn coded(name: (&str, &str, &str), value: (&str, &str, &str)) -> InMemDicomObject {
    content(
        "CONTAINS",
        "CODE",
        name,
        vec![seq(
            tags::CONCEPT_CODE_SEQUENCE,
            vec![code_item(value.0, value.1, value.2)],
        )],
        vec![],
    )
}

fn image_item(relationship: &str, sop: &str) -> InMemDicomObject {
    content(
        relationship,
        "IMAGE",
        ("260753009", "SCT", "Source"),
        vec![seq(
            tags::REFERENCED_SOP_SEQUENCE,
            vec![item(vec![
                text(
                    tags::REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
                ),
                text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, sop),
            ])],
        )],
        vec![],
    )
}

fn scoord(value_type: &str, graphic: &str, data: &[f32], on: Option<&str>) -> InMemDicomObject {
    content(
        "CONTAINS",
        value_type,
        ("111030", "DCM", "Image Region"),
        vec![
            text(tags::GRAPHIC_TYPE, VR::CS, graphic),
            floats(tags::GRAPHIC_DATA, data),
        ],
        on.map(|sop| vec![image_item("SELECTED FROM", sop)])
            .unwrap_or_default(),
    )
}

const FINDING_NAME: (&str, &str, &str) = ("121071", "DCM", "Finding");
const SQUARE: [f32; 10] = [10.0, 10.0, 50.0, 10.0, 50.0, 40.0, 10.0, 40.0, 10.0, 10.0];

/// A TID 1500 report with the given measurement groups.
fn report(groups: Vec<InMemDicomObject>, extra: Vec<InMemElement>) -> DefaultDicomObject {
    let mut elements = vec![
        text(tags::VALUE_TYPE, VR::CS, "CONTAINER"),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code_item("126000", "DCM", "Imaging Measurement Report")],
        ),
        seq(
            tags::CONTENT_SEQUENCE,
            vec![
                content(
                    "HAS OBS CONTEXT",
                    "PNAME",
                    ("121008", "DCM", "Person Observer Name"),
                    vec![text(tags::PERSON_NAME, VR::PN, "Welby^Marcus")],
                    vec![],
                ),
                content(
                    "CONTAINS",
                    "CONTAINER",
                    ("111028", "DCM", "Image Library"),
                    vec![],
                    vec![content(
                        "CONTAINS",
                        "CONTAINER",
                        ("126200", "DCM", "Image Library Group"),
                        vec![],
                        vec![image_item("CONTAINS", OTHER_IMAGE)],
                    )],
                ),
                content(
                    "CONTAINS",
                    "CONTAINER",
                    ("126010", "DCM", "Imaging Measurements"),
                    vec![],
                    groups,
                ),
            ],
        ),
    ];
    elements.extend(extra);
    file(uids::COMPREHENSIVE3_DSR_STORAGE, elements)
}

fn group(children: Vec<InMemDicomObject>) -> InMemDicomObject {
    content(
        "CONTAINS",
        "CONTAINER",
        ("125007", "DCM", "Measurement Group"),
        vec![],
        children,
    )
}

#[test]
fn a_measurement_report_gives_one_annotation_per_region_and_image_level_findings() {
    let sr = report(
        vec![
            group(vec![
                coded(FINDING_NAME, ("27925004", "SCT", "Nodule")),
                scoord("SCOORD", "POLYLINE", &SQUARE, Some(IMAGE)),
            ]),
            group(vec![
                coded(FINDING_NAME, ("13645005", "SCT", "COPD")),
                coded(
                    ("C-1", "99X", "Certainty of finding"),
                    ("C-2", "99X", "Definite"),
                ),
            ]),
            // A plain measurement names no finding and is skipped.
            group(vec![scoord(
                "SCOORD",
                "POLYLINE",
                &[1.0, 1.0, 5.0, 5.0],
                Some(IMAGE),
            )]),
        ],
        vec![],
    );
    let found = annotations_of(&sr).unwrap();
    assert_eq!(found.len(), 2, "{found:#?}");
    let nodule = &found[0];
    assert_eq!(nodule.finding, FindingType::NoduleMass);
    assert_eq!(nodule.sop_instance_uid, IMAGE);
    assert_eq!(nodule.reader.as_deref(), Some("Welby^Marcus"));
    assert_eq!(nodule.certainty, Certainty::Probable);
    assert_eq!(
        nodule.location,
        Some(Location::Polygon(vec![
            [10.0, 10.0],
            [50.0, 10.0],
            [50.0, 40.0],
            [10.0, 40.0]
        ]))
    );
    let copd = &found[1];
    assert_eq!(copd.finding, FindingType::Copd);
    assert_eq!(copd.location, None);
    assert_eq!(
        copd.sop_instance_uid, OTHER_IMAGE,
        "the Image Library's image"
    );
    assert_eq!(copd.certainty, Certainty::Definite);
    // Stable ids: the same object gives the same ids again.
    let again = annotations_of(&sr).unwrap();
    assert_eq!(found[0].id, again[0].id);
    assert_ne!(found[0].id, found[1].id);
    assert!(found[0].id.as_ref().unwrap().starts_with("dicom-"));
}

#[test]
fn unknown_finding_codes_are_other_with_their_meaning() {
    let sr = report(
        vec![group(vec![
            coded(FINDING_NAME, ("X-7", "99LOCAL", "Pneumothorax")),
            scoord("SCOORD", "CIRCLE", &[30.0, 30.0, 30.0, 35.0], Some(IMAGE)),
        ])],
        vec![],
    );
    let found = annotations_of(&sr).unwrap();
    assert_eq!(found[0].finding, FindingType::Other);
    assert_eq!(found[0].finding_text.as_deref(), Some("Pneumothorax"));
    assert_eq!(
        found[0].location,
        Some(Location::Box {
            x: 25.0,
            y: 25.0,
            width: 10.0,
            height: 10.0
        })
    );
}

#[test]
fn reports_the_node_cannot_place_are_refused() {
    let in_3d = report(
        vec![group(vec![
            coded(FINDING_NAME, ("27925004", "SCT", "Nodule")),
            scoord("SCOORD3D", "POLYGON", &SQUARE, None),
        ])],
        vec![],
    );
    let refused = annotations_of(&in_3d).unwrap_err();
    assert!(
        matches!(&refused, NotAnAnnotation::Refused(r) if r.contains("SCOORD3D")),
        "{refused:?}"
    );
    let no_image = report(
        vec![group(vec![
            coded(FINDING_NAME, ("27925004", "SCT", "Nodule")),
            scoord("SCOORD", "POLYLINE", &SQUARE, None),
        ])],
        vec![],
    );
    assert!(matches!(
        annotations_of(&no_image),
        Err(NotAnAnnotation::Refused(r)) if r.contains("without the image")
    ));
    // A narrative report is not a template the node reads.
    let narrative = file(
        uids::BASIC_TEXT_SR_STORAGE,
        vec![
            text(tags::VALUE_TYPE, VR::CS, "CONTAINER"),
            seq(
                tags::CONCEPT_NAME_CODE_SEQUENCE,
                vec![code_item("18748-4", "LN", "Diagnostic Imaging Report")],
            ),
        ],
    );
    assert!(matches!(
        annotations_of(&narrative),
        Err(NotAnAnnotation::Refused(r)) if r.contains("template not understood")
    ));
    let empty = report(vec![], vec![]);
    assert!(matches!(
        annotations_of(&empty),
        Err(NotAnAnnotation::Nothing(_))
    ));
}

#[test]
fn our_own_results_and_images_are_not_annotations() {
    let ours = report(
        vec![group(vec![coded(
            FINDING_NAME,
            ("27925004", "SCT", "Nodule"),
        )])],
        vec![text(
            tags::SOFTWARE_VERSIONS,
            VR::LO,
            "chestnode 0.1.0\\1.2",
        )],
    );
    assert_eq!(annotations_of(&ours), Err(NotAnAnnotation::OwnResult));
    let image = file(uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION, vec![]);
    assert_eq!(annotations_of(&image), Err(NotAnAnnotation::OtherClass));
    assert!(is_annotation_class(uids::ENHANCED_SR_STORAGE));
    assert!(!is_annotation_class(uids::CT_IMAGE_STORAGE));
}

fn graphic(units: &str, kind: &str, data: &[f32]) -> InMemDicomObject {
    item(vec![
        text(tags::GRAPHIC_ANNOTATION_UNITS, VR::CS, units),
        DataElement::new(tags::GRAPHIC_DIMENSIONS, VR::US, PrimitiveValue::from(2u16)),
        DataElement::new(
            tags::NUMBER_OF_GRAPHIC_POINTS,
            VR::US,
            PrimitiveValue::from((data.len() / 2) as u16),
        ),
        floats(tags::GRAPHIC_DATA, data),
        text(tags::GRAPHIC_TYPE, VR::CS, kind),
    ])
}

fn presentation_state(
    annotations: Vec<InMemDicomObject>,
    extra: Vec<InMemElement>,
) -> DefaultDicomObject {
    let reference = item(vec![
        text(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        ),
        text(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, IMAGE),
    ]);
    let mut elements = vec![
        text(tags::CONTENT_LABEL, VR::CS, "MARKUP"),
        text(tags::CONTENT_CREATOR_NAME, VR::PN, "House^Gregory"),
        seq(
            tags::REFERENCED_SERIES_SEQUENCE,
            vec![item(vec![seq(
                tags::REFERENCED_IMAGE_SEQUENCE,
                vec![reference],
            )])],
        ),
        seq(
            tags::DISPLAYED_AREA_SELECTION_SEQUENCE,
            vec![item(vec![
                DataElement::new(
                    tags::DISPLAYED_AREA_TOP_LEFT_HAND_CORNER,
                    VR::SL,
                    PrimitiveValue::I32([1, 1].into_iter().collect()),
                ),
                DataElement::new(
                    tags::DISPLAYED_AREA_BOTTOM_RIGHT_HAND_CORNER,
                    VR::SL,
                    PrimitiveValue::I32([200, 100].into_iter().collect()),
                ),
            ])],
        ),
    ];
    if !annotations.is_empty() {
        elements.push(seq(tags::GRAPHIC_ANNOTATION_SEQUENCE, annotations));
    }
    elements.extend(extra);
    file(
        uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
        elements,
    )
}

fn labelled(label: &str, graphics: Vec<InMemDicomObject>) -> InMemDicomObject {
    item(vec![
        text(tags::GRAPHIC_LAYER, VR::CS, "LAYER"),
        seq(
            tags::TEXT_OBJECT_SEQUENCE,
            vec![item(vec![text(
                tags::UNFORMATTED_TEXT_VALUE,
                VR::ST,
                label,
            )])],
        ),
        seq(tags::GRAPHIC_OBJECT_SEQUENCE, graphics),
    ])
}

#[test]
fn a_presentation_state_gives_one_annotation_per_graphic() {
    let state = presentation_state(
        vec![
            labelled(
                "pneumonia",
                vec![
                    graphic("PIXEL", "POLYLINE", &SQUARE),
                    graphic("PIXEL", "POLYLINE", &[1.0, 1.0, 9.0, 9.0]), // a ruler
                    graphic("DISPLAY", "CIRCLE", &[0.5, 0.5, 0.625, 0.5]),
                ],
            ),
            labelled(
                "Possible RUL nodule",
                vec![graphic(
                    "PIXEL",
                    "ELLIPSE",
                    &[20.0, 30.0, 40.0, 30.0, 30.0, 25.0, 30.0, 35.0],
                )],
            ),
        ],
        vec![],
    );
    let found = annotations_of(&state).unwrap();
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found.iter().all(|a| a.sop_instance_uid == IMAGE));
    assert!(
        found
            .iter()
            .all(|a| a.reader.as_deref() == Some("House^Gregory"))
    );
    assert_eq!(found[0].finding, FindingType::Pneumonia);
    assert!(matches!(found[0].location, Some(Location::Polygon(ref p)) if p.len() == 4));
    // DISPLAY units over a 200×100 displayed area: centre (100, 50),
    // radius 25 pixels across.
    assert_eq!(
        found[1].location,
        Some(Location::Box {
            x: 75.0,
            y: 25.0,
            width: 50.0,
            height: 50.0
        })
    );
    assert_eq!(found[2].finding, FindingType::NoduleMass);
    assert_eq!(found[2].certainty, Certainty::Possible);
    assert_eq!(
        found[2].location,
        Some(Location::Box {
            x: 20.0,
            y: 25.0,
            width: 20.0,
            height: 10.0
        })
    );
}

#[test]
fn presentation_states_without_regions_hold_nothing_and_bad_graphics_refuse() {
    let window_only = presentation_state(vec![], vec![]);
    assert!(matches!(
        annotations_of(&window_only),
        Err(NotAnAnnotation::Nothing(_))
    ));
    let rotated = presentation_state(
        vec![labelled(
            "nodule",
            vec![graphic("DISPLAY", "CIRCLE", &[0.5, 0.5, 0.6, 0.5])],
        )],
        vec![DataElement::new(
            tags::IMAGE_ROTATION,
            VR::US,
            PrimitiveValue::from(90u16),
        )],
    );
    assert!(matches!(
        annotations_of(&rotated),
        Err(NotAnAnnotation::Nothing(r)) if r.contains("DISPLAY")
    ));
    let odd = presentation_state(
        vec![labelled(
            "nodule",
            vec![graphic("PIXEL", "SPLINE", &SQUARE)],
        )],
        vec![],
    );
    assert!(matches!(
        annotations_of(&odd),
        Err(NotAnAnnotation::Refused(r)) if r.contains("SPLINE")
    ));
}

fn shared(relative: &str) -> DefaultDicomObject {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/dicom")
        .join(relative);
    dicom_object::open_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn files_from_other_tools_read_as_expected() {
    // Another vendor's AI SR (device observer, algorithm identification).
    assert_eq!(
        annotations_of(&shared(
            "reference/tid1500_cxr_nodule_comprehensive3dsr.dcm"
        )),
        Err(NotAnAnnotation::DeviceResult)
    );
    // A highdicom SR with a person observer: a circle on a CT image.
    let found = annotations_of(&shared("misc/highdicom_sr_document.dcm")).unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].reader.as_deref(), Some("Foo"));
    assert_eq!(found[0].finding, FindingType::Other);
    assert_eq!(found[0].finding_text.as_deref(), Some("Spinal cord"));
    assert!(matches!(found[0].location, Some(Location::Box { .. })));
    // A GSPS whose label says "Nodule 87%": a polygon, no named reader.
    let found = annotations_of(&shared("reference/gsps_cxr_nodule_box.dcm")).unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].finding, FindingType::NoduleMass);
    assert_eq!(found[0].reader, None);
    assert_eq!(
        found[0].location,
        Some(Location::Polygon(vec![
            [100.0, 120.0],
            [180.0, 120.0],
            [180.0, 200.0],
            [100.0, 200.0]
        ]))
    );
}
