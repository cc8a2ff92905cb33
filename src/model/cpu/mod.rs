//! CPU helpers for the architectures' hand-written operations: dense
//! matrix products into buffers the caller owns (`gemm`, used by DenseNet's
//! inference kernels), and the checked f32 view of a custom operation's
//! input (`input`, used by those kernels and by the compact model's
//! training-mode operations). They live beside the architectures, not in
//! either, so that neither reaches into the other.

mod gemm;
mod input;

pub(super) use gemm::{matmul_into, relu_in_place};
pub(super) use input::contiguous_f32;
