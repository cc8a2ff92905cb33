//! `chestnode corpus`: a public corpus of real radiographs (a `labels.csv`
//! with one row per image, as `shared/data/cxr-train` has) imported into
//! the dataset format, so that `train`, `evaluate` and `synth
//! --insert-into` read real images exactly as they read generated ones.
//!
//! Each image becomes a DX file (the JPEG's 8-bit grey levels on a 12-bit
//! scale, MONOCHROME2, no PHI), and each row a label file that keeps the
//! row's provenance (repository, commit, path, licence) and adds the
//! patient key and split. Image-level labels map to chestnode's
//! categories where the source says something, and stay unknown where it
//! does not: an NIH "pneumonia" film also carries NIH's other 13 labels,
//! but a COVID collection says nothing about nodules. NIH boxes and the
//! extra corpus's nodule boxes become findings with an elliptical mask
//! inscribed in the box. Rows reserved for evaluation are refused and
//! counted; a row that cannot be read fails the import (nothing is
//! half-written: the dataset is built beside its final name and renamed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::dicom::{DxImage, Photometric};
use super::format::{DATASET_SCHEMA, LABEL_SCHEMA, RunLengthMask, category_keys};
use super::reserved::Reserved;
use super::split::{Split, SplitFractions, assign_split};
use super::writer::DatasetWriter;

/// Assumed detector width across the longer side, mm (the images carry no
/// spacing; an adult PA film is about 35–43 cm wide).
pub const ASSUMED_FIELD_OF_VIEW_MM: f32 = 400.0;

/// What to import.
#[derive(Debug, Clone)]
pub struct CorpusOptions {
    /// `labels.csv` files; image paths are relative to each file's folder.
    pub csv: Vec<PathBuf>,
    pub out: PathBuf,
    pub reserved: Reserved,
    pub fractions: SplitFractions,
    pub seed: u64,
}

/// What an import wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusSummary {
    pub imported: usize,
    /// Refused as reserved for evaluation, with the reason.
    pub reserved: Vec<(String, String)>,
    /// Rows without a usable label (`unknown`, `other`).
    pub unlabelled: usize,
    /// `source → split → label → count`.
    pub counts: BTreeMap<String, BTreeMap<String, BTreeMap<String, usize>>>,
}

/// One CSV row; columns beyond these are ignored.
#[derive(Debug, Clone, Deserialize)]
struct Row {
    file: String,
    source: String,
    label: String,
    #[serde(default)]
    pediatric: String,
    #[serde(default)]
    boxes: String,
    #[serde(default)]
    license: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    commit: String,
    #[serde(default)]
    original_path: String,
    #[serde(default)]
    nih_findings: String,
    #[serde(default)]
    nih_patient_id: String,
    #[serde(default)]
    nih_view: String,
    #[serde(default)]
    patient_id: String,
    /// JSON list of `{"type", "box", "diameter_mm", ...}` (extra corpora).
    #[serde(default)]
    findings: String,
}

/// A row ready to write.
struct Planned {
    base: PathBuf,
    row: Row,
    patient: String,
    split: Split,
    /// What the row's label says, per category key.
    categories: BTreeMap<String, bool>,
}

/// Imports every row of every CSV into `options.out`.
pub fn import_corpus(options: &CorpusOptions) -> anyhow::Result<CorpusSummary> {
    if options.out.exists() {
        bail!(
            "{} already exists: import into a new directory",
            options.out.display()
        );
    }
    let mut planned = Vec::new();
    let mut reserved = Vec::new();
    let mut unlabelled = 0;
    for csv_path in &options.csv {
        let base = csv_path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut reader = csv::Reader::from_path(csv_path)
            .with_context(|| format!("reading {}", csv_path.display()))?;
        for (line, row) in reader.deserialize::<Row>().enumerate() {
            let row = row.with_context(|| format!("{} row {}", csv_path.display(), line + 2))?;
            let nih = (!row.nih_patient_id.is_empty()).then_some(row.nih_patient_id.as_str());
            let path = if row.original_path.is_empty() {
                &row.file
            } else {
                &row.original_path
            };
            if let Some(why) = options.reserved.refuses(&row.repo, path, nih) {
                reserved.push((row.file.clone(), why));
                continue;
            }
            let categories = categories(&row);
            if categories.is_empty() {
                unlabelled += 1;
                continue;
            }
            let patient = patient_key(&row);
            let split = assign_split(&patient, options.fractions, options.seed);
            planned.push(Planned {
                base: base.clone(),
                row,
                patient,
                split,
                categories,
            });
        }
    }
    if planned.is_empty() {
        bail!("no importable rows in {:?}", options.csv);
    }
    let staging = options.out.with_extension("partial");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let writer = DatasetWriter::create(&staging)?;
    let written: Vec<String> = planned
        .par_iter()
        .enumerate()
        .map(|(index, p)| write_case(&writer, index, p))
        .collect::<anyhow::Result<_>>()?;

    let mut counts: BTreeMap<String, BTreeMap<String, BTreeMap<String, usize>>> = BTreeMap::new();
    for p in &planned {
        *counts
            .entry(p.row.source.clone())
            .or_default()
            .entry(p.split.key().into())
            .or_default()
            .entry(p.row.label.clone())
            .or_default() += 1;
    }
    let summary = CorpusSummary {
        imported: planned.len(),
        reserved,
        unlabelled,
        counts,
    };
    let manifest = json!({
        "schema": DATASET_SCHEMA,
        "generator": format!("chestnode corpus {}", env!("CARGO_PKG_VERSION")),
        "seed": options.seed,
        "count": planned.len(),
        "split_fractions": options.fractions,
        "csv": options.csv.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "refused_as_reserved": summary.reserved.len(),
        "counts": summary.counts,
        "labels": written,
    });
    writer.write_manifest(&manifest)?;
    std::fs::rename(&staging, &options.out)
        .with_context(|| format!("renaming into {}", options.out.display()))?;
    Ok(summary)
}

