//! chestnode: a DICOM node that receives chest radiographs, analyses them
//! and sends the findings back to PACS.
//!
//! Modules follow one image through the node, in data-flow order:
//!
//! ```text
//! modality --C-STORE--> scp --> store (files + sled index) --> queue (sled)
//!        --> worker: analysis = imaging (decode, preprocess) -> model (candle) -> findings
//! ```
//!
//! `dimse` is the wire both DICOM roles share: the SCP (`scp`) and the
//! outbox's SCU read PDUs and code command sets with it. `node` wires the
//! stages together for `chestnode serve`; `status` reads them back for
//! `chestnode status`; every stage counts events in `metrics`, and `http`
//! serves health, those metrics and jobs to monitoring; `analysis` also
//! serves `chestnode analyze` on plain files. The lab: `dataset` owns the
//! rules of labelled data (importing a real corpus, per-patient splits, the
//! images reserved for evaluation),
//! `synth` generates labelled radiographs or draws findings into real
//! ones, `train` trains the compact model and `evaluate` measures a model,
//! real radiographs first. `tls` loads the certificates
//! with which the SCP and the outbox speak DICOM over TLS. `fuzzing` holds
//! the entry points the fuzz targets (`fuzz/`) and their corpus regression
//! test share. `allocator` tunes glibc malloc for model work.

pub mod allocator;
pub mod analysis;
pub mod clock;
pub mod config;
pub mod dataset;
pub mod dimse;
pub mod evaluate;
pub mod findings;
pub mod fuzzing;
pub mod http;
pub mod imaging;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod node;
pub mod outbox;
pub mod queue;
pub mod report;
pub mod retention;
pub mod scp;
pub mod status;
pub mod store;
pub mod synth;
pub mod tls;
pub mod train;
pub mod worker;
