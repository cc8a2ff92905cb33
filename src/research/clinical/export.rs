//! `clinical.csv` in a research export: the clinical records of the
//! exported patients, under their research IDs and on their shifted time
//! line, so the partner can join them to the images and nothing leads
//! back to the patient.
//!
//! One row per record, the research ID first, then the schema's columns
//! (a column stored by an earlier configuration and no longer declared is
//! left out). Dates are shifted by the patient's date offset, exactly as
//! the images' dates are; free text and lists are cleaned of the patient's
//! name and ID, dates and long numbers (`deid`'s Clean Descriptors). The
//! export's de-identification options apply: without the date shift the
//! dates are left empty, without patient characteristics so are age, sex,
//! height and weight. Patients without clinical records have no rows; an
//! export with none at all has no `clinical.csv`.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{Days, NaiveDate};

use super::schema::{Column, Kind, Schema};
use crate::research::deid::{DeidOptions, clean_free_text};
use crate::research::vault::Vault;

/// The file name at the top of the export tree.
pub const CLINICAL_CSV: &str = "clinical.csv";

/// Columns that follow the "retain patient characteristics" option.
const CHARACTERISTICS: [&str; 4] = ["age_years", "sex", "height_cm", "weight_kg"];

/// Writes `tree/clinical.csv` for the patients of `research_ids`; returns
/// the number of rows (0: no file written).
pub fn write_clinical_csv(
    tree: &Path,
    vault: &Vault,
    research_ids: &BTreeSet<String>,
    schema: &Schema,
    options: &DeidOptions,
) -> anyhow::Result<usize> {
    let columns: Vec<&Column> = schema
        .columns()
        .iter()
        .filter(|c| c.kind != Kind::PatientId)
        .collect();
    let mut rows = Vec::new();
    for research_id in research_ids {
        let Some(identity) = vault.lookup(research_id) else {
            continue;
        };
        for record in vault.clinical(&identity.patient_id) {
            let mut row = vec![research_id.clone()];
            for column in &columns {
                let value = record.get(&column.name).map_or("", String::as_str);
                row.push(exported(
                    column,
                    value,
                    identity.date_offset_days,
                    &identity.patient_name,
                    &identity.patient_id,
                    options,
                )?);
            }
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return Ok(0);
    }
    let mut writer = csv::Writer::from_path(tree.join(CLINICAL_CSV))?;
    writer.write_record(
        std::iter::once("research_id").chain(columns.iter().map(|c| c.name.as_str())),
    )?;
    for row in &rows {
        writer.write_record(row)?;
    }
    writer.flush()?;
    Ok(rows.len())
}

/// One stored value as the partner gets it.
fn exported(
    column: &Column,
    value: &str,
    offset_days: i32,
    patient_name: &str,
    patient_id: &str,
    options: &DeidOptions,
) -> anyhow::Result<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if CHARACTERISTICS.contains(&column.name.as_str()) && !options.retain_patient_characteristics {
        return Ok(String::new());
    }
    Ok(match column.kind {
        Kind::PatientId => String::new(),
        Kind::Date if !options.retain_longitudinal_modified_dates => String::new(),
        Kind::Date => shift(value, offset_days)?,
        Kind::Text | Kind::List => clean_free_text(value, patient_name, patient_id),
        Kind::Number { .. } | Kind::Enum(_) => value.to_owned(),
    })
}

/// A `YYYY-MM-DD` date moved by `days`.
pub fn shift(date: &str, days: i32) -> anyhow::Result<String> {
    let parsed = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("a stored clinical date is damaged"))?;
    let magnitude = Days::new(u64::from(days.unsigned_abs()));
    let moved = if days < 0 {
        parsed.checked_sub_days(magnitude)
    } else {
        parsed.checked_add_days(magnitude)
    }
    .ok_or_else(|| anyhow::anyhow!("a shifted clinical date is out of range"))?;
    Ok(moved.format("%Y-%m-%d").to_string())
}
