//! The vault's clinical section: each patient's clinical records (age,
//! smoking, blood tests, pathology, …), kept inside the encrypted vault so
//! that they share its key, its lock and its atomic save, and never sit
//! in plain text beside the pseudonym table.
//!
//! The vault stores records as validated column → value maps and knows
//! nothing of the schema: `research::clinical` validates before it calls
//! [`Vault::set_clinical`], and filters by the schema on export.

use std::collections::BTreeMap;

use super::{Vault, normalise};

/// One clinical record: column name → value as validated on import
/// (missing cells are absent).
pub type ClinicalRecord = BTreeMap<String, String>;

impl Vault {
    /// Replaces the patient's clinical records with `records` (none
    /// removes the patient's section); returns how many records it had.
    /// Marks the vault dirty.
    pub fn set_clinical(
        &mut self,
        patient_id: &str,
        records: Vec<ClinicalRecord>,
    ) -> anyhow::Result<usize> {
        let patient_id = normalise(patient_id)?.to_owned();
        let before = if records.is_empty() {
            self.body.clinical.remove(&patient_id)
        } else {
            self.body.clinical.insert(patient_id, records)
        };
        self.dirty.set(true);
        Ok(before.map_or(0, |r| r.len()))
    }

    /// The patient's clinical records, in the order imported; empty when
    /// there are none.
    pub fn clinical(&self, patient_id: &str) -> &[ClinicalRecord] {
        normalise(patient_id)
            .ok()
            .and_then(|id| self.body.clinical.get(id))
            .map_or(&[], Vec::as_slice)
    }

    /// How many patients have clinical records.
    pub fn clinical_patients(&self) -> usize {
        self.body.clinical.len()
    }
}
