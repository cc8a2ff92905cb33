//! `chestnode evaluate`: runs a model over a labelled dataset
//! (`docs/dataset-format.md`) and measures it: per-category ROC AUC with
//! bootstrap intervals, sensitivity and specificity at the manifest
//! thresholds, FROC for localised findings, and nodule subgroups; writes
//! `evaluation.json`, `evaluation.md`, `roc.png` and `froc.png`.
//!
//! Every image goes through the node's own analysis
//! (`analysis::analyse_path`), so what is measured is what `serve` would
//! report. The model runs once per image with every threshold lowered to 0,
//! so that each localised category yields a region whatever its score (FROC
//! needs marks below the operating point too); the calls at the manifest's
//! own thresholds are then made from the same per-label probabilities with
//! `findings::categorise`. A category's score for ROC is the highest
//! probability among its labels.
//!
//! Cases come from the lab's one dataset reader (`dataset::read_selected`).
//!
//! - `metrics`: ROC/AUC, bootstrap, sensitivity/specificity, FROC
//! - `hits`: when a region finds a lesion, and matching marks to lesions
//! - `subgroups`: nodules by location and size
//! - `report`: the JSON and Markdown report
//! - `plots`: ROC and FROC PNGs

mod groups;
mod hits;
pub mod metrics;
mod plots;
mod report;
mod subgroups;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::analysis::{Outcome, analyse_path};
use crate::findings::{Category, categorise};
use crate::lab::dataset::{Case, Selection, read_selected};
use crate::model::Model;
use hits::{HIT_IOU, PredictedRegion, match_marks};
use metrics::{Bootstrap, Confusion, FrocImage, froc_curve, froc_point_at};
pub use report::EvaluationReport;
use report::{
    CaseProblem, CategoryResult, DatasetSummary, FALSE_POSITIVE_RATES, FrocAtRate, FrocResult,
    ModelSummary, REPORT_SCHEMA,
};
use subgroups::{LesionOutcome, RateThreshold, subgroup_results};

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The dataset directory.
    pub data: PathBuf,
    /// Which of its cases (e.g. only a corpus's test split).
    pub selection: Selection,
    /// The manifest the model came from, for the report (`None`: built-in).
    pub manifest: Option<PathBuf>,
    pub bootstrap: Bootstrap,
}

/// One analysed case: truth, scores, calls and regions per category.
struct Scored<'a> {
    case: &'a Case,
    /// Highest label probability per category (permissive run).
    scores: HashMap<Category, f64>,
    /// Calls at the manifest thresholds.
    calls: HashMap<Category, bool>,
    assessed: HashMap<Category, bool>,
    regions: HashMap<Category, Vec<PredictedRegion>>,
}

