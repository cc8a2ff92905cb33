//! Results per source, and calibration on real radiographs.
//!
//! A pooled AUC over several sources can be won by telling the sources
//! apart: when every COVID film comes from COVID-only collections, "looks
//! like that collection" is a perfect opacity detector. So every source is
//! also reported on its own (within a source that has both classes, only
//! the disease separates them), real radiographs before inserted and
//! synthetic ones, with the share of real normals the node flags as
//! abnormal. Calibration (observed frequency against predicted
//! probability in ten bins, and the expected calibration error) is
//! measured on real radiographs only.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::metrics::{self, Bootstrap};
use crate::findings::Category;

/// What grouping needs of one analysed case.
pub struct CaseOutcome {
    /// Source (or `inserted:<background source>`).
    pub group: String,
    pub real: bool,
    /// Per category: (truth if known, score, called at the manifest threshold).
    pub categories: HashMap<Category, (Option<bool>, f64, bool)>,
}

/// One source's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupResult {
    pub group: String,
    pub real: bool,
    pub cases: usize,
    /// Normal radiographs (any-abnormality known false) and how many of
    /// them the node calls abnormal at the manifest threshold.
    pub normals: usize,
    pub normals_flagged: usize,
    pub categories: Vec<GroupCategory>,
}

/// One category within a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCategory {
    pub key: String,
    pub positives: usize,
    pub negatives: usize,
    pub auc: Option<f64>,
    pub auc_interval: Option<[f64; 2]>,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
}

/// Reliability of one category's probabilities on real radiographs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationResult {
    pub key: String,
    pub title: String,
    pub cases: usize,
    /// Ten equal-width bins of predicted probability.
    pub bins: Vec<CalibrationBin>,
    /// Expected calibration error: the case-weighted mean |observed − predicted|.
    pub expected_calibration_error: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    pub low: f64,
    pub high: f64,
    pub cases: usize,
    pub mean_predicted: Option<f64>,
    pub observed: Option<f64>,
}

/// The group of all real radiographs together, beside each source.
pub const ALL_REAL: &str = "all real radiographs";

/// Per-source results: all real radiographs pooled first, then each real
/// source, then inserted and synthetic groups.
pub fn group_results(outcomes: &[CaseOutcome], bootstrap: &Bootstrap) -> Vec<GroupResult> {
    let mut groups: BTreeMap<(bool, String), Vec<&CaseOutcome>> = BTreeMap::new();
    for outcome in outcomes {
        groups
            .entry((!outcome.real, outcome.group.clone()))
            .or_default()
            .push(outcome);
    }
    let real: Vec<&CaseOutcome> = outcomes.iter().filter(|o| o.real).collect();
    let mut results = Vec::new();
    if !real.is_empty() && groups.keys().filter(|(synthetic, _)| !synthetic).count() > 1 {
        results.push(group_result(ALL_REAL, true, &real, bootstrap));
    }
    for ((synthetic, name), members) in &groups {
        results.push(group_result(name, !synthetic, members, bootstrap));
    }
    results
}

fn group_result(
    name: &str,
    real: bool,
    members: &[&CaseOutcome],
    bootstrap: &Bootstrap,
) -> GroupResult {
    let mut normals = 0;
    let mut normals_flagged = 0;
    for m in members {
        if let Some((Some(false), _, called)) = m.categories.get(&Category::AnyAbnormality) {
            normals += 1;
            normals_flagged += usize::from(*called);
        }
    }
    let categories = Category::ALL
        .iter()
        .filter(|c| **c != Category::Normal)
        .map(|&category| {
            let mut scores = Vec::new();
            let mut truth = Vec::new();
            let mut calls = Vec::new();
            for m in members {
                if let Some((Some(t), score, called)) = m.categories.get(&category) {
                    scores.push(*score);
                    truth.push(*t);
                    calls.push(*called);
                }
            }
            let confusion = metrics::Confusion::tally(&calls, &truth);
            GroupCategory {
                key: category.key().into(),
                positives: truth.iter().filter(|&&t| t).count(),
                negatives: truth.iter().filter(|&&t| !t).count(),
                auc: metrics::auc(&scores, &truth),
                auc_interval: metrics::bootstrap_auc_interval(&scores, &truth, bootstrap),
                sensitivity: confusion.sensitivity(),
                specificity: confusion.specificity(),
            }
        })
        .collect();
    GroupResult {
        group: name.into(),
        real,
        cases: members.len(),
        normals,
        normals_flagged,
        categories,
    }
}

