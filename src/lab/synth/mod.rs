//! `chestnode synth`: procedural chest radiographs with ground truth, for
//! training and evaluating models where no labelled chest data may be
//! downloaded.
//!
//! A case is built in stages, each in its own file:
//!
//! - `findings::FindingMix::plan` decides what the case shows (nothing,
//!   or one or two findings; nodules are often forced onto the heart,
//!   diaphragm, hila, ribs or clavicles);
//! - `anatomy` samples and draws a thorax as projected attenuation
//!   (soft tissue, lungs, heart, mediastinum, hila, diaphragm, airways),
//!   `skeleton` adds ribs, clavicles and spine, `vessels` the lung markings;
//! - `findings` (with `lesions` and `opacities`) adds each finding's
//!   attenuation and records its mask and subgroup tags, computed from the
//!   anatomy masks (`host`);
//! - `render` turns attenuation into a processed 12-bit radiograph
//!   (scatter, blur, quantum noise, log, unsharp mask, tone curve);
//! - `dicom` writes it as a DX image, `label` says what its label file
//!   (`dataset::ImageLabel`) records.
//!
//! `insert` draws the same findings into real radiographs (PNG), and
//! `dataset` writes a whole dataset directory through the lab's one
//! dataset writer (format in `docs/dataset-format.md`). Everything is deterministic: a case depends
//! only on the configuration, the dataset seed and its index.

mod anatomy;
pub(in crate::lab) mod canvas;
pub mod dataset;
pub(in crate::lab) mod findings;
mod host;
mod insert;
mod label;
mod lesions;
mod opacities;
mod real_anatomy;
mod real_shape;
mod render;
mod rng;
mod skeleton;
#[cfg(test)]
mod tests;
mod vessels;

pub use crate::lab::dataset::FindingKind;
pub use findings::PlannedFinding;
pub use lesions::Site;
use serde::{Deserialize, Serialize};

use crate::lab::dataset::dicom::{DxImage, Photometric};
use anatomy::Anatomy;
use canvas::{Grid, Mask, Pose};
use findings::{DrawnFinding, FindingMix};
use host::{Host, Structure};
use rng::Rng;

/// How a dataset is generated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Rows = columns of every image.
    pub size: usize,
    /// Detector width and height, mm (pixel spacing = this / size). The
    /// patient keeps their physical size: a smaller field crops the chest.
    pub field_of_view_mm: f32,
    /// Fraction of images stored as MONOCHROME1.
    pub monochrome1_fraction: f32,
    pub mix: FindingMix,
}

impl Default for SynthConfig {
    fn default() -> SynthConfig {
        SynthConfig {
            size: 1024,
            field_of_view_mm: 360.0,
            monochrome1_fraction: 0.0,
            mix: FindingMix::default(),
        }
    }
}

impl SynthConfig {
    /// Imager Pixel Spacing, mm.
    pub fn spacing_mm(&self) -> f32 {
        self.field_of_view_mm / self.size as f32
    }
}

/// One generated image with its ground truth.
pub struct SyntheticCase {
    pub seed: u64,
    pub index: u64,
    pub size: usize,
    pub spacing_mm: f32,
    /// Stored values in the MONOCHROME2 sense (bright = attenuating).
    pub pixels: Vec<u16>,
    pub photometric: Photometric,
    pub window: (f32, f32),
    pub findings: Vec<DrawnFinding>,
    pub lung: Mask,
    /// The anatomy masks the tags were computed from.
    pub structures: Vec<(Structure, Mask)>,
    /// The real radiograph findings were inserted into, if any.
    pub background: Option<insert::Background>,
}

/// Generates case `index` of the dataset with `seed`.
pub fn generate(config: &SynthConfig, seed: u64, index: u64) -> SyntheticCase {
    let mut rng = Rng::derive(seed, &[index]);
    let planned = config.mix.plan(&mut rng.fork());
    generate_planned(config, seed, index, &planned, &mut rng)
}

/// Generates a case with the given findings (tests force, e.g., a nodule
/// behind the heart this way).
pub fn generate_with(
    config: &SynthConfig,
    seed: u64,
    index: u64,
    planned: &[PlannedFinding],
) -> SyntheticCase {
    let mut rng = Rng::derive(seed, &[index]);
    let _ = rng.fork();
    generate_planned(config, seed, index, planned, &mut rng)
}

