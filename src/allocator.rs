//! glibc malloc settings for model work: inference in the server and
//! `analyze`, and training.
//!
//! A forward pass or a training step allocates and frees many buffers of
//! several megabytes. By default glibc serves each from a fresh `mmap` and
//! returns it with `munmap`, or trims the heap after it, so every pass
//! page-faults its working set in again:
//! - training: about 15 % of step time in page faults; keeping freed
//!   memory made steps 1.6× faster (issue 6);
//! - DenseNet-121 inference: about 10 % faster (BENCHMARKS.md).
//!
//! Both settings are no-ops where the C library is not glibc.

/// For a long-running process that runs models: buffers under 64 MiB come
/// from the heap, and up to 256 MiB of freed heap is kept for the next
/// pass instead of being returned to the system. Memory stays bounded by
/// the largest pass plus that reserve.
pub fn keep_inference_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// For a training run: no `mmap` for allocations at all and no trimming,
/// for the rest of the process — right for a training run, not for the
/// long-running server.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called
    // before training allocates anything large.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
