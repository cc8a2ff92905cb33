//! The normal thorax as a map of projected attenuation, and the anatomy
//! masks that findings are tagged against.
//!
//! Physically plausible rather than photo-real: every structure
//! contributes its thickness along the beam times its attenuation
//! coefficient relative to water (the "line integral of attenuation",
//! dimensionless), so overlapping structures add up as they do on a real
//! film. The body is soft tissue of water density; the lungs replace part
//! of that thickness with air-filled tissue; the heart, mediastinum and
//! hila displace lung; bones add on top (see `skeleton`); vessels branch
//! from the hila (see `vessels`). A PA film looks at the patient from
//! behind, so the patient's right lung is on the image's left (`side` 0)
//! and the heart bulges to the image's right.

use super::canvas::{Grid, Mask, Tube, chord, smoothstep};
use super::rng::Rng;

/// Linear attenuation of water (soft tissue) at a chest radiograph's
/// effective energy, per mm.
pub const MU_WATER: f32 = 0.02;

/// A rotated ellipse with a projected thickness of an ellipsoid.
#[derive(Debug, Clone, Copy)]
pub struct Ellipse {
    pub cx: f32,
    pub cy: f32,
    /// Semi-axes, mm.
    pub ax: f32,
    pub ay: f32,
    /// Rotation, radians (clockwise on the image).
    pub angle: f32,
    /// Thickness along the beam at the centre, mm.
    pub depth: f32,
}

impl Ellipse {
    /// Squared normalised radius of a point (1 on the outline).
    pub fn radius2(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        if dx.abs() > self.ax.max(self.ay) || dy.abs() > self.ax.max(self.ay) {
            return 2.0;
        }
        let (sin, cos) = self.angle.sin_cos();
        let u = (cos * dx + sin * dy) / self.ax;
        let v = (-sin * dx + cos * dy) / self.ay;
        u * u + v * v
    }

    /// A softer-edged thickness (a blurred organ outline: hila, vessels
    /// of the mediastinum).
    pub fn soft_thickness(&self, x: f32, y: f32) -> f32 {
        let r2 = self.radius2(x, y);
        if r2 >= 1.0 {
            0.0
        } else {
            self.depth * (1.0 - r2) * (1.0 - r2)
        }
    }

    /// Projected thickness at a point.
    pub fn thickness(&self, x: f32, y: f32) -> f32 {
        let r2 = self.radius2(x, y);
        if r2 >= 1.0 {
            0.0
        } else {
            self.depth * (1.0 - r2).sqrt()
        }
    }

    pub fn bbox(&self) -> [f32; 4] {
        let r = self.ax.max(self.ay);
        [self.cx - r, self.cy - r, self.cx + r, self.cy + r]
    }
}

/// A smooth outward bulge of the mediastinal edge on one side.
#[derive(Debug, Clone, Copy)]
pub struct Bulge {
    /// 0: the patient's right (image left), 1: left.
    pub side: usize,
    pub y: f32,
    pub half_height: f32,
    /// How far the edge moves out, mm.
    pub amplitude: f32,
}

/// The sampled shape of one patient's normal thorax (before findings).
#[derive(Debug, Clone)]
pub struct Anatomy {
    /// Half-width of the lung fields at their widest, mm.
    pub half_width: f32,
    /// Medial edge of the lungs (the mediastinum's half-width), mm.
    pub medial: f32,
    /// Extra half-width of the upper mediastinum (mediastinal widening), mm.
    pub upper_mediastinal_widening: f32,
    pub apex_y: f32,
    /// Highest point of each hemidiaphragm (patient's right, left), mm.
    pub dome_peak: [f32; 2],
    /// 1 = normal dome; near 0 = flattened (hyperinflation).
    pub dome_curvature: f32,
    pub hilum_y: f32,
    pub body_half_width: f32,
    pub body_thickness: f32,
    /// AP thickness of the lungs at their thickest, mm.
    pub lung_depth: f32,
    /// Fraction of lung volume that is tissue and blood rather than air
    /// (lower in emphysema: hyperlucency).
    pub lung_tissue_fraction: f32,
    pub heart: Ellipse,
    /// Aortic knob, pulmonary trunk, superior vena cava: bulges of the
    /// mediastinal edge.
    pub mediastinal_contours: Vec<Bulge>,
    /// Patient's right, left.
    pub hila: [Ellipse; 2],
    pub soft_tissue_extras: Vec<Ellipse>,
    pub gastric_bubble: Option<Ellipse>,
    /// 1 = normal lung markings; lower = fewer, thinner vessels (emphysema).
    pub vessel_density: f32,
}

