//! Which structures a finding overlaps — heart, diaphragm, hila — so the
//! report can say "nodule, lung, overlapping the heart", the places where
//! radiologists most often miss nodules.
//!
//! There is no anatomy segmentation yet, so this is a fixed atlas of a
//! typical PA chest radiograph in image-relative coordinates (the image's
//! right side is the patient's left). A finding overlaps a structure when
//! at least `MIN_OVERLAP` of its bounding box lies inside the structure's
//! zone. It is an approximation and the report treats it as one: the site
//! is a concept modifier, never a finding of its own.

use super::codes::{DIAPHRAGM, HEART, HILUM_OF_LUNG};
use super::content_item::Code;

/// Share of a finding's box that must lie in a zone.
const MIN_OVERLAP: f32 = 0.3;

/// A rectangle in image-relative coordinates: [x0, y0, x1, y1] in 0..1.
type Zone = [f32; 4];

const HEART_ZONES: &[Zone] = &[[0.42, 0.48, 0.75, 0.82]];
const HILUM_ZONES: &[Zone] = &[[0.30, 0.30, 0.45, 0.50], [0.55, 0.30, 0.70, 0.50]];
const DIAPHRAGM_ZONES: &[Zone] = &[[0.08, 0.72, 0.92, 0.92]];

/// Structures overlapped by a box `[x0, y0, x1, y1]` on an image of
/// `size` (columns, rows).
pub fn overlapped_structures(bounding_box: [f32; 4], size: [u32; 2]) -> Vec<Code> {
    let (width, height) = (size[0].max(1) as f32, size[1].max(1) as f32);
    let relative = [
        bounding_box[0] / width,
        bounding_box[1] / height,
        bounding_box[2] / width,
        bounding_box[3] / height,
    ];
    let area = (relative[2] - relative[0]).max(0.0) * (relative[3] - relative[1]).max(0.0);
    if area <= 0.0 {
        return Vec::new();
    }
    [
        (HEART, HEART_ZONES),
        (HILUM_OF_LUNG, HILUM_ZONES),
        (DIAPHRAGM, DIAPHRAGM_ZONES),
    ]
    .into_iter()
    .filter(|(_, zones)| {
        let inside: f32 = zones.iter().map(|zone| intersection(relative, *zone)).sum();
        inside / area >= MIN_OVERLAP
    })
    .map(|(code, _)| code)
    .collect()
}

fn intersection(a: [f32; 4], b: [f32; 4]) -> f32 {
    let width = a[2].min(b[2]) - a[0].max(b[0]);
    let height = a[3].min(b[3]) - a[1].max(b[1]);
    width.max(0.0) * height.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: [u32; 2] = [2000, 2000];

    #[test]
    fn a_box_behind_the_heart_overlaps_the_heart() {
        let sites = overlapped_structures([1100.0, 1200.0, 1300.0, 1400.0], SIZE);
        assert_eq!(sites, vec![HEART]);
    }

    #[test]
    fn a_box_in_the_upper_lung_overlaps_nothing() {
        assert!(overlapped_structures([300.0, 300.0, 500.0, 500.0], SIZE).is_empty());
    }

    #[test]
    fn a_box_at_the_right_hilum_and_at_the_base() {
        assert_eq!(
            overlapped_structures([650.0, 700.0, 850.0, 900.0], SIZE),
            vec![HILUM_OF_LUNG]
        );
        assert_eq!(
            overlapped_structures([400.0, 1600.0, 600.0, 1750.0], SIZE),
            vec![DIAPHRAGM]
        );
    }

    #[test]
    fn an_empty_box_overlaps_nothing() {
        assert!(overlapped_structures([5.0, 5.0, 5.0, 9.0], SIZE).is_empty());
    }
}