fn generate_planned(
    config: &SynthConfig,
    seed: u64,
    index: u64,
    planned: &[PlannedFinding],
    rng: &mut Rng,
) -> SyntheticCase {
    // One stream per stage, split off up front, so that adding a finding
    // changes nothing else: the same case without it has the same
    // anatomy, exposure and noise.
    let mut anatomy_rng = rng.fork();
    let mut shape_rng = rng.fork();
    let mut pose_rng = rng.fork();
    let mut skeleton_rng = rng.fork();
    let mut vessel_rng = rng.fork();
    let mut findings_rng = rng.fork();
    let mut exposure_rng = rng.fork();
    let mut noise_rng = rng.fork();
    let monochrome1 = rng.chance(config.monochrome1_fraction);

    let emphysema = planned.iter().any(|p| p.kind == FindingKind::Emphysema);
    let mut anatomy = Anatomy::sample(&mut anatomy_rng, emphysema);
    findings::shape_anatomy(&mut anatomy, planned, &mut shape_rng);
    let grid = Grid {
        size: config.size,
        spacing: config.spacing_mm(),
        pose: Pose {
            rotation: pose_rng.around(0.0, 0.03),
            scale: pose_rng.around(1.0, 0.03),
            shift_x: pose_rng.around(0.0, 6.0),
            shift_y: pose_rng.around(6.0, 6.0),
        },
    };
    let mut maps = anatomy.draw(&grid);
    skeleton::draw(&anatomy, &grid, &mut skeleton_rng, &mut maps);
    vessels::draw(&anatomy, &grid, &mut vessel_rng, &mut maps);
    let mut attenuation = std::mem::take(&mut maps.attenuation);
    let structures = vec![
        (Structure::Heart, maps.heart.clone()),
        (Structure::Diaphragm, maps.diaphragm.clone()),
        (Structure::Hilum, maps.hilum.clone()),
        (Structure::Rib, maps.rib.clone()),
        (Structure::Clavicle, maps.clavicle.clone()),
        (Structure::Mediastinum, maps.mediastinum.clone()),
    ];
    let drawn: Vec<DrawnFinding> = {
        let host = Host::new(
            grid,
            &maps.lung,
            &maps.lung_thickness,
            1.0 - anatomy.lung_tissue_fraction,
            structures.iter().map(|(s, m)| (*s, m)).collect(),
        );
        planned
            .iter()
            .filter_map(|p| {
                findings::draw(
                    *p,
                    &anatomy,
                    &host,
                    &mut attenuation,
                    &mut findings_rng.fork(),
                )
            })
            .collect()
    };
    let exposure = render::Exposure::sample(&mut exposure_rng);
    let pixels = render::render(
        &attenuation,
        config.size,
        config.spacing_mm(),
        &exposure,
        &mut noise_rng,
    );
    let photometric = if monochrome1 {
        Photometric::Monochrome1
    } else {
        Photometric::Monochrome2
    };
    SyntheticCase {
        seed,
        index,
        size: config.size,
        spacing_mm: config.spacing_mm(),
        pixels,
        photometric,
        window: (
            (exposure.black + exposure.white) / 2.0,
            exposure.white - exposure.black,
        ),
        findings: drawn,
        lung: maps.lung,
        structures,
        background: None,
    }
}

impl SyntheticCase {
    /// An 8-bit PNG for looking at: windowed, MONOCHROME2, each finding's
    /// mask outline drawn in white.
    pub fn preview(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let (centre, width) = self.window;
        let low = centre - width / 2.0;
        let mut grey: Vec<u8> = self
            .pixels
            .iter()
            .map(|&v| ((v as f32 - low) / width * 255.0).clamp(0.0, 255.0) as u8)
            .collect();
        let n = self.size;
        for finding in &self.findings {
            let m = &finding.mask.bits;
            for i in 0..m.len() {
                let (c, r) = (i % n, i / n);
                let edge = m[i]
                    && (c == 0
                        || r == 0
                        || c + 1 == n
                        || r + 1 == n
                        || !m[i - 1]
                        || !m[i + 1]
                        || !m[i - n]
                        || !m[i + n]);
                if edge {
                    grey[i] = 255;
                }
            }
        }
        image::GrayImage::from_raw(n as u32, n as u32, grey)
            .ok_or_else(|| anyhow::anyhow!("preview size"))?
            .save(path)?;
        Ok(())
    }

    /// The DX image to write.
    pub fn dx(&self) -> DxImage<'_> {
        DxImage {
            seed: self.seed,
            index: self.index,
            rows: self.size,
            columns: self.size,
            spacing_mm: self.spacing_mm,
            pixels: &self.pixels,
            photometric: self.photometric,
            window: self.window,
            description: if self.background.is_some() {
                "CHEST PA - FINDINGS INSERTED (SYNTHETIC)"
            } else {
                "SYNTHETIC CHEST PA"
            },
            identity: None,
        }
    }
}
