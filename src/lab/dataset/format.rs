//! The dataset format's types (`docs/dataset-format.md`): the JSON label
//! file written beside every image as the generator writes it, its
//! run-length mask encoding, and the image-level categories derived from
//! findings. They live here, beside the reader and the writer, so that
//! every source of labelled images (generated, inserted, an imported
//! corpus, a future annotation import) writes one format and every tool
//! reads it back one way.
//!
//! The finding vocabulary of generated labels (`type` and its details) is
//! the generator's own, so it is borrowed from `synth::findings`.

use serde::{Deserialize, Serialize};

use super::vocabulary::{FindingDetails, FindingKind, PLEURAL_EFFUSION_KEY};
use crate::findings::Category;

/// `schema` of a label file.
pub const LABEL_SCHEMA: &str = "chestnode-labels/1";
/// `schema` of `dataset.json`.
pub const DATASET_SCHEMA: &str = "chestnode-dataset/1";

/// A binary mask as runs in row-major order: `counts` alternate between
/// unset and set pixels, starting with unset (possibly 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLengthMask {
    /// [rows, columns]
    pub size: [u32; 2],
    pub counts: Vec<u32>,
}

impl RunLengthMask {
    /// Encodes `rows × columns` pixels given row-major.
    pub fn from_bits(
        rows: u32,
        columns: u32,
        bits: impl IntoIterator<Item = bool>,
    ) -> RunLengthMask {
        let mut counts = Vec::new();
        let mut current = false;
        let mut run = 0u32;
        for bit in bits {
            if bit != current {
                counts.push(run);
                run = 0;
                current = bit;
            }
            run += 1;
        }
        counts.push(run);
        RunLengthMask {
            size: [rows, columns],
            counts,
        }
    }

    /// The pixels, row-major (rows × columns).
    pub fn decode(&self) -> Vec<bool> {
        let mut bits = Vec::with_capacity((self.size[0] * self.size[1]) as usize);
        for (k, &count) in self.counts.iter().enumerate() {
            bits.extend(std::iter::repeat_n(k % 2 == 1, count as usize));
        }
        bits
    }
}

/// One finding in a label file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingLabel {
    #[serde(rename = "type")]
    pub kind: FindingKind,
    /// chestnode category key (`nodule-mass`, …) or `pleural-effusion`.
    pub category: String,
    /// `[x0, y0, x1, y1]` in pixels of the image: first column and row,
    /// one past the last.
    #[serde(rename = "box")]
    pub bbox: [u32; 4],
    pub area_px: u32,
    pub mask: RunLengthMask,
    #[serde(flatten)]
    pub details: FindingDetails,
    /// Subgroup tags: `overlaps_heart`, `overlaps_diaphragm`,
    /// `overlaps_hilum`, `overlaps_rib`, `overlaps_clavicle`,
    /// `overlaps_mediastinum`, `free_lung`, `size_…`, `side_…`.
    pub tags: Vec<String>,
}

/// The label file of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageLabel {
    pub schema: String,
    /// The DICOM file, relative to the dataset directory.
    pub image: String,
    /// `synthetic`, or `inserted` (findings drawn into a real radiograph).
    pub source: String,
    /// The real radiograph's file name, for `inserted` images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    /// The background's own corpus source, split and patient (an image
    /// imported by `chestnode corpus`), which the inserted case inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    pub seed: u64,
    pub index: u64,
    pub rows: u32,
    pub columns: u32,
    /// Imager Pixel Spacing, mm: [row, column].
    pub pixel_spacing_mm: [f32; 2],
    pub photometric_interpretation: String,
    /// Whether overlap tags were computed from known anatomy masks (false
    /// for inserted images, whose anatomy is only estimated).
    pub anatomy_known: bool,
    /// Every category key, true when the image has such a finding;
    /// `any-abnormality` and `normal` are derived.
    pub categories: std::collections::BTreeMap<String, bool>,
    pub findings: Vec<FindingLabel>,
}

/// All category keys a label lists.
pub fn category_keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = Category::ALL.iter().map(|c| c.key()).collect();
    keys.push(PLEURAL_EFFUSION_KEY);
    keys
}

/// The image-level categories of a set of findings.
pub fn categories(findings: &[FindingLabel]) -> std::collections::BTreeMap<String, bool> {
    let mut map: std::collections::BTreeMap<String, bool> = category_keys()
        .into_iter()
        .map(|k| (k.to_string(), false))
        .collect();
    for finding in findings {
        map.insert(finding.category.clone(), true);
    }
    let abnormal = !findings.is_empty();
    map.insert(Category::AnyAbnormality.key().into(), abnormal);
    map.insert(Category::Normal.key().into(), !abnormal);
    map
}