/// Reliability bins of every category with both classes among the real
/// radiographs.
pub fn calibration(outcomes: &[CaseOutcome]) -> Vec<CalibrationResult> {
    Category::ALL
        .iter()
        .filter(|c| **c != Category::Normal)
        .filter_map(|&category| {
            let pairs: Vec<(f64, bool)> = outcomes
                .iter()
                .filter(|o| o.real)
                .filter_map(|o| match o.categories.get(&category) {
                    Some((Some(t), score, _)) => Some((*score, *t)),
                    _ => None,
                })
                .collect();
            let positives = pairs.iter().filter(|(_, t)| *t).count();
            if positives == 0 || positives == pairs.len() {
                return None;
            }
            Some(reliability(category, &pairs))
        })
        .collect()
}

fn reliability(category: Category, pairs: &[(f64, bool)]) -> CalibrationResult {
    const BINS: usize = 10;
    let mut sums = [(0usize, 0.0f64, 0usize); BINS];
    for &(p, t) in pairs {
        let bin = ((p * BINS as f64) as usize).min(BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += p;
        sums[bin].2 += usize::from(t);
    }
    let mut error = 0.0;
    let bins = sums
        .iter()
        .enumerate()
        .map(|(i, &(n, predicted, positive))| {
            let (mean, observed) = if n > 0 {
                let mean = predicted / n as f64;
                let observed = positive as f64 / n as f64;
                error += n as f64 * (observed - mean).abs();
                (Some(mean), Some(observed))
            } else {
                (None, None)
            };
            CalibrationBin {
                low: i as f64 / BINS as f64,
                high: (i + 1) as f64 / BINS as f64,
                cases: n,
                mean_predicted: mean,
                observed,
            }
        })
        .collect();
    CalibrationResult {
        key: category.key().into(),
        title: category.title().into(),
        cases: pairs.len(),
        bins,
        expected_calibration_error: error / pairs.len() as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(group: &str, real: bool, abnormal: bool, score: f64, called: bool) -> CaseOutcome {
        CaseOutcome {
            group: group.into(),
            real,
            categories: HashMap::from([(
                Category::AnyAbnormality,
                (Some(abnormal), score, called),
            )]),
        }
    }

    #[test]
    fn sources_are_reported_apart_and_flagged_normals_counted() {
        let outcomes = [
            outcome("nih", true, false, 0.2, false),
            outcome("nih", true, false, 0.7, true),
            outcome("nih", true, true, 0.9, true),
            outcome("covid", true, true, 0.95, true),
            outcome("synthetic", false, true, 0.5, true),
        ];
        let bootstrap = Bootstrap {
            resamples: 20,
            seed: 1,
            confidence: 0.95,
        };
        let groups = group_results(&outcomes, &bootstrap);
        let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, [ALL_REAL, "covid", "nih", "synthetic"]);
        let nih = &groups[2];
        assert_eq!((nih.normals, nih.normals_flagged), (2, 1));
        let any = nih
            .categories
            .iter()
            .find(|c| c.key == "any-abnormality")
            .unwrap();
        assert_eq!(any.auc, Some(1.0));
        let covid = &groups[1];
        let any = covid
            .categories
            .iter()
            .find(|c| c.key == "any-abnormality")
            .unwrap();
        assert_eq!(any.auc, None, "one class only");
        assert_eq!(groups[0].cases, 4);
    }

    #[test]
    fn reliability_bins_compare_prediction_with_frequency() {
        // Ten cases at 0.05 with none positive, ten at 0.95 with all positive:
        // perfectly calibrated up to the bins' means, error 0.05.
        let mut outcomes = Vec::new();
        for _ in 0..10 {
            outcomes.push(outcome("a", true, false, 0.05, false));
            outcomes.push(outcome("a", true, true, 0.95, true));
        }
        outcomes.push(outcome("s", false, true, 0.01, false));
        let result = calibration(&outcomes);
        assert_eq!(result.len(), 1);
        assert_eq!(result[0].cases, 20, "synthetic cases do not count");
        assert!((result[0].expected_calibration_error - 0.05).abs() < 1e-9);
        assert_eq!(result[0].bins[0].cases, 10);
        assert_eq!(result[0].bins[9].observed, Some(1.0));
    }
}
