//! The clinical categories a report shows, and how a model's labels map to
//! them.
//!
//! Models speak in their own labels (torchxrayvision's 18 pathologies, or
//! the default model's categories); radiologists read categories. Each
//! category lists the label names that count as evidence for it; its
//! probability is the highest of theirs and it is positive when any of
//! them passes its manifest threshold. "Any abnormality" and "normal" are
//! taken from labels of those names when a model has them, and otherwise
//! derived from all the other labels.

use serde::{Deserialize, Serialize};

use crate::model::manifest::Label;

/// What the report shows, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Lung nodule or mass: lung cancer suspicion.
    NoduleMass,
    /// Consolidation or ground-glass opacity: pneumonia.
    Consolidation,
    Tuberculosis,
    /// Mediastinal mass or widening.
    MediastinalMass,
    /// Emphysema: COPD.
    Emphysema,
    /// Screening: anything that needs work-up.
    AnyAbnormality,
    Normal,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::NoduleMass,
        Category::Consolidation,
        Category::Tuberculosis,
        Category::MediastinalMass,
        Category::Emphysema,
        Category::AnyAbnormality,
        Category::Normal,
    ];

    /// Title for reports and overlays.
    pub fn title(self) -> &'static str {
        match self {
            Category::NoduleMass => "Lung nodule / mass",
            Category::Consolidation => "Consolidation / ground-glass",
            Category::Tuberculosis => "Tuberculosis",
            Category::MediastinalMass => "Mediastinal mass / widening",
            Category::Emphysema => "Emphysema (COPD)",
            Category::AnyAbnormality => "Abnormal (needs work-up)",
            Category::Normal => "Normal",
        }
    }

    /// Stable identifier, as used in JSON and as a model label name.
    pub fn key(self) -> &'static str {
        match self {
            Category::NoduleMass => "nodule-mass",
            Category::Consolidation => "consolidation",
            Category::Tuberculosis => "tuberculosis",
            Category::MediastinalMass => "mediastinal-mass",
            Category::Emphysema => "emphysema",
            Category::AnyAbnormality => "any-abnormality",
            Category::Normal => "normal",
        }
    }

    /// Whether positive findings of this category get a region.
    pub fn is_localised(self) -> bool {
        !matches!(self, Category::AnyAbnormality | Category::Normal)
    }

    /// Model label names (normalised: lowercase letters and digits only)
    /// that are evidence for this category.
    fn label_names(self) -> &'static [&'static str] {
        match self {
            Category::NoduleMass => &["nodulemass", "nodule", "mass", "lunglesion"],
            Category::Consolidation => {
                &["consolidation", "pneumonia", "infiltration", "groundglass"]
            }
            Category::Tuberculosis => &["tuberculosis", "tb"],
            Category::MediastinalMass => &[
                "mediastinalmass",
                "mediastinalwidening",
                "enlargedcardiomediastinum",
            ],
            Category::Emphysema => &["emphysema", "copd"],
            Category::AnyAbnormality => &["anyabnormality", "abnormal", "abnormality"],
            Category::Normal => &["normal", "nofinding"],
        }
    }

    /// Whether a model label is evidence for this category.
    pub fn matches_label(self, label: &str) -> bool {
        self.label_names().contains(&normalise(label).as_str())
    }
}

fn normalise(label: &str) -> String {
    label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// One category's result for an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryCall {
    pub category: Category,
    /// False when the model has no label for this category.
    pub assessed: bool,
    pub probability: f32,
    pub positive: bool,
    /// Index of the label that decided the call, if one did.
    pub label_index: Option<usize>,
}