/// A patient key unique across sources: NIH patients by their NIH ID
/// (the same patient may appear in several repositories), others by the
/// source's patient ID, or the image when the source gives none.
fn patient_key(row: &Row) -> String {
    if !row.nih_patient_id.is_empty() {
        return format!("nih:{}", row.nih_patient_id.trim_start_matches("nih:"));
    }
    if !row.patient_id.is_empty() {
        return format!("{}:{}", row.source, row.patient_id);
    }
    // Kermany names films `person123_virus_45.jpeg`: the person is the patient.
    let stem = Path::new(if row.original_path.is_empty() {
        &row.file
    } else {
        &row.original_path
    })
    .file_stem()
    .map(|s| s.to_string_lossy().into_owned())
    .unwrap_or_default();
    if let Some(person) = stem
        .strip_prefix("person")
        .and_then(|s| s.split('_').next())
    {
        return format!("{}:person{person}", row.source);
    }
    format!("{}:{stem}", row.source)
}

/// The category keys a row's label says something about; empty when it
/// says nothing usable.
fn categories(row: &Row) -> BTreeMap<String, bool> {
    let findings: Vec<&str> = category_keys()
        .into_iter()
        .filter(|k| !matches!(*k, "any-abnormality" | "normal"))
        .collect();
    let mut known = BTreeMap::new();
    let nih: Vec<&str> = row
        .nih_findings
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let has = |name: &str| nih.iter().any(|f| f.eq_ignore_ascii_case(name));
    let abnormal = |key: &str, known: &mut BTreeMap<String, bool>| {
        known.insert(key.to_string(), true);
        known.insert("any-abnormality".into(), true);
        known.insert("normal".into(), false);
    };
    match row.label.as_str() {
        "normal" => {
            for key in findings {
                known.insert(key.to_string(), false);
            }
            known.insert("any-abnormality".into(), false);
            known.insert("normal".into(), true);
            return known;
        }
        "pneumonia" | "lung-opacity" => abnormal("consolidation", &mut known),
        "covid" => {
            // COVID-CXNet marks PCR-positive films without a visible
            // abnormality with a trailing '-': nothing to learn from.
            let stem = Path::new(&row.original_path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if stem.ends_with('-') {
                return BTreeMap::new();
            }
            abnormal("consolidation", &mut known);
        }
        "tuberculosis" => abnormal("tuberculosis", &mut known),
        "nodule" | "mass" => abnormal("nodule-mass", &mut known),
        "emphysema" | "copd" => abnormal("emphysema", &mut known),
        _ => return BTreeMap::new(),
    }
    if !nih.is_empty() {
        // NIH's own labels for the other categories of the same film.
        let nodule = has("Nodule") || has("Mass");
        known.entry("nodule-mass".into()).or_insert(nodule);
        known.entry("emphysema".into()).or_insert(has("Emphysema"));
        known
            .entry("pleural-effusion".into())
            .or_insert(has("Effusion"));
        if has("Consolidation") || has("Pneumonia") || has("Infiltration") {
            known.insert("consolidation".into(), true);
        }
    }
    known
}

/// NIH box labels and extra-corpus finding types → chestnode categories.
fn box_category(label: &str) -> Option<&'static str> {
    match label.to_ascii_lowercase().as_str() {
        "pneumonia" | "infiltrate" | "infiltration" | "consolidation" | "lung-opacity" => {
            Some("consolidation")
        }
        "nodule" | "mass" => Some("nodule-mass"),
        "effusion" => Some("pleural-effusion"),
        "tuberculosis" | "tb" => Some("tuberculosis"),
        _ => None,
    }
}