/// Which way a side lies on the image: the patient's right lung is on the left.
pub fn side_sign(side: usize) -> f32 {
    if side == 0 { -1.0 } else { 1.0 }
}

impl Anatomy {
    /// A normal thorax; `emphysema` makes it hyperinflated and hyperlucent.
    pub fn sample(rng: &mut Rng, emphysema: bool) -> Anatomy {
        let size = rng.around(1.0, 0.05);
        let half_width = 128.0 * size * rng.around(1.0, 0.04);
        let apex_y = rng.around(-132.0, 6.0) * size;
        let inspiration = rng.around(1.0, 0.05) + if emphysema { 0.14 } else { 0.0 };
        let right_dome = apex_y + 218.0 * size * inspiration;
        let left_dome = right_dome + rng.around(14.0, 5.0);
        let height = right_dome - apex_y;
        let medial = rng.around(20.0, 2.0);
        let hilum_y = apex_y + 0.43 * height;
        let heart_scale = rng.around(1.0, 0.07) * if emphysema { 0.85 } else { 1.0 };
        let heart = Ellipse {
            cx: half_width * rng.around(0.16, 0.03),
            cy: right_dome - 0.21 * height * heart_scale,
            ax: 0.47 * half_width * heart_scale,
            ay: 0.25 * height * heart_scale.min(1.0),
            angle: rng.around(0.38, 0.08) + if emphysema { 0.3 } else { 0.0 },
            depth: 125.0 * heart_scale,
        };
        let mediastinal_contours = vec![
            // Aortic knob.
            Bulge {
                side: 1,
                y: hilum_y - 0.19 * height,
                half_height: rng.around(26.0, 3.0),
                amplitude: rng.around(10.0, 2.5),
            },
            // Pulmonary trunk.
            Bulge {
                side: 1,
                y: hilum_y - 0.03 * height,
                half_height: 22.0,
                amplitude: rng.around(4.0, 1.5),
            },
            // Superior vena cava.
            Bulge {
                side: 0,
                y: hilum_y - 0.2 * height,
                half_height: 0.18 * height,
                amplitude: rng.around(5.0, 1.5),
            },
        ];
        let hila = [
            Ellipse {
                cx: -(medial + 17.0),
                cy: hilum_y + 0.05 * height,
                ax: rng.around(13.0, 1.5),
                ay: rng.around(26.0, 3.0),
                angle: -0.15,
                depth: 40.0,
            },
            Ellipse {
                cx: medial + 17.0,
                cy: hilum_y - 0.02 * height,
                ax: rng.around(13.0, 1.5),
                ay: rng.around(24.0, 3.0),
                angle: 0.15,
                depth: 40.0,
            },
        ];
        let body_half_width = half_width + rng.around(22.0, 5.0);
        let mut soft_tissue_extras = Vec::new();
        if rng.chance(0.35) {
            for side in 0..2 {
                soft_tissue_extras.push(Ellipse {
                    cx: side_sign(side) * half_width * 0.62,
                    cy: right_dome - 0.05 * height,
                    ax: rng.around(58.0, 6.0),
                    ay: rng.around(48.0, 5.0),
                    angle: 0.0,
                    depth: rng.around(45.0, 8.0),
                });
            }
        }
        if rng.chance(0.5) {
            for side in 0..2 {
                soft_tissue_extras.push(Ellipse {
                    cx: side_sign(side) * (body_half_width + 32.0),
                    cy: apex_y + 60.0,
                    ax: 28.0,
                    ay: 200.0,
                    angle: 0.0,
                    depth: 85.0,
                });
            }
        }
        let gastric_bubble = rng.chance(0.6).then(|| Ellipse {
            cx: half_width * rng.around(0.45, 0.06),
            cy: left_dome + rng.around(24.0, 4.0),
            ax: rng.around(22.0, 4.0),
            ay: rng.around(13.0, 3.0),
            angle: 0.0,
            depth: 35.0,
        });
        Anatomy {
            half_width,
            medial,
            upper_mediastinal_widening: 0.0,
            apex_y,
            dome_peak: [right_dome, left_dome],
            dome_curvature: if emphysema {
                rng.around(0.25, 0.08)
            } else {
                rng.around(1.0, 0.12)
            },
            hilum_y,
            body_half_width,
            body_thickness: rng.around(225.0, 18.0) * size,
            lung_depth: rng.around(150.0, 10.0) * size * if emphysema { 1.1 } else { 1.0 },
            lung_tissue_fraction: if emphysema {
                rng.around(0.13, 0.02)
            } else {
                rng.around(0.25, 0.025)
            },
            heart,
            mediastinal_contours,
            hila,
            soft_tissue_extras,
            gastric_bubble,
            vessel_density: if emphysema {
                rng.around(0.45, 0.1)
            } else {
                1.0
            },
        }
    }

