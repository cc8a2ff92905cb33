//! Tests for the de-identification (see mod.rs).
