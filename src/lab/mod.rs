//! The lab: the tools that make and measure models, offline.
//!
//! The clinical pipeline (`scp` → `store` → `queue` → `worker` →
//! `analysis`/`model`/`imaging`/`findings` → `report` → `outbox`) never
//! depends on anything here; the lab depends on the pipeline, so that a
//! model is trained and judged on exactly what the node will compute in
//! service. The wing has four parts around one shared format:
//!
//! - `dataset` owns labelled data: the label-file format
//!   (`docs/dataset-format.md`), the one writer every source of labelled
//!   images uses, the one reader `train` and `evaluate` use, and the rules
//!   of which images a run may learn from, be tuned on or be judged on
//!   (per-patient splits, images reserved for evaluation, selection). Its
//!   `corpus` import turns a public corpus of real radiographs into a
//!   dataset;
//! - `synth` generates labelled radiographs, or draws findings into real
//!   ones;
//! - `train` trains the compact model;
//! - `evaluate` measures a model, real radiographs first.

pub mod dataset;
pub mod evaluate;
pub mod synth;
pub mod train;
