//! The evaluation report: what `chestnode evaluate` writes as
//! `evaluation.json` (these types, through serde) and as the Markdown
//! summary `evaluation.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::groups::{CalibrationResult, GroupResult};
use super::metrics::{Bootstrap, Confusion, FrocPoint, RocPoint};
use super::subgroups::SubgroupResult;

pub const REPORT_SCHEMA: &str = "chestnode-evaluation/1";

/// The false-positive rates per image at which FROC sensitivity is reported.
pub const FALSE_POSITIVE_RATES: [f64; 6] = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0];

/// Everything an evaluation measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    pub schema: String,
    pub model: ModelSummary,
    pub dataset: DatasetSummary,
    pub bootstrap: Bootstrap,
    /// When a predicted region counts as finding a lesion.
    pub hit_criterion: String,
    /// Per source, real radiographs first (all of them pooled, then each).
    #[serde(default)]
    pub groups: Vec<GroupResult>,
    /// Reliability on real radiographs.
    #[serde(default)]
    pub calibration: Vec<CalibrationResult>,
    /// One per chestnode category, in report order.
    pub categories: Vec<CategoryResult>,
    /// One per localised category the model assesses.
    pub froc: Vec<FrocResult>,
    /// Nodules and masses by location and size.
    pub nodule_subgroups: Vec<SubgroupResult>,
}

/// Which model was evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// True for the untrained built-in placeholder: its results mean nothing.
    pub placeholder: bool,
    /// The manifest file, when one was given.
    pub manifest: Option<String>,
}

/// What was evaluated, and what could not be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub directory: String,
    pub cases: usize,
    /// Cases whose image was analysed and counts in every result.
    pub evaluated: usize,
    /// Images the node would not analyse (e.g. not a frontal chest image).
    pub not_analysed: Vec<CaseProblem>,
    /// Images that could not be read, decoded or run.
    pub failed: Vec<CaseProblem>,
}

/// An image left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseProblem {
    pub image: String,
    pub reason: String,
}

/// Image-level results of one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryResult {
    pub key: String,
    pub title: String,
    /// False when the model has no label for it (nothing else is filled).
    pub assessed: bool,
    pub positives: usize,
    pub negatives: usize,
    /// `None` when the set lacks positives or negatives.
    pub auc: Option<f64>,
    /// Bootstrap interval at `bootstrap.confidence`.
    pub auc_interval: Option<[f64; 2]>,
    /// The manifest thresholds of the labels behind the category (empty
    /// for a category derived from the other labels).
    pub thresholds: BTreeMap<String, f64>,
    /// Calls at the manifest thresholds against the truth.
    pub confusion: Confusion,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub roc: Vec<RocPoint>,
}

/// Localisation results of one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrocResult {
    pub key: String,
    pub title: String,
    pub images: usize,
    /// Annotated lesions with a location.
    pub lesions: usize,
    /// Marks (predicted regions) scored.
    pub marks: usize,
    pub at_rates: Vec<FrocAtRate>,
    /// Mean sensitivity over [`FALSE_POSITIVE_RATES`].
    pub mean_sensitivity: Option<f64>,
    pub curve: Vec<FrocPoint>,
}

/// FROC sensitivity at one false-positive rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrocAtRate {
    pub false_positives_per_image: f64,
    /// The score threshold of that operating point (`None`: no marks).
    pub threshold: Option<f64>,
    pub sensitivity: Option<f64>,
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

/// A proportion with its 95 % interval, e.g. `0.500 (0.150–0.850)`.
fn number_with_interval(value: Option<f64>, interval: Option<[f64; 2]>) -> String {
    match (value, interval) {
        (Some(v), Some([low, high])) => format!("{v:.3} ({low:.2}–{high:.2})"),
        _ => number(value),
    }
}

fn rate(value: f64) -> String {
    format!("{value}")
}

