//! Reading a clinical CSV file against the schema: the header must name
//! known columns only, and every cell of every row is checked, so that one
//! pass reports every problem with its line and column. Nothing here
//! stores anything; the import stores only when this found no error.
//!
//! Error messages never repeat a Patient ID or free text: they reach the
//! operator's terminal through the server, and may be pasted into tickets.

use std::collections::HashSet;
use std::fmt;

use chrono::NaiveDate;

use super::schema::{Column, Kind, PATIENT_ID, Schema};
use crate::research::vault::ClinicalRecord;

/// Longest Patient ID accepted (DICOM LO).
const MAX_PATIENT_ID: usize = 64;
/// Longest free-text cell accepted.
const MAX_TEXT: usize = 10_000;
/// Dates before this are typos.
const EARLIEST_YEAR: i32 = 1900;

/// One valid row.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRow {
    /// The line the row starts on (the header is line 1).
    pub line: u64,
    pub patient_id: String,
    /// The other cells, normalised; empty cells are absent.
    pub record: ClinicalRecord,
}

/// What is wrong with one cell, row or the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    /// The column, when the problem is one cell's.
    pub column: Option<String>,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// The rows that passed and the errors found; the file is importable only
/// when `errors` is empty.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<ParsedRow>,
    pub errors: Vec<RowError>,
    /// The columns the file has, in its order.
    pub columns: Vec<String>,
}

/// Checks `text` (a whole CSV file, UTF-8, header first) against `schema`;
/// dates after `today` are refused.
pub fn parse(schema: &Schema, text: &str, today: NaiveDate) -> Parsed {
    let mut parsed = Parsed::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header_error = |reason: String| RowError {
        line: 1,
        column: None,
        reason,
    };
    let columns: Vec<Option<&Column>> = match reader.headers() {
        Ok(names) => {
            let names: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
            match check_header(schema, &names) {
                Ok(columns) => {
                    parsed.columns = names;
                    columns
                }
                Err(reason) => {
                    parsed.errors.push(header_error(reason));
                    return parsed;
                }
            }
        }
        Err(error) => {
            parsed
                .errors
                .push(header_error(format!("not a readable CSV header: {error}")));
            return parsed;
        }
    };
    for result in reader.records() {
        let record = match result {
            Ok(record) => record,
            Err(error) => {
                parsed.errors.push(csv_error(&error));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut patient_id = None;
        let mut row = ClinicalRecord::new();
        let mut row_ok = true;
        for (cell, column) in record.iter().zip(&columns) {
            let Some(column) = column else {
                if !cell.is_empty() {
                    parsed.errors.push(RowError {
                        line,
                        column: None,
                        reason: "a value in the last column, which has no name".into(),
                    });
                    row_ok = false;
                }
                continue;
            };
            match check_cell(column, cell, today) {
                Ok(None) if column.kind == Kind::PatientId => {
                    parsed.errors.push(RowError {
                        line,
                        column: Some(PATIENT_ID.into()),
                        reason: "empty; every row needs the Patient ID".into(),
                    });
                    row_ok = false;
                }
                Ok(None) => {}
                Ok(Some(value)) if column.kind == Kind::PatientId => patient_id = Some(value),
                Ok(Some(value)) => {
                    row.insert(column.name.clone(), value);
                }
                Err(reason) => {
                    parsed.errors.push(RowError {
                        line,
                        column: Some(column.name.clone()),
                        reason,
                    });
                    row_ok = false;
                }
            }
        }
        if let Some(reason) = inconsistency(&row) {
            parsed.errors.push(RowError {
                line,
                column: Some("pack_years".into()),
                reason,
            });
            row_ok = false;
        }
        if let (true, Some(patient_id)) = (row_ok, patient_id) {
            parsed.rows.push(ParsedRow {
                line,
                patient_id,
                record: row,
            });
        }
    }
    if parsed.errors.is_empty() && parsed.rows.is_empty() {
        parsed
            .errors
            .push(header_error("the file has a header but no rows".into()));
    }
    parsed
}

/// The schema column of each header name (`None` for an ignored empty
/// trailing column); an error naming every unknown or repeated column.
fn check_header<'s>(
    schema: &'s Schema,
    names: &[String],
) -> Result<Vec<Option<&'s Column>>, String> {
    let mut unknown = Vec::new();
    let mut repeated = Vec::new();
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            // a trailing comma on every line, as spreadsheets write it
            if i + 1 == names.len() && i > 0 {
                columns.push(None);
                continue;
            }
            return Err(format!("column {} has no name", i + 1));
        }
        if !seen.insert(name.as_str()) {
            repeated.push(name.as_str());
        }
        match schema.column(name) {
            Some(column) => columns.push(Some(column)),
            None => unknown.push(name.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown column(s) {}: not in the clinical data schema (docs/clinical-data.md); \
             declare them in [research.clinical] extra_columns to import them",
            unknown.join(", ")
        ));
    }
    if !repeated.is_empty() {
        return Err(format!("repeated column(s) {}", repeated.join(", ")));
    }
    if !seen.contains(PATIENT_ID) {
        return Err(format!("no {PATIENT_ID} column; every row is keyed by it"));
    }
    Ok(columns)
}

