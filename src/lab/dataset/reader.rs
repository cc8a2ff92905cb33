//! The one reader of labelled datasets (`docs/dataset-format.md`), for
//! training and evaluation alike: the cases listed in `dataset.json`, or
//! every `labels/*.json` when it lists none, each with its image-level
//! truth, its findings and its provenance, and the subset a [`Selection`]
//! admits.
//!
//! Labels are read leniently, so that real annotated data need only what
//! the tools use: `image`, `categories` (or findings to derive them from)
//! and, for localisation and segmentation, each finding's `category`,
//! `box` and optionally `mask`, `diameter_mm` and `tags`. Generator
//! bookkeeping (`seed`, `index`, …) is not required, and unknown fields
//! are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use super::format::RunLengthMask;
use super::selection::{Provenance, Selection};
use crate::findings::Category;

/// One labelled case.
#[derive(Debug, Clone, Deserialize)]
pub struct CaseLabel {
    /// The DICOM file, relative to the dataset directory.
    pub image: String,
    /// Category key → present; may be incomplete (see [`CaseLabel::has`]).
    #[serde(default)]
    pub categories: BTreeMap<String, bool>,
    #[serde(default)]
    pub findings: Vec<LesionLabel>,
    /// Source, split and patient, where the label file gives them.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// One annotated finding.
#[derive(Debug, Clone, Deserialize)]
pub struct LesionLabel {
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The category key it counts towards.
    pub category: String,
    /// `[x0, y0, x1, y1]`: first column and row, one past the last.
    #[serde(rename = "box", default)]
    pub bbox: Option<[u32; 4]>,
    #[serde(default)]
    pub mask: Option<RunLengthMask>,
    #[serde(default)]
    pub diameter_mm: Option<f32>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl CaseLabel {
    /// Whether the case has a finding of `category`: the label's
    /// `categories` entry, or else derived from its findings.
    pub fn has(&self, category: Category) -> bool {
        if let Some(&present) = self.categories.get(category.key()) {
            return present;
        }
        match category {
            Category::AnyAbnormality => !self.findings.is_empty(),
            Category::Normal => self.findings.is_empty(),
            _ => self.findings.iter().any(|f| f.category == category.key()),
        }
    }

    /// What the label says about `category`: `None` when it lists
    /// categories but is silent on this one (a COVID collection says
    /// nothing about nodules), so the case counts in neither class.
    pub fn truth(&self, category: Category) -> Option<bool> {
        if self.categories.is_empty() || self.categories.contains_key(category.key()) {
            return Some(self.has(category));
        }
        match category {
            Category::Normal => self.categories.get("any-abnormality").map(|a| !a),
            Category::AnyAbnormality => self.categories.get("normal").map(|n| !n),
            _ => None,
        }
    }

    /// The findings of `category` that have a location (a box).
    pub fn lesions(&self, category: Category) -> Vec<&LesionLabel> {
        self.findings
            .iter()
            .filter(|f| f.category == category.key() && f.bbox.is_some())
            .collect()
    }
}

/// A case with where its files are.
#[derive(Debug, Clone)]
pub struct Case {
    /// The label file.
    pub label_path: PathBuf,
    /// The image, resolved against the dataset directory.
    pub image_path: PathBuf,
    pub label: CaseLabel,
}

#[derive(Deserialize)]
struct DatasetFile {
    #[serde(default)]
    labels: Vec<String>,
}

/// The cases of the datasets in `dirs` that `selection` admits: dataset
/// by dataset, each in its order. Training reads several datasets at once
/// (a real corpus and lesions inserted into its training patients);
/// evaluation reads one. It is an error when none is admitted, not when
/// one dataset contributes nothing.
pub fn read_selected(dirs: &[PathBuf], selection: &Selection) -> anyhow::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for dir in dirs {
        cases.extend(
            read_cases(dir)?
                .into_iter()
                .filter(|c| selection.admits(&c.label.provenance)),
        );
    }
    if cases.is_empty() {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        bail!("no case of {} is selected", names.join(" + "));
    }
    Ok(cases)
}

/// Every case of the dataset in `dir`, in order.
pub fn read_cases(dir: &Path) -> anyhow::Result<Vec<Case>> {
    let label_paths = label_paths(dir)?;
    if label_paths.is_empty() {
        bail!("{} holds no label files", dir.display());
    }
    label_paths
        .into_iter()
        .map(|label_path| {
            let text = std::fs::read_to_string(&label_path)
                .with_context(|| format!("reading {}", label_path.display()))?;
            let label: CaseLabel = serde_json::from_str(&text)
                .with_context(|| format!("label file {}", label_path.display()))?;
            let relative = Path::new(&label.image);
            if relative.is_absolute()
                || relative
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                bail!(
                    "{}: image path {:?} must stay inside the dataset",
                    label_path.display(),
                    label.image
                );
            }
            Ok(Case {
                image_path: dir.join(relative),
                label_path,
                label,
            })
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct DatasetInfo {
    #[serde(default)]
    generator: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    count: Option<u64>,
}

/// How a dataset describes itself: its directory, with the generator,
/// seed and case count of its `dataset.json` when it has one.
pub fn describe(dir: &Path) -> String {
    let info = std::fs::read_to_string(dir.join("dataset.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<DatasetInfo>(&text).ok());
    match info {
        Some(DatasetInfo {
            generator,
            seed,
            count,
        }) => format!(
            "{} (generator {}, seed {}, {} cases)",
            dir.display(),
            generator.as_deref().unwrap_or("unknown"),
            seed.map_or("unknown".into(), |s| s.to_string()),
            count.map_or("unknown".into(), |c| c.to_string()),
        ),
        None => dir.display().to_string(),
    }
}

/// The label files `dataset.json` lists, or else `labels/*.json`, sorted.
fn label_paths(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let manifest = dir.join("dataset.json");
    if manifest.exists() {
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let dataset: DatasetFile =
            serde_json::from_str(&text).with_context(|| format!("{}", manifest.display()))?;
        if !dataset.labels.is_empty() {
            return Ok(dataset.labels.iter().map(|l| dir.join(l)).collect());
        }
    }
    let labels = dir.join("labels");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&labels)
        .with_context(|| format!("listing {}", labels.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_real_data_label_reads_and_derives_categories() {
        let text = r#"{"image": "images/a.dcm",
            "findings": [{"category": "nodule-mass", "box": [1, 2, 3, 4]},
                         {"category": "consolidation"}]}"#;
        let label: CaseLabel = serde_json::from_str(text).unwrap();
        assert!(label.has(Category::NoduleMass));
        assert!(label.has(Category::Consolidation));
        assert!(!label.has(Category::Emphysema));
        assert!(label.has(Category::AnyAbnormality) && !label.has(Category::Normal));
        assert_eq!(label.lesions(Category::NoduleMass).len(), 1);
        assert!(
            label.lesions(Category::Consolidation).is_empty(),
            "no box: image-level only"
        );
    }

    #[test]
    fn a_silent_category_is_unknown_not_negative() {
        let covid: CaseLabel = serde_json::from_str(
            r#"{"image": "a.dcm", "source": "hannover", "split": "test",
                "categories": {"consolidation": true, "any-abnormality": true}}"#,
        )
        .unwrap();
        assert_eq!(covid.truth(Category::Consolidation), Some(true));
        assert_eq!(covid.truth(Category::NoduleMass), None);
        assert_eq!(covid.truth(Category::Normal), Some(false));
        assert!(covid.provenance.is_real());
        let synthetic: CaseLabel = serde_json::from_str(r#"{"image": "b.dcm"}"#).unwrap();
        assert_eq!(synthetic.truth(Category::NoduleMass), Some(false));
        assert_eq!(synthetic.provenance.source, "synthetic");
    }

    #[test]
    fn listed_categories_win_and_paths_must_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("labels")).unwrap();
        std::fs::write(
            dir.path().join("labels/b.json"),
            r#"{"image": "images/b.dcm", "categories": {"normal": true}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("labels/a.json"),
            r#"{"image": "images/a.dcm", "categories": {"tuberculosis": true}}"#,
        )
        .unwrap();
        let cases = read_cases(dir.path()).unwrap();
        assert_eq!(cases.len(), 2);
        assert!(cases[0].label.has(Category::Tuberculosis), "sorted by name");
        assert_eq!(cases[1].image_path, dir.path().join("images/b.dcm"));
        std::fs::write(
            dir.path().join("labels/c.json"),
            r#"{"image": "../outside.dcm"}"#,
        )
        .unwrap();
        assert!(read_cases(dir.path()).is_err());
    }
}
