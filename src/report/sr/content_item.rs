//! SR content items (PS3.3 C.17.3): the nodes of a structured report's
//! content tree, built as data set items.
//!
//! No crate builds SR content trees, so this is the one place that knows
//! how each value type is encoded: a relationship, a concept name, the
//! value attributes of its type and, for nested items, a Content Sequence.
//! Templates (`sr`) compose these and never touch tags themselves.

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::report::header::{closed_graphic_data, code_item, put_seq, put_str};

/// A coded concept: (code value, coding scheme designator, code meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub value: &'static str,
    pub scheme: &'static str,
    pub meaning: &'static str,
}

impl Code {
    pub const fn new(value: &'static str, scheme: &'static str, meaning: &'static str) -> Code {
        Code {
            value,
            scheme,
            meaning,
        }
    }

    /// The code as a code sequence item.
    pub fn item(&self) -> InMemDicomObject {
        code_item(self.value, self.scheme, self.meaning)
    }
}

/// How a content item relates to its parent (PS3.3 C.17.3.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relationship {
    Contains,
    HasObsContext,
    HasConceptMod,
    SelectedFrom,
}

impl Relationship {
    fn as_str(self) -> &'static str {
        match self {
            Relationship::Contains => "CONTAINS",
            Relationship::HasObsContext => "HAS OBS CONTEXT",
            Relationship::HasConceptMod => "HAS CONCEPT MOD",
            Relationship::SelectedFrom => "SELECTED FROM",
        }
    }
}

/// A reference to one image, as IMAGE content items and evidence carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
}

impl ImageReference {
    /// The Referenced SOP Sequence item.
    pub fn item(&self) -> InMemDicomObject {
        let mut item = InMemDicomObject::new_empty();
        put_str(
            &mut item,
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            &self.sop_class_uid,
        );
        put_str(
            &mut item,
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            &self.sop_instance_uid,
        );
        item
    }
}

/// Starts an item: relationship (absent on the root), value type and
/// concept name.
fn item(relationship: Option<Relationship>, value_type: &str, name: Code) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    if let Some(relationship) = relationship {
        put_str(
            &mut item,
            tags::RELATIONSHIP_TYPE,
            VR::CS,
            relationship.as_str(),
        );
    }
    put_str(&mut item, tags::VALUE_TYPE, VR::CS, value_type);
    put_seq(
        &mut item,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![name.item()],
    );
    item
}

/// Adds children to an item.
pub fn with_children(
    mut item: InMemDicomObject,
    children: Vec<InMemDicomObject>,
) -> InMemDicomObject {
    if !children.is_empty() {
        put_seq(&mut item, tags::CONTENT_SEQUENCE, children);
    }
    item
}

