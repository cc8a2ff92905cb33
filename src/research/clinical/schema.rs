//! The clinical data schema, as data: every column an import accepts, with
//! its kind, unit and allowed values, so that validation, export and the
//! documentation (docs/clinical-data.md) all read the same table, and a
//! hospital can declare more columns in `[research.clinical]` without a
//! code change.

use std::collections::HashSet;
use std::fmt;

use anyhow::{bail, ensure};

use crate::config::{ExtraColumn, ExtraColumnKind};

/// The column that keys every row.
pub const PATIENT_ID: &str = "patient_id";

/// What a column holds and how it is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// The Patient ID as the images carry it (required, at most 64
    /// characters).
    PatientId,
    /// A decimal number within `min..=max`.
    Number { min: f64, max: f64 },
    /// `YYYY-MM-DD`; shifted by the patient's date offset on export.
    Date,
    /// One of the values (case-insensitive; stored as written here).
    Enum(Vec<String>),
    /// Free text; cleaned of the patient's name and ID on export.
    Text,
    /// `;`-separated free-text items; cleaned like text on export.
    List,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::PatientId => f.write_str("patient ID"),
            Kind::Number { min, max } => write!(f, "number {min}–{max}"),
            Kind::Date => f.write_str("date YYYY-MM-DD"),
            Kind::Enum(values) => write!(f, "one of {}", values.join(", ")),
            Kind::Text => f.write_str("text"),
            Kind::List => f.write_str("list separated by ';'"),
        }
    }
}

/// One column of the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub unit: Option<String>,
    /// Declared in the configuration rather than built in.
    pub declared: bool,
}

/// A built-in column: name, kind, unit.
type BuiltIn = (&'static str, Spec, &'static str);

/// The built-in kinds, in a form a `const` table can hold.
enum Spec {
    Id,
    Number(f64, f64),
    Date,
    Enum(&'static [&'static str]),
    Text,
    List,
}

/// The built-in columns, in the order the export writes them. Ranges are
/// wide plausibility bounds meant to catch unit mistakes and typos (a CRP
/// in mg/dL where mg/L is expected passes; a weight in grams does not).
const BUILT_IN: &[BuiltIn] = &[
    (PATIENT_ID, Spec::Id, ""),
    ("record_date", Spec::Date, ""),
    ("age_years", Spec::Number(0.0, 120.0), "years"),
    ("sex", Spec::Enum(&["M", "F", "O"]), ""),
    ("height_cm", Spec::Number(30.0, 250.0), "cm"),
    ("weight_kg", Spec::Number(1.0, 400.0), "kg"),
    (
        "smoking",
        Spec::Enum(&["never", "former", "current", "unknown"]),
        "",
    ),
    ("pack_years", Spec::Number(0.0, 200.0), "pack-years"),
    (
        "drinking",
        Spec::Enum(&["none", "occasional", "regular", "heavy", "unknown"]),
        "",
    ),
    ("history", Spec::Text, ""),
    ("comorbidities", Spec::List, ""),
    ("wbc_10e9_l", Spec::Number(0.0, 500.0), "10^9/L"),
    ("neutrophil_pct", Spec::Number(0.0, 100.0), "%"),
    ("lymphocyte_pct", Spec::Number(0.0, 100.0), "%"),
    ("hb_g_dl", Spec::Number(1.0, 25.0), "g/dL"),
    ("plt_10e9_l", Spec::Number(0.0, 2000.0), "10^9/L"),
    ("crp_mg_l", Spec::Number(0.0, 1000.0), "mg/L"),
    ("ldh_u_l", Spec::Number(0.0, 20000.0), "U/L"),
    ("cea_ng_ml", Spec::Number(0.0, 100000.0), "ng/mL"),
    ("cyfra21_1_ng_ml", Spec::Number(0.0, 10000.0), "ng/mL"),
    ("pro_grp_pg_ml", Spec::Number(0.0, 1000000.0), "pg/mL"),
    ("scc_ng_ml", Spec::Number(0.0, 10000.0), "ng/mL"),
    ("nse_ng_ml", Spec::Number(0.0, 10000.0), "ng/mL"),
    ("kl6_u_ml", Spec::Number(0.0, 100000.0), "U/mL"),
    ("pathology", Spec::Text, ""),
    ("pathology_date", Spec::Date, ""),
];

