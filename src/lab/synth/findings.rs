//! Which findings a case has, how each is drawn, and what its label says.
//!
//! A case's findings are chosen first (`plan`), because two of them change
//! the anatomy itself rather than adding to it: emphysema (hyperinflation,
//! flat diaphragm, hyperlucency, few vessels) and mediastinal widening.
//! The rest are drawn onto the finished normal thorax. Every finding
//! carries chestnode's category key (`Category::key`), its mask, and
//! subgroup tags computed from the anatomy masks.

use serde::{Deserialize, Serialize};

use super::anatomy::{Anatomy, Ellipse, MU_WATER, side_sign};
use super::canvas::{Mask, chord};
use super::host::{Host, Structure};
use super::lesions::{RoundLesion, Site, place_and_draw, size_bin};
use super::opacities::{self, Lobe};
use super::rng::Rng;
use crate::lab::dataset::{FindingDetails, FindingKind, Margin, Solidity};

/// One finding to draw, as planned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedFinding {
    pub kind: FindingKind,
    /// Where a nodule or mass goes.
    pub site: Site,
    /// A nodule's or mass's diameter in mm (random when None).
    pub diameter_mm: Option<f32>,
}

/// How often each finding appears (per case, before normals).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingMix {
    pub normal: f32,
    pub nodule: f32,
    pub mass: f32,
    pub consolidation: f32,
    pub ground_glass: f32,
    pub tuberculosis: f32,
    pub mediastinal: f32,
    pub emphysema: f32,
    pub pleural_effusion: f32,
    /// Chance that an abnormal case has a second, different finding.
    pub second_finding: f32,
    /// Fraction of nodules forced onto heart, diaphragm, hilum, rib or clavicle.
    pub hidden_nodules: f32,
}

impl Default for FindingMix {
    fn default() -> FindingMix {
        FindingMix {
            normal: 0.3,
            nodule: 0.22,
            mass: 0.05,
            consolidation: 0.08,
            ground_glass: 0.05,
            tuberculosis: 0.1,
            mediastinal: 0.07,
            emphysema: 0.07,
            pleural_effusion: 0.06,
            second_finding: 0.2,
            hidden_nodules: 0.5,
        }
    }
}

impl FindingMix {
    /// The mix with some frequencies replaced: `KEY=F` items such as
    /// `nodule=0.5` (`chestnode synth --mix`), keys as the dataset's
    /// `config.mix` names them. Frequencies are relative weights (they
    /// need not sum to 1); `second_finding` and `hidden_nodules` are
    /// chances in [0, 1].
    pub fn with_overrides(&self, items: &[String]) -> anyhow::Result<FindingMix> {
        let mut mix = self.clone();
        for item in items {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--mix {item:?}: expected KEY=F"))?;
            let value: f32 = value
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("--mix {item:?}: {value:?} is not a number"))?;
            let chance = matches!(key.trim(), "second_finding" | "hidden_nodules");
            anyhow::ensure!(
                value.is_finite() && value >= 0.0 && (!chance || value <= 1.0),
                "--mix {item:?}: must be {}",
                if chance { "in [0, 1]" } else { "0 or more" }
            );
            // The keys are the serialised field names, as dataset.json has them.
            let mut fields = serde_json::to_value(&mix)?;
            let known = fields
                .as_object()
                .map(|map| map.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            let slot = fields.get_mut(key.trim()).ok_or_else(|| {
                anyhow::anyhow!("--mix: unknown key {:?} (known: {known})", key.trim())
            })?;
            *slot = serde_json::json!(value);
            mix = serde_json::from_value(fields)?;
        }
        anyhow::ensure!(
            mix.table(false).iter().map(|t| t.1).sum::<f32>() > 0.0,
            "--mix: every frequency is 0"
        );
        Ok(mix)
    }

    /// Each first finding (None: a normal) with its relative weight.
    fn table(&self, abnormal_only: bool) -> [(Option<FindingKind>, f32); 10] {
        [
            (None, if abnormal_only { 0.0 } else { self.normal }),
            (Some(FindingKind::Nodule), self.nodule),
            (Some(FindingKind::Mass), self.mass),
            (Some(FindingKind::Consolidation), self.consolidation),
            (Some(FindingKind::GroundGlass), self.ground_glass),
            (Some(FindingKind::Tuberculosis), self.tuberculosis),
            (
                Some(FindingKind::MediastinalWidening),
                self.mediastinal / 2.0,
            ),
            (Some(FindingKind::MediastinalMass), self.mediastinal / 2.0),
            (Some(FindingKind::Emphysema), self.emphysema),
            (Some(FindingKind::PleuralEffusion), self.pleural_effusion),
        ]
    }

    fn pick(&self, rng: &mut Rng, abnormal_only: bool) -> Option<FindingKind> {
        let table = self.table(abnormal_only);
        let total: f32 = table.iter().map(|t| t.1.max(0.0)).sum();
        let mut draw = rng.unit() * total;
        for (kind, weight) in table {
            draw -= weight.max(0.0);
            if draw < 0.0 {
                return kind;
            }
        }
        None
    }

