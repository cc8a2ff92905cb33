//! When a predicted region counts as finding an annotated lesion, and the
//! matching of an image's marks to its lesions for FROC.
//!
//! **Hit criterion.** A predicted region hits a lesion when the centre of
//! the region's bounding box lies on the lesion's mask (on its box when the
//! label has no mask), or when the two boxes overlap with an intersection
//! over union of at least [`HIT_IOU`]. The centre rule is the usual one for
//! small lesions, where a coarse evidence map rarely matches the outline;
//! the overlap rule keeps large, irregular findings (consolidation,
//! emphysema over both lungs) whose box centre may fall between lobes.
//!
//! **Matching.** Marks are taken highest score first; each takes the
//! not-yet-found lesion it overlaps most among those it hits. A mark that
//! hits only lesions already found is a duplicate of them.

use super::metrics::Mark;
use crate::lab::dataset::LesionLabel;
use crate::lab::dataset::RunLengthMask;

/// Boxes overlapping at least this much are a hit whatever their centres.
pub const HIT_IOU: f64 = 0.3;

/// A predicted region: `[x_min, y_min, x_max, y_max]` in original pixel
/// coordinates (x = column), and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictedRegion {
    pub bounding_box: [f32; 4],
    pub score: f64,
}

/// Whether `region` hits `lesion` (see the module documentation).
pub fn hits(region: &[f32; 4], lesion: &LesionLabel) -> bool {
    let Some(bbox) = lesion.bbox else {
        return false;
    };
    let centre_x = f64::from(region[0] + region[2]) / 2.0;
    let centre_y = f64::from(region[1] + region[3]) / 2.0;
    let centre_inside = match &lesion.mask {
        Some(mask) => mask_contains(mask, centre_x, centre_y),
        None => box_contains(bbox, centre_x, centre_y),
    };
    centre_inside || box_iou(region, bbox) >= HIT_IOU
}

/// Whether the pixel under point (x, y) is set in a run-length mask.
pub fn mask_contains(mask: &RunLengthMask, x: f64, y: f64) -> bool {
    let [rows, columns] = mask.size;
    if x < 0.0 || y < 0.0 || x >= f64::from(columns) || y >= f64::from(rows) {
        return false;
    }
    let index = (y.floor() as u64) * u64::from(columns) + x.floor() as u64;
    let mut start = 0u64;
    for (k, &count) in mask.counts.iter().enumerate() {
        let end = start + u64::from(count);
        if index < end {
            return k % 2 == 1;
        }
        start = end;
    }
    false
}

fn box_contains(bbox: [u32; 4], x: f64, y: f64) -> bool {
    let [x0, y0, x1, y1] = bbox.map(f64::from);
    (x0..x1).contains(&x) && (y0..y1).contains(&y)
}

/// Intersection over union of a predicted box and a label box.
pub fn box_iou(region: &[f32; 4], bbox: [u32; 4]) -> f64 {
    let [a0, b0, a1, b1] = region.map(f64::from);
    let [c0, d0, c1, d1] = bbox.map(f64::from);
    let width = (a1.min(c1) - a0.max(c0)).max(0.0);
    let height = (b1.min(d1) - b0.max(d0)).max(0.0);
    let intersection = width * height;
    let union = (a1 - a0).max(0.0) * (b1 - b0).max(0.0) + (c1 - c0) * (d1 - d0) - intersection;
    if union <= 0.0 {
        0.0
    } else {
        intersection / union
    }
}

