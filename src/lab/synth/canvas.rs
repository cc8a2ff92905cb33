//! The pixel grid the generator draws on, and the few drawing primitives
//! everything is built from.
//!
//! Anatomy and findings are described in millimetres in the patient's own
//! frame ("anatomy coordinates": origin at the centre of the chest, x to
//! the image's right, which is the patient's left on a PA film, y down).
//! The patient's pose (shift, rotation and body size on the detector) maps
//! that frame onto the detector; the grid then samples the detector at
//! pixel centres. Drawing a structure means evaluating its projected
//! thickness at each pixel centre inside its bounding box, so sizes stay
//! right at any image size and pixel spacing.

/// Where the patient stands on the detector.
#[derive(Debug, Clone, Copy)]
pub struct Pose {
    /// Rotation in radians (positive: clockwise on the image).
    pub rotation: f32,
    /// Magnification of the anatomy (body size and geometric enlargement).
    pub scale: f32,
    /// Shift of the chest's centre from the detector's centre, in mm.
    pub shift_x: f32,
    pub shift_y: f32,
}

impl Pose {
    pub const NEUTRAL: Pose = Pose {
        rotation: 0.0,
        scale: 1.0,
        shift_x: 0.0,
        shift_y: 0.0,
    };
}

/// The detector's pixel grid and the patient's pose on it.
#[derive(Debug, Clone, Copy)]
pub struct Grid {
    /// Columns = rows.
    pub size: usize,
    /// Imager Pixel Spacing, mm.
    pub spacing: f32,
    pub pose: Pose,
}

impl Grid {
    pub fn len(&self) -> usize {
        self.size * self.size
    }

    /// Detector mm (from the centre) of a pixel's centre.
    fn detector_mm(&self, column: usize, row: usize) -> (f32, f32) {
        let half = self.size as f32 * self.spacing / 2.0;
        (
            (column as f32 + 0.5) * self.spacing - half,
            (row as f32 + 0.5) * self.spacing - half,
        )
    }

    /// Anatomy mm of a pixel's centre.
    pub fn anatomy_mm(&self, column: usize, row: usize) -> (f32, f32) {
        let (dx, dy) = self.detector_mm(column, row);
        let p = self.pose;
        let (x, y) = (dx - p.shift_x, dy - p.shift_y);
        let (sin, cos) = p.rotation.sin_cos();
        (
            (cos * x + sin * y) / p.scale,
            (-sin * x + cos * y) / p.scale,
        )
    }

    /// Pixel position (fractional column, row) of an anatomy point.
    pub fn pixel_of(&self, x: f32, y: f32) -> (f32, f32) {
        let p = self.pose;
        let (sin, cos) = p.rotation.sin_cos();
        let (sx, sy) = (x * p.scale, y * p.scale);
        let dx = cos * sx - sin * sy + p.shift_x;
        let dy = sin * sx + cos * sy + p.shift_y;
        let half = self.size as f32 * self.spacing / 2.0;
        (
            (dx + half) / self.spacing - 0.5,
            (dy + half) / self.spacing - 0.5,
        )
    }

    /// The pixel rectangle (first column, first row, last column, last row,
    /// inclusive) covering the anatomy box `[x0, y0, x1, y1]`, if on the image.
    pub fn pixel_box(&self, bbox: [f32; 4]) -> Option<[usize; 4]> {
        let [x0, y0, x1, y1] = bbox;
        let corners = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)];
        let (mut c0, mut r0, mut c1, mut r1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for (x, y) in corners {
            let (c, r) = self.pixel_of(x, y);
            c0 = c0.min(c);
            r0 = r0.min(r);
            c1 = c1.max(c);
            r1 = r1.max(r);
        }
        let last = self.size as f32 - 1.0;
        if c1 < 0.0 || r1 < 0.0 || c0 > last || r0 > last {
            return None;
        }
        let clamp = |v: f32| v.clamp(0.0, last) as usize;
        Some([
            clamp(c0.floor()),
            clamp(r0.floor()),
            clamp(c1.ceil()),
            clamp(r1.ceil()),
        ])
    }

    /// Calls `visit(pixel index, x, y)` for every pixel whose centre may lie
    /// in the anatomy box `[x0, y0, x1, y1]`.
    pub fn each_in(&self, bbox: [f32; 4], mut visit: impl FnMut(usize, f32, f32)) {
        let Some([c0, r0, c1, r1]) = self.pixel_box(bbox) else {
            return;
        };
        for row in r0..=r1 {
            for column in c0..=c1 {
                let (x, y) = self.anatomy_mm(column, row);
                visit(row * self.size + column, x, y);
            }
        }
    }

    /// Calls `visit` for every pixel.
    pub fn each(&self, mut visit: impl FnMut(usize, f32, f32)) {
        for row in 0..self.size {
            for column in 0..self.size {
                let (x, y) = self.anatomy_mm(column, row);
                visit(row * self.size + column, x, y);
            }
        }
    }
}

/// A binary pixel mask on the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub size: usize,
    pub bits: Vec<bool>,
}

impl Mask {
    pub fn new(size: usize) -> Mask {
        Mask {
            size,
            bits: vec![false; size * size],
        }
    }

    pub fn area(&self) -> usize {
        self.bits.iter().filter(|&&b| b).count()
    }

    /// Pixels set in both masks.
    pub fn overlap(&self, other: &Mask) -> usize {
        self.bits
            .iter()
            .zip(&other.bits)
            .filter(|(a, b)| **a && **b)
            .count()
    }