    /// The findings of one case (empty: a normal).
    pub fn plan(&self, rng: &mut Rng) -> Vec<PlannedFinding> {
        let mut kinds = Vec::new();
        if let Some(first) = self.pick(rng, false) {
            kinds.push(first);
            if rng.chance(self.second_finding)
                && let Some(second) = self.pick(rng, true).filter(|k| *k != first)
            {
                kinds.push(second);
            }
        }
        kinds
            .into_iter()
            .map(|kind| {
                let site = if kind == FindingKind::Nodule && rng.chance(self.hidden_nodules) {
                    let hidden = [
                        Structure::Heart,
                        Structure::Diaphragm,
                        Structure::Hilum,
                        Structure::Rib,
                        Structure::Clavicle,
                    ];
                    Site::Over(hidden[rng.below(hidden.len())])
                } else {
                    Site::AnyLung
                };
                PlannedFinding {
                    kind,
                    site,
                    diameter_mm: None,
                }
            })
            .collect()
    }
}

/// A drawn finding: what it is, where (its mask), and its tags.
#[derive(Debug, Clone)]
pub struct DrawnFinding {
    pub kind: FindingKind,
    pub mask: Mask,
    pub details: FindingDetails,
    pub tags: Vec<String>,
}

/// Changes the anatomy for findings that are part of it; call before drawing.
pub fn shape_anatomy(anatomy: &mut Anatomy, planned: &[PlannedFinding], rng: &mut Rng) {
    if planned
        .iter()
        .any(|p| p.kind == FindingKind::MediastinalWidening)
    {
        anatomy.upper_mediastinal_widening = rng.range(16.0, 32.0);
    }
}

/// The side ("right", "left" or "bilateral", the patient's) of a mask.
fn side_tag(host: &Host, mask: &Mask) -> &'static str {
    let (mut right, mut left) = (0usize, 0usize);
    for (i, _) in mask.bits.iter().enumerate().filter(|(_, b)| **b) {
        let (x, _) = host.grid.anatomy_mm(i % host.grid.size, i / host.grid.size);
        if x < 0.0 { right += 1 } else { left += 1 }
    }
    let total = (right + left).max(1) as f32;
    if right as f32 / total > 0.85 {
        "right"
    } else if left as f32 / total > 0.85 {
        "left"
    } else {
        "bilateral"
    }
}

/// Draws one planned finding into a synthetic thorax. None when it could
/// not be placed (rare; the case is then drawn without it).
pub fn draw(
    planned: PlannedFinding,
    anatomy: &Anatomy,
    host: &Host,
    attenuation: &mut [f32],
    rng: &mut Rng,
) -> Option<DrawnFinding> {
    let mut details = FindingDetails::default();
    let mask = match planned.kind {
        FindingKind::Nodule | FindingKind::Mass => {
            return draw_round(planned, host, attenuation, rng);
        }
        FindingKind::Consolidation | FindingKind::GroundGlass => {
            let fill = if planned.kind == FindingKind::Consolidation {
                rng.range(0.55, 0.9)
            } else {
                rng.range(0.15, 0.3)
            };
            if rng.chance(0.45) {
                let lobe = Lobe::ALL[rng.below(Lobe::ALL.len())];
                details.pattern = Some("lobar".into());
                details.lobe = Some(lobe.key().into());
                opacities::lobar(anatomy, lobe, fill, host, attenuation, rng)
            } else {
                details.pattern = Some("patchy".into());
                let extent = rng.range(30.0, 80.0);
                opacities::patchy(fill, extent, host, attenuation, rng, None)?
            }
        }
        FindingKind::Tuberculosis => {
            let side = rng.below(2);
            let s = side_sign(side);
            let h = anatomy.lung_height();
            let centre = (
                s * (anatomy.medial + rng.range(0.3, 0.75) * (anatomy.half_width - anatomy.medial)),
                anatomy.apex_y + rng.range(0.1, 0.32) * h,
            );
            let hilum = (anatomy.hila[side].cx, anatomy.hila[side].cy);
            let drawn = opacities::tuberculosis(centre, hilum, host, attenuation, rng)?;
            details.cavities = Some(drawn.cavities);
            details.fibrotic_streaks = Some(drawn.streaks);
            drawn.mask
        }
        FindingKind::MediastinalWidening => {
            details.pattern = Some("widening".into());
            widening_mask(anatomy, host)
        }
        FindingKind::MediastinalMass => {
            details.pattern = Some("mass".into());
            mediastinal_mass(anatomy, host, attenuation, rng)
        }
        FindingKind::Emphysema => {
            add_bullae(anatomy, host, attenuation, rng);
            host.lung.clone()
        }
        FindingKind::PleuralEffusion => {
            let height = rng.range(30.0, 0.45 * anatomy.lung_height());
            opacities::pleural_effusion(anatomy, rng.below(2), height, host, attenuation)
        }
    };
    if mask.area() == 0 {
        return None;
    }
    let mut tags = host.overlap_tags(&mask, 0.1);
    tags.push(format!("side_{}", side_tag(host, &mask)));
    Some(DrawnFinding {
        kind: planned.kind,
        mask,
        details,
        tags,
    })
}