    /// Height of the lung fields (apex to right dome), mm.
    pub fn lung_height(&self) -> f32 {
        self.dome_peak[0] - self.apex_y
    }

    /// |x| of the mediastinal edge of the lungs at height `y` on the side of `x`.
    pub fn medial_x(&self, x: f32, y: f32) -> f32 {
        let side = usize::from(x > 0.0);
        let upper = 1.0 - smoothstep(self.hilum_y - 30.0, self.hilum_y + 10.0, y);
        let narrow_top = 1.0 - 0.3 * (1.0 - smoothstep(self.apex_y, self.hilum_y, y));
        let bulges: f32 = self
            .mediastinal_contours
            .iter()
            .filter(|b| b.side == side)
            .map(|b| {
                let t = (y - b.y) / b.half_height;
                if t.abs() < 1.0 {
                    b.amplitude * (1.0 - t * t).powi(2)
                } else {
                    0.0
                }
            })
            .sum();
        self.medial * narrow_top + bulges + self.upper_mediastinal_widening * upper
    }

    /// |x| of the lateral (costal) edge of the lungs at height `y`; 0 above the apex.
    pub fn lateral_x(&self, y: f32) -> f32 {
        let mid = self.apex_y + 0.42 * self.lung_height();
        if y <= self.apex_y {
            0.0
        } else if y < mid {
            let t = (mid - y) / (mid - self.apex_y);
            let top = self.medial + 6.0;
            top + (self.half_width - top) * (1.0 - t * t).max(0.0).sqrt()
        } else {
            self.half_width + 10.0 * (y - mid) / self.lung_height()
        }
    }

    /// Height of the diaphragm under `x`.
    pub fn dome_y(&self, x: f32) -> f32 {
        let side = usize::from(x > 0.0);
        let u = ((x.abs() - self.medial) / (self.half_width - self.medial)).clamp(-0.2, 1.3);
        self.dome_peak[side]
            + self.dome_curvature * 70.0 * (u - 0.4) * (u - 0.4)
            + 12.0 * smoothstep(0.8, 1.05, u)
    }

    /// AP thickness of lung at a point, before the heart and mediastinum
    /// displace it, mm.
    pub fn lung_thickness(&self, x: f32, y: f32) -> f32 {
        let (ax, medial, lateral) = (x.abs(), self.medial_x(x, y), self.lateral_x(y));
        let dome = self.dome_y(x);
        if ax <= medial || ax >= lateral || y <= self.apex_y || y >= dome {
            return 0.0;
        }
        let edge = |t: f32, w: f32| (t / w).clamp(0.0, 1.0).sqrt();
        let inward = (ax - medial).min(lateral - ax);
        let apical = smoothstep(self.apex_y, self.apex_y + 0.45 * self.lung_height(), y);
        self.lung_depth * (0.5 + 0.5 * apical) * edge(inward, 22.0) * edge(dome - y, 10.0)
    }

    /// Soft tissue in the lungs' way: heart, mediastinal contours, hila, mm.
    fn displacing_thickness(&self, x: f32, y: f32) -> f32 {
        self.heart.thickness(x, y)
            + self
                .hila
                .iter()
                .map(|e| e.soft_thickness(x, y))
                .sum::<f32>()
    }

    /// Thickness of the trunk's soft tissue, mm.
    fn body_thickness_at(&self, x: f32, y: f32) -> f32 {
        let shoulders = 1.0 - smoothstep(self.apex_y - 20.0, self.apex_y + 40.0, y);
        let half = self.body_half_width + 14.0 * shoulders;
        let u = x / half;
        if u.abs() >= 1.0 {
            0.0
        } else {
            self.body_thickness * (1.0 - u * u).sqrt().powf(0.7)
        }
    }
}

