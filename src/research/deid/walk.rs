//! Applies the profile to every element of a data set, at every nesting
//! level: the table's action where the table lists the tag, and the rules
//! that hold for every element regardless of the table (private groups
//! removed, UIDs replaced, dates shifted).
//!
//! Elements the table does not list are kept, except that private (odd
//! group) and group-length elements are removed, every UI value is
//! remapped, DA/DT values are shifted (or emptied when the longitudinal
//! option is off, so no real date survives), and person names the table
//! misses (a few DICONDE reviewer names) are emptied.
//!
//! SR free text (Text Value, which the table covers only through the
//! whole Content Sequence) is cleaned like a descriptor wherever it
//! occurs: removing it would leave TEXT content items invalid, and keeping
//! it verbatim could keep a name.

use dicom_core::{
    DataElement, Length, PrimitiveValue, Tag, VR,
    header::Header,
    value::{DataSetSequence, Value},
};
use dicom_object::{InMemDicomObject, mem::InMemElement};

use super::clean::Identifiers;
use super::profile::{Action, profile};
use super::{DeidOptions, PatientKey, UidRemapper, dates, uids};

const PATIENT_NAME: Tag = Tag(0x0010, 0x0010);
const PATIENT_ID: Tag = Tag(0x0010, 0x0020);
const TEXT_VALUE: Tag = Tag(0x0040, 0xA160);

/// The text put where the profile asks for a dummy value.
pub(super) const DUMMY_TEXT: &str = "ANONYMIZED";

/// Counts of what was done, for the export report.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) removed: usize,
    pub(super) replaced: usize,
    pub(super) remapped_uids: usize,
    pub(super) shifted_dates: usize,
}

/// One de-identification pass over one object.
pub(super) struct Walker<'a> {
    pub(super) patient: &'a PatientKey,
    pub(super) uids: &'a UidRemapper,
    pub(super) options: &'a DeidOptions,
    pub(super) identifiers: &'a Identifiers,
    pub(super) counts: Counts,
}

