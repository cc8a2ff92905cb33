//! Deterministic initial weights for the compact model, from the training
//! seed.
//!
//! candle's CPU random numbers cannot be seeded, so the variables candle
//! creates are overwritten here: He-normal convolutions (suits ReLU),
//! batch norm at identity, and output biases at a low prior probability
//! (as in RetinaNet) so the first steps are not spent unlearning a 50 %
//! guess for rare findings. Names are those of `model::compact`; in v2
//! (which has a `decoder`) a map's maximum is added to the image logit, so
//! the classifier's bias makes up the difference to the same prior.

use candle_core::{Result, Tensor};
use candle_nn::VarMap;
use fastrand::Rng;

use super::augment::gaussian;

/// Initial logit of the image-level outputs (sigmoid ≈ 0.18).
const CLASSIFIER_BIAS: f32 = -1.5;
/// Initial logit of the segmentation maps (sigmoid ≈ 0.05).
const SEGMENTATION_BIAS: f32 = -3.0;

/// Overwrites every variable of `varmap` from `seed`, in name order.
pub fn initialise(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let maps_join_image_logits = names.iter().any(|name| name.starts_with("decoder."));
    let mut rng = Rng::with_seed(seed);
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with("running_mean") {
            vec![0.0; count]
        } else if name.ends_with("running_var") {
            vec![1.0; count]
        } else if name.contains(".norm.") {
            let v = if name.ends_with("weight") { 1.0 } else { 0.0 };
            vec![v; count]
        } else if name == "classifier.bias" && maps_join_image_logits {
            vec![CLASSIFIER_BIAS - SEGMENTATION_BIAS; count]
        } else if name == "classifier.bias" {
            vec![CLASSIFIER_BIAS; count]
        } else if name == "segmentation.bias" {
            vec![SEGMENTATION_BIAS; count]
        } else if name.ends_with("weight") && dims.len() >= 2 {
            let fan_in: usize = dims[1..].iter().product();
            let std = if name.starts_with("classifier") || name.starts_with("segmentation") {
                0.01
            } else {
                (2.0 / fan_in as f32).sqrt()
            };
            (0..count).map(|_| std * gaussian(&mut rng)).collect()
        } else {
            vec![0.0; count]
        };
        var.set(&Tensor::from_vec(values, dims, var.device())?)?;
    }
    Ok(())
}
