//! chestnode: a DICOM node that receives chest radiographs, analyses them
//! and sends the findings back to PACS.
//!
//! Modules follow one image through the node, in data-flow order:
//!
//! ```text
//! modality --C-STORE--> scp --> store (files + sled index) --> queue
//! ```
//!
//! `node` wires the stages together for `chestnode serve`; `status` reads
//! them back for `chestnode status`.

pub mod config;
pub mod db;
pub mod findings;
pub mod imaging;
pub mod incidents;
pub mod model;
pub mod node;
pub mod queue;
pub mod scp;
pub mod status;
pub mod store;
