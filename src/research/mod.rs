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
//! | `package` | the export's manifest, the `age`-sealed package, SFTP delivery checked against `known_hosts` |

mod package;

pub use package::{
    Manifest, ManifestEntry, Recipients, Sealed, SftpTarget, UnsealKey, UploadReceipt,
    generate_age_identity, seal, seal_with_mtime, unseal, upload, upload_with_key_passphrase,
    verify_manifest, write_manifest,
};
