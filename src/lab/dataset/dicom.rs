//! How a dataset stores an image: a DICOM DX file (Digital X-Ray Image
//! Storage – For Presentation), PA chest, 12 bits stored. The generator
//! writes its radiographs this way and the corpus import its real ones, so
//! every image a model is trained or judged on goes through the node's own
//! reading path.
//!
//! The header is what a real detector sends for a processed PA chest
//! film, so the node's own gate and pipeline treat it like any other:
//! Imager Pixel Spacing, View Position PA, Body Part Examined CHEST, the
//! Anatomic Region code for the chest, Presentation LUT Shape matching the
//! photometric interpretation. Patient and study identity are synthetic
//! and derived from the seed and index (no PHI); UIDs are `2.25.` UUID
//! style values hashed from them, so the same case always has the same UIDs.

use std::path::Path;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use sha2::{Digest, Sha256};

/// MONOCHROME1 (white is low values) or MONOCHROME2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Photometric {
    Monochrome1,
    Monochrome2,
}

impl Photometric {
    pub fn as_str(self) -> &'static str {
        match self {
            Photometric::Monochrome1 => "MONOCHROME1",
            Photometric::Monochrome2 => "MONOCHROME2",
        }
    }
}

/// What goes into one DX file.
pub struct DxImage<'a> {
    pub seed: u64,
    pub index: u64,
    pub rows: usize,
    pub columns: usize,
    pub spacing_mm: f32,
    /// Stored values, MONOCHROME2 sense (bright = attenuating); inverted
    /// here for MONOCHROME1.
    pub pixels: &'a [u16],
    pub photometric: Photometric,
    /// Window (centre, width) in stored values.
    pub window: (f32, f32),
    /// Series Description, e.g. "SYNTHETIC CHEST PA".
    pub description: &'a str,
    /// Patient ID and study description of an image that is not
    /// synthetic (a public radiograph imported by `chestnode corpus`);
    /// `None` for `SYN-seed-index` and "SYNTHETIC CHEST RADIOGRAPH".
    pub identity: Option<(&'a str, &'a str)>,
}

/// A `2.25.` UID from a hash of `parts`.
pub fn derived_uid(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version-4-like layout keeps the value a valid UUID (PS3.5 B.2).
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

fn put(object: &mut InMemDicomObject, tag: Tag, vr: VR, value: PrimitiveValue) {
    object.put(DataElement::new(tag, vr, value));
}

fn put_str(object: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    put(object, tag, vr, PrimitiveValue::from(value));
}

fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(&mut item, tags::CODE_VALUE, VR::SH, value);
    put_str(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut item, tags::CODE_MEANING, VR::LO, meaning);
    item
}

