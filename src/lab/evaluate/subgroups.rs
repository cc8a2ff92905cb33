//! Subgroup results for nodules and masses: how often lesions that overlap
//! the heart, the diaphragm or the hila are found, against those in free
//! lung, and by size bin.
//!
//! Sensitivity here is per lesion and needs localisation: a lesion counts as
//! found at an operating point when a mark at or above its threshold hits it
//! (`hits`). Two kinds of operating point are reported: the manifest's
//! threshold (the image is called positive for the category, and the mark
//! hits), and the FROC operating points for a false-positive budget per image
//! chosen on the whole set. Subgroups come from the label's `tags`; a lesion
//! without a size tag is binned by its `diameter_mm`.

use serde::{Deserialize, Serialize};

use super::metrics::{ratio, wilson_interval};

/// What became of one annotated nodule or mass.
#[derive(Debug, Clone, PartialEq)]
pub struct LesionOutcome {
    pub tags: Vec<String>,
    pub diameter_mm: Option<f32>,
    /// Highest score of the marks matched to it; `None` if none hit it.
    pub best_score: Option<f64>,
    /// Whether its image was called positive at the manifest threshold.
    pub image_called: bool,
}

/// A threshold chosen for a false-positive budget on the whole set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateThreshold {
    pub false_positives_per_image: f64,
    /// `None`: no mark is counted at this budget.
    pub threshold: Option<f64>,
}

/// Sensitivity of a subgroup at one FROC operating point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensitivityAtRate {
    pub false_positives_per_image: f64,
    pub threshold: Option<f64>,
    pub sensitivity: Option<f64>,
    /// Wilson 95 % interval of the sensitivity.
    pub sensitivity_interval: Option<[f64; 2]>,
}

/// One subgroup's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgroupResult {
    /// Stable key, e.g. `overlaps_heart`, `size_5_10mm`.
    pub key: String,
    pub title: String,
    pub lesions: usize,
    pub found_at_manifest_threshold: usize,
    pub sensitivity_at_manifest_threshold: Option<f64>,
    /// Wilson 95 % interval of the sensitivity at the manifest threshold.
    pub sensitivity_at_manifest_threshold_interval: Option<[f64; 2]>,
    pub at_false_positive_rates: Vec<SensitivityAtRate>,
}

/// A subgroup: key, title and who belongs.
struct Subgroup {
    key: &'static str,
    title: &'static str,
    member: fn(&LesionOutcome) -> bool,
}

fn tagged(lesion: &LesionOutcome, tag: &str) -> bool {
    lesion.tags.iter().any(|t| t == tag)
}

/// The size bin tag of a lesion: its own, or one from its diameter.
fn size_bin(lesion: &LesionOutcome) -> Option<&'static str> {
    const BINS: [&str; 4] = [
        "size_5_10mm",
        "size_10_20mm",
        "size_20_30mm",
        "size_over_30mm",
    ];
    if let Some(bin) = BINS.iter().find(|bin| tagged(lesion, bin)) {
        return Some(bin);
    }
    let diameter = lesion.diameter_mm?;
    Some(match diameter {
        d if d < 10.0 => BINS[0],
        d if d < 20.0 => BINS[1],
        d if d <= 30.0 => BINS[2],
        _ => BINS[3],
    })
}

const SUBGROUPS: &[Subgroup] = &[
    Subgroup {
        key: "all",
        title: "All nodules and masses",
        member: |_| true,
    },
    Subgroup {
        key: "overlaps_heart",
        title: "Overlapping the heart",
        member: |l| tagged(l, "overlaps_heart"),
    },
    Subgroup {
        key: "overlaps_diaphragm",
        title: "Overlapping the diaphragm",
        member: |l| tagged(l, "overlaps_diaphragm"),
    },
    Subgroup {
        key: "overlaps_hilum",
        title: "Overlapping the hila",
        member: |l| tagged(l, "overlaps_hilum"),
    },
    Subgroup {
        key: "overlaps_heart_or_diaphragm",
        title: "Overlapping the heart or diaphragm",
        member: |l| tagged(l, "overlaps_heart") || tagged(l, "overlaps_diaphragm"),
    },
    Subgroup {
        key: "free_lung",
        title: "In free lung",
        member: |l| tagged(l, "free_lung"),
    },
    Subgroup {
        key: "size_5_10mm",
        title: "5–10 mm",
        member: |l| size_bin(l) == Some("size_5_10mm"),
    },
    Subgroup {
        key: "size_10_20mm",
        title: "10–20 mm",
        member: |l| size_bin(l) == Some("size_10_20mm"),
    },
    Subgroup {
        key: "size_20_30mm",
        title: "20–30 mm",
        member: |l| size_bin(l) == Some("size_20_30mm"),
    },
    Subgroup {
        key: "size_over_30mm",
        title: "over 30 mm",
        member: |l| size_bin(l) == Some("size_over_30mm"),
    },
];

