//! Bones: ribs (posterior and anterior arcs), clavicles and the thoracic
//! spine, added to the attenuation map and recorded as masks.
//!
//! A rib is drawn as what it is, a tilted hoop: it leaves the spine, runs
//! laterally, turns at the chest wall and comes back forward and down, so
//! its posterior arc is nearly horizontal and its anterior arc slopes
//! steeply down towards the sternum, as on a real PA film. The anterior
//! arc lies far from the detector and is fainter; the costal cartilage at
//! its end is not visible. Bone is drawn as a shell: cortex at the edges
//! projects longer than the marrow at the centre, which gives ribs their
//! bright margins.

use super::anatomy::{Anatomy, AnatomyMaps, side_sign};
use super::canvas::{Grid, Tube, smoothstep};
use super::rng::Rng;

/// Attenuation of cortical bone above that of the soft tissue it
/// replaces, per mm.
const CORTEX: f32 = 0.035;
/// The same for marrow.
const MARROW: f32 = 0.008;

/// Projected attenuation of a bony tube at distance `d` from its axis.
fn shell(d: f32, r: f32, depth_ratio: f32, strength: f32) -> f32 {
    let outer = (1.0 - (d / r).powi(2)).max(0.0).sqrt();
    let inner_r = 0.62 * r;
    let inner = (1.0 - (d / inner_r).powi(2)).max(0.0).sqrt();
    let depth = r * depth_ratio;
    strength * depth * (CORTEX * (outer - 0.62 * inner) + MARROW * 0.62 * inner)
}

/// Draws the skeleton into `maps`.
pub fn draw(anatomy: &Anatomy, grid: &Grid, rng: &mut Rng, maps: &mut AnatomyMaps) {
    draw_spine(anatomy, grid, &mut maps.attenuation);
    let pitch = (anatomy.lung_height() + 14.0) / 9.6;
    // Descent of each rib (mm): along its posterior arc to the lateral
    // wall, and along its anterior arc back towards the sternum.
    let descents = [
        (14.0, 28.0),
        (26.0, 52.0),
        (34.0, 66.0),
        (38.0, 76.0),
        (40.0, 80.0),
        (42.0, 82.0),
        (42.0, 82.0),
        (42.0, 80.0),
        (40.0, 76.0),
        (38.0, 70.0),
        (34.0, 0.0),
        (28.0, 0.0),
    ];
    let stretch = anatomy.lung_height() / 218.0;
    for side in 0..2 {
        let s = side_sign(side);
        for (k, (posterior, anterior)) in descents.iter().enumerate() {
            let y0 = anatomy.apex_y - 14.0 + k as f32 * pitch + rng.around(0.0, 1.5);
            let wobble = rng.around(1.0, 0.05) * stretch;
            let (posterior, anterior) = (posterior * wobble, anterior * wobble);
            let lateral = if k == 0 {
                anatomy.lateral_x(anatomy.apex_y + 28.0) + 6.0
            } else {
                anatomy
                    .lateral_x(y0 + posterior)
                    .max(anatomy.half_width * 0.8)
                    + 9.0
            };
            let x0 = 13.0;
            let end = if anterior == 0.0 {
                std::f32::consts::FRAC_PI_2 + 0.3
            } else {
                std::f32::consts::PI - 0.42
            };
            let start = 0.12;
            let samples = 32;
            let radius = 4.0 + 0.12 * k.min(6) as f32;
            let phis: Vec<f32> = (0..=samples)
                .map(|j| start + (end - start) * j as f32 / samples as f32)
                .collect();
            let points: Vec<(f32, f32, f32)> = phis
                .iter()
                .map(|&phi| {
                    let x = s * (x0 + (lateral - x0) * phi.sin());
                    // Posterior arc: slope growing towards the wall;
                    // anterior arc: a straight slope down and inwards.
                    let y = if phi <= std::f32::consts::FRAC_PI_2 {
                        y0 + posterior * phi.sin().powi(2)
                    } else {
                        y0 + posterior + anterior * (1.0 - phi.sin())
                    };
                    let front = smoothstep(1.3, 2.2, phi);
                    (x, y, radius * (1.0 + 0.3 * front))
                })
                .collect();
            Tube { points: &points }.draw(
                grid,
                &mut maps.attenuation,
                None,
                Some(&mut maps.rib),
                |d, r, along| {
                    let phi = phis[0] + (phis[samples] - phis[0]) * along;
                    let front = smoothstep(1.3, 2.2, phi);
                    shell(d, r, 1.1, 0.85 - 0.5 * front)
                },
            );
        }
        // Clavicle: an S from the sternal notch to the acromion.
        let medial = (s * 24.0, anatomy.apex_y + rng.around(24.0, 5.0));
        let lateral = (
            s * (anatomy.half_width + 30.0),
            anatomy.apex_y + rng.around(-14.0, 6.0),
        );
        let points: Vec<(f32, f32, f32)> = (0..=24)
            .map(|j| {
                let t = j as f32 / 24.0;
                let x = medial.0 + (lateral.0 - medial.0) * t;
                let y = medial.1
                    + (lateral.1 - medial.1) * t
                    + 7.0 * (std::f32::consts::TAU * t).sin() * (1.0 - t);
                let r = 7.0 - 2.0 * (std::f32::consts::PI * t).sin() + 1.0 * t;
                (x, y, r)
            })
            .collect();
        Tube { points: &points }.draw(
            grid,
            &mut maps.attenuation,
            None,
            Some(&mut maps.clavicle),
            |d, r, _| shell(d, r, 1.3, 1.2),
        );
    }
}

/// Vertebral bodies with their cortical rims, and the pedicles.
fn draw_spine(anatomy: &Anatomy, grid: &Grid, attenuation: &mut [f32]) {
    let mut y = anatomy.apex_y - 70.0;
    let mut k = 0.0f32;
    while y < anatomy.dome_peak[1] + 140.0 {
        let height = 17.0 + 0.7 * k;
        let half_width = 16.0 + 0.9 * k;
        let centre = y + height / 2.0;
        let bbox = [
            -half_width - 2.0,
            y - 2.0,
            half_width + 2.0,
            y + height + 2.0,
        ];
        grid.each_in(bbox, |i, px, py| {
            let dx = half_width - px.abs();
            let dy = height / 2.0 - (py - centre).abs();
            if dx > 0.0 && dy > 0.0 {
                let core = smoothstep(0.0, 5.0, dx.min(dy));
                let rim = 1.0 - smoothstep(0.0, 2.5, dx.min(dy));
                attenuation[i] += 12.0 * MARROW * core + 0.035 * rim * smoothstep(0.0, 1.0, dx);
            }
            for s in [-1.0, 1.0] {
                let (ex, ey) = (
                    (px - s * (half_width - 4.0)) / 4.5,
                    (py - centre + 2.0) / 6.0,
                );
                let r2 = ex * ex + ey * ey;
                if r2 < 1.0 {
                    attenuation[i] += 0.045 * (1.0 - r2).sqrt() * (0.4 + 0.6 * r2);
                }
            }
        });
        y += height + 5.5 + 0.1 * k;
        k += 1.0;
    }
}