    /// `[x0, y0, x1, y1]`: first and one-past-last column and row, or None when empty.
    pub fn bbox(&self) -> Option<[u32; 4]> {
        let mut b = [u32::MAX, u32::MAX, 0, 0];
        let mut any = false;
        for (i, _) in self.bits.iter().enumerate().filter(|(_, v)| **v) {
            let (c, r) = ((i % self.size) as u32, (i / self.size) as u32);
            b = [b[0].min(c), b[1].min(r), b[2].max(c + 1), b[3].max(r + 1)];
            any = true;
        }
        any.then_some(b)
    }

    pub fn union_with(&mut self, other: &Mask) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= *b;
        }
    }
}

/// Length of a chord through a disc of radius `r` at distance `d` from its
/// centre: the projected thickness of a cylinder or sphere.
pub fn chord(d: f32, r: f32) -> f32 {
    if d >= r {
        0.0
    } else {
        2.0 * (r * r - d * d).sqrt()
    }
}

/// 0 below `edge0`, 1 above `edge1`, smooth in between.
pub fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A tube along a polyline whose radius varies from point to point: ribs,
/// clavicles, vessels, bronchi, fibrotic streaks.
pub struct Tube<'a> {
    /// (x, y, radius) in anatomy mm.
    pub points: &'a [(f32, f32, f32)],
}

impl Tube<'_> {
    /// Adds `profile(distance, radius, position along 0..1)` (a projected
    /// attenuation, the largest over all segments) to `field`, scaled by
    /// `gate[i]` where given, and sets `mask` where the pixel is inside the
    /// tube.
    pub fn draw(
        &self,
        grid: &Grid,
        field: &mut [f32],
        gate: Option<&[f32]>,
        mut mask: Option<&mut Mask>,
        profile: impl Fn(f32, f32, f32) -> f32,
    ) {
        if self.points.len() < 2 {
            return;
        }
        let max_r = self.points.iter().map(|p| p.2).fold(0.0, f32::max);
        let bbox = self
            .points
            .iter()
            .fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, &(x, y, _)| {
                [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)]
            });
        let bbox = [
            bbox[0] - max_r,
            bbox[1] - max_r,
            bbox[2] + max_r,
            bbox[3] + max_r,
        ];
        let Some([c0, r0, c1, r1]) = grid.pixel_box(bbox) else {
            return;
        };
        // Per pixel of the tube's box, the segment it lies deepest in
        // (smallest distance over radius) and where along the tube that
        // is; each segment only visits its own box. The profile is taken
        // once, at that nearest point: it need not fall off monotonically
        // (a bone's cortex is brighter than its middle).
        let width = c1 - c0 + 1;
        let mut nearest = vec![(f32::INFINITY, 0.0f32, 0.0f32, 0.0f32); width * (r1 - r0 + 1)];
        let segments = self.points.len() - 1;
        for s in 0..segments {
            let (ax, ay, ar) = self.points[s];
            let (bx, by, br) = self.points[s + 1];
            let r_max = ar.max(br);
            let segment_box = [
                ax.min(bx) - r_max,
                ay.min(by) - r_max,
                ax.max(bx) + r_max,
                ay.max(by) + r_max,
            ];
            let (vx, vy) = (bx - ax, by - ay);
            let len2 = vx * vx + vy * vy;
            grid.each_in(segment_box, |i, x, y| {
                let t = if len2 > 0.0 {
                    (((x - ax) * vx + (y - ay) * vy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let r = ar + (br - ar) * t;
                let (dx, dy) = (x - ax - vx * t, y - ay - vy * t);
                let d = (dx * dx + dy * dy).sqrt();
                let local = (i / grid.size - r0) * width + (i % grid.size - c0);
                if d < r && d / r < nearest[local].0 {
                    nearest[local] = (d / r, d, r, (s as f32 + t) / segments as f32);
                }
            });
        }
        let best: Vec<f32> = nearest
            .iter()
            .map(|&(depth, d, r, along)| {
                if depth.is_finite() {
                    profile(d, r, along)
                } else {
                    f32::NAN
                }
            })
            .collect();
        for (local, value) in best.iter().enumerate() {
            if value.is_nan() {
                continue;
            }
            let i = (r0 + local / width) * grid.size + c0 + local % width;
            field[i] += value * gate.map_or(1.0, |g| g[i]);
            if let Some(mask) = mask.as_deref_mut() {
                mask.bits[i] = true;
            }
        }
    }
}

/// Bilinear sample of a square raster of side `side` at pixel
/// coordinates (x, y), edges extended.
pub fn bilinear(raster: &[f32], side: usize, x: f32, y: f32) -> f32 {
    let max = (side - 1) as f32;
    let (x, y) = (x.clamp(0.0, max), y.clamp(0.0, max));
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(side - 1), (y0 + 1).min(side - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |xx: usize, yy: usize| raster[yy * side + xx];
    let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
    let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_and_anatomy_coordinates_are_inverse() {
        let grid = Grid {
            size: 64,
            spacing: 2.0,
            pose: Pose {
                rotation: 0.07,
                scale: 1.1,
                shift_x: 4.0,
                shift_y: -3.0,
            },
        };
        let (x, y) = grid.anatomy_mm(10, 50);
        let (c, r) = grid.pixel_of(x, y);
        assert!(
            (c - 10.0).abs() < 1e-3 && (r - 50.0).abs() < 1e-3,
            "{c} {r}"
        );
    }
}
