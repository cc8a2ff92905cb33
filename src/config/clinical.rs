//! The `[research.clinical]` section: the columns a hospital adds to the
//! clinical data schema (docs/clinical-data.md) beyond the built-in ones.
//!
//! Declared here, in the configuration, so that a column the import does
//! not know is refused unless someone decided it belongs; the schema
//! itself (and the checks of these declarations) is
//! `research::clinical`'s.

use serde::{Deserialize, Serialize};

/// Settings of `chestnode research clinical …`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClinicalConfig {
    /// More columns, e.g.
    /// `{ name = "ldh_u_l", kind = "number", unit = "U/L", min = 0, max = 10000 }`.
    pub extra_columns: Vec<ExtraColumn>,
}

/// A column declared in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExtraColumn {
    /// Lower case letters, digits and `_`, starting with a letter.
    pub name: String,
    pub kind: ExtraColumnKind,
    /// The unit the values are in (documentation only; not converted).
    #[serde(default)]
    pub unit: Option<String>,
    /// Bounds of a `number` column, inclusive.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// The allowed values of an `enum` column (matched case-insensitively).
    #[serde(default)]
    pub values: Vec<String>,
}

/// What a declared column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtraColumnKind {
    Number,
    /// Free text: cleaned of the patient's name and ID on export.
    Text,
    /// `YYYY-MM-DD`: shifted by the patient's offset on export.
    Date,
    Enum,
}

impl ClinicalConfig {
    /// Checks the declarations against the built-in schema.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::research::clinical::Schema::new(&self.extra_columns)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("research.clinical.extra_columns: {e}"))
    }
}
