//! Inserting synthetic findings into real radiographs (8- or 16-bit
//! greyscale PNG or JPEG, e.g. the healthy images in `shared/data/cxr`, or
//! the DICOM normals of a corpus imported by `chestnode corpus`), so models
//! can also be trained and checked on real anatomy.
//!
//! A PNG carries no anatomy, so the lungs are estimated: after smoothing,
//! the two largest dark regions that do not touch the border (the air
//! around the patient does) are taken as lung fields. Findings are the
//! same code as in synthetic images, drawn as attenuation and added in the
//! image's own log-exposure scale, with a gain measured from the contrast
//! between lung and mediastinum. Only findings that need no anatomy are
//! inserted: nodules, masses, patchy consolidation and ground-glass,
//! upper-zone tuberculosis, and (by reshaping the film, `real_shape`)
//! emphysema and mediastinal widening. Heart, diaphragm, hila and mediastinum are
//! estimated from the lung fields (`real_anatomy`), so nodules are also
//! placed behind the heart, below the domes and at the hila, and tagged
//! so; the label says `anatomy_known: false` because those masks are
//! estimates.

use std::path::Path;

use anyhow::Context;

use super::canvas::{Grid, Mask, Pose};
use super::findings::{self, DrawnFinding, PlannedFinding};
use super::host::{Host, Structure};
use super::lesions::Site;
use super::opacities;
use super::render::{gaussian_blur, percentile};
use super::rng::Rng;
use super::{SynthConfig, SyntheticCase};
use super::{real_anatomy, real_shape};
use crate::lab::dataset::dicom::Photometric;
use crate::lab::dataset::{FindingDetails, FindingKind};

/// Assumed detector width of a PNG radiograph, mm.
const REAL_FIELD_OF_VIEW_MM: f32 = 400.0;

/// Nodules drawn into real films are this much denser than the
/// model thorax's physics gives. Calibrated on the 154 real JSRT nodules
/// of the extra corpus: their contrast (mean grey of the inner half
/// against a ring at 1.3–2 radii, in units of the image's standard
/// deviation) has medians 0.11 (5–10 mm, 10 nodules), 0.16 (10–20 mm) and
/// 0.18 (20–30 mm). Inserted with a factor of 1 they measured 0.05, 0.04
/// and 0.06; with 1.8, 0.14, 0.17 and 0.41 (`scripts/corpus/contrast.py`).
const ROUND_LESION_CONTRAST: f32 = 1.8;

/// Whether case `index` is drawn on a real radiograph.
pub fn chooses_real(seed: u64, index: u64, fraction: f32) -> bool {
    Rng::derive(seed, &[index, 0x1_45E7]).chance(fraction)
}

/// A real radiograph findings are drawn into, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Background {
    /// A PNG or JPEG file, or a DICOM file of an imported corpus.
    pub path: std::path::PathBuf,
    /// Its own corpus's source, split and patient, when it has them: the
    /// inserted case inherits them, so it stays on its patient's side of
    /// every split.
    pub source: Option<String>,
    pub split: Option<String>,
    pub patient: Option<String>,
}

impl Background {
    /// A plain image file without provenance.
    pub fn file(path: &Path) -> Background {
        Background {
            path: path.to_path_buf(),
            source: None,
            split: None,
            patient: None,
        }
    }

    /// The file name, for labels and `dataset.json`.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Greyscale values 0..1 of a PNG or JPEG, centre-cropped to a square (as
/// the model's input is) and resized to `size`².
pub fn load_png(png: &Path, size: usize) -> anyhow::Result<Vec<f32>> {
    let image = image::open(png).with_context(|| format!("reading {}", png.display()))?;
    let grey = image.to_luma16();
    let (w, h) = grey.dimensions();
    let side = w.min(h);
    let square = image::imageops::crop_imm(&grey, (w - side) / 2, (h - side) / 2, side, side);
    let resized = image::imageops::resize(
        &*square,
        size as u32,
        size as u32,
        image::imageops::FilterType::Triangle,
    );
    Ok(resized.pixels().map(|p| p.0[0] as f32 / 65535.0).collect())
}

/// Greyscale values 0..1 of a background, `size`²: DICOM through the
/// node's own pipeline (as the model would see it), images directly.
pub fn load_background(path: &Path, size: usize) -> anyhow::Result<Vec<f32>> {
    let is_dicom = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("dcm"));
    if !is_dicom {
        return load_png(path, size);
    }
    let object =
        dicom_object::open_file(path).with_context(|| format!("reading {}", path.display()))?;
    let radiograph = crate::imaging::load_radiograph(&object)
        .with_context(|| format!("decoding {}", path.display()))?;
    let (grey, _) = crate::imaging::model_input(
        &radiograph,
        size as u32,
        crate::imaging::Normalisation::UNIT,
    )?;
    Ok(grey)
}

