//! One optimisation step of the compact model: forward in training mode,
//! the combined loss, backward, AdamW. Shared by `chestnode train` and the
//! training-step benchmark (`benches/train_step.rs`), so the benchmark
//! times exactly what training runs.

use candle_core::{Result, Tensor};

use super::batch::Batch;
use super::loss;
use super::optimiser::AdamW;
use crate::model::compact::{CompactNet, CompactOutput};

/// Image-level BCE plus weighted segmentation BCE.
pub fn combined_loss(
    output: &CompactOutput,
    batch: &Batch,
    segmentation_weight: f64,
) -> Result<Tensor> {
    let image = loss::weighted_bce(&output.logits, &batch.targets, &batch.target_weights)?;
    let segmentation = loss::weighted_bce(
        &output.segmentation_logits,
        &batch.masks,
        &batch.mask_weights,
    )?;
    image + (segmentation * segmentation_weight)?
}

/// Trains on one batch at `learning_rate`; returns the loss before the
/// update (not finite: the caller stops, nothing was updated).
pub fn training_step(
    model: &CompactNet,
    optimiser: &mut AdamW,
    batch: &Batch,
    learning_rate: f64,
    segmentation_weight: f64,
) -> Result<f32> {
    let output = model.forward_t(&batch.input, true)?;
    let loss = combined_loss(&output, batch, segmentation_weight)?;
    let value = loss.to_scalar::<f32>()?;
    if value.is_finite() {
        optimiser.step(&loss.backward()?, learning_rate)?;
    }
    Ok(value)
}
