//! From attenuation to a processed 12-bit radiograph: exposure, scatter,
//! detector blur, quantum noise, log transform, the usual chest image
//! processing (unsharp masking), and a tone curve.
//!
//! The order follows the physics so that the image statistics come out
//! right: noise is Poisson-like in the number of photons, so after the log
//! transform dense regions (mediastinum, bone, below the diaphragm) are
//! noisier than lung, as on a real detector; blur acts on intensity
//! before the log. Every setting varies per case (`Exposure`) so a model
//! trained on the output does not learn one fixed look.

use super::rng::Rng;

/// Per-case acquisition and processing settings.
#[derive(Debug, Clone, Copy)]
pub struct Exposure {
    /// Unattenuated photons per mm² reaching the detector.
    pub photons_per_mm2: f32,
    /// Scattered radiation as a fraction of the local mean primary.
    pub scatter: f32,
    /// Detector blur (Gaussian sigma), mm.
    pub blur_mm: f32,
    /// Strength of the unsharp mask (edge enhancement).
    pub unsharp: f32,
    /// Dynamic range compression: how much of the large-scale (~25 mm)
    /// brightness is taken out, so lungs and mediastinum both show detail.
    pub equalisation: f32,
    /// Tone curve exponent (contrast).
    pub gamma: f32,
    /// Output range in stored values (before MONOCHROME1 inversion).
    pub black: f32,
    pub white: f32,
}

impl Exposure {
    pub fn sample(rng: &mut Rng) -> Exposure {
        Exposure {
            photons_per_mm2: 2.0e5 * rng.range(0.7, 2.5),
            scatter: rng.range(0.05, 0.25),
            blur_mm: rng.range(0.12, 0.45),
            unsharp: rng.range(0.2, 0.9),
            equalisation: rng.range(0.35, 0.6),
            gamma: rng.range(0.75, 1.05),
            black: rng.range(40.0, 400.0),
            white: rng.range(3500.0, 4095.0),
        }
    }
}

/// Separable box blur (`radius` pixels), used three times for a Gaussian-like kernel.
fn box_blur(field: &mut [f32], size: usize, radius: usize) {
    if radius == 0 || size == 0 {
        return;
    }
    let mut line = vec![0.0f32; size];
    let norm = 1.0 / (2 * radius + 1) as f32;
    for pass in 0..2 {
        for outer in 0..size {
            let index = |inner: usize| {
                if pass == 0 {
                    outer * size + inner
                } else {
                    inner * size + outer
                }
            };
            for (inner, value) in line.iter_mut().enumerate() {
                *value = field[index(inner)];
            }
            let at = |k: isize| line[k.clamp(0, size as isize - 1) as usize];
            let mut sum: f32 = (-(radius as isize)..=radius as isize).map(at).sum();
            for inner in 0..size {
                field[index(inner)] = sum * norm;
                sum +=
                    at(inner as isize + radius as isize + 1) - at(inner as isize - radius as isize);
            }
        }
    }
}

/// Approximately Gaussian blur with standard deviation `sigma` pixels.
pub fn gaussian_blur(field: &mut [f32], size: usize, sigma: f32) {
    if sigma < 0.3 {
        return;
    }
    // Three box passes of radius r have variance r(r+1).
    let radius = ((sigma * sigma + 0.25).sqrt() - 0.5).round().max(1.0) as usize;
    for _ in 0..3 {
        box_blur(field, size, radius);
    }
}

/// A small exact Gaussian for sub-pixel blur sigmas (the detector).
fn fine_blur(field: &mut [f32], size: usize, sigma: f32) {
    if sigma < 0.2 {
        return;
    }
    let reach = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-reach..=reach)
        .map(|k| (-(k * k) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let mut out = vec![0.0f32; field.len()];
    for pass in 0..2 {
        for row in 0..size {
            for column in 0..size {
                let mut acc = 0.0;
                for (j, w) in kernel.iter().enumerate() {
                    let k = j as isize - reach;
                    let (c, r) = if pass == 0 {
                        (
                            (column as isize + k).clamp(0, size as isize - 1) as usize,
                            row,
                        )
                    } else {
                        (
                            column,
                            (row as isize + k).clamp(0, size as isize - 1) as usize,
                        )
                    };
                    acc += w * field[r * size + c];
                }
                out[row * size + column] = acc;
            }
        }
        field.copy_from_slice(&out);
    }
}

/// The value below which `fraction` of `values` lie.
pub fn percentile(values: &[f32], fraction: f32) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    let k = ((v.len() - 1) as f32 * fraction).round() as usize;
    let (_, value, _) = v.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *value
}

/// Renders `attenuation` (size × size) to stored values 0..=4095, brighter
/// meaning more attenuation (MONOCHROME2).
pub fn render(
    attenuation: &[f32],
    size: usize,
    spacing_mm: f32,
    exposure: &Exposure,
    rng: &mut Rng,
) -> Vec<u16> {
    let mut intensity: Vec<f32> = attenuation.iter().map(|mu| (-mu).exp()).collect();
    // Scatter: a heavily blurred copy of the primary, added back.
    let mut scatter = intensity.clone();
    gaussian_blur(&mut scatter, size, 40.0 / spacing_mm);
    for (i, s) in intensity.iter_mut().zip(&scatter) {
        *i += exposure.scatter * s;
    }
    fine_blur(&mut intensity, size, exposure.blur_mm / spacing_mm);
    let photons = exposure.photons_per_mm2 * spacing_mm * spacing_mm;
    let mut log: Vec<f32> = intensity
        .iter()
        .map(|&i| {
            let noisy = i + rng.normal() * (i / photons).sqrt();
            -(noisy.max(1e-5)).ln()
        })
        .collect();
    // Unsharp mask with a ~6 mm kernel: chest processing's edge enhancement.
    let mut smooth = log.clone();
    gaussian_blur(&mut smooth, size, 6.0 / spacing_mm);
    for (l, s) in log.iter_mut().zip(&smooth) {
        *l += exposure.unsharp * (*l - s);
    }
    let mut large = log.clone();
    gaussian_blur(&mut large, size, 25.0 / spacing_mm);
    for (l, s) in log.iter_mut().zip(&large) {
        *l -= exposure.equalisation * s;
    }
    let body: Vec<f32> = log
        .iter()
        .zip(attenuation)
        .filter(|(_, mu)| **mu > 0.5)
        .map(|(l, _)| *l)
        .collect();
    let low = percentile(&body, 0.01);
    let high = percentile(&body, 0.995);
    let span = (high - low).max(1e-3);
    log.iter()
        .map(|&l| {
            let t = ((l - low) / span).clamp(0.0, 1.0).powf(exposure.gamma);
            (exposure.black + t * (exposure.white - exposure.black))
                .round()
                .clamp(0.0, 4095.0) as u16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_the_mean_and_spreads_a_point() {
        let size = 33;
        let mut field = vec![0.0f32; size * size];
        field[16 * size + 16] = 1.0;
        gaussian_blur(&mut field, size, 2.0);
        let total: f32 = field.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        assert!(field[16 * size + 16] < 0.1 && field[16 * size + 18] > 0.0);
    }
}
