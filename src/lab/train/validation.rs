//! The validation pass run after every epoch (batch-norm running
//! statistics, as the node runs the model) and, on the best epoch's
//! scores, the choice of each label's threshold: on real normal films
//! where the validation split has them, else by sensitivity.

use candle_core::{D, Device};

use super::options::TrainOptions;
use super::samples::{ANY_ABNORMALITY, Dataset};
use super::thresholds::{self, ChosenThreshold};
use super::{batch, step};
use crate::imaging::Normalisation;
use crate::model::compact::CompactNet;

/// A validation pass's loss, probabilities and truth, per image.
pub(super) struct Validation {
    pub(super) loss: f64,
    probabilities: Vec<Vec<f32>>,
    truth: Vec<Vec<Option<bool>>>,
}

pub(super) fn validate(
    model: &CompactNet,
    dataset: &Dataset,
    indices: &[usize],
    stride: usize,
    options: &TrainOptions,
    normalisation: Normalisation,
    device: &Device,
) -> anyhow::Result<Validation> {
    let mut weighted_loss = 0.0;
    let mut probabilities = Vec::new();
    let mut truth = Vec::new();
    for chunk in indices.chunks(options.batch) {
        let batch = batch::assemble(dataset, chunk, stride, normalisation, None, device)?;
        let output = model.forward_t(&batch.input, false)?;
        let loss = step::combined_loss(&output, &batch, options.segmentation_weight)?;
        weighted_loss += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
        let p = candle_nn::ops::sigmoid(&output.logits)?;
        debug_assert_eq!(p.dim(D::Minus1)?, dataset.labels.len());
        probabilities.extend(p.to_vec2::<f32>()?);
        truth.extend(batch.truth);
    }
    Ok(Validation {
        loss: weighted_loss / indices.len().max(1) as f64,
        probabilities,
        truth,
    })
}

impl Validation {
    /// Per label, the threshold chosen on these validation scores:
    /// `indices` are the validation images of `dataset`, in the order
    /// they were validated.
    pub(super) fn choose_thresholds(
        &self,
        dataset: &Dataset,
        indices: &[usize],
        labels: &[String],
        options: &TrainOptions,
    ) -> Vec<ChosenThreshold> {
        let any = labels.iter().position(|l| l == ANY_ABNORMALITY);
        let real_normal: Vec<bool> = indices
            .iter()
            .map(|&i| {
                let sample = &dataset.samples[i];
                sample.provenance.is_real() && any.is_some_and(|a| sample.targets[a] == Some(false))
            })
            .collect();
        (0..labels.len())
            .map(|label| {
                let mut scores = Vec::new();
                let mut truth = Vec::new();
                let mut normal = Vec::new();
                for ((p, t), n) in self.probabilities.iter().zip(&self.truth).zip(&real_normal) {
                    if let Some(t) = t[label] {
                        scores.push(p[label]);
                        truth.push(t);
                        normal.push(*n);
                    }
                }
                let specificity = if labels[label] == ANY_ABNORMALITY {
                    options.normal_specificity
                } else {
                    options.finding_specificity
                };
                thresholds::choose_for_specificity(
                    &scores,
                    &truth,
                    &normal,
                    specificity,
                    options.min_sensitivity,
                )
            })
            .collect()
    }
}
