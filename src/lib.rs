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
//! serves `chestnode analyze` on plain files. `lab` holds the offline tools
//! that make and measure models (`lab::dataset` owns labelled data: its
//! format, reader, writer, real corpus import, per-patient splits and the
//! images reserved for evaluation; `lab::synth` generates labelled
//! radiographs or draws findings into real ones; `lab::train` trains the
//! compact model and `lab::evaluate` measures a model, real radiographs
//! first); the pipeline never depends on it. `tls` loads the certificates
//! with which the SCP and the outbox speak DICOM over TLS. `fuzzing` holds
//! the entry points the fuzz targets (`fuzz/`) and their corpus regression
//! test share. `allocator` tunes glibc malloc for model work.

pub mod allocator;
pub mod analysis;
pub mod clock;
pub mod config;
pub mod dimse;
pub mod findings;
pub mod fuzzing;
pub mod http;
pub mod imaging;
pub mod lab;
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
pub mod tls;
pub mod worker;
