//! Labelled datasets decoded once into memory, ready for training: the
//! cases of one or more directories (e.g. a real corpus and lesions
//! inserted into its training patients) that [`Selection`] admits (never
//! the test split), read by the lab's one dataset reader
//! ([`read_selected`]).
//!
//! Every image goes through the node's own imaging pipeline —
//! [`load_radiograph`] and [`model_input`] — so the model trains on exactly
//! what it will see in service. Decoding a 1024² DICOM and resizing it
//! costs far more than a training step can spare on a small machine, so it
//! happens once, up front, in parallel; grey levels are kept as 16-bit
//! integers to halve the memory.
//!
//! Per model label an image has an image-level target (or none, when its
//! label file does not say) and a segmentation target: the fraction of
//! each cell covered by that category's finding masks, on a grid a quarter
//! of the input's side (fine enough that shifts and scales in augmentation
//! move it with the image; it is pooled to the model's map grid per
//! batch). A positive label with no mask has an unknown segmentation.

use std::path::PathBuf;

use anyhow::{Context, bail};
use rayon::prelude::*;

use crate::imaging::{InputGeometry, Normalisation, load_radiograph, model_input};
use crate::lab::dataset::{
    Case, LesionLabel, Provenance, RunLengthMask, Selection, describe, read_selected,
};

/// The label that is true when an image has any finding at all.
pub const ANY_ABNORMALITY: &str = "any-abnormality";

/// Side of the mask grid relative to the input: input / 4.
pub const MASK_STRIDE: usize = 4;

/// The segmentation target of one label on one image.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskTarget {
    /// A positive label without a mask: not trained on.
    Unknown,
    /// The label is negative: nothing anywhere.
    Empty,
    /// Coverage per mask-grid cell, 0..=255 for 0..=1.
    Coverage(Vec<u8>),
}

/// One image, decoded and resized.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The label file, relative to the dataset.
    pub name: String,
    /// Grey levels (0 black .. 65535 white), `size²`, row-major.
    pub grey: Vec<u16>,
    /// Per model label: true, false, or unknown.
    pub targets: Vec<Option<bool>>,
    /// Per model label.
    pub masks: Vec<MaskTarget>,
    /// Source, split and patient from the label file.
    pub provenance: Provenance,
}

/// A dataset in memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Model input side.
    pub size: usize,
    pub labels: Vec<String>,
    pub samples: Vec<Sample>,
    /// `generator` and `seed` from dataset.json, when present.
    pub description: String,
}

impl Dataset {
    /// Side of the mask grid.
    pub fn mask_side(&self) -> usize {
        self.size / MASK_STRIDE
    }
}

/// Loads every case of `dirs` that `selection` admits, with its image.
pub fn load(
    dirs: &[PathBuf],
    labels: &[String],
    size: usize,
    selection: &Selection,
) -> anyhow::Result<Dataset> {
    if !size.is_multiple_of(16) || size < 32 {
        bail!("the input size must be a multiple of 16 and at least 32, not {size}");
    }
    let chosen = read_selected(dirs, selection)?;
    let samples = chosen
        .into_par_iter()
        .map(|case| load_sample(case, labels, size))
        .collect::<anyhow::Result<Vec<Sample>>>()?;
    Ok(Dataset {
        size,
        labels: labels.to_vec(),
        samples,
        description: dirs
            .iter()
            .map(|d| describe(d))
            .collect::<Vec<_>>()
            .join(" + "),
    })
}

