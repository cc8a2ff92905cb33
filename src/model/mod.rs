//! Models: manifests (`weights/*.toml`) and one file per architecture.
//!
//! - `manifest`: the model card in TOML, checked at load time
//! - `densenet`: DenseNet-121, compatible with torchxrayvision checkpoints

pub mod densenet;
pub mod manifest;
pub mod seeded;

pub use manifest::{LoadedManifest, Manifest};
