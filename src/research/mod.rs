//! The research wing: the hospital selects confirmed cases, de-identifies
//! them under a research ID and delivers them, encrypted and traceably, to
//! its AI partner (`chestnode research …`, docs/research.md).
//!
//! The rules it keeps are the hospital's, not the node's: the table that
//! links a research ID to a patient never leaves the data directory, every
//! act that touches patient data is written to a tamper-evident audit log,
//! and a destroyed cohort is unrecoverable because its keys are gone.
//!
//! | module | role |
//! |---|---|
//! | `deid` | de-identification of one object to PS3.15 Annex E: the profile table as data, consistent UID remapping, date shifting, clean descriptors, exclusions |

mod deid;

pub use deid::{
    DeidError, DeidOptions, Deidentified, Exclusion, PatientKey, PixelRegion, UidRemapper,
    deidentify,
};