impl EvaluationReport {
    /// The Markdown summary.
    pub fn render_markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.model;
        let _ = writeln!(out, "# Evaluation of {} {}\n", m.name, m.version);
        if m.placeholder {
            out += "> **The model is the untrained placeholder: these numbers mean nothing \
                    about any real model.**\n\n";
        }
        out += "Research use only, not for diagnosis.\n\n";
        let d = &self.dataset;
        let _ = writeln!(
            out,
            "- Model: `{}` ({}){}\n- Dataset: `{}`: {} cases, {} evaluated, {} not analysed, {} failed\n\
             - AUC intervals: {:.0}% percentile bootstrap, {} stratified resamples, seed {}\n\
             - Hit criterion: {}\n",
            m.name,
            m.architecture,
            m.manifest
                .as_deref()
                .map(|p| format!(", manifest `{p}`"))
                .unwrap_or_default(),
            d.directory,
            d.cases,
            d.evaluated,
            d.not_analysed.len(),
            d.failed.len(),
            self.bootstrap.confidence * 100.0,
            self.bootstrap.resamples,
            self.bootstrap.seed,
            self.hit_criterion,
        );
        self.render_groups(&mut out);
        self.render_categories(&mut out);
        self.render_froc(&mut out);
        self.render_subgroups(&mut out);
        for (title, problems) in [("Not analysed", &d.not_analysed), ("Failed", &d.failed)] {
            if !problems.is_empty() {
                let _ = writeln!(out, "## {title}\n");
                for problem in problems {
                    let _ = writeln!(out, "- `{}`: {}", problem.image, problem.reason);
                }
                out += "\n";
            }
        }
        out += if self.calibration.is_empty() {
            "Plots: `roc.png`, `froc.png`.\n"
        } else {
            "Plots: `roc.png`, `froc.png`, `reliability.png` (real radiographs).\n"
        };
        out
    }

    /// Real radiographs first: per source, normals flagged, calibration.
    fn render_groups(&self, out: &mut String) {
        if self.groups.is_empty() {
            return;
        }
        out.push_str("## By source (real radiographs first)\n\n");
        out.push_str(
            "AUC with its interval where the source has both classes; \
             `flagged` is the share of normal radiographs called abnormal at the manifest threshold.\n\n",
        );
        out.push_str("| source | real | cases | normals flagged |");
        let keys: Vec<&str> = self.groups[0]
            .categories
            .iter()
            .map(|c| c.key.as_str())
            .collect();
        for key in &keys {
            let _ = write!(out, " {key} AUC |");
        }
        out.push_str("\n|---|---|---:|---:|");
        for _ in &keys {
            out.push_str("---:|");
        }
        out.push('\n');
        for g in &self.groups {
            let flagged = if g.normals > 0 {
                format!(
                    "{}/{} ({:.0}%)",
                    g.normals_flagged,
                    g.normals,
                    100.0 * g.normals_flagged as f64 / g.normals as f64
                )
            } else {
                "–".into()
            };
            let _ = write!(
                out,
                "| {} | {} | {} | {} |",
                g.group,
                if g.real { "yes" } else { "no" },
                g.cases,
                flagged
            );
            for c in &g.categories {
                let cell = match c.auc {
                    Some(_) => format!(
                        "{} ({}+/{}−)",
                        number_with_interval(c.auc, c.auc_interval),
                        c.positives,
                        c.negatives
                    ),
                    None if c.positives + c.negatives > 0 => {
                        format!("– ({}+/{}−)", c.positives, c.negatives)
                    }
                    None => "–".into(),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out.push('\n');
        if !self.calibration.is_empty() {
            out.push_str("### Calibration on real radiographs\n\n");
            out.push_str("| category | cases | expected calibration error |\n|---|---:|---:|\n");
            for c in &self.calibration {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.3} |",
                    c.title, c.cases, c.expected_calibration_error
                );
            }
            out.push('\n');
        }
    }

    fn render_categories(&self, out: &mut String) {
        *out += "## Image level\n\n\
                | Category | Pos | Neg | AUC | 95% CI | Threshold | Sensitivity | Specificity |\n\
                |---|---:|---:|---:|---|---|---:|---:|\n";
        for c in &self.categories {
            if !c.assessed {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | not assessed by the model | | | | |",
                    c.title, c.positives, c.negatives
                );
                continue;
            }
            let interval = c
                .auc_interval
                .map(|[low, high]| format!("{low:.3}–{high:.3}"))
                .unwrap_or_else(|| "–".into());
            let thresholds = if c.thresholds.is_empty() {
                "derived".to_string()
            } else {
                c.thresholds
                    .iter()
                    .map(|(label, t)| format!("{label} ≥ {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                c.title,
                c.positives,
                c.negatives,
                number(c.auc),
                interval,
                thresholds,
                number(c.sensitivity),
                number(c.specificity)
            );
        }
        *out += "\n";
    }

    fn render_froc(&self, out: &mut String) {
        *out += "## Localisation (FROC)\n\nSensitivity at false positives per image:\n\n";
        let header: Vec<String> = FALSE_POSITIVE_RATES.iter().map(|r| rate(*r)).collect();
        let _ = writeln!(
            out,
            "| Category | Images | Lesions | {} | Mean |\n|---|---:|---:|{}---:|",
            header.join(" | "),
            "---:|".repeat(header.len())
        );
        for f in &self.froc {
            let cells: Vec<String> = f.at_rates.iter().map(|a| number(a.sensitivity)).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                f.title,
                f.images,
                f.lesions,
                cells.join(" | "),
                number(f.mean_sensitivity)
            );
        }
        *out += "\n";
    }

    fn render_subgroups(&self, out: &mut String) {
        *out += "## Nodules and masses by subgroup\n\n\
                Per-lesion sensitivity (found: the image is called positive and a region hits \
                the lesion; at a FP rate: a region scoring at or above that FROC operating \
                point hits it), with its Wilson 95% interval in brackets.\n\n";
        let rates: Vec<String> = self
            .nodule_subgroups
            .first()
            .map(|s| {
                s.at_false_positive_rates
                    .iter()
                    .map(|r| format!("@ {} FP/image", rate(r.false_positives_per_image)))
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| Subgroup | Lesions | At manifest threshold | {} |\n|---|---:|---:|{}",
            rates.join(" | "),
            "---:|".repeat(rates.len())
        );
        for s in &self.nodule_subgroups {
            let cells: Vec<String> = s
                .at_false_positive_rates
                .iter()
                .map(|r| number_with_interval(r.sensitivity, r.sensitivity_interval))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                s.title,
                s.lesions,
                number_with_interval(
                    s.sensitivity_at_manifest_threshold,
                    s.sensitivity_at_manifest_threshold_interval
                ),
                cells.join(" | ")
            );
        }
        *out += "\n";
    }
}