/// CONTAINER with separate (unrelated) children.
pub fn container(
    relationship: Relationship,
    name: Code,
    children: Vec<InMemDicomObject>,
) -> InMemDicomObject {
    let mut item = item(Some(relationship), "CONTAINER", name);
    put_str(&mut item, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    with_children(item, children)
}

/// The attributes of the root CONTAINER, for the SR document itself.
pub fn root_container(
    document: &mut InMemDicomObject,
    name: Code,
    template: &str,
    children: Vec<InMemDicomObject>,
) {
    put_str(document, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_seq(
        document,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![name.item()],
    );
    put_str(document, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    let mut template_item = InMemDicomObject::new_empty();
    put_str(&mut template_item, tags::MAPPING_RESOURCE, VR::CS, "DCMR");
    put_str(
        &mut template_item,
        tags::TEMPLATE_IDENTIFIER,
        VR::CS,
        template,
    );
    put_seq(
        document,
        tags::CONTENT_TEMPLATE_SEQUENCE,
        vec![template_item],
    );
    put_seq(document, tags::CONTENT_SEQUENCE, children);
}

/// CODE: a coded value.
pub fn code(relationship: Relationship, name: Code, value: Code) -> InMemDicomObject {
    let mut item = item(Some(relationship), "CODE", name);
    put_seq(&mut item, tags::CONCEPT_CODE_SEQUENCE, vec![value.item()]);
    item
}

/// TEXT: free text (UT).
pub fn text(relationship: Relationship, name: Code, value: &str) -> InMemDicomObject {
    let mut item = item(Some(relationship), "TEXT", name);
    put_str(&mut item, tags::TEXT_VALUE, VR::UT, value);
    item
}

/// UIDREF: a UID.
pub fn uidref(relationship: Relationship, name: Code, uid: &str) -> InMemDicomObject {
    let mut item = item(Some(relationship), "UIDREF", name);
    put_str(&mut item, tags::UID, VR::UI, uid);
    item
}

/// NUM: a measured value with units, written with `decimals` decimals.
pub fn num(
    relationship: Relationship,
    name: Code,
    value: f64,
    decimals: usize,
    unit: Code,
) -> InMemDicomObject {
    let mut item = item(Some(relationship), "NUM", name);
    let mut measured = InMemDicomObject::new_empty();
    put_str(
        &mut measured,
        tags::NUMERIC_VALUE,
        VR::DS,
        &format_decimal(value, decimals),
    );
    put_seq(
        &mut measured,
        tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
        vec![unit.item()],
    );
    put_seq(&mut item, tags::MEASURED_VALUE_SEQUENCE, vec![measured]);
    item
}

/// A DS value: fixed decimals, at most 16 characters.
fn format_decimal(value: f64, decimals: usize) -> String {
    let value = if value.is_finite() { value } else { 0.0 };
    let mut text = format!("{value:.decimals$}");
    if text.len() > 16 {
        text = format!("{value:.3e}");
    }
    text
}

/// IMAGE: a reference to an image.
pub fn image(
    relationship: Relationship,
    name: Code,
    reference: &ImageReference,
) -> InMemDicomObject {
    let mut item = item(Some(relationship), "IMAGE", name);
    put_seq(
        &mut item,
        tags::REFERENCED_SOP_SEQUENCE,
        vec![reference.item()],
    );
    item
}

/// SCOORD POLYLINE through `points` (column, row in pixels), closed by
/// repeating the first point, selected from `source`.
pub fn closed_polyline(
    relationship: Relationship,
    name: Code,
    points: &[[f32; 2]],
    source: &ImageReference,
    source_name: Code,
) -> InMemDicomObject {
    let mut item = item(Some(relationship), "SCOORD", name);
    put_str(&mut item, tags::GRAPHIC_TYPE, VR::CS, "POLYLINE");
    let data = closed_graphic_data(points);
    item.put(dicom_core::DataElement::new(
        tags::GRAPHIC_DATA,
        VR::FL,
        dicom_core::PrimitiveValue::F32(data.into()),
    ));
    let selected_from = image(Relationship::SelectedFrom, source_name, source);
    with_children(item, vec![selected_from])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::attributes::text as read_text;

    const NAME: Code = Code::new("111030", "DCM", "Image Region");

    #[test]
    fn a_polyline_is_closed_and_references_its_image() {
        let source = ImageReference {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.1.1".into(),
            sop_instance_uid: "1.2.3".into(),
        };
        let item = closed_polyline(
            Relationship::Contains,
            NAME,
            &[[1.0, 2.0], [3.0, 2.0], [3.0, 4.0]],
            &source,
            Code::new("260753009", "SCT", "Source"),
        );
        let data = item
            .get(tags::GRAPHIC_DATA)
            .unwrap()
            .to_multi_float32()
            .unwrap();
        assert_eq!(data, vec![1.0, 2.0, 3.0, 2.0, 3.0, 4.0, 1.0, 2.0]);
        let child = &item.get(tags::CONTENT_SEQUENCE).unwrap().items().unwrap()[0];
        assert_eq!(
            read_text(child, tags::RELATIONSHIP_TYPE).unwrap(),
            "SELECTED FROM"
        );
    }

    #[test]
    fn numbers_fit_a_decimal_string() {
        assert_eq!(format_decimal(87.04, 1), "87.0");
        assert_eq!(format_decimal(f64::NAN, 1), "0.0");
        assert!(format_decimal(1e30, 1).len() <= 16);
    }
}
