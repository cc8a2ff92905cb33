//! The modules every result object shares: Patient and General Study
//! (copied from the source), a series of its own per result kind, General
//! Equipment naming the model, and SOP Common with deterministic UIDs.
//!
//! `ResultContext` carries everything the three builders (`sr`, `overlay`,
//! `gsps`) need besides the findings, so they agree on identity, UIDs and
//! labelling by construction.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::identity::copy_identity;
use super::uids::{ResultUids, UidRole};
use crate::config::{ReportConfig, ResultKind};
use crate::findings::ModelIdentity;
use crate::imaging::attributes::text;

/// The text every result of a research model carries.
pub const RESEARCH_USE_ONLY: &str = "RESEARCH USE ONLY - NOT FOR DIAGNOSIS";

/// What a result object is made from, besides the findings.
pub struct ResultContext<'a> {
    /// The received image's data set.
    pub source: &'a InMemDicomObject,
    pub settings: &'a ReportConfig,
    pub uids: &'a ResultUids,
    pub model: &'a ModelIdentity,
    /// When the result was made: DICOM DA (`YYYYMMDD`) and TM (`HHMMSS`).
    pub created_date: String,
    pub created_time: String,
}

/// One finished result object.
#[derive(Debug, Clone)]
pub struct ResultObject {
    pub kind: ResultKind,
    pub sop_class_uid: &'static str,
    pub sop_instance_uid: String,
    pub dataset: InMemDicomObject,
}

impl ResultObject {
    /// Result objects are written in Explicit VR Little Endian.
    pub const TRANSFER_SYNTAX: &'static str = uids::EXPLICIT_VR_LITTLE_ENDIAN;

    /// The object as a Part-10 file in Explicit VR Little Endian.
    pub fn to_part10(&self) -> anyhow::Result<Vec<u8>> {
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(Self::TRANSFER_SYNTAX)
            .media_storage_sop_class_uid(self.sop_class_uid)
            .media_storage_sop_instance_uid(self.sop_instance_uid.as_str())
            .implementation_class_uid(crate::store::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(crate::store::IMPLEMENTATION_VERSION_NAME)
            .build()?;
        // Preamble, magic, meta group, then the data set written in place
        // (no copy of a possibly 11 MB overlay just to attach the meta).
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        meta.write(&mut bytes)?;
        let syntax = TransferSyntaxRegistry
            .get(Self::TRANSFER_SYNTAX)
            .expect("explicit VR little endian is built in");
        self.dataset.write_dataset_with_ts(&mut bytes, syntax)?;
        Ok(bytes)
    }
}

impl ResultContext<'_> {
    /// Source SOP Instance UID.
    pub fn source_instance_uid(&self) -> String {
        text(self.source, tags::SOP_INSTANCE_UID).unwrap_or_default()
    }

    /// Source SOP Class UID.
    pub fn source_class_uid(&self) -> String {
        text(self.source, tags::SOP_CLASS_UID).unwrap_or_default()
    }

    fn model_version(&self) -> String {
        format!("{} {}", self.model.name, self.model.version)
    }

    pub fn uid(&self, kind: ResultKind, role: UidRole) -> String {
        let study = text(self.source, tags::STUDY_INSTANCE_UID).unwrap_or_default();
        self.uids.derive(
            &study,
            &self.source_instance_uid(),
            &self.model_version(),
            kind,
            role,
        )
    }

    /// Series Description: the configured text, marked for research models.
    pub fn series_description(&self, kind: ResultKind) -> String {
        let s = self.settings;
        let base = match kind {
            ResultKind::Sr => &s.sr_series_description,
            ResultKind::Sc => &s.sc_series_description,
            ResultKind::Gsps => &s.gsps_series_description,
        };
        let text = if self.model.research_use_only {
            format!("{base} - RESEARCH USE ONLY")
        } else {
            base.clone()
        };
        // LO: at most 64 characters.
        text.chars().take(64).collect()
    }

    pub fn series_number(&self, kind: ResultKind) -> i32 {
        let s = self.settings;
        match kind {
            ResultKind::Sr => s.sr_series_number,
            ResultKind::Sc => s.sc_series_number,
            ResultKind::Gsps => s.gsps_series_number,
        }
    }

