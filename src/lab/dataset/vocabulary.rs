//! The vocabulary of a finding in a label file: its kind, and the details
//! a reader (or the generator) records about it. Every source of labelled
//! images speaks it — the generator, the corpus import, a future
//! annotation import — so it belongs to the format, not to any one source.

use serde::{Deserialize, Serialize};

use crate::findings::Category;

/// The kinds of finding a label names (what the generator draws, and
/// what a real source's located findings are called).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    Nodule,
    Mass,
    Consolidation,
    GroundGlass,
    Tuberculosis,
    MediastinalWidening,
    MediastinalMass,
    Emphysema,
    PleuralEffusion,
}

/// Category key of pleural effusion, which has no chestnode category yet.
pub const PLEURAL_EFFUSION_KEY: &str = "pleural-effusion";

impl FindingKind {
    /// The label category: a chestnode category key, or `pleural-effusion`.
    pub fn category_key(self) -> &'static str {
        match self {
            FindingKind::Nodule | FindingKind::Mass => Category::NoduleMass.key(),
            FindingKind::Consolidation | FindingKind::GroundGlass => Category::Consolidation.key(),
            FindingKind::Tuberculosis => Category::Tuberculosis.key(),
            FindingKind::MediastinalWidening | FindingKind::MediastinalMass => {
                Category::MediastinalMass.key()
            }
            FindingKind::Emphysema => Category::Emphysema.key(),
            FindingKind::PleuralEffusion => PLEURAL_EFFUSION_KEY,
        }
    }
}

/// The outline of a lesion, as a reader describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Margin {
    Smooth,
    /// Deeper bumps of the outline.
    Lobulated,
    /// Thin strands radiating into the lung (suspicious for cancer).
    Spiculated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Solidity {
    Solid,
    PartSolid,
}

/// Details a label carries besides category, mask and tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingDetails {
    /// Nodules and masses: mean diameter as measured on the image, mm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diameter_mm: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solidity: Option<Solidity>,
    /// Nodules: `smooth`, `lobulated` or `spiculated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<Margin>,
    /// Nodules: a calcified granuloma.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calcified: Option<bool>,
    /// `lobar` or `patchy` (consolidation, ground-glass); `widening` or `mass` (mediastinum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lobe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cavities: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fibrotic_streaks: Option<u32>,
}
