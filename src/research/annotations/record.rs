//! What a doctor's annotation is: which image, who read it, what they
//! found, where (a box or polygon in image pixels, or the whole image),
//! how sure they are, whether the diagnosis was confirmed, and which CT
//! slice confirms the location.
//!
//! The JSON form here is the one every way in uses (the browser, the
//! import files, the SR and GSPS readers) and the one stored in the
//! ledger's `annotations` tree.

use serde::{Deserialize, Serialize};

use crate::findings::Category;

/// The finding, in the research protocol's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingType {
    NoduleMass,
    Tuberculosis,
    Pneumonia,
    Mediastinal,
    Copd,
    ScreeningD,
    Normal,
    /// Anything else, named in `finding_text`.
    Other,
}

impl FindingType {
    pub const ALL: [FindingType; 8] = [
        FindingType::NoduleMass,
        FindingType::Tuberculosis,
        FindingType::Pneumonia,
        FindingType::Mediastinal,
        FindingType::Copd,
        FindingType::ScreeningD,
        FindingType::Normal,
        FindingType::Other,
    ];

    /// The node's category of the same meaning (none for "other").
    pub fn category(self) -> Option<Category> {
        Some(match self {
            FindingType::NoduleMass => Category::NoduleMass,
            FindingType::Tuberculosis => Category::Tuberculosis,
            FindingType::Pneumonia => Category::Consolidation,
            FindingType::Mediastinal => Category::MediastinalMass,
            FindingType::Copd => Category::Emphysema,
            FindingType::ScreeningD => Category::AnyAbnormality,
            FindingType::Normal => Category::Normal,
            FindingType::Other => return None,
        })
    }

    /// The key, as in JSON and CSV.
    pub fn key(self) -> &'static str {
        match self {
            FindingType::NoduleMass => "nodule-mass",
            FindingType::Tuberculosis => "tuberculosis",
            FindingType::Pneumonia => "pneumonia",
            FindingType::Mediastinal => "mediastinal",
            FindingType::Copd => "copd",
            FindingType::ScreeningD => "screening-d",
            FindingType::Normal => "normal",
            FindingType::Other => "other",
        }
    }

    /// Parses a key (or the node's category keys, which mean the same).
    pub fn parse(text: &str) -> anyhow::Result<FindingType> {
        let text = text.trim().to_ascii_lowercase();
        if let Some(found) = FindingType::ALL.into_iter().find(|f| f.key() == text) {
            return Ok(found);
        }
        match super::super::cohort::parse_category(&text) {
            Ok(category) => Ok(FindingType::ALL
                .into_iter()
                .find(|f| f.category() == Some(category))
                .expect("every category has a finding type")),
            Err(_) => anyhow::bail!(
                "unknown finding {text:?}; one of nodule-mass, tuberculosis, pneumonia, \
                 mediastinal, copd, screening-d, normal, other"
            ),
        }
    }
}

/// Where, in image pixels (column, row from the top-left corner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    Box {
        x: f64,
        y: f64,
        width: f64,
        height: f64,
    },
    Polygon(Vec<[f64; 2]>),
}

impl Location {
    /// The enclosing box (x, y, width, height).
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        match self {
            Location::Box {
                x,
                y,
                width,
                height,
            } => (*x, *y, *width, *height),
            Location::Polygon(points) => {
                let xs = points.iter().map(|p| p[0]);
                let ys = points.iter().map(|p| p[1]);
                let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
                let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
                (x0, y0, x1 - x0, y1 - y0)
            }
        }
    }

    /// Checks the shape and that it lies inside an image of `columns` ×
    /// `rows` pixels.
    pub fn check(&self, columns: u32, rows: u32) -> anyhow::Result<()> {
        let finite = |v: f64| v.is_finite();
        match self {
            Location::Box { width, height, .. } => anyhow::ensure!(
                *width > 0.0 && *height > 0.0,
                "a box needs a positive width and height"
            ),
            Location::Polygon(points) => anyhow::ensure!(
                points.len() >= 3,
                "a polygon needs at least 3 points, got {}",
                points.len()
            ),
        }
        let (x, y, w, h) = self.bounds();
        anyhow::ensure!(
            [x, y, w, h].into_iter().all(finite),
            "coordinates must be numbers"
        );
        anyhow::ensure!(
            x >= 0.0 && y >= 0.0 && x + w <= f64::from(columns) && y + h <= f64::from(rows),
            "the location ({x:.0},{y:.0} {w:.0}×{h:.0}) is outside the image ({columns}×{rows})"
        );
        Ok(())
    }
}

/// How sure the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Certainty {
    Definite,
    Probable,
    Possible,
}

/// How the diagnosis was confirmed, if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confirmation {
    Pathology,
    Culture,
    Other,
}

/// The CT that confirms the location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtConfirmation {
    pub series_instance_uid: String,
    #[serde(default)]
    pub sop_instance_uid: Option<String>,
}

/// Which way the annotation came in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    #[default]
    Browser,
    File,
    DicomSr,
    DicomGsps,
}

/// One version of an annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Stable across versions.
    pub id: String,
    pub version: u32,
    pub sop_instance_uid: String,
    pub reader: String,
    pub finding: FindingType,
    #[serde(default)]
    pub finding_text: Option<String>,
    /// `None`: the finding is about the whole image (e.g. COPD).
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub ct: Option<CtConfirmation>,
    pub certainty: Certainty,
    #[serde(default)]
    pub confirmed: Option<Confirmation>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    #[serde(default)]
    pub source: Source,
    /// A deletion is a new version with this set.
    #[serde(default)]
    pub deleted: bool,
}

/// An annotation as it comes in, before it has an id, version and time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAnnotation {
    /// Set to change an existing annotation (a new version of it).
    #[serde(default)]
    pub id: Option<String>,
    pub sop_instance_uid: String,
    #[serde(default)]
    pub reader: Option<String>,
    pub finding: FindingType,
    #[serde(default)]
    pub finding_text: Option<String>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub ct: Option<CtConfirmation>,
    pub certainty: Certainty,
    #[serde(default)]
    pub confirmed: Option<Confirmation>,
    #[serde(default)]
    pub deleted: bool,
}

impl NewAnnotation {
    /// The checks that need no image: the text of "other", reader names.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.finding == FindingType::Other {
            anyhow::ensure!(
                self.finding_text
                    .as_deref()
                    .is_some_and(|t| !t.trim().is_empty()),
                "finding \"other\" needs finding_text"
            );
        }
        if let Some(reader) = &self.reader {
            anyhow::ensure!(
                !reader.trim().is_empty() && reader.len() <= 64,
                "a reader name is 1-64 characters"
            );
        }
        Ok(())
    }
}