    /// The intended-use statement shown on every result.
    pub fn intended_use(&self) -> String {
        if self.model.research_use_only {
            format!("{RESEARCH_USE_ONLY}. {}", self.model.intended_use)
        } else {
            self.model.intended_use.clone()
        }
    }

    /// A new result data set with SOP Common, Patient, General Study,
    /// General Series (of `modality`) and General Equipment filled in.
    pub fn header(
        &self,
        kind: ResultKind,
        sop_class_uid: &str,
        modality: &str,
    ) -> anyhow::Result<(InMemDicomObject, String)> {
        let mut object = InMemDicomObject::new_empty();
        copy_identity(self.source, &mut object)?;
        let instance_uid = self.uid(kind, UidRole::SopInstance);
        put_str(&mut object, tags::SOP_CLASS_UID, VR::UI, sop_class_uid);
        put_str(&mut object, tags::SOP_INSTANCE_UID, VR::UI, &instance_uid);
        put_str(
            &mut object,
            tags::INSTANCE_CREATION_DATE,
            VR::DA,
            &self.created_date,
        );
        put_str(
            &mut object,
            tags::INSTANCE_CREATION_TIME,
            VR::TM,
            &self.created_time,
        );
        put_str(&mut object, tags::MODALITY, VR::CS, modality);
        put_str(
            &mut object,
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            &self.uid(kind, UidRole::Series),
        );
        put_str(
            &mut object,
            tags::SERIES_NUMBER,
            VR::IS,
            &self.series_number(kind).to_string(),
        );
        put_str(
            &mut object,
            tags::SERIES_DESCRIPTION,
            VR::LO,
            &self.series_description(kind),
        );
        put_str(&mut object, tags::SERIES_DATE, VR::DA, &self.created_date);
        put_str(&mut object, tags::SERIES_TIME, VR::TM, &self.created_time);
        put_str(&mut object, tags::INSTANCE_NUMBER, VR::IS, "1");
        put_str(
            &mut object,
            tags::MANUFACTURER,
            VR::LO,
            &self.settings.manufacturer,
        );
        put_str(
            &mut object,
            tags::MANUFACTURER_MODEL_NAME,
            VR::LO,
            &self.model.name,
        );
        put_str(
            &mut object,
            tags::SOFTWARE_VERSIONS,
            VR::LO,
            &format!(
                "chestnode {}\\{}",
                env!("CARGO_PKG_VERSION"),
                self.model_version()
            ),
        );
        Ok((object, instance_uid))
    }

    /// A reference to the source image (Referenced SOP Class and Instance).
    pub fn source_reference(&self) -> InMemDicomObject {
        let mut item = InMemDicomObject::new_empty();
        put_str(
            &mut item,
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            &self.source_class_uid(),
        );
        put_str(
            &mut item,
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            &self.source_instance_uid(),
        );
        item
    }
}

/// Puts a string element (values separated by `\`).
pub fn put_str(object: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    object.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

/// GRAPHIC DATA of a closed polygon: (column, row) pairs with the first
/// point repeated at the end (unless the outline already ends on it), as
/// SR SCOORD and presentation-state POLYLINE graphics both want it.
pub fn closed_graphic_data(points: &[[f32; 2]]) -> Vec<f32> {
    let mut data: Vec<f32> = points.iter().flatten().copied().collect();
    if let Some(first) = points.first()
        && points.last() != Some(first)
    {
        data.extend_from_slice(first);
    }
    data
}

/// Puts an element of VR US.
pub fn put_u16(object: &mut InMemDicomObject, tag: Tag, value: u16) {
    object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

/// Puts a sequence of items.
pub fn put_seq(object: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    object.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

/// Puts an empty (type 2) element.
pub fn put_empty(object: &mut InMemDicomObject, tag: Tag, vr: VR) {
    object.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
}

/// A code sequence item: Code Value, Coding Scheme Designator, Code Meaning.
pub fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(&mut item, tags::CODE_VALUE, VR::SH, value);
    put_str(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut item, tags::CODE_MEANING, VR::LO, meaning);
    item
}
