//! Fuzz target: `chestnode::fuzzing::pixel_pipeline` (see that function for what it
//! exercises). Crash inputs belong in `tests/fuzz_corpus/pixel_pipeline/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Refusing an input is fine; only panics, hangs and runaway memory are
    // findings.
    let _ = chestnode::fuzzing::pixel_pipeline(data);
});
