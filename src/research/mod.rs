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
//! | `vault` | the encrypted pseudonym table, opt-out list and cohort keys (`research/vault.bin`) |
//! | `audit` | the append-only, hash-chained audit log (`research/audit.jsonl`) |
//! | `private_dir` | `research/` itself, mode 0700 |

mod audit;
mod private_dir;
mod vault;

pub use audit::{AuditBroken, AuditEntry, AuditLog, AuditRecord, AuditVerified, operator};
pub use vault::{
    CohortKeys, Identity, KeySource, Pseudonym, ResearchIdFormat, Vault, VaultError,
    generate_key_file,
};
