//! Result objects: what the node sends back to PACS for each analysed
//! image. Pure: a source data set and findings go in, DICOM objects come
//! out, so every object can be validated without a network.
//!
//! - `uids`: deterministic UIDs, so re-processing yields the same objects
//! - `identity`: patient and study copied from the source image

pub mod identity;
pub mod uids;

pub use identity::copy_identity;
pub use uids::{ObjectKind, ResultUids, UidRole};