/// Runs `model` over every case of the dataset and measures it.
/// `progress` is told how many images are done after each one.
pub fn evaluate(
    mut model: Model,
    options: &Options,
    progress: &dyn Fn(usize, usize),
) -> anyhow::Result<EvaluationReport> {
    let cases = read_selected(std::slice::from_ref(&options.data), &options.selection)?;
    let manifest_labels = model.manifest.labels.clone();
    for label in &mut model.manifest.labels {
        if !label.threshold.is_nan() {
            label.threshold = 0.0;
        }
    }
    let mut scored = Vec::new();
    let mut not_analysed = Vec::new();
    let mut failed = Vec::new();
    for (done, case) in cases.iter().enumerate() {
        let problem = |reason: String| CaseProblem {
            image: case.label.image.clone(),
            reason,
        };
        match analyse_path(&model, &case.image_path) {
            Err(error) => failed.push(problem(error.to_string())),
            Ok(analysis) => {
                match analysis.outcome {
                    Outcome::NotAnalysed { reason } => not_analysed.push(problem(reason)),
                    Outcome::Analysed(result) => {
                        let manifest_calls =
                            categorise(&manifest_labels, &analysis.label_probabilities);
                        let mut entry = Scored {
                            case,
                            scores: HashMap::new(),
                            calls: HashMap::new(),
                            assessed: HashMap::new(),
                            regions: HashMap::new(),
                        };
                        for call in &result.findings.categories {
                            entry
                                .scores
                                .insert(call.category, f64::from(call.probability));
                        }
                        for call in &manifest_calls {
                            entry.calls.insert(call.category, call.positive);
                            entry.assessed.insert(call.category, call.assessed);
                        }
                        for finding in &result.findings.localised {
                            entry.regions.entry(finding.category).or_default().push(
                                PredictedRegion {
                                    bounding_box: finding.region.bounding_box,
                                    score: f64::from(finding.probability),
                                },
                            );
                        }
                        scored.push(entry);
                    }
                }
            }
        }
        progress(done + 1, cases.len());
    }

    let categories = Category::ALL
        .iter()
        .map(|&category| category_result(category, &scored, &manifest_labels, options))
        .collect::<Vec<_>>();
    let froc: Vec<FrocResult> = Category::ALL
        .iter()
        .filter(|c| c.is_localised())
        .filter(|c| categories.iter().any(|r| r.key == c.key() && r.assessed))
        .map(|&category| froc_result(category, &scored))
        .collect();
    let nodule_subgroups = nodule_subgroups(&scored, &froc);
    let outcomes: Vec<groups::CaseOutcome> = scored
        .iter()
        .map(|s| groups::CaseOutcome {
            group: s.case.label.provenance.group(),
            real: s.case.label.provenance.is_real(),
            categories: Category::ALL
                .iter()
                .map(|&c| {
                    let truth = s.case.label.truth(c);
                    let score = s.scores.get(&c).copied().unwrap_or(0.0);
                    let called = s.calls.get(&c).copied().unwrap_or(false);
                    (c, (truth, score, called))
                })
                .collect(),
        })
        .collect();
    let groups = groups::group_results(&outcomes, &options.bootstrap);
    let calibration = groups::calibration(&outcomes);

    Ok(EvaluationReport {
        schema: REPORT_SCHEMA.into(),
        model: ModelSummary {
            name: model.manifest.model.name.clone(),
            version: model.manifest.model.version.clone(),
            architecture: model.manifest.model.architecture.clone(),
            placeholder: model.is_placeholder(),
            manifest: options.manifest.as_ref().map(|p| p.display().to_string()),
        },
        dataset: DatasetSummary {
            directory: options.data.display().to_string(),
            cases: cases.len(),
            evaluated: scored.len(),
            not_analysed,
            failed,
        },
        bootstrap: options.bootstrap,
        hit_criterion: format!(
            "the centre of the predicted region's box lies on the lesion's mask (its box \
             when unmasked), or the boxes overlap with IoU >= {HIT_IOU}; one region per \
             lesion, further ones are duplicates (neither hits nor false positives)"
        ),
        groups,
        calibration,
        categories,
        froc,
        nodule_subgroups,
    })
}

fn category_result(
    category: Category,
    scored: &[Scored],
    manifest_labels: &[crate::model::manifest::Label],
    options: &Options,
) -> CategoryResult {
    let assessed = scored
        .first()
        .is_some_and(|s| s.assessed.get(&category).copied().unwrap_or(false));
    // Only cases whose label says something about the category count.
    let known: Vec<&Scored> = scored
        .iter()
        .filter(|s| s.case.label.truth(category).is_some())
        .collect();
    let scored = &known[..];
    let truth: Vec<bool> = scored
        .iter()
        .map(|s| s.case.label.truth(category) == Some(true))
        .collect();
    let positives = truth.iter().filter(|&&t| t).count();
    let scores: Vec<f64> = scored
        .iter()
        .map(|s| s.scores.get(&category).copied().unwrap_or(0.0))
        .collect();
    let calls: Vec<bool> = scored
        .iter()
        .map(|s| s.calls.get(&category).copied().unwrap_or(false))
        .collect();
    let confusion = if assessed {
        Confusion::tally(&calls, &truth)
    } else {
        Confusion::default()
    };
    let thresholds = manifest_labels
        .iter()
        .filter(|l| category.matches_label(&l.name) && !l.threshold.is_nan())
        .map(|l| (l.name.clone(), f64::from(l.threshold)))
        .collect();
    CategoryResult {
        key: category.key().into(),
        title: category.title().into(),
        assessed,
        positives,
        negatives: truth.len() - positives,
        auc: assessed.then(|| metrics::auc(&scores, &truth)).flatten(),
        auc_interval: assessed
            .then(|| metrics::bootstrap_auc_interval(&scores, &truth, &options.bootstrap))
            .flatten(),
        thresholds,
        confusion,
        sensitivity: assessed.then(|| confusion.sensitivity()).flatten(),
        specificity: assessed.then(|| confusion.specificity()).flatten(),
        roc: if assessed {
            metrics::roc_curve(&scores, &truth)
        } else {
            Vec::new()
        },
    }
}