/// A nodule or mass at its planned site.
pub fn draw_round(
    planned: PlannedFinding,
    host: &Host,
    attenuation: &mut [f32],
    rng: &mut Rng,
) -> Option<DrawnFinding> {
    let (diameter, solidity) = if let Some(d) = planned.diameter_mm {
        (d, Solidity::Solid)
    } else if planned.kind == FindingKind::Mass {
        (rng.range(31.0, 60.0), Solidity::Solid)
    } else {
        // Small nodules are commoner, as in screening.
        let d = 5.0 + 25.0 * rng.unit().powf(1.6);
        let solidity = if rng.chance(0.25) {
            Solidity::PartSolid
        } else {
            Solidity::Solid
        };
        (d, solidity)
    };
    // Margins as a screening population shows them; calcified granulomas
    // are small, solid and smooth. Masses and nodules of a given size
    // (tests place those) keep a smooth outline and draw nothing more from
    // the random stream, so they come out as they always have.
    let (margin, calcified) =
        if planned.kind == FindingKind::Nodule && planned.diameter_mm.is_none() {
            let calcified = solidity == Solidity::Solid && diameter < 20.0 && rng.chance(0.12);
            let u = rng.unit();
            let margin = if calcified || u < 0.45 {
                Margin::Smooth
            } else if u < 0.75 {
                Margin::Lobulated
            } else {
                Margin::Spiculated
            };
            (margin, calcified)
        } else {
            (Margin::Smooth, false)
        };
    let mut lesion =
        RoundLesion::sample(rng, diameter, solidity).with_margin(margin, calcified, rng);
    let (mask, mut tags) = place_and_draw(&mut lesion, planned.site, host, attenuation, rng)?;
    // As measured on the image (Imager Pixel Spacing includes the
    // geometric magnification), which is what a reader would measure.
    let measured = diameter * host.grid.pose.scale;
    tags.push(size_bin(measured).to_string());
    tags.push(format!("side_{}", side_tag(host, &mask)));
    Some(DrawnFinding {
        kind: planned.kind,
        mask,
        details: FindingDetails {
            diameter_mm: Some(measured),
            solidity: Some(solidity),
            margin: Some(margin),
            calcified: Some(calcified),
            ..FindingDetails::default()
        },
        tags,
    })
}

/// The widened part of the upper mediastinum (drawn by the anatomy).
fn widening_mask(anatomy: &Anatomy, host: &Host) -> Mask {
    let mut mask = Mask::new(host.grid.size);
    let normal = Anatomy {
        upper_mediastinal_widening: 0.0,
        ..anatomy.clone()
    };
    host.grid.each(|i, x, y| {
        let (before, after) = (normal.medial_x(x, y), anatomy.medial_x(x, y));
        mask.bits[i] = y > anatomy.apex_y - 20.0
            && y < anatomy.hilum_y + 10.0
            && after > before + 3.0
            && x.abs() < after
            && x.abs() > before * 0.5;
    });
    mask
}

/// A lobulated soft-tissue mass bulging from one side of the mediastinum.
fn mediastinal_mass(
    anatomy: &Anatomy,
    host: &Host,
    attenuation: &mut [f32],
    rng: &mut Rng,
) -> Mask {
    let s = side_sign(rng.below(2));
    let r = rng.range(22.0, 42.0);
    let mass = Ellipse {
        cx: s * (anatomy.medial + r * rng.range(0.2, 0.6)),
        cy: rng.range(anatomy.apex_y + 40.0, anatomy.hilum_y + 15.0),
        ax: r * rng.range(0.8, 1.0),
        ay: r * rng.range(1.0, 1.4),
        angle: rng.range(-0.3, 0.3),
        depth: r * 1.6,
    };
    let mut mask = Mask::new(host.grid.size);
    let air = host.air_fraction;
    host.grid.each_in(mass.bbox(), |i, x, y| {
        let t = mass.thickness(x, y);
        if t > 0.0 {
            mask.bits[i] = true;
            attenuation[i] += MU_WATER * air * t.min(host.lung_thickness[i]);
        }
    });
    mask
}

/// Bullae: thin-walled lucent spaces in the upper zones.
fn add_bullae(anatomy: &Anatomy, host: &Host, attenuation: &mut [f32], rng: &mut Rng) {
    for _ in 0..rng.below(4) {
        let s = side_sign(rng.below(2));
        let (cx, cy) = (
            s * (anatomy.medial + rng.range(0.3, 0.8) * (anatomy.half_width - anatomy.medial)),
            anatomy.apex_y + rng.range(0.08, 0.3) * anatomy.lung_height(),
        );
        let r = rng.range(10.0, 28.0);
        let tissue = 1.0 - host.air_fraction;
        host.grid
            .each_in([cx - r, cy - r, cx + r, cy + r], |i, x, y| {
                let rho = (x - cx).hypot(y - cy);
                if rho < r && host.lung.bits[i] {
                    let wall = chord(rho, r) - chord(rho, r - 1.0);
                    attenuation[i] += MU_WATER * (0.5 * wall - tissue * chord(rho, r - 1.0));
                }
            });
    }
}
