//! Airspace and pleural opacities: consolidation and ground-glass (lobar
//! and patchy), tuberculosis-like upper-zone infiltrates with cavities and
//! fibrotic streaks, and pleural effusion.
//!
//! An opacity fills part of the lung's air with fluid or tissue: its
//! attenuation is a fill fraction times the lung thickness at that point,
//! so it fades where the lung is thin and cannot appear outside the lung.
//! Consolidation fills most of the air, ground-glass a little (vessels
//! stay visible through it). A lobar opacity takes the shape of a lobe and
//! is sharp along a fissure; a patchy one is a cluster of soft blobs. The
//! mask is where the fill reaches a third of its peak, which is where a
//! reader would draw the outline.

use super::anatomy::{Anatomy, MU_WATER, side_sign};
use super::canvas::{Mask, Tube, chord, smoothstep};
use super::host::Host;
use super::rng::Rng;

/// The lobes a lobar opacity can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lobe {
    RightUpper,
    RightMiddle,
    RightLower,
    LeftUpper,
    LeftLower,
}

impl Lobe {
    pub const ALL: [Lobe; 5] = [
        Lobe::RightUpper,
        Lobe::RightMiddle,
        Lobe::RightLower,
        Lobe::LeftUpper,
        Lobe::LeftLower,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Lobe::RightUpper => "right-upper",
            Lobe::RightMiddle => "right-middle",
            Lobe::RightLower => "right-lower",
            Lobe::LeftUpper => "left-upper",
            Lobe::LeftLower => "left-lower",
        }
    }

    /// How much of the lobe lies along the beam at a point, 0..1.
    fn membership(self, anatomy: &Anatomy, x: f32, y: f32) -> f32 {
        let right = x < 0.0;
        let h = anatomy.lung_height();
        let fissure = anatomy.hilum_y + 0.04 * h;
        match self {
            Lobe::RightUpper if right => 1.0 - smoothstep(fissure - 2.0, fissure + 2.0, y),
            Lobe::RightMiddle if right => {
                let inner = anatomy.medial + 0.6 * (anatomy.half_width - anatomy.medial);
                smoothstep(fissure - 2.0, fissure + 2.0, y)
                    * (1.0 - smoothstep(inner - 15.0, inner + 15.0, x.abs()))
            }
            Lobe::RightLower if right => {
                0.8 * smoothstep(anatomy.hilum_y - 0.12 * h, anatomy.hilum_y + 0.12 * h, y)
            }
            Lobe::LeftUpper if !right => {
                1.0 - smoothstep(anatomy.hilum_y + 0.05 * h, anatomy.hilum_y + 0.3 * h, y)
            }
            Lobe::LeftLower if !right => {
                0.8 * smoothstep(anatomy.hilum_y - 0.1 * h, anatomy.hilum_y + 0.15 * h, y)
            }
            _ => 0.0,
        }
    }
}

/// A Gaussian blob of opacity.
#[derive(Debug, Clone, Copy)]
struct Blob {
    x: f32,
    y: f32,
    r: f32,
    weight: f32,
}

fn blobs_at(blobs: &[Blob], x: f32, y: f32) -> f32 {
    blobs
        .iter()
        .map(|b| {
            let d2 = (x - b.x).powi(2) + (y - b.y).powi(2);
            b.weight * (-d2 / (2.0 * b.r * b.r)).exp()
        })
        .sum()
}

fn cluster(rng: &mut Rng, cx: f32, cy: f32, extent: f32, count: usize, r: (f32, f32)) -> Vec<Blob> {
    (0..count)
        .map(|_| Blob {
            x: cx + rng.around(0.0, extent / 2.5),
            y: cy + rng.around(0.0, extent / 2.5),
            r: rng.range(r.0, r.1),
            weight: rng.range(0.7, 1.3),
        })
        .collect()
}

/// Draws `opacity(x, y)` (0..1, filled fraction of the lung's air) times
/// `fill`, returns the mask where it reaches a third of `fill`.
fn fill_lung(
    host: &Host,
    attenuation: &mut [f32],
    bbox: [f32; 4],
    fill: f32,
    opacity: impl Fn(f32, f32) -> f32,
) -> Mask {
    let mut mask = Mask::new(host.grid.size);
    host.grid.each_in(bbox, |i, x, y| {
        if !host.lung.bits[i] {
            return;
        }
        let o = opacity(x, y).clamp(0.0, 1.0);
        if o <= 0.0 {
            return;
        }
        attenuation[i] += MU_WATER * host.air_fraction * fill * o * host.lung_thickness[i];
        if o >= 0.34 {
            mask.bits[i] = true;
        }
    });
    mask
}

/// A lobar consolidation or ground-glass opacity with `fill` of the air replaced.
pub fn lobar(
    anatomy: &Anatomy,
    lobe: Lobe,
    fill: f32,
    host: &Host,
    attenuation: &mut [f32],
    rng: &mut Rng,
) -> Mask {
    let s = if matches!(lobe, Lobe::LeftUpper | Lobe::LeftLower) {
        1.0
    } else {
        -1.0
    };
    let texture = cluster(
        rng,
        s * anatomy.half_width * 0.55,
        anatomy.hilum_y,
        160.0,
        14,
        (15.0, 35.0),
    );
    let w = anatomy.half_width + 30.0;
    let bbox = [-w, anatomy.apex_y - 10.0, w, anatomy.dome_peak[1] + 60.0];
    fill_lung(host, attenuation, bbox, fill, |x, y| {
        let m = lobe.membership(anatomy, x, y);
        if m <= 0.0 {
            0.0
        } else {
            m * (0.7 + 0.3 * blobs_at(&texture, x, y).min(1.0))
        }
    })
}

