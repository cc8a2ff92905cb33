//! `research clinical import`: a whole CSV file checked, then stored in
//! the vault, or nothing stored at all.
//!
//! Every row is checked against the schema and against the Patient IDs of
//! the stored images before the vault changes; one bad row refuses the
//! file with every error listed. A patient named in the file gets exactly
//! the file's rows as their records: what an earlier import stored for
//! them is replaced, and the summary says for how many patients.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::parse::{RowError, parse};
use super::patients::known_patient_ids;
use super::schema::{PATIENT_ID, Schema};
use crate::ledger::Ledger;
use crate::research::vault::{ClinicalRecord, Vault};
use crate::research::{AuditLog, AuditRecord};

/// At most this many errors are listed; the rest are counted.
const ERRORS_LISTED: usize = 50;

/// What an import stored (counts only: no patient data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub rows: usize,
    pub patients: usize,
    /// Patients who had records before; theirs were replaced.
    pub replaced_patients: usize,
    /// How many records those patients had.
    pub replaced_records: usize,
    /// Patients without stored images, accepted by `allow_unknown`.
    pub unknown_patients: usize,
    /// The file's columns.
    pub columns: Vec<String>,
    /// SHA-256 of the file, as the audit log records it.
    pub sha256: String,
}

/// Checks `csv` and stores its records in `vault` (saved), or refuses the
/// whole file with every error listed. Rows whose Patient ID has no
/// stored images are errors unless `allow_unknown`.
#[allow(clippy::too_many_arguments)]
pub fn import(
    ledger: &Ledger,
    data_dir: &Path,
    vault: &mut Vault,
    audit: &AuditLog,
    schema: &Schema,
    csv: &str,
    allow_unknown: bool,
    operator: &str,
) -> anyhow::Result<ImportSummary> {
    let today = chrono::Utc::now().date_naive();
    let mut parsed = parse(schema, csv, today);
    let mut unknown = HashSet::new();
    if !parsed.rows.is_empty() {
        let known = known_patient_ids(ledger, data_dir)?;
        for row in &parsed.rows {
            if known.contains(&row.patient_id) {
                continue;
            }
            unknown.insert(row.patient_id.clone());
            if !allow_unknown {
                parsed.errors.push(RowError {
                    line: row.line,
                    column: Some(PATIENT_ID.into()),
                    reason: "no images of this patient are stored on this node \
                             (--allow-unknown-patients accepts such rows)"
                        .into(),
                });
            }
        }
    }
    if !parsed.errors.is_empty() {
        parsed.errors.sort_by_key(|e| e.line);
        anyhow::bail!("{}", refusal(&parsed.errors));
    }

    let mut by_patient: BTreeMap<String, Vec<ClinicalRecord>> = BTreeMap::new();
    for row in parsed.rows.iter() {
        by_patient
            .entry(row.patient_id.clone())
            .or_default()
            .push(row.record.clone());
    }
    let mut summary = ImportSummary {
        rows: parsed.rows.len(),
        patients: by_patient.len(),
        unknown_patients: unknown.len(),
        columns: parsed.columns,
        sha256: crate::model::manifest::sha256_hex(csv.as_bytes()),
        ..ImportSummary::default()
    };
    for (patient_id, records) in by_patient {
        let before = vault.set_clinical(&patient_id, records)?;
        if before > 0 {
            summary.replaced_patients += 1;
            summary.replaced_records += before;
        }
    }
    vault.save()?;
    audit.append(AuditRecord {
        operator: operator.to_owned(),
        action: "clinical.import".into(),
        subject: "clinical data".into(),
        details: serde_json::json!({
            "rows": summary.rows,
            "patients": summary.patients,
            "replaced_patients": summary.replaced_patients,
            "replaced_records": summary.replaced_records,
            "unknown_patients_accepted": summary.unknown_patients,
            "columns": summary.columns,
        }),
        sha256: Some(summary.sha256.clone()),
        destination: Some("research vault".into()),
    })?;
    Ok(summary)
}

/// The refusal: every error (up to a limit), one a line.
fn refusal(errors: &[RowError]) -> String {
    let mut text = format!(
        "the clinical data file was not imported (nothing was stored): {} error(s)",
        errors.len()
    );
    for error in errors.iter().take(ERRORS_LISTED) {
        let _ = write!(text, "\n  {error}");
    }
    if errors.len() > ERRORS_LISTED {
        let _ = write!(text, "\n  … and {} more", errors.len() - ERRORS_LISTED);
    }
    text
}