/// The FROC marks of one image: each region matched to a lesion it hits,
/// in the order given.
pub fn match_marks(regions: &[PredictedRegion], lesions: &[&LesionLabel]) -> Vec<Mark> {
    let mut order: Vec<usize> = (0..regions.len()).collect();
    order.sort_by(|&a, &b| regions[b].score.total_cmp(&regions[a].score));
    let mut found = vec![false; lesions.len()];
    let mut marks = vec![
        Mark {
            score: 0.0,
            lesion: None
        };
        regions.len()
    ];
    for i in order {
        let region = &regions[i];
        let hit: Vec<usize> = (0..lesions.len())
            .filter(|&l| hits(&region.bounding_box, lesions[l]))
            .collect();
        let overlap = |l: &usize| box_iou(&region.bounding_box, lesions[*l].bbox.unwrap_or([0; 4]));
        let best = |candidates: Vec<usize>| {
            candidates
                .into_iter()
                .max_by(|a, b| overlap(a).total_cmp(&overlap(b)))
        };
        let new = best(hit.iter().copied().filter(|&l| !found[l]).collect());
        let lesion = new.or_else(|| best(hit));
        if let Some(l) = lesion {
            found[l] = true;
        }
        marks[i] = Mark {
            score: region.score,
            lesion,
        };
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesion(bbox: [u32; 4], mask: Option<RunLengthMask>) -> LesionLabel {
        LesionLabel {
            kind: "nodule".into(),
            category: "nodule-mass".into(),
            bbox: Some(bbox),
            mask,
            diameter_mm: None,
            tags: Vec::new(),
        }
    }

    #[test]
    fn mask_membership_follows_the_runs() {
        // 4×4: row 1 columns 1–2 set, and pixel (3, 3).
        let mask = RunLengthMask {
            size: [4, 4],
            counts: vec![5, 2, 8, 1],
        };
        assert!(mask_contains(&mask, 1.5, 1.5));
        assert!(mask_contains(&mask, 2.9, 1.0));
        assert!(!mask_contains(&mask, 3.5, 1.5));
        assert!(mask_contains(&mask, 3.5, 3.5));
        assert!(!mask_contains(&mask, 0.5, 0.5));
        assert!(!mask_contains(&mask, 4.5, 0.5), "outside the image");
    }

    #[test]
    fn centre_on_the_mask_or_enough_overlap_is_a_hit() {
        // A diamond-ish mask whose box corner is empty.
        let mask = RunLengthMask {
            size: [4, 4],
            counts: vec![5, 2, 8, 1],
        };
        let labelled = lesion([1, 1, 4, 4], Some(mask));
        assert!(hits(&[1.0, 1.0, 2.0, 2.0], &labelled), "centre (1.5, 1.5)");
        // Centre (1.5, 3.5) is in the box but not on the mask; IoU 1/9.
        assert!(!hits(&[1.0, 3.0, 2.0, 4.0], &labelled));
        // A box covering the lesion's box: centre (2.5, 2.5) misses the
        // mask, but IoU = 9/16 ≥ 0.3.
        assert!(hits(&[0.0, 0.0, 4.0, 4.0], &labelled));
        // Without a mask the box decides.
        assert!(hits(&[1.0, 3.0, 2.0, 4.0], &lesion([1, 1, 4, 4], None)));
        assert!(!hits(
            &[10.0, 10.0, 12.0, 12.0],
            &lesion([1, 1, 4, 4], None)
        ));
    }

    #[test]
    fn iou_of_known_boxes() {
        assert!((box_iou(&[0.0, 0.0, 2.0, 2.0], [1, 1, 3, 3]) - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(box_iou(&[0.0, 0.0, 1.0, 1.0], [2, 2, 3, 3]), 0.0);
        assert_eq!(box_iou(&[1.0, 1.0, 3.0, 3.0], [1, 1, 3, 3]), 1.0);
    }

    #[test]
    fn marks_take_unfound_lesions_first_and_extra_ones_are_duplicates() {
        let a = lesion([0, 0, 10, 10], None);
        let b = lesion([8, 0, 18, 10], None);
        let regions = [
            // Hits b only: centre 12.5 lies in b, and its IoU with a is 1/16.
            PredictedRegion {
                bounding_box: [9.0, 0.0, 16.0, 10.0],
                score: 0.9,
            },
            // Hits a and b (centre 9 is in both boxes); b is taken: a.
            PredictedRegion {
                bounding_box: [8.0, 0.0, 10.0, 10.0],
                score: 0.8,
            },
            // Hits a only, already found: a duplicate of a.
            PredictedRegion {
                bounding_box: [1.0, 1.0, 3.0, 3.0],
                score: 0.7,
            },
            PredictedRegion {
                bounding_box: [50.0, 50.0, 60.0, 60.0],
                score: 0.95,
            },
        ];
        let marks = match_marks(&regions, &[&a, &b]);
        let lesions: Vec<Option<usize>> = marks.iter().map(|m| m.lesion).collect();
        assert_eq!(lesions, vec![Some(1), Some(0), Some(0), None]);
        assert_eq!(marks[3].score, 0.95);
    }
}
