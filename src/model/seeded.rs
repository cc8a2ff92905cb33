//! Deterministic pseudo-random weights, reproducible bit for bit outside
//! Rust.
//!
//! The PyTorch parity test needs the same weights in candle and in
//! torchxrayvision without shipping a 30 MB file: both sides generate them
//! from the tensor's name with this scheme (the Python twin is
//! `tools/xrv_parity_fixture.py`; `tests/fixtures/densenet121_parity/README.md`
//! states it with worked values):
//!
//! - seed: FNV-1a 64 of the tensor name;
//! - element `i`: splitmix64 of `seed + (i + 1) * 0x9E3779B97F4A7C15`, its top
//!   53 bits as `u` in [0, 1);
//! - value by role: `running_var` 0.5 + u; `running_mean` 0.2u − 0.1;
//!   norm `weight` 0.75 + 0.5u; any rank-1 `bias` 0.2u − 0.1; convolution
//!   and linear weights (2u − 1)·√(3 / fan_in); computed in f64, then f32.
//!
//! Also useful for a model whose trained weights are not available yet: it
//! gives well-scaled activations, and obviously meaningless outputs.

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;

/// FNV-1a, 64-bit.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The `i`-th uniform draw in [0, 1) for a seed.
fn uniform(seed: u64, index: u64) -> f64 {
    let mut z = seed.wrapping_add((index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The values of a named tensor of the given dimensions.
pub fn seeded_values(name: &str, dims: &[usize]) -> Vec<f32> {
    let seed = fnv1a64(name.as_bytes());
    let count: usize = dims.iter().product();
    let fan_in: usize = dims.iter().skip(1).product();
    let map: Box<dyn Fn(f64) -> f64> = if name.ends_with("running_var") {
        Box::new(|u| 0.5 + u)
    } else if name.ends_with("running_mean") || (dims.len() == 1 && name.ends_with(".bias")) {
        Box::new(|u| 0.2 * u - 0.1)
    } else if dims.len() == 1 && name.ends_with(".weight") {
        Box::new(|u| 0.75 + 0.5 * u)
    } else {
        let bound = (3.0 / fan_in.max(1) as f64).sqrt();
        Box::new(move |u| (2.0 * u - 1.0) * bound)
    };
    (0..count as u64)
        .map(|i| map(uniform(seed, i)) as f32)
        .collect()
}

/// A `VarBuilder` backend that makes every requested tensor from its name.
pub struct SeededBackend;

impl SimpleBackend for SeededBackend {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Tensor::from_vec(seeded_values(name, shape.dims()), shape, device)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
        candle_core::bail!("seeded weights need a shape for {name}")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_and_splitmix_match_their_reference_values() {
        // FNV-1a 64 of "a" (published test vector).
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        // splitmix64 from state 0: first output 0xE220A8397B1DCDAF.
        let first = uniform(0, 0);
        assert_eq!(
            first,
            (0xE220A8397B1DCDAFu64 >> 11) as f64 / (1u64 << 53) as f64
        );
    }

    #[test]
    fn roles_get_their_ranges() {
        let var = seeded_values("features.norm0.running_var", &[64]);
        assert!(var.iter().all(|v| (0.5..1.5).contains(v)));
        let conv = seeded_values("features.conv0.weight", &[64, 1, 7, 7]);
        let bound = (3.0f32 / 49.0).sqrt();
        assert!(conv.iter().all(|v| v.abs() <= bound));
        assert_ne!(conv[0], conv[1]);
        assert_eq!(conv, seeded_values("features.conv0.weight", &[64, 1, 7, 7]));
    }
}
