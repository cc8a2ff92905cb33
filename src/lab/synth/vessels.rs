//! Lung markings: pulmonary vessels branching from the hila towards the
//! periphery, tapering as they go.
//!
//! Vessels are what make lungs look like lungs rather than dark holes,
//! and their absence in the periphery is a sign of emphysema, so the tree
//! is thinned by `Anatomy::vessel_density`. Vessels are blood replacing
//! air, so they add attenuation only where there is lung in front of or
//! behind them (scaled by the lung's presence map), which also makes them
//! fade out behind the heart and at the lung edges.

use super::anatomy::{Anatomy, AnatomyMaps, MU_WATER, side_sign};
use super::canvas::{Grid, Tube, chord};
use super::rng::Rng;

/// One vessel segment still to grow.
struct Sprout {
    x: f32,
    y: f32,
    angle: f32,
    radius: f32,
    length: f32,
    generation: u32,
}

/// Draws the vessel trees of both lungs.
pub fn draw(anatomy: &Anatomy, grid: &Grid, rng: &mut Rng, maps: &mut AnatomyMaps) {
    let mut markings = vec![0.0f32; grid.len()];
    let air = 1.0 - anatomy.lung_tissue_fraction;
    let max_generation = if anatomy.vessel_density < 0.7 { 5 } else { 8 };
    for side in 0..2 {
        let s = side_sign(side);
        let hilum = anatomy.hila[side];
        // Upper, middle/lingula, lower lobe trunks.
        let trunks = [
            (-1.35, 0.8),
            (-0.7, 0.85),
            (-0.1, 0.9),
            (0.5, 1.0),
            (1.0, 1.1),
        ];
        for (angle, scale) in trunks {
            // Headings on the image (y down): the patient's left lung
            // branches to the right, the right lung mirrors it.
            let heading = if s > 0.0 {
                angle
            } else {
                std::f32::consts::PI - angle
            };
            // Trunks leave from across the hilum, not from one point.
            let mut stack = vec![Sprout {
                x: hilum.cx + heading.cos() * 8.0 + rng.around(0.0, 3.0),
                y: hilum.cy + heading.sin() * 14.0 + rng.around(0.0, 4.0),
                angle: heading + rng.around(0.0, 0.1),
                radius: 4.0 * scale,
                length: 34.0 * scale,
                generation: 0,
            }];
            while let Some(sprout) = stack.pop() {
                let end_x = sprout.x + sprout.length * sprout.angle.cos();
                let end_y = sprout.y + sprout.length * sprout.angle.sin();
                let end_r = sprout.radius * 0.85;
                let points = [(sprout.x, sprout.y, sprout.radius), (end_x, end_y, end_r)];
                Tube { points: &points }
                    .draw(grid, &mut markings, None, None, |d, r, _| chord(d, r));
                if sprout.generation >= max_generation || end_r < 0.5 {
                    continue;
                }
                let peripheral_keep = if sprout.generation >= 3 {
                    anatomy.vessel_density
                } else {
                    1.0
                };
                for branch in [-1.0f32, 1.0] {
                    if !rng.chance(peripheral_keep.min(1.0) * 0.97) {
                        continue;
                    }
                    stack.push(Sprout {
                        x: end_x,
                        y: end_y,
                        angle: sprout.angle + branch * rng.range(0.15, 0.5),
                        radius: end_r * rng.range(0.72, 0.86),
                        length: sprout.length * rng.range(0.68, 0.85),
                        generation: sprout.generation + 1,
                    });
                }
            }
        }
    }
    for (i, m) in markings.iter().enumerate() {
        // Where vessels cross they overlap in depth rather than stack up.
        let m = m.min(10.0);
        maps.attenuation[i] += MU_WATER * air * m * maps.lung_presence[i];
    }
}
