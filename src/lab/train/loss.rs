//! Training losses: binary cross-entropy on logits, in the numerically
//! stable form, averaged with per-element weights.
//!
//! candle_nn's `binary_cross_entropy_with_logit` takes the sigmoid and then
//! the logarithm, which overflows to infinity (and a NaN gradient) once a
//! logit is confidently wrong. Here the loss is written as
//! `relu(x) - x·t + ln(1 + e^(-|x|))`, which is exact for every finite
//! logit and never exponentiates a positive number. Weights let one loss
//! ignore what a label file does not say (an image-level label without a
//! mask, a category a file omits) and up-weight the rare positive cells of
//! a segmentation target.

use candle_core::{Result, Tensor};

/// Element-wise binary cross-entropy of `logits` against `targets` in
/// [0, 1] (soft targets allowed), same shape.
pub fn binary_cross_entropy_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus_of_minus_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (logits.relu()? - (logits * targets)?)? + softplus_of_minus_abs
}

/// `sum(loss · weight) / sum(weight)`, a scalar; zero when every weight is
/// zero (nothing is known, so nothing is learnt).
pub fn weighted_mean(losses: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let total_weight = weights.sum_all()?.to_scalar::<f32>()?;
    let weighted = (losses * weights)?.sum_all()?;
    weighted / f64::from(total_weight.max(1e-6))
}

/// Weighted binary cross-entropy with logits, as a scalar.
pub fn weighted_bce(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    weighted_mean(&binary_cross_entropy_with_logits(logits, targets)?, weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn reference(x: f64, t: f64) -> f64 {
        let p = 1.0 / (1.0 + (-x).exp());
        -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
    }

    #[test]
    fn matches_the_textbook_formula_where_that_is_finite() {
        let xs = [-8.0f32, -2.5, -0.3, 0.0, 0.7, 3.0, 9.0];
        let ts = [0.0f32, 1.0, 0.25, 0.5, 1.0, 0.0, 1.0];
        let device = Device::Cpu;
        let logits = Tensor::new(&xs[..], &device).unwrap();
        let targets = Tensor::new(&ts[..], &device).unwrap();
        let ours: Vec<f32> = binary_cross_entropy_with_logits(&logits, &targets)
            .unwrap()
            .to_vec1()
            .unwrap();
        for ((x, t), value) in xs.iter().zip(&ts).zip(&ours) {
            let expected = reference(f64::from(*x), f64::from(*t));
            assert!(
                (f64::from(*value) - expected).abs() < 1e-5,
                "x={x} t={t}: {value} vs {expected}"
            );
        }
    }

    #[test]
    fn is_finite_with_finite_gradients_for_extreme_logits() {
        let device = Device::Cpu;
        let logits = Var::new(&[-100f32, 100.0, -100.0, 100.0], &device).unwrap();
        let targets = Tensor::new(&[1f32, 0.0, 0.0, 1.0], &device).unwrap();
        let losses = binary_cross_entropy_with_logits(logits.as_tensor(), &targets).unwrap();
        let values: Vec<f32> = losses.to_vec1().unwrap();
        // Confidently wrong: the loss is |x|; confidently right: about 0.
        assert!((values[0] - 100.0).abs() < 1e-3, "{values:?}");
        assert!((values[1] - 100.0).abs() < 1e-3, "{values:?}");
        assert!(
            values[2].abs() < 1e-6 && values[3].abs() < 1e-6,
            "{values:?}"
        );
        let grads = losses.sum_all().unwrap().backward().unwrap();
        let gradient: Vec<f32> = grads.get(&logits).unwrap().to_vec1().unwrap();
        // d/dx = sigmoid(x) - t.
        for (g, expected) in gradient.iter().zip([-1.0f32, 1.0, 0.0, 0.0]) {
            assert!(g.is_finite() && (g - expected).abs() < 1e-4, "{gradient:?}");
        }
    }

    #[test]
    fn weights_select_what_counts() {
        let device = Device::Cpu;
        let logits = Tensor::new(&[0f32, 50.0], &device).unwrap();
        let targets = Tensor::new(&[1f32, 0.0], &device).unwrap();
        let only_first = Tensor::new(&[1f32, 0.0], &device).unwrap();
        let loss: f32 = weighted_bce(&logits, &targets, &only_first)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((loss - std::f32::consts::LN_2).abs() < 1e-6, "{loss}");
        let nothing = Tensor::zeros(2, candle_core::DType::F32, &device).unwrap();
        let loss: f32 = weighted_bce(&logits, &targets, &nothing)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(loss, 0.0);
    }
}
