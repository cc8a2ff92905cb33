//! Findings: what a model's output means for one image, in the terms a
//! report uses — seven clinical categories with a probability and a call
//! each, and regions (up to four) for every positive localised finding.
//!
//! - `categories`: the categories and how model labels map to them
//! - `regions`: evidence map → outline and box on the original image

mod axes;
mod categories;
mod regions;

pub use axes::axes_mm;
pub use categories::{Category, CategoryCall, categorise};
pub use regions::{EvidenceRegion, Region, regions_from_evidence};

use serde::{Deserialize, Serialize};

use crate::model::{Model, Prediction};

/// Which model produced a result, as reports must state it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelIdentity {
    pub name: String,
    pub version: String,
    pub research_use_only: bool,
    pub intended_use: String,
}

/// A positive, localised finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalisedFinding {
    pub category: Category,
    /// The model label behind it.
    pub label: String,
    pub probability: f32,
    pub region: Region,
}

/// Everything found in one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    pub model: ModelIdentity,
    pub categories: Vec<CategoryCall>,
    pub localised: Vec<LocalisedFinding>,
}

impl Findings {
    /// Interprets a prediction. `to_original` maps model-input coordinates
    /// to the original image; `pixel_spacing_mm` is (row, column).
    pub fn from_prediction(
        model: &Model,
        prediction: &Prediction,
        to_original: impl Fn(f32, f32) -> (f32, f32) + Copy,
        pixel_spacing_mm: Option<[f64; 2]>,
    ) -> Findings {
        let manifest = &model.manifest;
        let categories = categorise(&manifest.labels, &prediction.probabilities);
        let localised = categories
            .iter()
            .filter(|call| call.positive && call.category.is_localised())
            .filter_map(|call| Some((call, call.label_index?)))
            .flat_map(|(call, label)| {
                // One finding per separate blob of evidence: the strongest
                // carries the category's probability, weaker ones that
                // scaled by their strength.
                regions_from_evidence(
                    &prediction.evidence[label],
                    manifest.input.size,
                    to_original,
                    pixel_spacing_mm,
                )
                .into_iter()
                .map(move |found| LocalisedFinding {
                    category: call.category,
                    label: manifest.labels[label].name.clone(),
                    probability: call.probability * found.strength,
                    region: found.region,
                })
            })
            .collect();
        Findings {
            model: ModelIdentity {
                name: manifest.model.name.clone(),
                version: manifest.model.version.clone(),
                research_use_only: manifest.model.research_use_only,
                intended_use: manifest.model.intended_use.clone(),
            },
            categories,
            localised,
        }
    }
}