/// An ellipse inscribed in `[x0, y0, x1, y1]`, run-length encoded over the
/// whole image.
fn ellipse_mask(bbox: [u32; 4], rows: u32, columns: u32) -> RunLengthMask {
    let [x0, y0, x1, y1] = bbox;
    let (cx, cy) = ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0);
    let (rx, ry) = (
        ((x1 - x0) as f32 / 2.0).max(0.5),
        ((y1 - y0) as f32 / 2.0).max(0.5),
    );
    let inside = (0..rows).flat_map(|r| {
        (0..columns).map(move |c| {
            let (dx, dy) = ((c as f32 + 0.5 - cx) / rx, (r as f32 + 0.5 - cy) / ry);
            dx * dx + dy * dy <= 1.0
        })
    });
    RunLengthMask::from_bits(rows, columns, inside)
}

/// The row's located findings, clipped to the image.
fn findings(row: &Row, rows: u32, columns: u32, spacing: f32) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut push = |category: &str, kind: &str, raw: [f64; 4], diameter: Option<f64>| {
        let clip = |v: f64, max: u32| (v.round().max(0.0) as u32).min(max);
        let bbox = [
            clip(raw[0], columns),
            clip(raw[1], rows),
            clip(raw[2], columns),
            clip(raw[3], rows),
        ];
        if bbox[2] <= bbox[0] || bbox[3] <= bbox[1] {
            return;
        }
        let mut finding = json!({
            "type": kind,
            "category": category,
            "box": bbox,
            "mask": ellipse_mask(bbox, rows, columns),
            "mask_from": "ellipse inscribed in the source's box",
        });
        let diameter = diameter.or_else(|| {
            (category == "nodule-mass")
                .then(|| f64::from((bbox[2] - bbox[0] + bbox[3] - bbox[1]) as f32 / 2.0 * spacing))
        });
        if let Some(d) = diameter {
            finding["diameter_mm"] = json!(d);
            let bin = match d {
                d if d < 10.0 => "size_5_10mm",
                d if d < 20.0 => "size_10_20mm",
                d if d <= 30.0 => "size_20_30mm",
                _ => "size_over_30mm",
            };
            finding["tags"] = json!([bin]);
        }
        out.push(finding);
    };
    if !row.boxes.trim().is_empty() {
        let boxes: Vec<Vec<Value>> =
            serde_json::from_str(&row.boxes).context("the boxes column is not JSON")?;
        for b in boxes {
            let coords: Vec<f64> = b.iter().take(4).filter_map(Value::as_f64).collect();
            let label = b.get(4).and_then(Value::as_str).unwrap_or_default();
            if let (Some(category), [x0, y0, x1, y1]) = (box_category(label), coords.as_slice()) {
                push(category, label, [*x0, *y0, *x1, *y1], None);
            }
        }
    }
    if !row.findings.trim().is_empty() {
        let list: Vec<Value> =
            serde_json::from_str(&row.findings).context("the findings column is not JSON")?;
        for f in list {
            let kind = f["type"].as_str().unwrap_or_default();
            let coords: Vec<f64> = f["box"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            if let (Some(category), [x0, y0, x1, y1]) = (box_category(kind), coords.as_slice()) {
                push(
                    category,
                    kind,
                    [*x0, *y0, *x1, *y1],
                    f["diameter_mm"].as_f64(),
                );
            }
        }
    }
    Ok(out)
}

