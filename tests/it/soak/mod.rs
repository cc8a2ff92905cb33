//! Tier 3: the long tests — thousands of instances, repeated crashes,
//! training and evaluation runs. Each is `#[ignore = "soak: …"]` so the
//! everyday `cargo test` leaves them out; CI runs them explicitly with
//! `scripts/test.sh --soak` (`cargo test --test it soak:: -- --ignored`).

mod crash_recovery;
mod evaluate;
mod load;
mod train;
