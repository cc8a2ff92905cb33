//! Reading SR content items (PS3.3 C.17.3): the concept name, value type,
//! relationship, coded and text values, and the children of an item, as
//! the TID 1500 reader walks them. Missing or malformed values read as
//! absent; the reader decides what is required.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::imaging::attributes::{first_item, text};

/// A coded concept: value, scheme and meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub value: String,
    pub scheme: String,
    pub meaning: String,
}

impl Code {
    /// Whether this is `value` in `scheme` (SNOMED's old and new
    /// designators count as the same).
    pub fn is(&self, value: &str, scheme: &str) -> bool {
        let same_scheme = |a: &str, b: &str| {
            let snomed = |s: &str| matches!(s, "SCT" | "SRT" | "SNM3");
            a.eq_ignore_ascii_case(b) || (snomed(a) && snomed(b))
        };
        self.value == value && same_scheme(&self.scheme, scheme)
    }

    /// `meaning (scheme value)`, for messages.
    pub fn describe(&self) -> String {
        format!("{} ({} {})", self.meaning, self.scheme, self.value)
    }
}

/// The first item of a code sequence as a [`Code`].
pub fn code_in(object: &InMemDicomObject, sequence: Tag) -> Option<Code> {
    let item = first_item(object, sequence)?;
    let value = text(item, tags::CODE_VALUE)
        .or_else(|| text(item, tags::LONG_CODE_VALUE))
        .or_else(|| text(item, tags::URN_CODE_VALUE))?;
    Some(Code {
        value,
        scheme: text(item, tags::CODING_SCHEME_DESIGNATOR).unwrap_or_default(),
        meaning: item_text(item, tags::CODE_MEANING).unwrap_or_default(),
    })
}

/// A text value with every component (not only the first), trimmed.
pub fn item_text(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = object.get(tag)?.to_str().ok()?;
    let trimmed = value.trim_matches(|c: char| c == ' ' || c == '\0');
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// The concept name of a content item.
pub fn concept(item: &InMemDicomObject) -> Option<Code> {
    code_in(item, tags::CONCEPT_NAME_CODE_SEQUENCE)
}

/// Whether the item's concept name is `value` in `scheme`.
pub fn named(item: &InMemDicomObject, value: &str, scheme: &str) -> bool {
    concept(item).is_some_and(|c| c.is(value, scheme))
}

/// The value type (`CONTAINER`, `CODE`, `SCOORD`, …), upper case.
pub fn value_type(item: &InMemDicomObject) -> String {
    text(item, tags::VALUE_TYPE)
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// The relationship type (`CONTAINS`, `HAS OBS CONTEXT`, …), upper case.
pub fn relationship(item: &InMemDicomObject) -> String {
    item_text(item, tags::RELATIONSHIP_TYPE)
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// The children of a content item (or the document's top level).
pub fn children(item: &InMemDicomObject) -> &[InMemDicomObject] {
    item.get(tags::CONTENT_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap_or(&[])
}

/// The coded value of a CODE item.
pub fn coded_value(item: &InMemDicomObject) -> Option<Code> {
    code_in(item, tags::CONCEPT_CODE_SEQUENCE)
}

/// The number of a NUM item.
pub fn numeric_value(item: &InMemDicomObject) -> Option<f64> {
    let measured = first_item(item, tags::MEASURED_VALUE_SEQUENCE)?;
    crate::imaging::attributes::first_f64(measured, tags::NUMERIC_VALUE)
}

/// The SOP Instance UIDs an IMAGE (or COMPOSITE) item references.
pub fn referenced_instances(item: &InMemDicomObject) -> Vec<String> {
    item.get(tags::REFERENCED_SOP_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap_or(&[])
        .iter()
        .filter_map(|r| text(r, tags::REFERENCED_SOP_INSTANCE_UID))
        .collect()
}

/// Every IMAGE item at or below `items`, depth first.
pub fn images_below(items: &[InMemDicomObject]) -> Vec<String> {
    let mut found = Vec::new();
    for item in items {
        if value_type(item) == "IMAGE" {
            found.extend(referenced_instances(item));
        }
        found.extend(images_below(children(item)));
    }
    found
}

/// The 2-D graphic data of an item (SCOORD or GSPS graphic object) as
/// (column, row) points, to a thousandth of a pixel (graphic data is
/// 32-bit: 10.1 would read as 10.100000381…); `None` when absent, odd or
/// not finite.
pub fn points(item: &InMemDicomObject) -> Option<Vec<[f64; 2]>> {
    let values = item.get(tags::GRAPHIC_DATA)?.to_multi_float64().ok()?;
    if values.is_empty() || values.len() % 2 != 0 || !values.iter().all(|v| v.is_finite()) {
        return None;
    }
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    Some(
        values
            .chunks_exact(2)
            .map(|p| [round(p[0]), round(p[1])])
            .collect(),
    )
}