impl DxImage<'_> {
    /// The data set.
    pub fn data_set(&self) -> (InMemDicomObject, String) {
        let seed = self.seed.to_string();
        let index = self.index.to_string();
        let study = derived_uid(&["chestnode-synth", "study", &seed, &index]);
        let series = derived_uid(&["chestnode-synth", "series", &seed, &index]);
        let instance = derived_uid(&["chestnode-synth", "instance", &seed, &index]);
        let mut o = InMemDicomObject::new_empty();
        let s = |o: &mut InMemDicomObject, tag, vr, v: &str| put_str(o, tag, vr, v);
        s(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
        s(&mut o, tags::IMAGE_TYPE, VR::CS, "DERIVED\\PRIMARY");
        s(
            &mut o,
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        );
        s(&mut o, tags::SOP_INSTANCE_UID, VR::UI, &instance);
        for tag in [
            tags::STUDY_DATE,
            tags::SERIES_DATE,
            tags::CONTENT_DATE,
            tags::ACQUISITION_DATE,
        ] {
            s(&mut o, tag, VR::DA, "20240101");
        }
        for tag in [
            tags::STUDY_TIME,
            tags::SERIES_TIME,
            tags::CONTENT_TIME,
            tags::ACQUISITION_TIME,
        ] {
            s(&mut o, tag, VR::TM, "120000");
        }
        s(&mut o, tags::ACCESSION_NUMBER, VR::SH, "");
        s(&mut o, tags::MODALITY, VR::CS, "DX");
        s(&mut o, tags::MANUFACTURER, VR::LO, "chestnode synth");
        s(&mut o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
        let (patient_id, study_description) = match self.identity {
            Some((id, description)) => (id.to_string(), description),
            None => (format!("SYN-{seed}-{index}"), "SYNTHETIC CHEST RADIOGRAPH"),
        };
        s(&mut o, tags::STUDY_DESCRIPTION, VR::LO, study_description);
        s(&mut o, tags::SERIES_DESCRIPTION, VR::LO, self.description);
        s(
            &mut o,
            tags::MANUFACTURER_MODEL_NAME,
            VR::LO,
            "procedural thorax",
        );
        s(
            &mut o,
            tags::SOFTWARE_VERSIONS,
            VR::LO,
            env!("CARGO_PKG_VERSION"),
        );
        s(
            &mut o,
            tags::PATIENT_NAME,
            VR::PN,
            &match self.identity {
                Some(_) => "PUBLIC^RADIOGRAPH".to_string(),
                None => format!("SYNTHETIC^CASE{index}"),
            },
        );
        s(&mut o, tags::PATIENT_ID, VR::LO, &patient_id);
        s(&mut o, tags::PATIENT_BIRTH_DATE, VR::DA, "");
        s(&mut o, tags::PATIENT_SEX, VR::CS, "O");
        s(&mut o, tags::BODY_PART_EXAMINED, VR::CS, "CHEST");
        s(&mut o, tags::VIEW_POSITION, VR::CS, "PA");
        s(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, &study);
        s(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &series);
        s(
            &mut o,
            tags::STUDY_ID,
            VR::SH,
            &format!("SYN{}", self.index % 1_000_000),
        );
        s(&mut o, tags::SERIES_NUMBER, VR::IS, "1");
        s(&mut o, tags::INSTANCE_NUMBER, VR::IS, "1");
        s(&mut o, tags::PATIENT_ORIENTATION, VR::CS, "L\\F");
        s(&mut o, tags::IMAGE_LATERALITY, VR::CS, "U");
        s(
            &mut o,
            tags::PRESENTATION_INTENT_TYPE,
            VR::CS,
            "FOR PRESENTATION",
        );
        s(&mut o, tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
        s(&mut o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
        s(&mut o, tags::DETECTOR_TYPE, VR::CS, "SCINTILLATOR");
        s(&mut o, tags::POSITIONER_TYPE, VR::CS, "NONE");
        s(&mut o, tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, "LOG");
        let (sign, shape) = match self.photometric {
            Photometric::Monochrome2 => (-1i16, "IDENTITY"),
            Photometric::Monochrome1 => (1, "INVERSE"),
        };
        put(
            &mut o,
            tags::PIXEL_INTENSITY_RELATIONSHIP_SIGN,
            VR::SS,
            PrimitiveValue::from(sign),
        );
        s(&mut o, tags::PRESENTATION_LUT_SHAPE, VR::CS, shape);
        s(&mut o, tags::RESCALE_INTERCEPT, VR::DS, "0");
        s(&mut o, tags::RESCALE_SLOPE, VR::DS, "1");
        s(&mut o, tags::RESCALE_TYPE, VR::LO, "US");
        let spacing = format!("{:.4}\\{:.4}", self.spacing_mm, self.spacing_mm);
        s(&mut o, tags::IMAGER_PIXEL_SPACING, VR::DS, &spacing);
        let (centre, width) = match self.photometric {
            Photometric::Monochrome2 => self.window,
            Photometric::Monochrome1 => (4095.0 - self.window.0, self.window.1),
        };
        s(&mut o, tags::WINDOW_CENTER, VR::DS, &format!("{centre:.0}"));
        s(&mut o, tags::WINDOW_WIDTH, VR::DS, &format!("{width:.0}"));
        o.put(DataElement::new(
            tags::ANATOMIC_REGION_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![code("43799004", "SCT", "Chest")]),
        ));
        let mut view = code("399348003", "SCT", "postero-anterior");
        view.put(DataElement::new(
            tags::VIEW_MODIFIER_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(Vec::<InMemDicomObject>::new()),
        ));
        o.put(DataElement::new(
            tags::VIEW_CODE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![view]),
        ));
        o.put(DataElement::new(
            tags::ACQUISITION_CONTEXT_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(Vec::<InMemDicomObject>::new()),
        ));
        for (tag, value) in [
            (tags::SAMPLES_PER_PIXEL, 1u16),
            (tags::ROWS, self.rows as u16),
            (tags::COLUMNS, self.columns as u16),
            (tags::BITS_ALLOCATED, 16),
            (tags::BITS_STORED, 12),
            (tags::HIGH_BIT, 11),
            (tags::PIXEL_REPRESENTATION, 0),
        ] {
            put(&mut o, tag, VR::US, PrimitiveValue::from(value));
        }
        s(
            &mut o,
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            self.photometric.as_str(),
        );
        let stored: Vec<u16> = match self.photometric {
            Photometric::Monochrome2 => self.pixels.to_vec(),
            Photometric::Monochrome1 => self.pixels.iter().map(|v| 4095 - v.min(&4095)).collect(),
        };
        put(
            &mut o,
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(stored.into()),
        );
        (o, instance)
    }

    /// Writes the Part-10 file (Explicit VR Little Endian).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let (data_set, instance) = self.data_set();
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .media_storage_sop_class_uid(uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION)
            .media_storage_sop_instance_uid(instance.as_str())
            .implementation_class_uid(crate::store::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(crate::store::IMPLEMENTATION_VERSION_NAME)
            .build()?;
        let file = data_set.with_exact_meta(meta);
        let mut bytes = Vec::new();
        file.write_all(&mut bytes)?;
        std::fs::write(path, bytes)?;
        Ok(())
    }
}
