//! What a dataset says about one annotated radiograph: its doctors'
//! consensus turned into the lab's label file (`docs/dataset-format.md`),
//! and the per-patient split.
//!
//! It lives apart from the build so that the rules can be read and tested
//! on their own:
//!
//! - image-level `categories` come from the consensus findings through
//!   [`FindingType::category`]; "other" has no category and is kept as the
//!   tag `other`; an image with any finding but "normal" is abnormal;
//! - every consensus region becomes a finding with its box and a mask: a
//!   filled rectangle, or the filled polygon of the reader's polygon that
//!   best matches the region when there is one (the consensus itself
//!   keeps boxes only);
//! - the split is by patient (research ID), drawn by rank of a seeded hash
//!   so that even a small cohort gets a validation patient (and a test
//!   patient from three patients on) whenever their fraction is not zero.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::lab::dataset::{LABEL_SCHEMA, RunLengthMask, Split, SplitFractions, category_keys};
use crate::research::annotations::{
    Annotation, Consensus, FindingType, ImageConsensus, Location, iou,
};

/// What a label says about its image besides the annotations.
pub(super) struct ImageFacts<'a> {
    pub image: &'a str,
    pub source: &'a str,
    pub patient: &'a str,
    pub split: Split,
    pub sop_instance_uid: &'a str,
    pub rows: u32,
    pub columns: u32,
    pub spacing_mm: Option<[f32; 2]>,
    pub photometric: &'a str,
}

/// The label file of one image.
pub(super) fn label(
    facts: &ImageFacts,
    consensus: &ImageConsensus,
    rule: Consensus,
    annotations: &[&Annotation],
) -> Value {
    let mut categories: BTreeMap<String, bool> = category_keys()
        .into_iter()
        .map(|k| (k.to_owned(), false))
        .collect();
    let mut tags = Vec::new();
    for finding in &consensus.findings {
        match finding.category() {
            Some(category) => {
                categories.insert(category.key().to_owned(), true);
            }
            None => tags.push("other".to_owned()),
        }
    }
    let abnormal = consensus.findings.iter().any(|f| *f != FindingType::Normal)
        || consensus
            .regions
            .iter()
            .any(|(f, _)| *f != FindingType::Normal);
    categories.insert("any-abnormality".into(), abnormal);
    categories.insert("normal".into(), !abnormal);
    let findings: Vec<Value> = consensus
        .regions
        .iter()
        .filter(|(f, _)| *f != FindingType::Normal)
        .filter_map(|(finding, region)| {
            let category = finding.category().map_or("other", |c| c.key());
            categories.insert(category.to_owned(), true);
            located(facts, *finding, category, *region, annotations)
        })
        .collect();
    let mut label = json!({
        "schema": LABEL_SCHEMA,
        "image": facts.image,
        "source": facts.source,
        "real": true,
        "patient": facts.patient,
        "split": facts.split.key(),
        "sop_instance_uid": facts.sop_instance_uid,
        "rows": facts.rows,
        "columns": facts.columns,
        "photometric_interpretation": facts.photometric,
        "anatomy_known": false,
        "consensus": rule,
        "readers": consensus.readers,
        "categories": categories,
        "findings": findings,
        "tags": tags,
    });
    if let Some(spacing) = facts.spacing_mm {
        label["pixel_spacing_mm"] = json!(spacing);
    }
    label
}

