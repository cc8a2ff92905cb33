//! Cohorts: which stored radiographs (and the chest CTs that pair with
//! them) go into one research delivery.
//!
//! A cohort is chosen by acquisition date, modality and finding category,
//! from complete series only, without the patients who opted out; then for
//! each radiograph the same patient's CT series within a window of days is
//! added, because CT is where a finding's location is confirmed. What was
//! chosen is stored in the ledger as a numbered version that is never
//! rewritten, only marked when exported or destroyed, so an export can
//! always say exactly which images it came from.
//!
//! The stored version holds UIDs, categories and counts, never patient
//! data: who a series belongs to is read again from its file header when
//! needed ([`header`]).

pub(super) mod header;
mod select;

pub use select::select;

use serde::{Deserialize, Serialize};

use crate::findings::Category;
use crate::ledger::Ledger;

/// Where a radiograph's categories come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CategorySource {
    /// The node's own findings (the analysis result of each image).
    Findings,
    /// Doctors' annotations: the categories a majority of an image's
    /// readers gave it.
    Labels,
}

/// What `research cohort create` was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortCriteria {
    pub name: String,
    /// Acquisition dates, inclusive, as `YYYY-MM-DD`.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Radiograph modalities, e.g. CR and DX.
    pub modalities: Vec<String>,
    /// A radiograph is taken when any of its categories is one of these.
    pub categories: Vec<Category>,
    pub source: CategorySource,
    /// CT series of the same patient within this many days are paired.
    pub ct_window_days: u32,
}

/// A radiograph series in a cohort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiographMember {
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    /// Positive categories (or `normal`), from the criteria's source.
    pub categories: Vec<Category>,
}

/// A chest CT series paired with a radiograph of the same patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtMember {
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    /// The radiograph series it pairs with (the nearest in time).
    pub paired_with: String,
    /// CT date minus radiograph date, in days.
    pub days_from_radiograph: i64,
}

/// Why series were left out, by count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortExclusions {
    /// Series of patients on the opt-out list.
    pub opted_out_series: usize,
    /// Distinct patients on the opt-out list who had matching series.
    pub opted_out_patients: usize,
    /// Series still receiving instances (not yet stable).
    pub incomplete_series: usize,
    /// Radiographs with no analysis result (not analysed, or failed), or,
    /// when chosen by doctors' labels, with no annotation.
    pub not_analysed: usize,
    /// Series whose header could not be read.
    pub unreadable: usize,
}

/// An export of a cohort version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub operator: String,
    /// sha256 of the node-side staging package.
    pub staging_sha256: String,
    pub files: usize,
    pub patients: usize,
}

/// One stored version of a cohort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortVersion {
    pub name: String,
    pub version: u32,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub operator: String,
    pub criteria: CohortCriteria,
    pub radiographs: Vec<RadiographMember>,
    pub paired_ct: Vec<CtMember>,
    pub patients: usize,
    pub exclusions: CohortExclusions,
    #[serde(default)]
    pub exports: Vec<ExportRecord>,
    /// Kept at least until this date (`YYYY-MM-DD`), set when exported.
    #[serde(default)]
    pub keep_until: Option<String>,
    /// When `research destroy` deleted its staging and keys.
    #[serde(default)]
    pub destroyed_at: Option<u64>,
}

impl CohortVersion {
    /// Radiographs per category (a radiograph with two categories counts
    /// in both), in the categories' report order.
    pub fn counts_by_category(&self) -> Vec<(Category, usize)> {
        Category::ALL
            .iter()
            .map(|&category| {
                let n = self
                    .radiographs
                    .iter()
                    .filter(|member| member.categories.contains(&category))
                    .count();
                (category, n)
            })
            .collect()
    }

    /// Whether it holds nothing to export.
    pub fn is_empty(&self) -> bool {
        self.radiographs.is_empty()
    }
}

/// Reads cohort names the way the command line writes them, and refuses
/// names that would not be safe as a folder name.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !name.starts_with('.'),
        "a cohort name is 1-64 letters, digits, '-', '_' or '.', not starting with '.': {name:?}"
    );
    Ok(())
}

/// Parses a category as the command line names it: the node's keys, and
/// the research protocol's words for them.
pub fn parse_category(text: &str) -> anyhow::Result<Category> {
    let normalised = text.trim().to_ascii_lowercase().replace('_', "-");
    let found = match normalised.as_str() {
        "nodule" | "mass" | "nodule-mass" | "lung-cancer" => Category::NoduleMass,
        "tb" | "tuberculosis" => Category::Tuberculosis,
        "pneumonia" | "consolidation" => Category::Consolidation,
        "mediastinal" | "mediastinal-mass" | "mediastinal-tumour" => Category::MediastinalMass,
        "copd" | "emphysema" => Category::Emphysema,
        "screening" | "screening-d" | "any-abnormality" | "abnormal" => Category::AnyAbnormality,
        "normal" => Category::Normal,
        _ => anyhow::bail!(
            "unknown category {text:?}; one of: nodule-mass, tuberculosis, pneumonia, \
             mediastinal, copd, screening-d, normal"
        ),
    };
    Ok(found)
}

/// The research protocol's name of a category, for reports.
pub fn category_name(category: Category) -> &'static str {
    match category {
        Category::NoduleMass => "nodule/mass",
        Category::Tuberculosis => "tuberculosis",
        Category::Consolidation => "pneumonia",
        Category::MediastinalMass => "mediastinal",
        Category::Emphysema => "COPD/emphysema",
        Category::AnyAbnormality => "screening D or worse",
        Category::Normal => "normal",
    }
}

/// A stored cohort version: the newest, or the one asked for.
pub fn load(ledger: &Ledger, name: &str, version: Option<u32>) -> anyhow::Result<CohortVersion> {
    validate_name(name)?;
    let cohorts = ledger.cohorts();
    let bytes = match version {
        Some(v) => cohorts
            .get(name, v)?
            .ok_or_else(|| anyhow::anyhow!("cohort {name} has no version {v}"))?,
        None => {
            cohorts
                .latest(name)?
                .ok_or_else(|| anyhow::anyhow!("no cohort named {name}"))?
                .1
        }
    };
    Ok(serde_json::from_slice(&bytes)?)
}

/// Writes back a version after marking it (exported, destroyed).
pub fn save(ledger: &Ledger, cohort: &CohortVersion) -> anyhow::Result<()> {
    ledger
        .cohorts()
        .update(&cohort.name, cohort.version, serde_json::to_vec(cohort)?)
}

/// Stores a newly chosen cohort as the next version of its name.
pub fn store(ledger: &Ledger, mut cohort: CohortVersion) -> anyhow::Result<CohortVersion> {
    let name = cohort.name.clone();
    let version = ledger.cohorts().add_version(&name, |version| {
        cohort.version = version;
        Ok(serde_json::to_vec(&cohort)?)
    })?;
    cohort.version = version;
    Ok(cohort)
}
