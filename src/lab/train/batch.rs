//! Turning a handful of in-memory samples into the tensors of one training
//! or validation step: the normalised input, image-level targets and
//! segmentation targets on the model's map grid (stride 16 for
//! `chestnet-compact-v1`, 4 for `-v2`), each with weights that say what is
//! known.
//!
//! Segmentation cells covered by a finding are rare (a 10 mm nodule covers
//! about three of the 4,096 cells of a stride-4 map at 256²); otherwise
//! "nothing anywhere" would be the cheapest answer and the maps would never
//! outline small findings. So a covered cell weighs up to
//! [`POSITIVE_CELL_WEIGHT`] times an empty one. (Weighting each map's
//! covered cells to a fixed share of the map, hundreds of times an empty
//! cell for a small nodule, was tried: on a short run every map turned
//! diffuse and no lesion was localised.)

use candle_core::{Device, Result, Tensor};
use fastrand::Rng;

use super::augment::{Augmentation, AugmentationRanges, average_pool};
use super::samples::{Dataset, MASK_STRIDE, MaskTarget, Sample};
use crate::imaging::Normalisation;

/// Weight of a segmentation cell by its coverage: `1 + 19 × coverage`.
pub const POSITIVE_CELL_WEIGHT: f32 = 20.0;

/// The tensors of one step.
pub struct Batch {
    /// `[batch, 1, size, size]`
    pub input: Tensor,
    /// `[batch, labels]`
    pub targets: Tensor,
    pub target_weights: Tensor,
    /// `[batch, labels, size/stride, size/stride]`
    pub masks: Tensor,
    pub mask_weights: Tensor,
    /// Image-level truth, for validation metrics (`None` = unknown).
    pub truth: Vec<Vec<Option<bool>>>,
}

/// Builds a batch from `indices` of the dataset, with segmentation targets
/// for a map of `segmentation_stride` (a multiple of the dataset's mask
/// stride, 4); augments when `augment` has ranges and a random stream.
pub fn assemble(
    dataset: &Dataset,
    indices: &[usize],
    segmentation_stride: usize,
    normalisation: Normalisation,
    augment: Option<(&AugmentationRanges, &mut Rng)>,
    device: &Device,
) -> Result<Batch> {
    let size = dataset.size;
    let labels = dataset.labels.len();
    assert!(
        segmentation_stride.is_multiple_of(MASK_STRIDE) && segmentation_stride > 0,
        "the map stride must be a multiple of the mask stride"
    );
    let grid = size / segmentation_stride;
    let mut input = Vec::with_capacity(indices.len() * size * size);
    let mut targets = Vec::with_capacity(indices.len() * labels);
    let mut target_weights = Vec::with_capacity(indices.len() * labels);
    let mut masks = Vec::with_capacity(indices.len() * labels * grid * grid);
    let mut mask_weights = Vec::with_capacity(indices.len() * labels * grid * grid);
    let mut truth = Vec::with_capacity(indices.len());
    let mut augment = augment;
    for &index in indices {
        let sample = &dataset.samples[index];
        let (augmentation, rng) = match augment.as_mut() {
            Some((ranges, rng)) => (Augmentation::draw(ranges, rng), Some(&mut **rng)),
            None => (Augmentation::IDENTITY, None),
        };
        let grey: Vec<f32> = sample
            .grey
            .iter()
            .map(|&g| f32::from(g) / 65535.0)
            .collect();
        let mut grey = augmentation.warp(&grey, size);
        if let Some(rng) = rng {
            augmentation.filter(&mut grey, size);
            augmentation.expose(&mut grey, rng);
        }
        input.extend(
            grey.iter()
                .map(|&g| g * (normalisation.high - normalisation.low) + normalisation.low),
        );
        push_targets(
            sample,
            &augmentation,
            dataset.mask_side(),
            segmentation_stride / MASK_STRIDE,
            grid,
            &mut targets,
            &mut target_weights,
            &mut masks,
            &mut mask_weights,
        );
        truth.push(sample.targets.clone());
    }
    let n = indices.len();
    Ok(Batch {
        input: Tensor::from_vec(input, (n, 1, size, size), device)?,
        targets: Tensor::from_vec(targets, (n, labels), device)?,
        target_weights: Tensor::from_vec(target_weights, (n, labels), device)?,
        masks: Tensor::from_vec(masks, (n, labels, grid, grid), device)?,
        mask_weights: Tensor::from_vec(mask_weights, (n, labels, grid, grid), device)?,
        truth,
    })
}

#[allow(clippy::too_many_arguments)]
fn push_targets(
    sample: &Sample,
    augmentation: &Augmentation,
    mask_side: usize,
    pool: usize,
    grid: usize,
    targets: &mut Vec<f32>,
    target_weights: &mut Vec<f32>,
    masks: &mut Vec<f32>,
    mask_weights: &mut Vec<f32>,
) {
    for (target, mask) in sample.targets.iter().zip(&sample.masks) {
        targets.push(if *target == Some(true) { 1.0 } else { 0.0 });
        target_weights.push(if target.is_some() { 1.0 } else { 0.0 });
        match mask {
            MaskTarget::Unknown => {
                masks.extend(std::iter::repeat_n(0.0, grid * grid));
                mask_weights.extend(std::iter::repeat_n(0.0, grid * grid));
            }
            MaskTarget::Empty => {
                masks.extend(std::iter::repeat_n(0.0, grid * grid));
                mask_weights.extend(std::iter::repeat_n(1.0, grid * grid));
            }
            MaskTarget::Coverage(cells) => {
                let fine: Vec<f32> = cells.iter().map(|&c| f32::from(c) / 255.0).collect();
                let pooled = average_pool(&augmentation.warp(&fine, mask_side), mask_side, pool);
                mask_weights.extend(
                    pooled
                        .iter()
                        .map(|&c| 1.0 + (POSITIVE_CELL_WEIGHT - 1.0) * c),
                );
                masks.extend(pooled);
            }
        }
    }
}