/// The FROC images of one category: each case's located lesions and its
/// regions matched to them.
fn froc_images(category: Category, scored: &[Scored]) -> Vec<FrocImage> {
    scored
        .iter()
        .map(|s| {
            let lesions = s.case.label.lesions(category);
            let regions = s.regions.get(&category).map_or(&[][..], |r| &r[..]);
            FrocImage {
                lesions: lesions.len(),
                marks: match_marks(regions, &lesions),
            }
        })
        .collect()
}

fn froc_result(category: Category, scored: &[Scored]) -> FrocResult {
    let images = froc_images(category, scored);
    let curve = froc_curve(&images);
    let at_rates: Vec<FrocAtRate> = FALSE_POSITIVE_RATES
        .iter()
        .map(|&rate| {
            let point = froc_point_at(&curve, rate);
            FrocAtRate {
                false_positives_per_image: rate,
                threshold: point.and_then(|p| p.threshold),
                sensitivity: point.map(|p| p.sensitivity),
            }
        })
        .collect();
    let sensitivities: Vec<f64> = at_rates.iter().filter_map(|a| a.sensitivity).collect();
    FrocResult {
        key: category.key().into(),
        title: category.title().into(),
        images: images.len(),
        lesions: images.iter().map(|i| i.lesions).sum(),
        marks: images.iter().map(|i| i.marks.len()).sum(),
        mean_sensitivity: (sensitivities.len() == at_rates.len())
            .then(|| sensitivities.iter().sum::<f64>() / sensitivities.len() as f64),
        at_rates,
        curve,
    }
}

fn nodule_subgroups(scored: &[Scored], froc: &[FrocResult]) -> Vec<subgroups::SubgroupResult> {
    let category = Category::NoduleMass;
    let images = froc_images(category, scored);
    let mut outcomes = Vec::new();
    for (s, image) in scored.iter().zip(&images) {
        let called = s.calls.get(&category).copied().unwrap_or(false);
        for (index, lesion) in s.case.label.lesions(category).into_iter().enumerate() {
            let best_score = image
                .marks
                .iter()
                .filter(|m| m.lesion == Some(index))
                .map(|m| m.score)
                .max_by(f64::total_cmp);
            outcomes.push(LesionOutcome {
                tags: lesion.tags.clone(),
                diameter_mm: lesion.diameter_mm,
                best_score,
                image_called: called,
            });
        }
    }
    let rates: Vec<RateThreshold> = froc
        .iter()
        .find(|f| f.key == category.key())
        .map(|f| {
            f.at_rates
                .iter()
                .map(|a| RateThreshold {
                    false_positives_per_image: a.false_positives_per_image,
                    threshold: a.threshold,
                })
                .collect()
        })
        .unwrap_or_default();
    subgroup_results(&outcomes, &rates)
}