impl Walker<'_> {
    /// The de-identified copy of `source`.
    pub(super) fn data_set(&mut self, source: &InMemDicomObject) -> InMemDicomObject {
        let mut kept = Vec::new();
        for element in source.iter() {
            match self.element(element) {
                Some(new) => kept.push(new),
                None => self.counts.removed += 1,
            }
        }
        InMemDicomObject::from_element_iter(kept)
    }

    fn element(&mut self, element: &InMemElement) -> Option<InMemElement> {
        let tag = element.tag();
        let vr = element.vr();
        if tag.0 % 2 == 1 || tag.1 == 0x0000 {
            return None;
        }
        if tag == PATIENT_NAME || tag == PATIENT_ID {
            self.counts.replaced += 1;
            let id = self.patient.research_id.as_str();
            return Some(DataElement::new(tag, vr, PrimitiveValue::from(id)));
        }
        if tag == TEXT_VALUE {
            // Type 1 in a TEXT content item: never left empty
            let cleaned = self.clean(element);
            if strings(&cleaned).iter().all(|v| v.trim().is_empty()) {
                return Some(DataElement::new(tag, vr, PrimitiveValue::from(DUMMY_TEXT)));
            }
            return Some(cleaned);
        }
        let Some(row) = profile().row(tag) else {
            if vr == VR::PN {
                self.counts.replaced += 1;
                return Some(empty(tag, vr));
            }
            return Some(self.unlisted(element));
        };
        match row.action(self.options, vr) {
            Action::Remove => None,
            Action::Empty => {
                self.counts.replaced += 1;
                Some(empty(tag, vr))
            }
            Action::Dummy => Some(self.dummy(element)),
            Action::Keep | Action::Uid => Some(self.unlisted(element)),
            Action::Clean => Some(self.clean(element)),
        }
    }

    /// What every element gets whatever the table says: sequences walked,
    /// UIDs remapped, dates shifted (or emptied), everything else kept.
    fn unlisted(&mut self, element: &InMemElement) -> InMemElement {
        let tag = element.tag();
        let vr = element.vr();
        match element.value() {
            Value::Sequence(seq) => self.sequence(tag, seq),
            Value::PixelSequence(_) => element.clone(),
            Value::Primitive(_) => match vr {
                VR::UI => self.remap(element),
                VR::DA | VR::DT if self.options.retain_longitudinal_modified_dates => {
                    self.shift(element)
                }
                VR::DA | VR::DT => {
                    self.counts.replaced += 1;
                    empty(tag, vr)
                }
                _ => element.clone(),
            },
        }
    }

    fn sequence(&mut self, tag: Tag, seq: &DataSetSequence<InMemDicomObject>) -> InMemElement {
        let items: Vec<InMemDicomObject> = seq.items().iter().map(|i| self.data_set(i)).collect();
        DataElement::new(
            tag,
            VR::SQ,
            Value::Sequence(DataSetSequence::new(items, Length::UNDEFINED)),
        )
    }

    fn remap(&mut self, element: &InMemElement) -> InMemElement {
        let values = strings(element);
        let new: Vec<String> = values.iter().map(|v| self.uids.remap(v)).collect();
        self.counts.remapped_uids += values
            .iter()
            .zip(&new)
            .filter(|(old, new)| uids::trim_uid(old) != new.as_str())
            .count();
        DataElement::new(element.tag(), VR::UI, PrimitiveValue::Strs(new.into()))
    }

    fn shift(&mut self, element: &InMemElement) -> InMemElement {
        let days = self.patient.date_offset_days;
        let mut new = Vec::new();
        for value in strings(element) {
            match dates::shift_value(&value, element.vr(), days) {
                Some(shifted) if !shifted.is_empty() => {
                    self.counts.shifted_dates += 1;
                    new.push(shifted);
                }
                Some(_) => {}
                None => self.counts.replaced += 1,
            }
        }
        if new.is_empty() {
            return empty(element.tag(), element.vr());
        }
        DataElement::new(
            element.tag(),
            element.vr(),
            PrimitiveValue::Strs(new.into()),
        )
    }

    fn dummy(&mut self, element: &InMemElement) -> InMemElement {
        let tag = element.tag();
        let vr = element.vr();
        let value = match vr {
            VR::SQ | VR::UI => return self.unlisted(element),
            VR::DA | VR::DT if self.options.retain_longitudinal_modified_dates => {
                return self.shift(element);
            }
            VR::DA => PrimitiveValue::from("19000101"),
            VR::DT => PrimitiveValue::from("19000101000000"),
            VR::TM => PrimitiveValue::from("000000"),
            VR::AS => PrimitiveValue::from("000Y"),
            VR::DS | VR::IS => PrimitiveValue::from("0"),
            VR::AE
            | VR::CS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::UC
            | VR::UR
            | VR::UT => PrimitiveValue::from(DUMMY_TEXT),
            VR::US => PrimitiveValue::from(0u16),
            VR::SS => PrimitiveValue::from(0i16),
            VR::UL => PrimitiveValue::from(0u32),
            VR::SL => PrimitiveValue::from(0i32),
            VR::UV => PrimitiveValue::from(0u64),
            VR::SV => PrimitiveValue::from(0i64),
            VR::FL => PrimitiveValue::from(0f32),
            VR::FD => PrimitiveValue::from(0f64),
            // binary and tag values have no meaningful dummy: empty
            _ => PrimitiveValue::Empty,
        };
        self.counts.replaced += 1;
        DataElement::new(tag, vr, value)
    }

    fn clean(&mut self, element: &InMemElement) -> InMemElement {
        let tag = element.tag();
        let vr = element.vr();
        match vr {
            VR::SQ | VR::UI | VR::DA | VR::DT => self.unlisted(element),
            VR::AE | VR::LO | VR::LT | VR::PN | VR::SH | VR::ST | VR::UC | VR::UT | VR::CS => {
                let values = strings(element);
                let cleaned: Vec<String> =
                    values.iter().map(|v| self.identifiers.clean(v)).collect();
                if cleaned != values {
                    self.counts.replaced += 1;
                }
                DataElement::new(tag, vr, PrimitiveValue::Strs(cleaned.into()))
            }
            // times, numbers, codes: kept as the option allows
            _ => element.clone(),
        }
    }
}

/// The element's values as text (empty for an empty element).
fn strings(element: &InMemElement) -> Vec<String> {
    element
        .value()
        .to_multi_str()
        .map(|values| {
            values
                .iter()
                .map(|v| v.trim_end_matches('\0').to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A zero-length element (an empty sequence for SQ).
fn empty(tag: Tag, vr: VR) -> InMemElement {
    if vr == VR::SQ {
        return DataElement::new(
            tag,
            VR::SQ,
            Value::Sequence(DataSetSequence::new(Vec::new(), Length::UNDEFINED)),
        );
    }
    DataElement::new(tag, vr, PrimitiveValue::Empty)
}