/// A cell checked and normalised; `None` when empty.
fn check_cell(column: &Column, cell: &str, today: NaiveDate) -> Result<Option<String>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    if cell.contains('\0') {
        return Err("holds a NUL character".into());
    }
    match &column.kind {
        Kind::PatientId => {
            if cell.chars().count() > MAX_PATIENT_ID {
                return Err(format!("longer than {MAX_PATIENT_ID} characters"));
            }
            if cell.contains('\\') || cell.chars().any(char::is_control) {
                return Err("holds a backslash or a control character".into());
            }
            Ok(Some(cell.to_owned()))
        }
        Kind::Number { min, max } => {
            let value = number(cell).ok_or_else(|| {
                format!(
                    "{cell:?} is not a number (digits with an optional '.' decimal point; \
                     leave the cell empty when unknown)"
                )
            })?;
            let unit = column
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            if value < *min {
                return Err(format!("{cell} is below the minimum {min}{unit}"));
            }
            if value > *max {
                return Err(format!("{cell} is above the maximum {max}{unit}"));
            }
            Ok(Some(cell.trim_start_matches('+').to_owned()))
        }
        Kind::Date => {
            let date = NaiveDate::parse_from_str(cell, "%Y-%m-%d")
                .ok()
                .filter(|_| cell.len() == 10)
                .ok_or_else(|| format!("{cell:?} is not a date YYYY-MM-DD"))?;
            if date > today {
                return Err(format!("{cell} is in the future"));
            }
            if date < NaiveDate::from_ymd_opt(EARLIEST_YEAR, 1, 1).expect("valid") {
                return Err(format!("{cell} is before {EARLIEST_YEAR}"));
            }
            Ok(Some(date.format("%Y-%m-%d").to_string()))
        }
        Kind::Enum(values) => values
            .iter()
            .find(|v| v.to_lowercase() == cell.to_lowercase())
            .map(|v| Some(v.clone()))
            .ok_or_else(|| format!("{cell:?} is not one of {}", values.join(", "))),
        Kind::Text => {
            if cell.chars().count() > MAX_TEXT {
                return Err(format!("longer than {MAX_TEXT} characters"));
            }
            Ok(Some(cell.to_owned()))
        }
        Kind::List => {
            if cell.chars().count() > MAX_TEXT {
                return Err(format!("longer than {MAX_TEXT} characters"));
            }
            let items: Vec<&str> = cell
                .split(';')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .collect();
            Ok((!items.is_empty()).then(|| items.join("; ")))
        }
    }
}

/// A plain decimal: optional sign, digits, optional `.` and digits. No
/// exponents, `inf`, `NaN`, thousands separators or decimal commas.
fn number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty());
    if !plain {
        return None;
    }
    text.parse().ok()
}

/// A contradiction between cells of one row.
fn inconsistency(row: &ClinicalRecord) -> Option<String> {
    let smoking = row.get("smoking")?;
    let pack_years: f64 = row.get("pack_years")?.parse().ok()?;
    (smoking == "never" && pack_years > 0.0)
        .then(|| format!("{pack_years} pack-years for a patient who never smoked"))
}

/// A CSV reading error as a row error (a row with too few or too many
/// cells, mostly).
fn csv_error(error: &csv::Error) -> RowError {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => RowError {
            line: pos.as_ref().map_or(0, |p| p.line()),
            column: None,
            reason: format!("{len} cells where the header has {expected_len}"),
        },
        _ => RowError {
            line: error.position().map_or(0, |p| p.line()),
            column: None,
            reason: format!("unreadable: {error}"),
        },
    }
}