/// The normal thorax drawn on a grid: attenuation and anatomy masks.
pub struct AnatomyMaps {
    /// Projected attenuation (dimensionless line integral).
    pub attenuation: Vec<f32>,
    /// Air in the lungs along the beam, mm (after displacement).
    pub lung_air: Vec<f32>,
    /// Lung thickness along the beam before displacement, mm.
    pub lung_thickness: Vec<f32>,
    /// How much of a full-depth lung is air here, 0..1 (fades behind the
    /// heart and at the lung edges): findings inside lung scale by it.
    pub lung_presence: Vec<f32>,
    pub lung: Mask,
    /// The cardiac silhouette above the diaphragm.
    pub heart: Mask,
    /// Below the diaphragm domes, within the lung fields' width.
    pub diaphragm: Mask,
    pub hilum: Mask,
    pub mediastinum: Mask,
    pub rib: Mask,
    pub clavicle: Mask,
}

impl Anatomy {
    /// Soft tissue, lungs, heart, mediastinum, hila, airways.
    pub fn draw(&self, grid: &Grid) -> AnatomyMaps {
        let n = grid.len();
        let mut maps = AnatomyMaps {
            attenuation: vec![0.0; n],
            lung_air: vec![0.0; n],
            lung_thickness: vec![0.0; n],
            lung_presence: vec![0.0; n],
            lung: Mask::new(grid.size),
            heart: Mask::new(grid.size),
            diaphragm: Mask::new(grid.size),
            hilum: Mask::new(grid.size),
            mediastinum: Mask::new(grid.size),
            rib: Mask::new(grid.size),
            clavicle: Mask::new(grid.size),
        };
        let air_fraction = 1.0 - self.lung_tissue_fraction;
        grid.each(|i, x, y| {
            let mut soft = self.body_thickness_at(x, y);
            soft += self
                .soft_tissue_extras
                .iter()
                .map(|e| e.soft_thickness(x, y))
                .sum::<f32>();
            let lung = self.lung_thickness(x, y);
            let air = (lung - self.displacing_thickness(x, y)).max(0.0);
            let mut gas = air * air_fraction;
            if let Some(bubble) = &self.gastric_bubble {
                gas += bubble.thickness(x, y);
            }
            maps.attenuation[i] = MU_WATER * (soft - gas).max(0.0);
            maps.lung_air[i] = air;
            maps.lung_thickness[i] = lung;
            maps.lung_presence[i] = (air / (0.5 * self.lung_depth)).clamp(0.0, 1.0);
            let dome = self.dome_y(x);
            let medial = self.medial_x(x, y);
            let inside_fields = x.abs() > medial && x.abs() < self.lateral_x(y);
            maps.lung.bits[i] = lung > 0.0;
            maps.heart.bits[i] = self.heart.radius2(x, y) < 1.0 && y < dome;
            maps.diaphragm.bits[i] =
                y >= dome && y < dome + 60.0 && x.abs() < self.half_width + 10.0;
            maps.hilum.bits[i] = self.hila.iter().any(|h| h.radius2(x, y) < 1.4);
            maps.mediastinum.bits[i] =
                y < dome && y > self.apex_y - 40.0 && !inside_fields && x.abs() <= medial;
        });
        self.draw_airways(grid, &mut maps.attenuation);
        maps
    }

    /// Trachea and main bronchi: air columns through the mediastinum.
    fn draw_airways(&self, grid: &Grid, attenuation: &mut [f32]) {
        let carina = (0.0, self.hilum_y - 22.0);
        let trachea = [
            (0.0, self.apex_y - 90.0, 8.5),
            (1.5, self.apex_y + 30.0, 8.5),
            (carina.0, carina.1, 7.5),
        ];
        let mut air = vec![0.0f32; attenuation.len()];
        Tube { points: &trachea }.draw(grid, &mut air, None, None, |d, r, _| chord(d, r));
        for side in 0..2 {
            let hilum = &self.hila[side];
            let bronchus = [
                (carina.0, carina.1, 6.0),
                (hilum.cx * 0.8, hilum.cy - 6.0, 4.5),
            ];
            Tube { points: &bronchus }.draw(grid, &mut air, None, None, |d, r, _| chord(d, r));
        }
        for (a, gas) in attenuation.iter_mut().zip(&air) {
            *a = (*a - MU_WATER * 0.9 * gas).max(0.0);
        }
    }
}
