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
//! | `annotations` | doctors' annotations: records, import, agreement, consensus |
//! | `clinical` | clinical records by Patient ID: schema, all-or-nothing CSV import into the vault, `clinical.csv` in exports |
//! | `cohort` | choosing radiographs by date, modality and category, with paired CT; stored versions |
//! | `deid` | PS3.15 Annex E de-identification with its options; consistent UID replacement |
//! | `vault` | the encrypted pseudonym table: research IDs, date offsets, opt-outs, cohort keys, clinical records |
//! | `audit` | the append-only, hash-chained audit log |
//! | `dataset` | a cohort's annotated radiographs in the lab's dataset format, for `train` and `evaluate` |
//! | `export` | building an export of a cohort version into the sealed node-side staging |
//! | `package` | manifest, `age` sealing, SFTP upload |
//! | `deliver` | from staging to the partner: a directory or an `age` file, and SFTP |
//! | `destroy` | the end of retention: staging deleted, keys shredded |
//! | `identity` | vault-only acts: create, lookup (re-identification), opt-out |
//! | `control` | the requests a running server answers for the research commands |
//! | `private_dir` | where all of it lives: `research/` (mode 0700) and the staging folders; directory syncs |

pub mod annotations;
mod audit;
pub mod clinical;
pub mod cohort;
mod control;
mod dataset;
mod deid;
mod deliver;
mod destroy;
mod export;
mod identity;
mod package;
mod private_dir;
mod vault;

pub use audit::{AuditBroken, AuditEntry, AuditLog, AuditRecord, AuditVerified, operator};
pub use control::{CohortSummary, ResearchReply, ResearchRequest, VaultKey, execute};
pub use dataset::{DatasetBuilt, DatasetRequest, collect as collect_dataset};
pub use deid::{
    DeidError, DeidOptions, Deidentified, Exclusion, PatientKey, PixelRegion, UidRemapper,
    deidentify,
};
pub use deliver::{Delivered, Destination, deliver};
pub use destroy::Destroyed;
pub use export::{ExportBuilt, ExportReport, ExportRequest};
pub use identity::{init_vault, lookup, open_vault, opt_out};
pub use package::{
    Manifest, ManifestEntry, Recipients, Sealed, SftpTarget, UnsealKey, UploadReceipt,
    generate_age_identity, seal, unseal, upload, verify_manifest, write_manifest,
};
pub use vault::{Identity, KeySource, Vault, generate_key_file};
