//! Augmentation: small random changes of position, size, tilt, exposure
//! and noise, applied to an image and its masks together.
//!
//! No flips: a chest film is not left-right symmetric (heart, aortic knob,
//! gastric bubble, the higher right hemidiaphragm), and a model that learns
//! mirrored anatomy is learning films that do not exist. What varies
//! between real films is patient position and size (shift, scale, a few
//! degrees of rotation), exposure and processing (brightness, contrast,
//! gamma, and the detector's processing: a sigmoid tone curve, sharpening
//! or softening) and quantum noise, so that is what varies here. Zooms up
//! to 1.18 cut off the costophrenic angles and apices as tight collimation
//! and portable AP films do. The geometric
//! transform is one map of normalised coordinates, applied to the image
//! and to every mask so they stay aligned.

use fastrand::Rng;

use crate::lab::synth::canvas::bilinear;

/// The ranges augmentation draws from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentationRanges {
    /// Zoom factor range (> 1 enlarges).
    pub scale: (f32, f32),
    /// Largest shift, as a fraction of the side, in each direction.
    pub shift: f32,
    /// Largest rotation, degrees, either way.
    pub rotation_degrees: f32,
    /// Added to grey levels, either way.
    pub brightness: f32,
    /// Contrast factor about mid-grey.
    pub contrast: (f32, f32),
    /// Gamma exponent.
    pub gamma: (f32, f32),
    /// Largest standard deviation of added Gaussian noise (grey units).
    pub noise: f32,
    /// Largest strength of the sigmoid tone curve (0: linear).
    pub tone_curve: f32,
    /// Largest blur (negative) or unsharp-mask (positive) amount.
    pub sharpness: f32,
}

impl Default for AugmentationRanges {
    fn default() -> Self {
        AugmentationRanges {
            scale: (0.92, 1.08),
            shift: 0.04,
            rotation_degrees: 4.0,
            brightness: 0.05,
            contrast: (0.85, 1.15),
            gamma: (0.85, 1.18),
            noise: 0.015,
            tone_curve: 0.6,
            sharpness: 0.8,
        }
    }
}

impl AugmentationRanges {
    /// For real radiographs from many sites: wider zooms (crops that cut
    /// the costophrenic angles), shifts and processing.
    pub fn real_world() -> AugmentationRanges {
        AugmentationRanges {
            scale: (0.9, 1.18),
            shift: 0.06,
            rotation_degrees: 6.0,
            brightness: 0.07,
            contrast: (0.8, 1.2),
            gamma: (0.8, 1.25),
            noise: 0.02,
            tone_curve: 0.8,
            sharpness: 1.0,
        }
    }
}

/// One draw from the ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmentation {
    scale: f32,
    shift: (f32, f32),
    /// cos and sin of the rotation.
    rotation: (f32, f32),
    brightness: f32,
    contrast: f32,
    gamma: f32,
    noise: f32,
    tone_curve: f32,
    sharpness: f32,
}

impl Augmentation {
    /// Leaves everything as it is.
    pub const IDENTITY: Augmentation = Augmentation {
        scale: 1.0,
        shift: (0.0, 0.0),
        rotation: (1.0, 0.0),
        brightness: 0.0,
        contrast: 1.0,
        gamma: 1.0,
        noise: 0.0,
        tone_curve: 0.0,
        sharpness: 0.0,
    };

    pub fn draw(ranges: &AugmentationRanges, rng: &mut Rng) -> Augmentation {
        let uniform = |rng: &mut Rng, (low, high): (f32, f32)| low + (high - low) * rng.f32();
        let symmetric = |rng: &mut Rng, limit: f32| uniform(rng, (-limit, limit));
        let angle = symmetric(rng, ranges.rotation_degrees).to_radians();
        Augmentation {
            scale: uniform(rng, ranges.scale),
            shift: (symmetric(rng, ranges.shift), symmetric(rng, ranges.shift)),
            rotation: (angle.cos(), angle.sin()),
            brightness: symmetric(rng, ranges.brightness),
            contrast: uniform(rng, ranges.contrast),
            gamma: uniform(rng, ranges.gamma),
            noise: ranges.noise * rng.f32(),
            tone_curve: ranges.tone_curve * rng.f32(),
            sharpness: symmetric(rng, ranges.sharpness),
        }
    }

    /// Softens (negative sharpness: mixes in a 3×3 blur) or sharpens
    /// (unsharp mask) a square raster, as detector processing differs.
    pub fn filter(&self, grey: &mut [f32], side: usize) {
        if self.sharpness.abs() < 0.05 {
            return;
        }
        let blurred = box_blur3(grey, side);
        for (value, soft) in grey.iter_mut().zip(&blurred) {
            let mixed = if self.sharpness < 0.0 {
                *value + (-self.sharpness) * (soft - *value)
            } else {
                *value + self.sharpness * (*value - soft)
            };
            *value = mixed.clamp(0.0, 1.0);
        }
    }

    /// Where output position (u, v), in [0, 1]², samples the source.
    fn source_of(&self, u: f32, v: f32) -> (f32, f32) {
        let (px, py) = (u - 0.5 - self.shift.0, v - 0.5 - self.shift.1);
        let (c, s) = self.rotation;
        let (rx, ry) = (c * px + s * py, -s * px + c * py);
        (rx / self.scale + 0.5, ry / self.scale + 0.5)
    }

