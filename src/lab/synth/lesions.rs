//! Round lesions: nodules (5–30 mm, solid or part-solid; smooth,
//! lobulated or spiculated; some calcified) and masses (over 30 mm), and
//! where they are put.
//!
//! A lesion is a lobulated sphere of soft tissue that replaces air in the
//! lung, so it adds attenuation in proportion to its chord length; a
//! part-solid nodule is a ground-glass sphere (a little tissue) around a
//! solid core. Its mask is its projected outline, so the stated diameter
//! and the mask agree by construction (the lobulation is small and
//! zero-mean). Placement can be forced onto the heart, the diaphragm, a
//! hilum, a rib or a clavicle — the places where nodules are missed — and
//! is accepted only when the overlap tags computed from the anatomy masks
//! say it is really there.

use super::anatomy::MU_WATER;
use super::canvas::{Mask, chord};
use super::host::{Host, Structure};
use super::rng::Rng;
use crate::lab::dataset::{Margin, Solidity};

/// Where a lesion is to be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// Anywhere in the lungs.
    AnyLung,
    /// In the lungs, away from heart, diaphragm, hila and mediastinum.
    FreeLung,
    /// Overlapping this structure.
    Over(Structure),
}

/// A round lesion's shape.
#[derive(Debug, Clone)]
pub struct RoundLesion {
    pub cx: f32,
    pub cy: f32,
    /// Mean diameter, mm.
    pub diameter: f32,
    pub solidity: Solidity,
    /// Core diameter as a fraction of the whole (part-solid only).
    pub core_fraction: f32,
    /// (harmonic, amplitude, phase) of the outline's lobulation.
    lobes: Vec<(f32, f32, f32)>,
    /// Tissue fraction of the solid part (1 = soft tissue replacing air).
    pub density: f32,
    pub margin: Margin,
    /// A calcified granuloma: denser than soft tissue.
    pub calcified: bool,
    /// (angle, length as a fraction of the radius, half-width mm).
    spicules: Vec<(f32, f32, f32)>,
}

impl RoundLesion {
    pub fn sample(rng: &mut Rng, diameter: f32, solidity: Solidity) -> RoundLesion {
        let lobulation = if diameter > 30.0 { 0.07 } else { 0.035 };
        let lobes = (2..=6)
            .map(|k| {
                (
                    k as f32,
                    rng.range(0.0, lobulation) / (k as f32 - 1.0).sqrt(),
                    rng.range(0.0, std::f32::consts::TAU),
                )
            })
            .collect();
        RoundLesion {
            cx: 0.0,
            cy: 0.0,
            diameter,
            solidity,
            core_fraction: rng.range(0.35, 0.6),
            lobes,
            density: rng.range(0.95, 1.1),
            margin: Margin::Smooth,
            calcified: false,
            spicules: Vec::new(),
        }
    }

    /// Gives the lesion a lobulated or spiculated outline, or calcium.
    pub fn with_margin(mut self, margin: Margin, calcified: bool, rng: &mut Rng) -> RoundLesion {
        self.margin = margin;
        match margin {
            Margin::Smooth => {}
            Margin::Lobulated => {
                for lobe in &mut self.lobes {
                    lobe.1 *= 3.0;
                }
            }
            Margin::Spiculated => {
                self.spicules = (0..6 + rng.below(9))
                    .map(|_| {
                        (
                            rng.range(0.0, std::f32::consts::TAU),
                            rng.range(0.4, 1.2),
                            rng.range(0.4, 0.9),
                        )
                    })
                    .collect();
            }
        }
        if calcified {
            self.calcified = true;
            // Calcium attenuates about twice as much as soft tissue.
            self.density = rng.range(1.8, 2.6);
        }
        self
    }

    /// Tissue (mm of soft-tissue equivalent) of the spicules at a point
    /// `rho` from the centre at `angle`, outside the outline.
    fn spicule_tissue(&self, rho: f32, angle: f32, outline: f32) -> f32 {
        let mut tissue = 0.0;
        for &(a, length, half_width) in &self.spicules {
            let along = rho - outline;
            let reach = length * self.diameter / 2.0;
            if along <= 0.0 || along > reach {
                continue;
            }
            let off = (angle - a).sin().abs() * rho;
            if (angle - a).cos() <= 0.0 || off >= half_width {
                continue;
            }
            tissue += chord(off, half_width) * (1.0 - along / reach);
        }
        tissue
    }

