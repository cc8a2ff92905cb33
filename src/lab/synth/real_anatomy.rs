//! Anatomy estimated on a real radiograph, from its lung fields alone, so
//! that lesions inserted into real films can sit where nodules are missed
//! (behind the heart, below the domes, at the hila) and be tagged so.
//!
//! The lung fields `insert::estimate_lungs` finds are the dark, aerated
//! parts. The lung goes on behind the heart and below the domes of the
//! diaphragm (the posterior recesses), where a nodule lies on a brighter,
//! denser background: those are the regions radiologists miss nodules in,
//! and they are estimated here from the fields' shape: the heart is the
//! gap between the two fields in their lower half, the diaphragm a band
//! under each field's lower edge, the hila a band either side of each
//! field's medial edge at mid-height, and the mediastinum the gap above
//! the heart. These are coarse (a real segmentation would do better), so
//! labels of inserted images keep `anatomy_known: false`, but the overlap
//! tags they carry mean what they say to within a centimetre or two.

use super::canvas::Mask;
use super::host::Structure;
use super::render::gaussian_blur;

/// What a lesion can be drawn into on a real film.
pub struct EstimatedAnatomy {
    /// Where lung lies behind the film: the aerated fields, the heart and
    /// the diaphragm band.
    pub thorax: Mask,
    /// Lung thickness along the beam, mm.
    pub thickness: Vec<f32>,
    pub structures: Vec<(Structure, Mask)>,
}

/// Lung thickness through the aerated fields, behind the heart and in the
/// posterior recesses, mm.
const FIELD_MM: f32 = 140.0;
const RETROCARDIAC_MM: f32 = 70.0;
const RECESS_MM: f32 = 50.0;

/// Estimates heart, diaphragm, hila and mediastinum around `lung`.
pub fn estimate(lung: &Mask, spacing_mm: f32) -> EstimatedAnatomy {
    let size = lung.size;
    let at = |r: usize, c: usize| lung.bits[r * size + c];
    // Per row: the medial edges of the right lung (image left) and of the
    // left lung (image right), where the row has lung.
    let half = size / 2;
    let mut right_medial = vec![None; size];
    let mut left_medial = vec![None; size];
    let mut rows_with_lung = Vec::new();
    for r in 0..size {
        right_medial[r] = (0..half).rev().find(|&c| at(r, c));
        left_medial[r] = (half..size).find(|&c| at(r, c));
        if right_medial[r].is_some() || left_medial[r].is_some() {
            rows_with_lung.push(r);
        }
    }
    let mut structures = Vec::new();
    let mut thickness: Vec<f32> = lung
        .bits
        .iter()
        .map(|&b| if b { FIELD_MM } else { 0.0 })
        .collect();
    let (Some(&top), Some(&bottom)) = (rows_with_lung.first(), rows_with_lung.last()) else {
        return EstimatedAnatomy {
            thorax: lung.clone(),
            thickness,
            structures,
        };
    };
    let height = (bottom - top).max(1) as f32;
    let row_at = |fraction: f32| top + (height * fraction) as usize;
    let px = |mm: f32| ((mm / spacing_mm).round() as usize).max(1);

    // Medial edges carried down past where a field ends (the heart's
    // border continues to the dome).
    let (mut last_right, mut last_left) = (half.saturating_sub(1), half);
    let mut gap = vec![(0usize, 0usize); size];
    for r in top..=bottom {
        last_right = right_medial[r].unwrap_or(last_right);
        last_left = left_medial[r].unwrap_or(last_left);
        gap[r] = (last_right + 1, last_left.max(last_right + 1));
    }

    let mut heart = Mask::new(size);
    let mut mediastinum = Mask::new(size);
    let heart_top = row_at(0.5);
    // The heart reaches a little below the lowest medial lung point.
    let heart_bottom = (bottom + px(15.0)).min(size - 1);
    for r in top..=heart_bottom {
        let (from, to) = gap[r.min(bottom)];
        for c in from..to {
            if at(r, c) {
                continue;
            }
            if r >= heart_top {
                heart.bits[r * size + c] = true;
            } else {
                mediastinum.bits[r * size + c] = true;
            }
        }
    }

    // The diaphragm: a band under the lowest lung pixel of every column.
    let mut diaphragm = Mask::new(size);
    let band = px(25.0);
    for c in 0..size {
        let Some(low) = (0..size).rev().find(|&r| at(r, c)) else {
            continue;
        };
        if low < row_at(0.6) {
            continue;
        }
        for r in (low + 1)..(low + 1 + band).min(size) {
            diaphragm.bits[r * size + c] = true;
        }
    }

    // The hila: either side of each medial edge at mid-height.
    let mut hilum = Mask::new(size);
    let reach = px(20.0);
    for r in row_at(0.3)..=row_at(0.55) {
        for edge in [right_medial[r], left_medial[r]].into_iter().flatten() {
            for c in edge.saturating_sub(reach)..(edge + reach).min(size) {
                hilum.bits[r * size + c] = true;
            }
        }
    }

    let mut thorax = lung.clone();
    for (i, t) in thickness.iter_mut().enumerate() {
        if lung.bits[i] {
            continue;
        }
        if heart.bits[i] {
            *t = RETROCARDIAC_MM;
            thorax.bits[i] = true;
        } else if diaphragm.bits[i] {
            *t = RECESS_MM;
            thorax.bits[i] = true;
        }
    }
    gaussian_blur(&mut thickness, size, 8.0 / spacing_mm);
    structures.push((Structure::Heart, heart));
    structures.push((Structure::Diaphragm, diaphragm));
    structures.push((Structure::Hilum, hilum));
    structures.push((Structure::Mediastinum, mediastinum));
    EstimatedAnatomy {
        thorax,
        thickness,
        structures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rectangular fields, 40 px apart, rows 20..80 of a 100 px image.
    fn two_fields() -> Mask {
        let mut lung = Mask::new(100);
        for r in 20..80 {
            for c in (10..30).chain(70..90) {
                lung.bits[r * 100 + c] = true;
            }
        }
        lung
    }

    #[test]
    fn structures_fall_where_they_belong() {
        let anatomy = estimate(&two_fields(), 2.0);
        let find = |s: Structure| {
            &anatomy
                .structures
                .iter()
                .find(|(k, _)| *k == s)
                .expect("estimated")
                .1
        };
        let heart = find(Structure::Heart);
        assert!(heart.bits[70 * 100 + 50], "lower gap is heart");
        assert!(!heart.bits[30 * 100 + 50], "upper gap is not");
        assert!(find(Structure::Mediastinum).bits[30 * 100 + 50]);
        assert!(
            find(Structure::Diaphragm).bits[85 * 100 + 20],
            "below a field"
        );
        assert!(
            !find(Structure::Diaphragm).bits[85 * 100 + 50],
            "not below the gap"
        );
        assert!(find(Structure::Hilum).bits[45 * 100 + 32]);
        assert!(anatomy.thorax.bits[70 * 100 + 50] && anatomy.thorax.bits[82 * 100 + 20]);
        assert!(
            !anatomy.thorax.bits[30 * 100 + 50],
            "the mediastinum holds no lung"
        );
        assert!(anatomy.thickness[50 * 100 + 20] > anatomy.thickness[70 * 100 + 50]);
    }

    #[test]
    fn no_lung_no_structures() {
        let anatomy = estimate(&Mask::new(50), 1.0);
        assert!(anatomy.structures.is_empty());
        assert_eq!(anatomy.thorax.area(), 0);
    }
}