fn write_case(writer: &DatasetWriter, index: usize, p: &Planned) -> anyhow::Result<String> {
    let row = &p.row;
    let path = p.base.join(&row.file);
    let grey = image::open(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .to_luma8();
    let (columns, rows) = grey.dimensions();
    let spacing = ASSUMED_FIELD_OF_VIEW_MM / rows.max(columns) as f32;
    let pixels: Vec<u16> = grey
        .as_raw()
        .iter()
        .map(|&v| (u32::from(v) * 4095 / 255) as u16)
        .collect();
    let name = format!("real-{index:06}");
    let image = DatasetWriter::image(&name);
    let patient_id = format!("CORPUS-{index:06}");
    let description = format!("PUBLIC CORPUS {}", row.source.to_ascii_uppercase());
    DxImage {
        seed: 0,
        index: index as u64,
        rows: rows as usize,
        columns: columns as usize,
        spacing_mm: spacing,
        pixels: &pixels,
        photometric: Photometric::Monochrome2,
        window: (2048.0, 4096.0),
        description: "CHEST - PUBLIC RESEARCH CORPUS",
        identity: Some((&patient_id, &description)),
    }
    .write(&writer.image_path(&name))?;
    let mut categories = p.categories.clone();
    let findings = findings(row, rows, columns, spacing)
        .with_context(|| format!("{}: {}", row.source, row.file))?;
    for f in &findings {
        // A box is evidence of its category even where the label was silent.
        if let Some(category) = f["category"].as_str() {
            categories.insert(category.to_string(), true);
        }
    }
    let label = json!({
        "schema": LABEL_SCHEMA,
        "image": image,
        "source": row.source,
        "real": true,
        "patient": p.patient,
        "split": p.split.key(),
        "pediatric": row.pediatric,
        "view": row.nih_view,
        "label": row.label,
        "provenance": {
            "repository": row.repo,
            "commit": row.commit,
            "path": row.original_path,
            "licence": row.license,
            "corpus_file": row.file,
        },
        "rows": rows,
        "columns": columns,
        "pixel_spacing_mm": [spacing, spacing],
        "pixel_spacing_assumed": true,
        "photometric_interpretation": "MONOCHROME2",
        "anatomy_known": false,
        "categories": categories,
        "findings": findings,
    });
    writer.write_label(&name, &label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str) -> Row {
        Row {
            file: "images/x/a.jpg".into(),
            source: "x".into(),
            label: label.into(),
            pediatric: "no".into(),
            boxes: String::new(),
            license: String::new(),
            repo: "o/r".into(),
            commit: String::new(),
            original_path: "a.png".into(),
            nih_findings: String::new(),
            nih_patient_id: String::new(),
            nih_view: String::new(),
            patient_id: String::new(),
            findings: String::new(),
        }
    }

    #[test]
    fn labels_say_only_what_the_source_says() {
        let normal = categories(&row("normal"));
        assert!(normal["normal"]);
        assert!(!normal["nodule-mass"]);
        assert!(!normal["any-abnormality"]);

        let covid = categories(&row("covid"));
        assert!(covid["consolidation"]);
        assert!(covid["any-abnormality"]);
        assert!(
            !covid.contains_key("nodule-mass"),
            "a COVID set says nothing of nodules"
        );

        let mut nih = row("pneumonia");
        nih.nih_findings = "Pneumonia|Mass".into();
        let nih = categories(&nih);
        assert!(nih["nodule-mass"]);
        assert!(!nih["emphysema"]);
        assert!(!nih.contains_key("tuberculosis"));

        let mut silent = row("covid");
        silent.original_path = "covid/case-17-.png".into();
        assert!(categories(&silent).is_empty(), "no visible abnormality");
        assert!(categories(&row("unknown")).is_empty());
    }

    #[test]
    fn patients_key_on_nih_ids_and_kermany_persons() {
        let mut r = row("normal");
        r.nih_patient_id = "00001234".into();
        assert_eq!(patient_key(&r), "nih:00001234");
        let mut k = row("pneumonia");
        k.source = "kermany".into();
        k.original_path = "test/PNEUMONIA/person17_virus_48.jpeg".into();
        assert_eq!(patient_key(&k), "kermany:person17");
        let mut j = row("nodule");
        j.patient_id = "JPCLN001".into();
        assert_eq!(patient_key(&j), "x:JPCLN001");
    }

    #[test]
    fn boxes_become_findings_with_inscribed_masks() {
        let mut r = row("pneumonia");
        r.boxes = r#"[[10, 20, 30, 60, "pneumonia"], [0, 0, 5, 5, "cardiomegaly"]]"#.into();
        r.findings = r#"[{"type": "nodule", "box": [40, 40, 50, 50], "diameter_mm": 8.0}]"#.into();
        let found = findings(&r, 100, 80, 0.8).unwrap();
        assert_eq!(found.len(), 2, "cardiomegaly has no category");
        assert_eq!(found[0]["category"], "consolidation");
        assert_eq!(found[1]["category"], "nodule-mass");
        assert_eq!(found[1]["tags"][0], "size_5_10mm");
        let mask: RunLengthMask = serde_json::from_value(found[0]["mask"].clone()).unwrap();
        let bits = mask.decode();
        assert_eq!(bits.len(), 100 * 80);
        assert!(bits[40 * 80 + 20], "the centre is inside");
        assert!(!bits[20 * 80 + 10], "the corner is outside");
    }
}