/// A patchy opacity: a cluster of soft blobs around a random lung point,
/// or around `(cx, cy)` when given.
pub fn patchy(
    fill: f32,
    extent: f32,
    host: &Host,
    attenuation: &mut [f32],
    rng: &mut Rng,
    centre: Option<(f32, f32)>,
) -> Option<Mask> {
    let (cx, cy) = match centre {
        Some(c) => c,
        None => host.random_lung_point(rng)?,
    };
    let count = 3 + rng.below(6);
    let blobs = cluster(rng, cx, cy, extent, count, (extent * 0.15, extent * 0.35));
    let reach = extent * 1.5;
    let mask = fill_lung(
        host,
        attenuation,
        [cx - reach, cy - reach, cx + reach, cy + reach],
        fill,
        |x, y| blobs_at(&blobs, x, y),
    );
    (mask.area() > 0).then_some(mask)
}

/// What a tuberculosis-like lesion was drawn with.
pub struct TuberculosisDrawn {
    pub mask: Mask,
    pub cavities: u32,
    pub streaks: u32,
}

/// An upper-zone infiltrate on the side of `(cx, cy)`, with cavities
/// (thick-walled rings, air inside) and fibrotic streaks pulling towards
/// the hilum at `hilum`.
pub fn tuberculosis(
    (cx, cy): (f32, f32),
    hilum: (f32, f32),
    host: &Host,
    attenuation: &mut [f32],
    rng: &mut Rng,
) -> Option<TuberculosisDrawn> {
    let extent = rng.range(35.0, 70.0);
    let count = 5 + rng.below(6);
    let blobs = cluster(rng, cx, cy, extent, count, (5.0, 14.0));
    let cavities: Vec<(f32, f32, f32, f32)> = (0..if rng.chance(0.55) {
        1 + rng.below(2)
    } else {
        0
    })
        .map(|_| {
            let outer = rng.range(7.0, 15.0);
            (
                cx + rng.around(0.0, extent / 6.0),
                cy + rng.around(0.0, extent / 6.0),
                outer,
                outer - rng.range(2.0, 4.5),
            )
        })
        .collect();
    let reach = extent * 1.4;
    let bbox = [cx - reach, cy - reach, cx + reach, cy + reach];
    let mut mask = fill_lung(host, attenuation, bbox, rng.range(0.45, 0.8), |x, y| {
        let inside_cavity = cavities
            .iter()
            .any(|&(kx, ky, _, inner)| (x - kx).hypot(y - ky) < inner);
        if inside_cavity {
            0.0
        } else {
            blobs_at(&blobs, x, y)
        }
    });
    for &(kx, ky, outer, inner) in &cavities {
        let air = host.air_fraction;
        host.grid.each_in(
            [kx - outer, ky - outer, kx + outer, ky + outer],
            |i, x, y| {
                let rho = (x - kx).hypot(y - ky);
                if rho < outer {
                    let wall = chord(rho, outer) - chord(rho, inner);
                    attenuation[i] += MU_WATER * (air * 0.9 * wall - 0.3 * chord(rho, inner));
                    mask.bits[i] = true;
                }
            },
        );
    }
    let streaks = 2 + rng.below(4) as u32;
    for _ in 0..streaks {
        let start = (
            cx + rng.around(0.0, extent / 4.0),
            cy + rng.around(0.0, extent / 4.0),
        );
        let end = (
            hilum.0 + rng.around(0.0, 8.0),
            hilum.1 + rng.around(-10.0, 8.0),
        );
        let points: Vec<(f32, f32, f32)> = (0..=8)
            .map(|j| {
                let t = j as f32 / 8.0;
                (
                    start.0 + (end.0 - start.0) * t * 0.8 + rng.around(0.0, 2.0),
                    start.1 + (end.1 - start.1) * t * 0.8 + rng.around(0.0, 2.0),
                    rng.range(0.8, 1.6),
                )
            })
            .collect();
        let air = host.air_fraction;
        let lung = host.lung;
        Tube { points: &points }.draw(&host.grid, attenuation, None, Some(&mut mask), |d, r, _| {
            MU_WATER * air * 3.0 * chord(d, r)
        });
        // Streaks outside the lung are hidden by the mediastinum anyway;
        // keep the mask to the lung.
        for (bit, inside) in mask.bits.iter_mut().zip(&lung.bits) {
            *bit &= *inside;
        }
    }
    (mask.area() > 0).then_some(TuberculosisDrawn {
        mask,
        cavities: cavities.len() as u32,
        streaks,
    })
}

/// A pleural effusion at the base of one side: fluid replacing lung from
/// the costophrenic angle up, with a meniscus higher laterally.
pub fn pleural_effusion(
    anatomy: &Anatomy,
    side: usize,
    height: f32,
    host: &Host,
    attenuation: &mut [f32],
) -> Mask {
    let s = side_sign(side);
    let base = anatomy.dome_y(s * anatomy.half_width);
    let w = anatomy.half_width + 20.0;
    let bbox = [
        s.min(0.0) * w,
        base - height - 60.0,
        s.max(0.0) * w,
        base + 20.0,
    ];
    fill_lung(host, attenuation, bbox, 0.95, |x, y| {
        if x * s <= 0.0 {
            return 0.0;
        }
        let u =
            ((x.abs() - anatomy.medial) / (anatomy.half_width - anatomy.medial)).clamp(0.0, 1.0);
        let top = base - height * (0.55 + 0.45 * u.powf(1.5));
        smoothstep(top - 4.0, top + 22.0, y)
    })
}
