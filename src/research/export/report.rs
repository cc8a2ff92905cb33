//! The export report: what an export holds, what was left out and why,
//! and how it was de-identified. It travels with the data (JSON for
//! programs, Markdown for people), so it says nothing that could identify
//! a patient: counts, research IDs, intervals, options.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts by modality.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModalityCounts {
    pub series: usize,
    pub instances: usize,
}

/// A radiograph–CT pair, as the partner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    pub research_id: String,
    /// The de-identified Series Instance UIDs.
    pub radiograph_series: String,
    pub ct_series: String,
    /// CT date minus radiograph date, in days (dates are shifted by the same
    /// per-patient offset, so the interval is the real one).
    pub days_from_radiograph: i64,
}

/// What `research export` wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportReport {
    pub cohort: String,
    pub version: u32,
    /// When the export was made (UTC, RFC 3339).
    pub exported_at: String,
    pub chestnode_version: String,
    /// The de-identification profile and its options.
    pub profile: Vec<String>,
    pub patients: usize,
    pub studies: usize,
    pub by_modality: BTreeMap<String, ModalityCounts>,
    /// The node's own result objects (SR, GSPS) of the radiographs.
    pub result_objects: usize,
    /// Radiographs per category, as the cohort chose them.
    pub categories: BTreeMap<String, usize>,
    pub pairings: Vec<Pairing>,
    /// Objects left out, by reason.
    pub excluded: BTreeMap<String, usize>,
    /// Patients on the opt-out list left out, when the cohort was chosen
    /// and (for those who opted out since) at export.
    pub opted_out_patients_at_selection: usize,
    pub opted_out_patients_at_export: usize,
    /// Series still incomplete when the cohort was chosen.
    pub incomplete_series_at_selection: usize,
    /// Instances of the cohort that retention had deleted before export.
    pub missing_instances: usize,
    /// What de-identification did, summed over every object.
    pub actions: DeidActions,
    /// Rows of `clinical.csv` (0: the file is absent).
    #[serde(default)]
    pub clinical_rows: usize,
}

/// Attribute actions taken, summed over the export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeidActions {
    pub removed: usize,
    pub replaced: usize,
    pub remapped_uids: usize,
    pub shifted_dates: usize,
}

impl ExportReport {
    /// The report for people.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let line = |md: &mut String, text: String| {
            md.push_str(&text);
            md.push('\n');
        };
        line(
            &mut md,
            format!(
                "# Research export: {} (version {})\n",
                self.cohort, self.version
            ),
        );
        line(&mut md, "Research use only, not for diagnosis.\n".into());
        line(
            &mut md,
            format!(
                "Exported {} by chestnode {}.\n",
                self.exported_at, self.chestnode_version
            ),
        );
        line(&mut md, "## De-identification\n".into());
        for option in &self.profile {
            line(&mut md, format!("- {option}"));
        }
        let a = &self.actions;
        line(
            &mut md,
            format!(
                "\nAttributes removed: {}; replaced: {}; UIDs replaced: {}; dates shifted: {}.",
                a.removed, a.replaced, a.remapped_uids, a.shifted_dates
            ),
        );
        line(&mut md, "\n## Contents\n".into());
        line(
            &mut md,
            format!("- patients: {}\n- studies: {}", self.patients, self.studies),
        );
        for (modality, counts) in &self.by_modality {
            line(
                &mut md,
                format!(
                    "- {modality}: {} series, {} instances",
                    counts.series, counts.instances
                ),
            );
        }
        line(
            &mut md,
            format!("- result objects (SR, GSPS): {}", self.result_objects),
        );
        line(
            &mut md,
            format!("- clinical records (clinical.csv): {}", self.clinical_rows),
        );
        line(&mut md, "\n## Radiographs by category\n".into());
        line(
            &mut md,
            "| category | radiograph series |\n|---|---|".into(),
        );
        for (category, n) in &self.categories {
            line(&mut md, format!("| {category} | {n} |"));
        }
        line(&mut md, "\n## Radiograph and CT pairs\n".into());
        if self.pairings.is_empty() {
            line(&mut md, "None.".into());
        } else {
            line(
                &mut md,
                "| research ID | days from radiograph to CT |\n|---|---|".into(),
            );
            for pair in &self.pairings {
                line(
                    &mut md,
                    format!("| {} | {} |", pair.research_id, pair.days_from_radiograph),
                );
            }
        }
        line(&mut md, "\n## Left out\n".into());
        line(
            &mut md,
            format!(
                "- patients who opted out: {} when chosen, {} more at export",
                self.opted_out_patients_at_selection, self.opted_out_patients_at_export
            ),
        );
        line(
            &mut md,
            format!(
                "- series still incomplete when chosen: {}",
                self.incomplete_series_at_selection
            ),
        );
        line(
            &mut md,
            format!(
                "- instances deleted by retention before export: {}",
                self.missing_instances
            ),
        );
        for (reason, n) in &self.excluded {
            line(&mut md, format!("- {reason}: {n}"));
        }
        md
    }
}
