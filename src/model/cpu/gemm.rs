//! Dense row-major matrix products on the CPU, straight through the `gemm`
//! crate, for DenseNet's hand-fused layers (`densenet::pointwise`,
//! `densenet::conv3x3_taps`, `densenet::stem_cpu`).
//!
//! candle's own product always allocates a zeroed destination; these write
//! into a buffer the caller owns — a scratch buffer reused across layers, or
//! one already holding a bias to add onto.

/// `dst = W·X` (or `dst += W·X` when `accumulate`), for a row-major
/// `m×k` `lhs`, `k×n` `rhs` and `m×n` `dst`, on rayon's threads.
pub(crate) fn matmul_into(
    (m, n, k): (usize, usize, usize),
    lhs: &[f32],
    rhs: &[f32],
    dst: &mut [f32],
    accumulate: bool,
) {
    assert!(lhs.len() >= m * k, "lhs holds {} of {m}×{k}", lhs.len());
    assert!(rhs.len() >= k * n, "rhs holds {} of {k}×{n}", rhs.len());
    assert!(dst.len() >= m * n, "dst holds {} of {m}×{n}", dst.len());
    let parallelism = match rayon::current_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        threads => gemm::Parallelism::Rayon(threads),
    };
    // SAFETY: the lengths were checked against the dense row-major strides
    // given, and `dst`, borrowed mutably, cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `v = max(0, v)` over a buffer, in parallel chunks.
pub(crate) fn relu_in_place(values: &mut [f32]) {
    use rayon::prelude::*;
    values
        .par_chunks_mut(PARALLEL_CHUNK)
        .for_each(|chunk| chunk.iter_mut().for_each(|v| *v = v.max(0.0)));
}

/// Elements per parallel element-wise task: large enough to outweigh the
/// cost of scheduling it.
const PARALLEL_CHUNK: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies_and_accumulates() {
        // [1 2; 3 4] · [5 6 7; 8 9 10]
        let lhs = [1.0, 2.0, 3.0, 4.0];
        let rhs = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let mut dst = [f32::NAN; 6];
        matmul_into((2, 3, 2), &lhs, &rhs, &mut dst, false);
        assert_eq!(dst, [21.0, 24.0, 27.0, 47.0, 54.0, 61.0]);
        let mut biased = [1.0, 1.0, 1.0, -100.0, -100.0, -100.0];
        matmul_into((2, 3, 2), &lhs, &rhs, &mut biased, true);
        relu_in_place(&mut biased);
        assert_eq!(biased, [22.0, 25.0, 28.0, 0.0, 0.0, 0.0]);
    }
}