/// Connected components (4-neighbour) of `mask`, as lists of pixel indices.
fn components(mask: &[bool], size: usize) -> Vec<Vec<usize>> {
    let mut seen = vec![false; mask.len()];
    let mut out = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        let mut stack = vec![start];
        seen[start] = true;
        let mut pixels = Vec::new();
        while let Some(i) = stack.pop() {
            pixels.push(i);
            let (c, r) = (i % size, i / size);
            let mut push = |j: usize| {
                if mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if c > 0 {
                push(i - 1);
            }
            if c + 1 < size {
                push(i + 1);
            }
            if r > 0 {
                push(i - size);
            }
            if r + 1 < size {
                push(i + size);
            }
        }
        out.push(pixels);
    }
    out
}

/// The estimated lung fields of a radiograph (values: bright = attenuating).
pub fn estimate_lungs(values: &[f32], size: usize) -> Mask {
    let mut smooth = values.to_vec();
    gaussian_blur(&mut smooth, size, size as f32 / 128.0);
    let central: Vec<f32> = (0..values.len())
        .filter(|&i| {
            let (c, r) = (i % size, i / size);
            c > size / 8 && c < size * 7 / 8 && r > size / 8 && r < size * 7 / 8
        })
        .map(|i| smooth[i])
        .collect();
    let dark = percentile(&central, 0.3);
    // Dark pixels inside a central box; the air around the patient is cut
    // off by the box and by where its parts lie.
    let inside = |i: usize| {
        let (c, r) = (i % size, i / size);
        c > size / 12 && c < size * 11 / 12 && r > size / 12 && r < size * 7 / 8
    };
    let candidates: Vec<bool> = (0..smooth.len())
        .map(|i| inside(i) && smooth[i] < dark)
        .collect();
    let mut mask = Mask::new(size);
    let parts = components(&candidates, size);
    for left_half in [true, false] {
        let best = parts
            .iter()
            .filter(|part| part.len() > size * size / 100)
            .filter(|part| {
                let n = part.len() as f32;
                let column = part.iter().map(|&i| (i % size) as f32).sum::<f32>() / n;
                let row = part.iter().map(|&i| (i / size) as f32).sum::<f32>() / n;
                let s = size as f32;
                (column < s / 2.0) == left_half && row > 0.2 * s && row < 0.7 * s
            })
            .max_by_key(|part| part.len());
        for &i in best.into_iter().flatten() {
            mask.bits[i] = true;
        }
    }
    mask
}

