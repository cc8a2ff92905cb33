//! Lesion size as a radiologist measures it: the long axis (the longest
//! chord of the outline) and the short axis (the widest extent at right
//! angles to it), in millimetres on the detector plane.

/// Long and short axis in mm of a closed `outline` (column, row in pixels),
/// with `spacing_mm` = (row spacing, column spacing). `None` for fewer
/// than two points.
pub fn axes_mm(outline: &[[f32; 2]], spacing_mm: [f64; 2]) -> Option<[f64; 2]> {
    let points: Vec<[f64; 2]> = outline
        .iter()
        .map(|&[x, y]| [x as f64 * spacing_mm[1], y as f64 * spacing_mm[0]])
        .collect();
    if points.len() < 2 {
        return None;
    }
    let mut long = (0.0f64, [1.0, 0.0]);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let length = dx.hypot(dy);
            if length > long.0 {
                long = (length, [dx / length, dy / length]);
            }
        }
    }
    let (length, [ux, uy]) = long;
    // Extent along the perpendicular direction (-uy, ux).
    let (low, high) = points
        .iter()
        .map(|p| -uy * p[0] + ux * p[1])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    Some([length, (high - low).max(0.0)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rectangle_has_its_diagonal_as_long_axis() {
        let outline = [[0.0, 0.0], [30.0, 0.0], [30.0, 40.0], [0.0, 40.0]];
        let [long, short] = axes_mm(&outline, [1.0, 1.0]).unwrap();
        assert!((long - 50.0).abs() < 1e-9);
        // Width of the rectangle seen across its diagonal: 2·30·40/50.
        assert!((short - 48.0).abs() < 1e-9, "{short}");
    }

    #[test]
    fn spacing_is_applied_per_axis() {
        let outline = [[0.0, 0.0], [10.0, 0.0]];
        let [long, short] = axes_mm(&outline, [0.2, 0.5]).unwrap();
        assert!((long - 5.0).abs() < 1e-9);
        assert_eq!(short, 0.0);
        assert!(axes_mm(&outline[..1], [1.0, 1.0]).is_none());
    }
}
