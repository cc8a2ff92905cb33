//! chestnode's integration tests, in one binary so that the library, its
//! dependencies and the shared harness (`common`) are compiled and linked
//! once rather than once per test file.
//!
//! Tests are tiered by module path, so a tier is selected by its prefix:
//!
//! - `inproc::` — the library and the `chestnode` binary on their own: no
//!   outside program is needed.
//! - `peers::` — against real peers: DCMTK, dciodvfy, Orthanc, highdicom
//!   (Python), openssl.
//! - `soak::` — long runs (load, crash recovery, training, evaluation).
//!   Every test there is `#[ignore = "soak: …"]`, so a plain `cargo test`
//!   skips them; `cargo test --test it -- --ignored` (or
//!   `scripts/test.sh --soak`) runs them.
//!
//! tests/README.md says where a new test goes.

mod common;
mod inproc;
mod peers;
mod soak;
