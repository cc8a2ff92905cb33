//! Fuzz target: `chestnode::fuzzing::pdu` (see that function for what it
//! exercises). Crash inputs belong in `tests/fuzz_corpus/pdu/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Refusing an input is fine; only panics, hangs and runaway memory are
    // findings.
    let _ = chestnode::fuzzing::pdu(data);
});
