//! CPU helpers shared by both architectures' hand-written operations: dense
//! matrix products into buffers the caller owns (`gemm`), and the checked
//! f32 view of a custom operation's input (`input`). They live here, not in
//! either architecture, because DenseNet's inference kernels and the
//! compact model's training-mode operations both use them.

mod gemm;
mod input;

pub(crate) use gemm::{matmul_into, relu_in_place};
pub(crate) use input::contiguous_f32;