/// The columns an import accepts: the built-in ones, then those declared
/// in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    columns: Vec<Column>,
}

impl Schema {
    /// The built-in columns and `extra`; refuses a declaration that is
    /// malformed or names a column twice.
    pub fn new(extra: &[ExtraColumn]) -> anyhow::Result<Schema> {
        let mut columns: Vec<Column> = BUILT_IN
            .iter()
            .map(|(name, spec, unit)| Column {
                name: (*name).to_owned(),
                kind: match spec {
                    Spec::Id => Kind::PatientId,
                    Spec::Number(min, max) => Kind::Number {
                        min: *min,
                        max: *max,
                    },
                    Spec::Date => Kind::Date,
                    Spec::Enum(values) => {
                        Kind::Enum(values.iter().map(|v| (*v).to_owned()).collect())
                    }
                    Spec::Text => Kind::Text,
                    Spec::List => Kind::List,
                },
                unit: (!unit.is_empty()).then(|| (*unit).to_owned()),
                declared: false,
            })
            .collect();
        let mut names: HashSet<String> = columns.iter().map(|c| c.name.clone()).collect();
        for declared in extra {
            let column = declared_column(declared)?;
            if !names.insert(column.name.clone()) {
                bail!(
                    "column {:?} is declared twice, or is a built-in column",
                    column.name
                );
            }
            columns.push(column);
        }
        Ok(Schema { columns })
    }

    /// The built-in columns only.
    pub fn built_in() -> Schema {
        Schema::new(&[]).expect("the built-in table is valid")
    }

    /// All columns, built-in first, in export order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column called `name` (lower case).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A configuration declaration as a column, checked.
fn declared_column(declared: &ExtraColumn) -> anyhow::Result<Column> {
    let name = declared.name.as_str();
    ensure!(
        name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "column name {name:?}: lower case letters, digits and '_', starting with a letter, at most 64"
    );
    let is_number = declared.kind == ExtraColumnKind::Number;
    ensure!(
        is_number || (declared.min.is_none() && declared.max.is_none()),
        "column {name:?}: min and max are for number columns"
    );
    ensure!(
        declared.kind == ExtraColumnKind::Enum || declared.values.is_empty(),
        "column {name:?}: values are for enum columns"
    );
    let kind = match declared.kind {
        ExtraColumnKind::Number => {
            let min = declared.min.unwrap_or(f64::MIN);
            let max = declared.max.unwrap_or(f64::MAX);
            ensure!(
                min.is_finite() && max.is_finite() && min <= max,
                "column {name:?}: min must not be above max"
            );
            Kind::Number { min, max }
        }
        ExtraColumnKind::Text => Kind::Text,
        ExtraColumnKind::Date => Kind::Date,
        ExtraColumnKind::Enum => {
            ensure!(
                !declared.values.is_empty(),
                "column {name:?}: an enum column needs values = [...]"
            );
            let mut seen = HashSet::new();
            for value in &declared.values {
                ensure!(
                    !value.trim().is_empty() && value.trim() == value,
                    "column {name:?}: an empty or padded value {value:?}"
                );
                ensure!(
                    seen.insert(value.to_lowercase()),
                    "column {name:?}: value {value:?} is given twice"
                );
            }
            Kind::Enum(declared.values.clone())
        }
    };
    Ok(Column {
        name: name.to_owned(),
        kind,
        unit: declared.unit.clone().filter(|u| !u.trim().is_empty()),
        declared: true,
    })
}