fn load_sample(case: Case, labels: &[String], size: usize) -> anyhow::Result<Sample> {
    let Case {
        label_path,
        image_path,
        label,
    } = case;
    let object = dicom_object::open_file(&image_path)
        .with_context(|| format!("reading {}", image_path.display()))?;
    let radiograph =
        load_radiograph(&object).with_context(|| format!("decoding {}", image_path.display()))?;
    let (grey, geometry) = model_input(&radiograph, size as u32, Normalisation::UNIT)
        .with_context(|| format!("resizing {}", image_path.display()))?;
    let grey = grey
        .iter()
        .map(|g| (g.clamp(0.0, 1.0) * 65535.0).round() as u16)
        .collect();

    let mut targets = Vec::with_capacity(labels.len());
    let mut masks = Vec::with_capacity(labels.len());
    for name in labels {
        let counts_towards = |f: &&LesionLabel| name == ANY_ABNORMALITY || &f.category == name;
        let target = match label.categories.get(name) {
            Some(&value) => Some(value),
            None if name == ANY_ABNORMALITY && !label.categories.is_empty() => {
                Some(label.categories.iter().any(|(k, v)| *v && k != "normal"))
            }
            None => None,
        };
        let relevant: Vec<&LesionLabel> = label.findings.iter().filter(counts_towards).collect();
        let mask = match target {
            Some(false) => MaskTarget::Empty,
            _ if relevant.is_empty() || relevant.iter().any(|f| f.mask.is_none()) => {
                MaskTarget::Unknown
            }
            _ => {
                let rle: Vec<&RunLengthMask> =
                    relevant.iter().filter_map(|f| f.mask.as_ref()).collect();
                MaskTarget::Coverage(coverage(&rle, &geometry, size / MASK_STRIDE)?)
            }
        };
        targets.push(target);
        masks.push(mask);
    }
    let name = label_path.display().to_string();
    Ok(Sample {
        name,
        grey,
        targets,
        masks,
        provenance: label.provenance,
    })
}

/// The fraction of each cell of a `side²` grid over the model input that
/// the union of `masks` covers.
fn coverage(
    masks: &[&RunLengthMask],
    geometry: &InputGeometry,
    side: usize,
) -> anyhow::Result<Vec<u8>> {
    let Some(first) = masks.first() else {
        bail!("no masks");
    };
    let [rows, columns] = first.size;
    let mut union = vec![false; rows as usize * columns as usize];
    for mask in masks {
        if mask.size != first.size {
            bail!("masks of one image differ in size");
        }
        let mut position = 0usize;
        for (k, &count) in mask.counts.iter().enumerate() {
            let end = position + count as usize;
            if end > union.len() {
                bail!("mask runs exceed its {rows}×{columns} size");
            }
            if k % 2 == 1 {
                union[position..end].iter_mut().for_each(|b| *b = true);
            }
            position = end;
        }
    }
    let (left, top) = geometry.crop_origin();
    let crop = geometry.crop_side() as usize;
    let mut hits = vec![0u32; side * side];
    for (index, _) in union.iter().enumerate().filter(|(_, set)| **set) {
        let (y, x) = (index / columns as usize, index % columns as usize);
        let (Some(cx), Some(cy)) = (x.checked_sub(left as usize), y.checked_sub(top as usize))
        else {
            continue;
        };
        if cx >= crop || cy >= crop {
            continue;
        }
        hits[(cy * side / crop) * side + cx * side / crop] += 1;
    }
    let per_cell = (crop as f64 / side as f64).powi(2);
    Ok(hits
        .iter()
        .map(|&h| ((f64::from(h) / per_cell).min(1.0) * 255.0).round() as u8)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_follows_the_centre_crop() {
        // A 8 rows × 12 columns image: the crop is columns 2..10.
        // Set pixels: rows 0..4 of columns 2..6 (the crop's top-left quarter).
        let mut bits = vec![false; 8 * 12];
        for y in 0..4 {
            for x in 2..6 {
                bits[y * 12 + x] = true;
            }
        }
        let mask = RunLengthMask::from_bits(8, 12, bits);
        let geometry = InputGeometry::centre_crop(8, 12, 8);
        let cells = coverage(&[&mask], &geometry, 2).unwrap();
        assert_eq!(cells, vec![255, 0, 0, 0]);
    }
}