/// Every subgroup's results (empty subgroups included, with no sensitivity).
pub fn subgroup_results(lesions: &[LesionOutcome], rates: &[RateThreshold]) -> Vec<SubgroupResult> {
    SUBGROUPS
        .iter()
        .map(|subgroup| {
            let members: Vec<&LesionOutcome> =
                lesions.iter().filter(|l| (subgroup.member)(l)).collect();
            let found = members
                .iter()
                .filter(|l| l.image_called && l.best_score.is_some())
                .count();
            let at_false_positive_rates = rates
                .iter()
                .map(|rate| {
                    let found = members
                        .iter()
                        .filter(|l| match (l.best_score, rate.threshold) {
                            (Some(score), Some(threshold)) => score >= threshold,
                            _ => false,
                        })
                        .count();
                    SensitivityAtRate {
                        false_positives_per_image: rate.false_positives_per_image,
                        threshold: rate.threshold,
                        sensitivity: ratio(found, members.len()),
                        sensitivity_interval: wilson_interval(found, members.len()),
                    }
                })
                .collect();
            SubgroupResult {
                key: subgroup.key.into(),
                title: subgroup.title.into(),
                lesions: members.len(),
                found_at_manifest_threshold: found,
                sensitivity_at_manifest_threshold: ratio(found, members.len()),
                sensitivity_at_manifest_threshold_interval: wilson_interval(found, members.len()),
                at_false_positive_rates,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesion(
        tags: &[&str],
        diameter: Option<f32>,
        score: Option<f64>,
        called: bool,
    ) -> LesionOutcome {
        LesionOutcome {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            diameter_mm: diameter,
            best_score: score,
            image_called: called,
        }
    }

    fn result<'a>(results: &'a [SubgroupResult], key: &str) -> &'a SubgroupResult {
        results.iter().find(|r| r.key == key).unwrap()
    }

    #[test]
    fn subgroups_count_their_own_lesions() {
        let lesions = [
            lesion(
                &["overlaps_heart", "size_5_10mm"],
                Some(7.0),
                Some(0.9),
                true,
            ),
            lesion(&["overlaps_diaphragm"], Some(15.0), Some(0.4), false),
            lesion(&["free_lung", "size_20_30mm"], Some(25.0), None, true),
            lesion(&["free_lung"], Some(40.0), Some(0.6), true),
        ];
        let rates = [
            RateThreshold {
                false_positives_per_image: 0.25,
                threshold: Some(0.5),
            },
            RateThreshold {
                false_positives_per_image: 0.125,
                threshold: None,
            },
        ];
        let results = subgroup_results(&lesions, &rates);
        let all = result(&results, "all");
        assert_eq!(all.lesions, 4);
        // Found at the manifest threshold: called and hit: lesions 0 and 3.
        assert_eq!(all.found_at_manifest_threshold, 2);
        assert_eq!(all.sensitivity_at_manifest_threshold, Some(0.5));
        // Score ≥ 0.5: lesions 0 and 3; no threshold: none.
        assert_eq!(all.at_false_positive_rates[0].sensitivity, Some(0.5));
        assert_eq!(all.at_false_positive_rates[1].sensitivity, Some(0.0));

        let heart_or_diaphragm = result(&results, "overlaps_heart_or_diaphragm");
        assert_eq!(heart_or_diaphragm.lesions, 2);
        assert_eq!(
            heart_or_diaphragm.sensitivity_at_manifest_threshold,
            Some(0.5)
        );
        assert_eq!(result(&results, "free_lung").lesions, 2);
        assert_eq!(result(&results, "overlaps_hilum").lesions, 0);
        assert_eq!(
            result(&results, "overlaps_hilum").sensitivity_at_manifest_threshold,
            None
        );
        // Size: tags first, then the diameter (15 → 10–20, 40 → over 30).
        assert_eq!(result(&results, "size_5_10mm").lesions, 1);
        assert_eq!(result(&results, "size_10_20mm").lesions, 1);
        assert_eq!(result(&results, "size_20_30mm").lesions, 1);
        assert_eq!(result(&results, "size_over_30mm").lesions, 1);
        // Wilson intervals: 2 of 4 found; none of an empty subgroup.
        let [low, high] = all.sensitivity_at_manifest_threshold_interval.unwrap();
        assert!((low - 0.150).abs() < 1e-3 && (high - 0.850).abs() < 1e-3);
        assert!(
            result(&results, "overlaps_hilum")
                .sensitivity_at_manifest_threshold_interval
                .is_none()
        );
    }
}