/// A consensus region as a label finding, or `None` if it lies outside
/// the image.
fn located(
    facts: &ImageFacts,
    finding: FindingType,
    category: &str,
    region: [f64; 4],
    annotations: &[&Annotation],
) -> Option<Value> {
    let (rows, columns) = (facts.rows, facts.columns);
    let clip = |v: f64, max: u32| (v.max(0.0) as u32).min(max);
    let bbox = [
        clip(region[0].floor(), columns),
        clip(region[1].floor(), rows),
        clip((region[0] + region[2]).ceil(), columns),
        clip((region[1] + region[3]).ceil(), rows),
    ];
    if bbox[2] <= bbox[0] || bbox[3] <= bbox[1] {
        return None;
    }
    let region_bounds = (region[0], region[1], region[2], region[3]);
    let polygon = annotations
        .iter()
        .filter(|a| a.finding == finding)
        .filter_map(|a| match &a.location {
            Some(location @ Location::Polygon(points)) => {
                Some((iou(location.bounds(), region_bounds), points))
            }
            _ => None,
        })
        .filter(|(overlap, _)| *overlap >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let (mask, shape) = match polygon {
        Some((_, points)) => (polygon_mask(points, rows, columns), "polygon"),
        None => (box_mask(bbox, rows, columns), "box"),
    };
    let area: u32 = mask.counts.iter().skip(1).step_by(2).sum();
    let mut value = json!({
        "type": finding.key(),
        "category": category,
        "box": bbox,
        "area_px": area,
        "mask": mask,
        "mask_from": shape,
        "tags": [],
    });
    if let (Some(spacing), FindingType::NoduleMass) = (facts.spacing_mm, finding) {
        let width = f64::from(bbox[2] - bbox[0]) * f64::from(spacing[1]);
        let height = f64::from(bbox[3] - bbox[1]) * f64::from(spacing[0]);
        value["diameter_mm"] = json!((width + height) / 2.0);
    }
    Some(value)
}

/// A filled rectangle `[x0, y0, x1, y1)` over the whole image.
pub(super) fn box_mask(bbox: [u32; 4], rows: u32, columns: u32) -> RunLengthMask {
    let [x0, y0, x1, y1] = bbox;
    let bits = (0..rows)
        .flat_map(move |r| (0..columns).map(move |c| r >= y0 && r < y1 && c >= x0 && c < x1));
    RunLengthMask::from_bits(rows, columns, bits)
}

/// A filled polygon (even-odd rule at pixel centres) over the whole image.
pub(super) fn polygon_mask(points: &[[f64; 2]], rows: u32, columns: u32) -> RunLengthMask {
    let mut bits = vec![false; rows as usize * columns as usize];
    let n = points.len();
    for r in 0..rows {
        let y = f64::from(r) + 0.5;
        let mut crossings: Vec<f64> = (0..n)
            .filter_map(|i| {
                let (a, b) = (points[i], points[(i + 1) % n]);
                let crosses = (a[1] <= y && b[1] > y) || (b[1] <= y && a[1] > y);
                crosses.then(|| a[0] + (y - a[1]) / (b[1] - a[1]) * (b[0] - a[0]))
            })
            .collect();
        crossings.sort_by(f64::total_cmp);
        for pair in crossings.chunks_exact(2) {
            for c in 0..columns {
                let x = f64::from(c) + 0.5;
                if x >= pair[0] && x < pair[1] {
                    bits[(r * columns + c) as usize] = true;
                }
            }
        }
    }
    RunLengthMask::from_bits(rows, columns, bits)
}

/// The split of every patient: patients ordered by a seeded hash of their
/// key; the first share goes to test, the next to validation, the rest to
/// train. A fraction above zero gets at least one patient when there are
/// enough (validation from two patients, test from three), so that a
/// small cohort can still train and validate.
pub(super) fn assign_splits(
    patients: &[String],
    fractions: SplitFractions,
    seed: u64,
) -> BTreeMap<String, Split> {
    let mut order: Vec<(Vec<u8>, &String)> = patients
        .iter()
        .map(|p| {
            let mut hasher = Sha256::new();
            hasher.update(seed.to_le_bytes());
            hasher.update(p.as_bytes());
            (hasher.finalize().to_vec(), p)
        })
        .collect();
    order.sort();
    order.dedup_by(|a, b| a.1 == b.1);
    let n = order.len();
    let share = |fraction: f64, least: usize| {
        let count = (n as f64 * fraction).round() as usize;
        if fraction > 0.0 && n >= least {
            count.max(1)
        } else {
            count
        }
    };
    let test = share(fractions.test, 3);
    let validation = share(fractions.validation, 2).min(n.saturating_sub(test + 1));
    order
        .into_iter()
        .enumerate()
        .map(|(i, (_, patient))| {
            let split = if i < test {
                Split::Test
            } else if i < test + validation {
                Split::Validation
            } else {
                Split::Train
            };
            (patient.clone(), split)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::research::annotations::{Certainty, Source, consensus};

    fn annotation(reader: &str, finding: FindingType, location: Option<Location>) -> Annotation {
        Annotation {
            id: format!("{reader}-{}", finding.key()),
            version: 1,
            sop_instance_uid: "1.2.3".into(),
            reader: reader.into(),
            finding,
            finding_text: None,
            location,
            ct: None,
            certainty: Certainty::Definite,
            confirmed: None,
            created_at: 0,
            source: Source::File,
            deleted: false,
        }
    }

    fn facts() -> ImageFacts<'static> {
        ImageFacts {
            image: "images/a.dcm",
            source: "hospital:c-v1",
            patient: "R-1",
            split: Split::Train,
            sop_instance_uid: "9.9",
            rows: 20,
            columns: 30,
            spacing_mm: Some([0.5, 0.5]),
            photometric: "MONOCHROME2",
        }
    }

    #[test]
    fn boxes_and_polygons_become_findings_with_masks() {
        let square = Location::Box {
            x: 2.0,
            y: 3.0,
            width: 4.0,
            height: 5.0,
        };
        let triangle = Location::Polygon(vec![[10.0, 2.0], [20.0, 2.0], [10.0, 12.0]]);
        let list = [
            annotation("a", FindingType::NoduleMass, Some(square)),
            annotation("a", FindingType::Pneumonia, Some(triangle)),
            annotation("a", FindingType::Other, None),
        ];
        let refs: Vec<&Annotation> = list.iter().collect();
        let settled = consensus(&refs, Consensus::Majority);
        let label = label(&facts(), &settled, Consensus::Majority, &refs);
        assert_eq!(label["categories"]["nodule-mass"], true);
        assert_eq!(label["categories"]["consolidation"], true);
        assert_eq!(label["categories"]["any-abnormality"], true);
        assert_eq!(label["categories"]["normal"], false);
        assert_eq!(label["tags"], json!(["other"]));
        let findings = label["findings"].as_array().unwrap();
        assert_eq!(findings[0]["box"], json!([2, 3, 6, 8]));
        assert_eq!(findings[0]["area_px"], 20);
        assert_eq!(findings[0]["mask_from"], "box");
        assert_eq!(findings[1]["mask_from"], "polygon");
        assert_eq!(findings[1]["category"], "consolidation");
        let area = findings[1]["area_px"].as_u64().unwrap();
        assert!((45..=55).contains(&area), "triangle of 50 px: {area}");
        let mask: RunLengthMask = serde_json::from_value(findings[0]["mask"].clone()).unwrap();
        let bits = mask.decode();
        assert!(bits[3 * 30 + 2] && !bits[3 * 30 + 6] && !bits[8 * 30 + 2]);
    }

    #[test]
    fn a_normal_image_is_normal() {
        let list = [annotation("a", FindingType::Normal, None)];
        let refs: Vec<&Annotation> = list.iter().collect();
        let settled = consensus(&refs, Consensus::Union);
        let label = label(&facts(), &settled, Consensus::Union, &refs);
        assert_eq!(label["categories"]["normal"], true);
        assert_eq!(label["categories"]["any-abnormality"], false);
        assert!(label["findings"].as_array().unwrap().is_empty());
    }

    #[test]
    fn small_cohorts_still_get_a_validation_patient() {
        let fractions = SplitFractions::default();
        let two = ["R-1".to_owned(), "R-2".to_owned()];
        let splits = assign_splits(&two, fractions, 1);
        let mut got: Vec<Split> = splits.values().copied().collect();
        got.sort();
        assert_eq!(got, vec![Split::Train, Split::Validation]);
        let many: Vec<String> = (0..100).map(|i| format!("R-{i}")).collect();
        let splits = assign_splits(&many, fractions, 1);
        let count = |s| splits.values().filter(|v| **v == s).count();
        assert_eq!((count(Split::Test), count(Split::Validation)), (15, 15));
        assert_eq!(splits, assign_splits(&many, fractions, 1));
        assert_ne!(splits, assign_splits(&many, fractions, 2));
        let one = assign_splits(&two[..1], fractions, 1);
        assert_eq!(one["R-1"], Split::Train);
    }
}
