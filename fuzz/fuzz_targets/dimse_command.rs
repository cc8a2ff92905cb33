//! Fuzz target: `chestnode::fuzzing::dimse_command` (see that function for what it
//! exercises). Crash inputs belong in `tests/fuzz_corpus/dimse_command/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Refusing an input is fine; only panics, hangs and runaway memory are
    // findings.
    let _ = chestnode::fuzzing::dimse_command(data);
});
