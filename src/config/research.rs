//! The `[research]` section: how the research wing selects, names and
//! keeps cohorts (docs/research.md).
//!
//! Kept apart from the clinical settings because it answers to a
//! different owner: the research protocol, not the PACS administrator.

use serde::{Deserialize, Serialize};

use super::ClinicalConfig;

/// Settings of `chestnode research …` and of series completion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ResearchConfig {
    /// A series is complete ("stable") once no instance has arrived for
    /// this many seconds; cohorts take only complete series.
    pub series_stable_secs: u64,
    /// Research IDs: each run of `#` is random digits, e.g. "YCU-######".
    pub research_id_pattern: String,
    /// A chest CT pairs with a radiograph of the same patient within this
    /// many days either side.
    pub ct_window_days: u32,
    /// An export is kept at least this many years (the keep-until date a
    /// cohort gets when exported, unless `--keep-until` says later).
    pub keep_years: u32,
    /// `[research.clinical]`: columns added to the clinical data schema.
    pub clinical: ClinicalConfig,
}

impl Default for ResearchConfig {
    fn default() -> Self {
        ResearchConfig {
            series_stable_secs: 60,
            research_id_pattern: "RID-######".into(),
            ct_window_days: 90,
            keep_years: 5,
            clinical: ClinicalConfig::default(),
        }
    }
}

impl ResearchConfig {
    /// Checks the values a typo would make dangerous.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.series_stable_secs >= 1,
            "research.series_stable_secs must be at least 1"
        );
        anyhow::ensure!(
            self.research_id_pattern.contains("###"),
            "research.research_id_pattern needs a run of at least three '#' (random digits)"
        );
        anyhow::ensure!(
            self.keep_years >= 1,
            "research.keep_years must be at least 1"
        );
        self.clinical.validate()?;
        Ok(())
    }
}