/// Writes `evaluation.json`, `evaluation.md`, `roc.png` and `froc.png` into
/// `out` (created if missing); returns their paths.
pub fn write_outputs(report: &EvaluationReport, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join("evaluation.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    let markdown = out.join("evaluation.md");
    std::fs::write(&markdown, report.render_markdown())
        .with_context(|| format!("writing {}", markdown.display()))?;
    let roc = out.join("roc.png");
    plots::plot_roc(report, &roc)?;
    let froc = out.join("froc.png");
    plots::plot_froc(report, &froc)?;
    let mut written = vec![json, markdown, roc, froc];
    if !report.calibration.is_empty() {
        let reliability = out.join("reliability.png");
        plots::plot_reliability(report, &reliability)?;
        written.push(reliability);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(label: &str) -> Case {
        Case {
            label_path: PathBuf::from("labels/x.json"),
            image_path: PathBuf::from("images/x.dcm"),
            label: serde_json::from_str(label).unwrap(),
        }
    }

    fn scored<'a>(case: &'a Case, score: f64, called: bool, region: [f32; 4]) -> Scored<'a> {
        let category = Category::NoduleMass;
        Scored {
            case,
            scores: HashMap::from([(category, score)]),
            calls: HashMap::from([(category, called)]),
            assessed: HashMap::from([(category, true)]),
            regions: HashMap::from([(
                category,
                vec![PredictedRegion {
                    bounding_box: region,
                    score,
                }],
            )]),
        }
    }

    /// Three images: A has a nodule over the heart that is called and hit
    /// (0.9); B is normal with a false mark (0.4); C has a free-lung nodule,
    /// not called, whose mark (0.3) misses it.
    #[test]
    fn hand_made_cases_flow_through_to_the_results() {
        let a = case(
            r#"{"image": "a.dcm", "findings": [{"category": "nodule-mass",
                "box": [10, 10, 20, 20], "tags": ["overlaps_heart"]}]}"#,
        );
        let b = case(r#"{"image": "b.dcm", "findings": []}"#);
        let c = case(
            r#"{"image": "c.dcm", "findings": [{"category": "nodule-mass",
                "box": [30, 30, 40, 40], "tags": ["free_lung"]}]}"#,
        );
        let all = [
            scored(&a, 0.9, true, [12.0, 12.0, 18.0, 18.0]),
            scored(&b, 0.4, false, [50.0, 50.0, 60.0, 60.0]),
            scored(&c, 0.3, false, [0.0, 0.0, 5.0, 5.0]),
        ];
        let options = Options {
            data: PathBuf::from("."),
            selection: Selection::default(),
            manifest: None,
            bootstrap: Bootstrap {
                resamples: 50,
                seed: 1,
                confidence: 0.95,
            },
        };
        let result = category_result(Category::NoduleMass, &all, &[], &options);
        // Positives 0.9 and 0.3 against the negative 0.4: one pair of two won.
        assert_eq!(result.auc, Some(0.5));
        assert_eq!((result.positives, result.negatives), (2, 1));
        assert_eq!(result.sensitivity, Some(0.5));
        assert_eq!(result.specificity, Some(1.0));

        // FROC: 0.9 finds A's nodule at 0 FP; 0.4 and 0.3 are false
        // positives (1/3, then 2/3 per image); C's nodule is never found.
        let froc = froc_result(Category::NoduleMass, &all);
        assert_eq!((froc.images, froc.lesions, froc.marks), (3, 2, 3));
        for at in &froc.at_rates {
            assert_eq!(at.sensitivity, Some(0.5), "{at:?}");
            assert_eq!(at.threshold, Some(0.9), "{at:?}");
        }
        assert_eq!(froc.mean_sensitivity, Some(0.5));

        let subgroups = nodule_subgroups(&all, &[froc]);
        let find = |key: &str| subgroups.iter().find(|s| s.key == key).unwrap();
        assert_eq!(
            find("overlaps_heart").sensitivity_at_manifest_threshold,
            Some(1.0)
        );
        assert_eq!(
            find("free_lung").sensitivity_at_manifest_threshold,
            Some(0.0)
        );
        assert_eq!(
            find("all").at_false_positive_rates[1].sensitivity,
            Some(0.5)
        );
    }
}