/// Draws a case's findings into the real radiograph `png`.
pub fn insert_case(
    config: &SynthConfig,
    seed: u64,
    index: u64,
    background: &Background,
) -> anyhow::Result<SyntheticCase> {
    let size = config.size;
    let mut values = load_background(&background.path, size)?;
    let mut lung = estimate_lungs(&values, size);
    anyhow::ensure!(
        lung.area() > 0,
        "no lung fields found in {}",
        background.path.display()
    );
    let mut rng = Rng::derive(seed, &[index, 0x1_45E7, 1]);
    let planned = config.mix.plan(&mut rng.fork());
    // Shape changes first: the other findings are drawn on the new shape.
    let mut drawn = Vec::new();
    for p in &planned {
        let reshaped = match p.kind {
            FindingKind::Emphysema => real_shape::emphysema(&values, &lung, &mut rng.fork()),
            FindingKind::MediastinalWidening => {
                real_shape::mediastinal_widening(&values, &lung, &mut rng.fork())
            }
            _ => continue,
        };
        if let Some(reshaped) = reshaped {
            values = reshaped.values;
            lung = reshaped.lung;
            drawn.push(DrawnFinding {
                kind: p.kind,
                mask: reshaped.mask,
                details: FindingDetails {
                    pattern: (p.kind == FindingKind::MediastinalWidening)
                        .then(|| "widening".into()),
                    ..FindingDetails::default()
                },
                tags: Vec::new(),
            });
        }
    }
    let spacing = REAL_FIELD_OF_VIEW_MM / size as f32;
    let anatomy = real_anatomy::estimate(&lung, spacing);
    let grid = Grid {
        size,
        spacing,
        pose: Pose::NEUTRAL,
    };
    let air_fraction = 0.75;
    let host = Host::new(
        grid,
        &anatomy.thorax,
        &anatomy.thickness,
        air_fraction,
        anatomy.structures.iter().map(|(s, m)| (*s, m)).collect(),
    );
    // Diffuse opacities stay in the aerated fields (a dense patch drawn
    // over the heart's own shadow looks like no real consolidation).
    let fields = Host::new(
        grid,
        &lung,
        &anatomy.thickness,
        air_fraction,
        anatomy.structures.iter().map(|(s, m)| (*s, m)).collect(),
    );
    let mut attenuation = vec![0.0f32; size * size];
    let mut round_attenuation = vec![0.0f32; size * size];
    for p in planned {
        let finding = match p.kind {
            FindingKind::Nodule | FindingKind::Mass => {
                // Ribs and clavicles are not estimated (they cross most of
                // the field anyway). Only nodules planned behind the heart,
                // below a dome or at a hilum go there; the rest are drawn
                // in the aerated fields.
                let site = match p.site {
                    Site::Over(Structure::Rib | Structure::Clavicle) => Site::AnyLung,
                    site => site,
                };
                let into = if site == Site::AnyLung {
                    &fields
                } else {
                    &host
                };
                // Masses are not calibrated up: their chord alone makes
                // them as dense as the heart.
                let layer = if p.kind == FindingKind::Mass {
                    &mut attenuation
                } else {
                    &mut round_attenuation
                };
                findings::draw_round(
                    PlannedFinding {
                        kind: p.kind,
                        site,
                        diameter_mm: None,
                    },
                    into,
                    layer,
                    &mut rng.fork(),
                )
            }
            FindingKind::Consolidation | FindingKind::GroundGlass => {
                let fill = if p.kind == FindingKind::Consolidation {
                    rng.range(0.55, 0.9)
                } else {
                    rng.range(0.15, 0.3)
                };
                let extent = rng.range(30.0, 80.0);
                opacities::patchy(
                    fill,
                    extent,
                    &fields,
                    &mut attenuation,
                    &mut rng.fork(),
                    None,
                )
                .map(|mask| DrawnFinding {
                    kind: p.kind,
                    mask,
                    details: FindingDetails {
                        pattern: Some("patchy".into()),
                        ..FindingDetails::default()
                    },
                    tags: Vec::new(),
                })
            }
            FindingKind::Tuberculosis => {
                upper_zone_tuberculosis(&host, &lung, &mut attenuation, &mut rng)
            }
            // Drawn above (emphysema, widening), or needs anatomy a real
            // film does not give (a mediastinal mass, an effusion).
            _ => None,
        };
        drawn.extend(finding);
    }
    for (a, r) in attenuation.iter_mut().zip(&round_attenuation) {
        *a += ROUND_LESION_CONTRAST * r;
    }
    // Match the image's sharpness and scale.
    gaussian_blur(&mut attenuation, size, 0.6);
    let gain = contrast_gain(&values, &lung, size);
    let pixels: Vec<u16> = values
        .iter()
        .zip(&attenuation)
        .map(|(v, a)| ((v + gain * a).clamp(0.0, 1.0) * 4095.0).round() as u16)
        .collect();
    let photometric = if rng.chance(config.monochrome1_fraction) {
        Photometric::Monochrome1
    } else {
        Photometric::Monochrome2
    };
    Ok(SyntheticCase {
        seed,
        index,
        size,
        spacing_mm: spacing,
        pixels,
        photometric,
        window: (2048.0, 4096.0),
        findings: drawn,
        lung,
        structures: anatomy.structures,
        background: Some(background.clone()),
    })
}

/// Grey levels (0..1) per unit of attenuation: lung-to-mediastinum
/// contrast of this image over that of our model thorax (about 2).
fn contrast_gain(values: &[f32], lung: &Mask, size: usize) -> f32 {
    let lung_values: Vec<f32> = (0..values.len())
        .filter(|&i| lung.bits[i])
        .map(|i| values[i])
        .collect();
    let middle: Vec<f32> = (0..values.len())
        .filter(|&i| {
            let (c, r) = (i % size, i / size);
            c.abs_diff(size / 2) < size / 20 && r > size * 3 / 10 && r < size * 6 / 10
        })
        .map(|i| values[i])
        .collect();
    let difference = percentile(&middle, 0.5) - percentile(&lung_values, 0.5);
    (difference / 2.0).clamp(0.05, 0.5)
}

/// Tuberculosis in the upper third of an estimated lung field, streaks
/// pulling towards that lung's medial side.
fn upper_zone_tuberculosis(
    host: &Host,
    lung: &Mask,
    attenuation: &mut [f32],
    rng: &mut Rng,
) -> Option<DrawnFinding> {
    let [_, y0, _, y1] = lung.bbox()?;
    let limit = y0 as f32 + (y1 - y0) as f32 * 0.35;
    for _ in 0..100 {
        let (x, y) = host.random_lung_point(rng)?;
        let (_, row) = host.grid.pixel_of(x, y);
        if row > limit {
            continue;
        }
        let hilum = (x * 0.35, y + 60.0);
        let drawn = opacities::tuberculosis((x, y), hilum, host, attenuation, rng)?;
        return Some(DrawnFinding {
            kind: FindingKind::Tuberculosis,
            mask: drawn.mask,
            details: FindingDetails {
                cavities: Some(drawn.cavities),
                fibrotic_streaks: Some(drawn.streaks),
                ..FindingDetails::default()
            },
            tags: Vec::new(),
        });
    }
    None
}
