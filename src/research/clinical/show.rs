//! `research clinical show`: a patient's clinical records for an
//! authorised local operator. It shows patient data, so it is audited
//! whether it finds anything or not, and the audit entry names the
//! research ID only (or says that the patient has none).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::research::identity::open_vault;
use crate::research::vault::{ClinicalRecord, KeySource};
use crate::research::{AuditLog, AuditRecord};

/// Whose records to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClinicalSubject {
    ResearchId(String),
    PatientId(String),
}

/// A patient's records, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicalShown {
    /// `None` when the patient was never exported (no pseudonym yet).
    pub research_id: Option<String>,
    pub records: Vec<ClinicalRecord>,
}

/// The subject's records (possibly none); audited either way. An unknown
/// research ID is an error.
pub fn show(
    data_dir: &Path,
    key: &KeySource,
    subject: &ClinicalSubject,
    operator: &str,
) -> anyhow::Result<ClinicalShown> {
    let audit = AuditLog::open(data_dir)?;
    let vault = open_vault(data_dir, key)?;
    let (patient_id, research_id) = match subject {
        ClinicalSubject::ResearchId(research_id) => match vault.lookup(research_id) {
            Some(identity) => (Some(identity.patient_id), Some(identity.research_id)),
            None => (None, None),
        },
        ClinicalSubject::PatientId(patient_id) => (
            Some(patient_id.clone()),
            vault.find_pseudonym(patient_id).map(|p| p.research_id),
        ),
    };
    let records = patient_id
        .as_deref()
        .map(|id| vault.clinical(id).to_vec())
        .unwrap_or_default();
    let subject_text = match (subject, &research_id) {
        (_, Some(research_id)) => research_id.clone(),
        (ClinicalSubject::ResearchId(asked), None) => asked.clone(),
        (ClinicalSubject::PatientId(_), None) => "a patient without a research ID".into(),
    };
    audit.append(AuditRecord {
        operator: operator.to_owned(),
        action: "clinical.show".into(),
        subject: subject_text,
        details: serde_json::json!({
            "by": match subject {
                ClinicalSubject::ResearchId(_) => "research ID",
                ClinicalSubject::PatientId(_) => "patient ID",
            },
            "found": patient_id.is_some(),
            "records": records.len(),
        }),
        sha256: None,
        destination: None,
    })?;
    if let (ClinicalSubject::ResearchId(asked), None) = (subject, &patient_id) {
        anyhow::bail!("unknown research ID {asked:?}");
    }
    Ok(ClinicalShown {
        research_id,
        records,
    })
}