/// Maps per-label probabilities to the seven categories.
pub fn categorise(labels: &[Label], probabilities: &[f32]) -> Vec<CategoryCall> {
    let positive =
        |i: usize| !labels[i].threshold.is_nan() && probabilities[i] >= labels[i].threshold;
    let from_labels = |category: Category| -> Option<CategoryCall> {
        let indices: Vec<usize> = (0..labels.len())
            .filter(|&i| category.matches_label(&labels[i].name))
            .collect();
        let best = indices.iter().copied().max_by(|&a, &b| {
            (positive(a), probabilities[a])
                .partial_cmp(&(positive(b), probabilities[b]))
                .expect("finite")
        })?;
        Some(CategoryCall {
            category,
            assessed: true,
            probability: probabilities[best],
            positive: positive(best),
            label_index: Some(best),
        })
    };
    let mut calls: Vec<CategoryCall> = Category::ALL[..5]
        .iter()
        .map(|&category| {
            from_labels(category).unwrap_or(CategoryCall {
                category,
                assessed: false,
                probability: 0.0,
                positive: false,
                label_index: None,
            })
        })
        .collect();
    // Findings labels: everything that is not itself "abnormal" or "normal".
    let findings: Vec<usize> = (0..labels.len())
        .filter(|&i| {
            !Category::AnyAbnormality.matches_label(&labels[i].name)
                && !Category::Normal.matches_label(&labels[i].name)
                && !labels[i].threshold.is_nan()
        })
        .collect();
    let derived_abnormal = || {
        let best = findings
            .iter()
            .copied()
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
        CategoryCall {
            category: Category::AnyAbnormality,
            assessed: best.is_some(),
            probability: best.map_or(0.0, |i| probabilities[i]),
            positive: findings.iter().any(|&i| positive(i)),
            label_index: findings
                .iter()
                .copied()
                .filter(|&i| positive(i))
                .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b])),
        }
    };
    let abnormal = from_labels(Category::AnyAbnormality).unwrap_or_else(derived_abnormal);
    let normal = from_labels(Category::Normal).unwrap_or(CategoryCall {
        category: Category::Normal,
        assessed: abnormal.assessed,
        probability: 1.0 - abnormal.probability,
        positive: abnormal.assessed && !abnormal.positive,
        label_index: None,
    });
    calls.push(abnormal);
    calls.push(normal);
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(names: &[(&str, f32)]) -> Vec<Label> {
        names
            .iter()
            .map(|(n, t)| Label {
                name: (*n).into(),
                threshold: *t,
            })
            .collect()
    }

    fn call(calls: &[CategoryCall], category: Category) -> &CategoryCall {
        calls.iter().find(|c| c.category == category).unwrap()
    }

    #[test]
    fn torchxrayvision_labels_map_to_categories() {
        let labels = labels(&[
            ("Nodule", 0.5),
            ("Mass", 0.4),
            ("Pneumonia", 0.3),
            ("Emphysema", 0.5),
            ("Enlarged Cardiomediastinum", 0.5),
            ("Hernia", f32::NAN),
        ]);
        let calls = categorise(&labels, &[0.2, 0.45, 0.1, 0.6, 0.1, 0.99]);
        let nodule = call(&calls, Category::NoduleMass);
        assert!(
            nodule.positive && nodule.label_index == Some(1),
            "Mass passes its own threshold"
        );
        assert!(!call(&calls, Category::Consolidation).positive);
        assert!(call(&calls, Category::Emphysema).positive);
        let tb = call(&calls, Category::Tuberculosis);
        assert!(!tb.assessed && !tb.positive, "no TB label: not assessed");
        let abnormal = call(&calls, Category::AnyAbnormality);
        assert!(abnormal.positive);
        assert_eq!(
            abnormal.probability, 0.6,
            "Hernia has no threshold and does not count"
        );
        assert!(!call(&calls, Category::Normal).positive);
    }

    #[test]
    fn nothing_positive_means_normal() {
        let labels = labels(&[("nodule-mass", 0.5), ("consolidation", 0.5)]);
        let calls = categorise(&labels, &[0.1, 0.2]);
        let normal = call(&calls, Category::Normal);
        assert!(normal.positive && normal.assessed);
        assert!((normal.probability - 0.8).abs() < 1e-6);
    }

    #[test]
    fn explicit_normal_and_abnormal_labels_are_used() {
        let labels = labels(&[
            ("nodule-mass", 0.5),
            ("any-abnormality", 0.3),
            ("normal", 0.5),
        ]);
        let calls = categorise(&labels, &[0.1, 0.35, 0.6]);
        assert!(call(&calls, Category::AnyAbnormality).positive);
        assert_eq!(call(&calls, Category::Normal).probability, 0.6);
    }
}