    fn radius_at(&self, angle: f32) -> f32 {
        let wobble: f32 = self
            .lobes
            .iter()
            .map(|(k, a, p)| a * (k * angle + p).cos())
            .sum();
        self.diameter / 2.0 * (1.0 + wobble)
    }

    /// Adds the lesion's attenuation (when given a map) and returns its mask.
    pub fn draw(&self, host: &Host, mut attenuation: Option<&mut [f32]>) -> Mask {
        let mut mask = Mask::new(host.grid.size);
        let reach = self.diameter * if self.spicules.is_empty() { 0.75 } else { 1.4 };
        let bbox = [
            self.cx - reach,
            self.cy - reach,
            self.cx + reach,
            self.cy + reach,
        ];
        let air = host.air_fraction;
        host.grid.each_in(bbox, |i, x, y| {
            let (dx, dy) = (x - self.cx, y - self.cy);
            let rho = (dx * dx + dy * dy).sqrt();
            let angle = dy.atan2(dx);
            let outline = self.radius_at(angle);
            if rho >= outline {
                // Spicules are drawn but not outlined: a reader outlines
                // the body of the nodule.
                if !self.spicules.is_empty()
                    && let Some(attenuation) = attenuation.as_deref_mut()
                {
                    attenuation[i] += MU_WATER * air * self.spicule_tissue(rho, angle, outline);
                }
                return;
            }
            mask.bits[i] = true;
            let tissue = match self.solidity {
                Solidity::Solid => self.density * chord(rho, outline),
                Solidity::PartSolid => {
                    0.22 * chord(rho, outline)
                        + 0.75 * self.density * chord(rho, outline * self.core_fraction)
                }
            };
            if let Some(attenuation) = attenuation.as_deref_mut() {
                attenuation[i] += MU_WATER * air * tissue;
            }
        });
        mask
    }
}

/// Places `lesion` at `site` (trying random positions) and draws it.
/// Returns None when no position qualifies (e.g. a real radiograph has no
/// heart mask).
pub fn place_and_draw(
    lesion: &mut RoundLesion,
    site: Site,
    host: &Host,
    attenuation: &mut [f32],
    rng: &mut Rng,
) -> Option<(Mask, Vec<String>)> {
    let candidates: Vec<usize> = match site {
        Site::Over(structure) => {
            let mask = host.structure(structure)?;
            (0..mask.bits.len()).filter(|&i| mask.bits[i]).collect()
        }
        _ => Vec::new(),
    };
    for _ in 0..200 {
        let (x, y) = if candidates.is_empty() {
            host.random_lung_point(rng)?
        } else {
            let i = candidates[rng.below(candidates.len())];
            host.grid.anatomy_mm(i % host.grid.size, i / host.grid.size)
        };
        // The lesion must lie mostly in the lung (or just below the dome,
        // in the posterior costophrenic recess).
        let diaphragm = host.structure(Structure::Diaphragm);
        let in_lung = host.at(host.lung, x, y)
            || diaphragm.is_some_and(|d| {
                host.at(d, x, y) && host.at(host.lung, x, y - lesion.diameter * 0.6)
            });
        if !in_lung {
            continue;
        }
        lesion.cx = x;
        lesion.cy = y;
        let mask = lesion.draw(host, None);
        if mask.area() == 0 {
            continue;
        }
        let inside_lung = mask.overlap(host.lung) as f32 / mask.area() as f32;
        let tags = host.overlap_tags(&mask, 0.1);
        let wanted = match site {
            Site::AnyLung => inside_lung > 0.6,
            Site::FreeLung => inside_lung > 0.9 && tags.iter().any(|t| t == "free_lung"),
            Site::Over(structure) => tags.iter().any(|t| t == structure.overlap_tag()),
        };
        if wanted {
            lesion.draw(host, Some(attenuation));
            return Some((mask, tags));
        }
    }
    None
}

/// Size bin of a nodule or mass, as a subgroup tag.
pub fn size_bin(diameter: f32) -> &'static str {
    match diameter {
        d if d < 10.0 => "size_5_10mm",
        d if d < 20.0 => "size_10_20mm",
        d if d <= 30.0 => "size_20_30mm",
        _ => "size_over_30mm",
    }
}
