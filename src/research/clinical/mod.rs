//! Clinical data: the background, blood tests, tumour markers and
//! pathology that give the images their meaning for research, imported
//! from the hospital's CSV files keyed by Patient ID
//! (`chestnode research clinical …`, docs/clinical-data.md).
//!
//! The schema is a table in code (`schema.rs`) that the configuration can
//! extend; an import is checked row by row and stored all or nothing
//! (`parse.rs`, `import.rs`), inside the pseudonym vault so that it shares
//! its key; it leaves the node only in a research export, as
//! `clinical.csv` under research IDs with shifted dates (`export.rs`).
//!
//! | file | role |
//! |---|---|
//! | `schema` | the columns: kinds, units, ranges, values; configured extras |
//! | `parse` | a CSV file checked against the schema, every error with its line |
//! | `patients` | the Patient IDs that have stored images |
//! | `import` | all-or-nothing storage in the vault, audited |
//! | `export` | `clinical.csv` in a research export |
//! | `show` | a patient's records for the operator, audited |

mod export;
mod import;
mod parse;
mod patients;
mod schema;
mod show;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use export::{CLINICAL_CSV, write_clinical_csv};
pub use import::{ImportSummary, import};
pub use parse::{Parsed, ParsedRow, RowError, parse};
pub use schema::{Column, Kind, PATIENT_ID, Schema};
pub use show::{ClinicalShown, ClinicalSubject, show};

/// A clinical CSV file's content on its way to the server. Its `Debug`
/// shows the size only: the content is patient data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClinicalCsv(pub String);

impl std::fmt::Debug for ClinicalCsv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClinicalCsv(<{} bytes>)", self.0.len())
    }
}
