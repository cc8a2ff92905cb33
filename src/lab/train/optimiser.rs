//! AdamW (Loshchilov & Hutter) with decoupled weight decay, and the
//! learning-rate schedule: a linear warm-up, then a cosine decay.
//!
//! Written here rather than taken from candle_nn so that its moment
//! estimates can be saved and restored: resuming with fresh moments would
//! make the first steps after a resume jump. Batch-norm running statistics
//! are variables too but are not trained; they are left out, as are any
//! variables a step produced no gradient for. Weight decay applies to
//! convolution and linear weights, not to biases or batch-norm scales.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Result, Tensor, Var};
use candle_nn::VarMap;

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 1e-4,
        }
    }
}

struct Parameter {
    name: String,
    var: Var,
    decay: bool,
    first_moment: Tensor,
    second_moment: Tensor,
}

/// The optimiser over a model's trainable variables.
pub struct AdamW {
    config: AdamWConfig,
    parameters: Vec<Parameter>,
    /// Steps taken (for bias correction).
    pub steps: u64,
}

/// Whether a variable is trained (batch-norm running statistics are not).
pub fn is_trainable(name: &str) -> bool {
    !(name.ends_with("running_mean") || name.ends_with("running_var"))
}

impl AdamW {
    pub fn new(varmap: &VarMap, config: AdamWConfig) -> Result<AdamW> {
        let data = varmap.data().lock().expect("varmap lock");
        let mut names: Vec<&String> = data.keys().filter(|n| is_trainable(n)).collect();
        names.sort();
        let mut parameters = Vec::new();
        for name in names {
            let var = data[name].clone();
            parameters.push(Parameter {
                decay: name.ends_with("weight") && !name.contains(".norm."),
                first_moment: var.zeros_like()?,
                second_moment: var.zeros_like()?,
                name: name.clone(),
                var,
            });
        }
        Ok(AdamW {
            config,
            parameters,
            steps: 0,
        })
    }

    /// One update at learning rate `lr`.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.steps += 1;
        let c = self.config;
        let correction1 = 1.0 - c.beta1.powi(self.steps as i32);
        let correction2 = 1.0 - c.beta2.powi(self.steps as i32);
        for p in &mut self.parameters {
            let Some(grad) = grads.get(&p.var) else {
                continue;
            };
            // Gradients carry the step's graph; moments built from them
            // would keep every step's activations alive. Detach both.
            let grad = grad.detach();
            p.first_moment = ((&p.first_moment * c.beta1)? + (&grad * (1.0 - c.beta1))?)?.detach();
            p.second_moment =
                ((&p.second_moment * c.beta2)? + (grad.sqr()? * (1.0 - c.beta2))?)?.detach();
            let m_hat = (&p.first_moment / correction1)?;
            let v_hat = (&p.second_moment / correction2)?;
            let update = (m_hat / (v_hat.sqrt()? + c.epsilon)?)?;
            let decayed = if p.decay {
                (p.var.as_tensor() * (1.0 - lr * c.weight_decay))?
            } else {
                p.var.as_tensor().clone()
            };
            p.var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// Saves the moments (safetensors, `m.NAME` and `v.NAME`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = HashMap::new();
        for p in &self.parameters {
            tensors.insert(format!("m.{}", p.name), p.first_moment.clone());
            tensors.insert(format!("v.{}", p.name), p.second_moment.clone());
        }
        candle_core::safetensors::save(&tensors, path)
    }

    /// Restores moments saved by [`AdamW::save`] after `steps` steps.
    pub fn load(&mut self, path: &Path, steps: u64, device: &Device) -> Result<()> {
        let mut tensors = candle_core::safetensors::load(path, device)?;
        for p in &mut self.parameters {
            let (Some(m), Some(v)) = (
                tensors.remove(&format!("m.{}", p.name)),
                tensors.remove(&format!("v.{}", p.name)),
            ) else {
                candle_core::bail!("optimiser state has no moments for {}", p.name);
            };
            if m.dims() != p.var.dims() || v.dims() != p.var.dims() {
                candle_core::bail!("optimiser moments for {} have the wrong shape", p.name);
            }
            p.first_moment = m;
            p.second_moment = v;
        }
        self.steps = steps;
        Ok(())
    }
}

/// Linear warm-up over `warmup` steps to `peak`, then cosine decay to
/// `peak × floor` at `total` steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineSchedule {
    pub peak: f64,
    pub warmup: u64,
    pub total: u64,
    pub floor: f64,
}

impl CosineSchedule {
    pub fn learning_rate(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.peak * (step + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let progress = ((step - self.warmup) as f64 / span).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.peak * (self.floor + (1.0 - self.floor) * cosine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    #[test]
    fn schedule_warms_up_then_decays() {
        let s = CosineSchedule {
            peak: 1e-3,
            warmup: 10,
            total: 110,
            floor: 0.1,
        };
        assert!((s.learning_rate(0) - 1e-4).abs() < 1e-12);
        assert!((s.learning_rate(9) - 1e-3).abs() < 1e-12);
        assert!((s.learning_rate(10) - 1e-3).abs() < 1e-12);
        assert!((s.learning_rate(60) - 0.55e-3).abs() < 1e-9);
        assert!((s.learning_rate(110) - 1e-4).abs() < 1e-12);
        assert!((s.learning_rate(500) - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn minimises_a_quadratic_and_skips_running_statistics() {
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let x = vb
            .get_with_hints(2, "x.weight", candle_nn::Init::Const(3.0))
            .unwrap();
        let stats = vb
            .get_with_hints(2, "norm.running_mean", candle_nn::Init::Const(5.0))
            .unwrap();
        let mut adam = AdamW::new(
            &varmap,
            AdamWConfig {
                weight_decay: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        for _ in 0..300 {
            let loss = (x.sqr().unwrap().sum_all().unwrap() + stats.sum_all().unwrap()).unwrap();
            adam.step(&loss.backward().unwrap(), 0.05).unwrap();
        }
        let values: Vec<f32> = x.to_vec1().unwrap();
        assert!(values.iter().all(|v| v.abs() < 0.05), "{values:?}");
        assert_eq!(stats.to_vec1::<f32>().unwrap(), vec![5.0, 5.0]);
    }
}
