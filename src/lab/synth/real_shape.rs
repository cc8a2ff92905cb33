//! Findings that change a real film's shape rather than add to it:
//! emphysema (hyperinflation and hyperlucency) and mediastinal widening.
//!
//! Nodules and opacities add attenuation, which can be drawn onto any
//! film. Emphysema instead shows as lungs that are too big and too dark:
//! taller fields with low, flat domes, a long narrow heart, and lucent
//! lungs with sparse markings. Mediastinal widening shows as a broader
//! upper mediastinum. On a real film both are made by resampling the
//! image through a smooth geometric map (and, for emphysema, darkening the
//! fields and thinning their markings), and the lung mask goes through
//! the same map so the anatomy estimated afterwards fits the new shape.

use super::canvas::{Mask, bilinear};
use super::render::gaussian_blur;
use super::rng::Rng;

/// A film after a shape change, with its lung fields and the finding's mask.
pub struct Reshaped {
    pub values: Vec<f32>,
    pub lung: Mask,
    /// Where a reader would outline the finding.
    pub mask: Mask,
}

fn lung_extent(lung: &Mask) -> Option<(usize, usize)> {
    let size = lung.size;
    let rows: Vec<usize> = (0..size)
        .filter(|&r| lung.bits[r * size..(r + 1) * size].iter().any(|&b| b))
        .collect();
    Some((*rows.first()?, *rows.last()?))
}

/// Resamples values and lung mask: output pixel (x, y) takes the source at
/// `source(x, y)`.
fn warp(values: &[f32], lung: &Mask, source: impl Fn(f32, f32) -> (f32, f32)) -> (Vec<f32>, Mask) {
    let size = lung.size;
    let as_float: Vec<f32> = lung.bits.iter().map(|&b| f32::from(u8::from(b))).collect();
    let mut out = vec![0.0; size * size];
    let mut mask = Mask::new(size);
    for r in 0..size {
        for c in 0..size {
            let (sx, sy) = source(c as f32, r as f32);
            out[r * size + c] = bilinear(values, size, sx, sy);
            mask.bits[r * size + c] = bilinear(&as_float, size, sx, sy) >= 0.5;
        }
    }
    (out, mask)
}

/// Emphysema: fields 6–12 % taller (the domes pushed down), the heart
/// narrowed, the fields darkened and their markings thinned.
pub fn emphysema(values: &[f32], lung: &Mask, rng: &mut Rng) -> Option<Reshaped> {
    let size = lung.size;
    let (top, bottom) = lung_extent(lung)?;
    let s = size as f32;
    let (top, bottom) = (top as f32, bottom as f32);
    let stretch = rng.range(1.06, 1.12);
    let narrowing = rng.range(0.08, 0.16);
    let centre = s / 2.0;
    let (values, new_lung) = warp(values, lung, |x, y| {
        let sy = if y > top {
            top + (y - top) / stretch
        } else {
            y
        };
        // The heart's rows: the lower half of the fields, fading out.
        let t = ((sy - (top + bottom) / 2.0) / (bottom - top)).clamp(-0.5, 0.6);
        let rows = (1.0 - (t / 0.6).powi(2)).max(0.0)
            * f32::from(u8::from(sy > (top + bottom) / 2.0 - 0.1 * s));
        let columns = (-((x - centre) / (0.18 * s)).powi(2)).exp();
        let sx = centre + (x - centre) * (1.0 + narrowing * rows * columns);
        (sx, sy)
    });
    let mut soft: Vec<f32> = new_lung
        .bits
        .iter()
        .map(|&b| f32::from(u8::from(b)))
        .collect();
    gaussian_blur(&mut soft, size, s / 100.0);
    let mut smooth = values.clone();
    gaussian_blur(&mut smooth, size, s / 150.0);
    let darker = rng.range(0.08, 0.16);
    let markings = rng.range(0.45, 0.7);
    let values = values
        .iter()
        .zip(&smooth)
        .zip(&soft)
        .map(|((v, m), w)| {
            let thinned = m + (v - m) * markings;
            let lucent = thinned - darker * thinned.max(0.0);
            (v + w * (lucent - v)).clamp(0.0, 1.0)
        })
        .collect();
    Some(Reshaped {
        values,
        mask: new_lung.clone(),
        lung: new_lung,
    })
}

/// Mediastinal widening: the upper mediastinum (apex to hilum) stretched
/// outwards by 30–60 % at its centre.
pub fn mediastinal_widening(values: &[f32], lung: &Mask, rng: &mut Rng) -> Option<Reshaped> {
    let size = lung.size;
    let (top, bottom) = lung_extent(lung)?;
    let (top, bottom) = (top as f32, bottom as f32);
    let s = size as f32;
    let widen = rng.range(0.3, 0.6);
    let centre = s / 2.0;
    let band = (top - 0.05 * s, top + 0.5 * (bottom - top));
    let (values, new_lung) = warp(values, lung, |x, y| {
        let t = ((y - band.0) / (band.1 - band.0)).clamp(0.0, 1.0);
        let rows = (std::f32::consts::PI * t).sin().max(0.0);
        let columns = (-((x - centre) / (0.12 * s)).powi(2)).exp();
        (centre + (x - centre) / (1.0 + widen * rows * columns), y)
    });
    // The widening: lung before, mediastinum now.
    let mut mask = Mask::new(size);
    for i in 0..mask.bits.len() {
        mask.bits[i] = lung.bits[i] && !new_lung.bits[i];
    }
    (mask.area() > 0).then_some(Reshaped {
        values,
        lung: new_lung,
        mask,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn film() -> (Vec<f32>, Mask) {
        let size = 100;
        let mut lung = Mask::new(size);
        let mut values = vec![0.8f32; size * size];
        for r in 20..70 {
            for c in (15..42).chain(58..85) {
                lung.bits[r * size + c] = true;
                values[r * size + c] = 0.3;
            }
        }
        (values, lung)
    }

    #[test]
    fn emphysema_makes_fields_taller_and_darker() {
        let (values, lung) = film();
        let out = emphysema(&values, &lung, &mut Rng::derive(1, &[])).unwrap();
        let (_, bottom) = lung_extent(&out.lung).unwrap();
        assert!(bottom >= 71, "the domes move down: {bottom}");
        let mean = |v: &[f32], m: &Mask| {
            let n = m.area() as f32;
            (0..v.len())
                .filter(|&i| m.bits[i])
                .map(|i| v[i])
                .sum::<f32>()
                / n
        };
        assert!(mean(&out.values, &out.lung) < mean(&values, &lung));
        assert_eq!(out.mask.area(), out.lung.area());
    }

    #[test]
    fn widening_takes_lung_from_the_medial_edges() {
        let (values, lung) = film();
        let out = mediastinal_widening(&values, &lung, &mut Rng::derive(2, &[])).unwrap();
        assert!(out.mask.area() > 0);
        assert!(out.lung.area() < lung.area());
        // Only the upper half of the fields changes.
        assert!((60..70).all(|r| (0..100).all(|c| !out.mask.bits[r * 100 + c])));
    }
}