    /// Resamples a square raster of side `side` (bilinear, edges extended).
    pub fn warp(&self, raster: &[f32], side: usize) -> Vec<f32> {
        if self.scale == 1.0 && self.shift == (0.0, 0.0) && self.rotation == (1.0, 0.0) {
            return raster.to_vec();
        }
        let n = side as f32;
        let mut out = Vec::with_capacity(side * side);
        for row in 0..side {
            for column in 0..side {
                let (u, v) = self.source_of((column as f32 + 0.5) / n, (row as f32 + 0.5) / n);
                out.push(bilinear(raster, side, u * n - 0.5, v * n - 0.5));
            }
        }
        out
    }

    /// Changes exposure and adds noise to grey levels in [0, 1].
    pub fn expose(&self, grey: &mut [f32], rng: &mut Rng) {
        for value in grey.iter_mut() {
            let shaped = ((*value - 0.5) * self.contrast + 0.5 + self.brightness).clamp(0.0, 1.0);
            let mut g = shaped.powf(self.gamma);
            if self.tone_curve > 0.0 {
                // A film-like S curve, normalised to map 0 → 0 and 1 → 1.
                let k = 8.0;
                let s = |x: f32| 1.0 / (1.0 + (-k * (x - 0.5)).exp());
                let curve = (s(g) - s(0.0)) / (s(1.0) - s(0.0));
                g += self.tone_curve * (curve - g);
            }
            if self.noise > 0.0 {
                g += self.noise * gaussian(rng);
            }
            *value = g.clamp(0.0, 1.0);
        }
    }
}

/// A 3×3 mean of a square raster (edges use the pixels that exist).
fn box_blur3(raster: &[f32], side: usize) -> Vec<f32> {
    let mut out = vec![0f32; raster.len()];
    for row in 0..side {
        for column in 0..side {
            let (mut sum, mut n) = (0.0, 0.0);
            for r in row.saturating_sub(1)..(row + 2).min(side) {
                for c in column.saturating_sub(1)..(column + 2).min(side) {
                    sum += raster[r * side + c];
                    n += 1.0;
                }
            }
            out[row * side + column] = sum / n;
        }
    }
    out
}

/// Averages `factor × factor` blocks of a square raster.
pub fn average_pool(raster: &[f32], side: usize, factor: usize) -> Vec<f32> {
    let out_side = side / factor;
    let mut out = vec![0f32; out_side * out_side];
    for row in 0..out_side * factor {
        for column in 0..out_side * factor {
            out[(row / factor) * out_side + column / factor] += raster[row * side + column];
        }
    }
    let area = (factor * factor) as f32;
    out.iter_mut().for_each(|v| *v /= area);
    out
}

/// A standard normal draw (Box–Muller).
pub fn gaussian(rng: &mut Rng) -> f32 {
    let u1 = rng.f32().max(f32::MIN_POSITIVE);
    let u2 = rng.f32();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_changes_nothing() {
        let raster: Vec<f32> = (0..16).map(|v| v as f32 / 16.0).collect();
        assert_eq!(Augmentation::IDENTITY.warp(&raster, 4), raster);
        let mut grey = raster.clone();
        Augmentation::IDENTITY.expose(&mut grey, &mut Rng::with_seed(1));
        for (a, b) in grey.iter().zip(&raster) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn a_shift_moves_a_mask_with_the_image() {
        let side = 16;
        let mut raster = vec![0f32; side * side];
        raster[4 * side + 4] = 1.0;
        let shift = Augmentation {
            shift: (0.25, 0.0),
            ..Augmentation::IDENTITY
        };
        let moved = shift.warp(&raster, side);
        // A quarter of 16 pixels to the right: column 8.
        let peak = moved
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!((peak / side, peak % side), (4, 8));
    }

    #[test]
    fn draws_stay_in_range_and_no_flip_is_possible() {
        let ranges = AugmentationRanges::default();
        let mut rng = Rng::with_seed(7);
        for _ in 0..200 {
            let a = Augmentation::draw(&ranges, &mut rng);
            assert!(a.scale >= ranges.scale.0 && a.scale <= ranges.scale.1);
            // A mirror would need cos < 0 or a negative scale.
            assert!(a.rotation.0 > 0.99 && a.scale > 0.0);
        }
    }

    #[test]
    fn processing_keeps_the_range_and_filters_change_edges() {
        let side = 8;
        let mut edge: Vec<f32> = (0..side * side)
            .map(|i| if i % side < 4 { 0.2 } else { 0.8 })
            .collect();
        let soft = Augmentation {
            sharpness: -1.0,
            ..Augmentation::IDENTITY
        };
        let mut blurred = edge.clone();
        soft.filter(&mut blurred, side);
        assert!(blurred[3] > 0.2 && blurred[4] < 0.8, "the edge softens");
        let sharp = Augmentation {
            sharpness: 1.0,
            tone_curve: 1.0,
            ..Augmentation::IDENTITY
        };
        sharp.filter(&mut edge, side);
        assert!(edge[3] < 0.2 && edge[4] > 0.8, "the edge steepens");
        sharp.expose(&mut edge, &mut Rng::with_seed(1));
        assert!(edge.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn pooling_averages_blocks() {
        let raster = vec![
            1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0,
        ];
        assert_eq!(average_pool(&raster, 4, 2), vec![0.75, 0.0, 0.0, 0.25]);
    }
}
