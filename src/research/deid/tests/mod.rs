//! Tests for the de-identification: every row of Table E.1-1 under the
//! hospital's options and with every option off (`table.rs`), UID
//! consistency across an image and the SR/GSPS that refer to it, date
//! intervals, exclusions and pixel cleaning (`objects.rs`). The helpers
//! that build objects live here.

mod objects;
mod table;

use dicom_core::{
    DataElement, Length, PrimitiveValue, Tag, VR,
    value::{DataSetSequence, Value},
};
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject, mem::InMemElement};

use super::*;

const OFFSET: i32 = -30;
const IMAGE_UID: &str = "1.2.826.0.1.3680043.8.498.1";
const STUDY_UID: &str = "1.2.826.0.1.3680043.8.498.2";
const SERIES_UID: &str = "1.2.826.0.1.3680043.8.498.3";
const CR: &str = "1.2.840.10008.5.1.4.1.1.1";
/// A sequence the table does not list, to carry a nested copy of the rows.
const CARRIER: Tag = Tag(0x0054, 0x0220);

fn patient() -> PatientKey {
    PatientKey {
        research_id: "RID-0042".into(),
        date_offset_days: OFFSET,
    }
}

fn remapper() -> UidRemapper {
    UidRemapper::new([42; 32])
}

fn all_off() -> DeidOptions {
    DeidOptions {
        retain_longitudinal_modified_dates: false,
        retain_patient_characteristics: false,
        clean_descriptors: false,
        retain_device_identity: false,
        clean_pixel_regions: Vec::new(),
    }
}

fn file(elements: Vec<InMemElement>) -> DefaultDicomObject {
    InMemDicomObject::from_element_iter(elements)
        .with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1"))
        .unwrap()
}

fn text(tag: Tag, vr: VR, value: &str) -> InMemElement {
    DataElement::new(tag, vr, PrimitiveValue::from(value))
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

fn strings(object: &InMemDicomObject, tag: Tag) -> Vec<String> {
    let element = object.get(tag).unwrap_or_else(|| panic!("{tag} missing"));
    element
        .value()
        .to_multi_str()
        .map(|v| {
            v.iter()
                .map(|s| s.trim_end_matches('\0').trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn one(object: &InMemDicomObject, tag: Tag) -> String {
    strings(object, tag).join("\\")
}
