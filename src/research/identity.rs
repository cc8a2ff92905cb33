//! The acts on the pseudonym vault alone: creating it, re-identifying a
//! research ID for an authorised local operator, and the opt-out list.
//! Each is audited; none needs the ledger, so they run in the operator's
//! own process even while the server runs (the vault has its own lock).
//!
//! Re-identification prints patient data, so it is audited whether it
//! finds the research ID or not, and the audit entry names the research
//! ID only.

use std::path::Path;

use super::vault::{Identity, KeySource, ResearchIdFormat, Vault, VaultError};
use super::{AuditLog, AuditRecord};

/// Creates the vault, keyed by `key`, with research IDs like `pattern`.
pub fn init_vault(
    data_dir: &Path,
    key: &KeySource,
    pattern: &str,
    operator: &str,
) -> anyhow::Result<()> {
    let format = ResearchIdFormat::parse(pattern)?;
    Vault::create(data_dir, key, format).map_err(vault_error)?;
    AuditLog::open(data_dir)?.append(AuditRecord {
        operator: operator.to_owned(),
        action: "vault.create".into(),
        subject: "vault".into(),
        details: serde_json::json!({
            "research_id_pattern": pattern,
            "key": match key { KeySource::Passphrase(_) => "passphrase (Argon2id)", KeySource::KeyFile(_) => "key file" },
        }),
        sha256: None,
        destination: None,
    })?;
    Ok(())
}

/// Opens the vault, with the vault's own errors said plainly.
pub fn open_vault(data_dir: &Path, key: &KeySource) -> anyhow::Result<Vault> {
    Vault::open(data_dir, key).map_err(vault_error)
}

fn vault_error(error: VaultError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// Re-identifies a research ID; audited either way.
pub fn lookup(
    data_dir: &Path,
    key: &KeySource,
    research_id: &str,
    operator: &str,
) -> anyhow::Result<Identity> {
    let audit = AuditLog::open(data_dir)?;
    let record = |found: bool| AuditRecord {
        operator: operator.to_owned(),
        action: "lookup".into(),
        subject: research_id.to_owned(),
        details: serde_json::json!({ "found": found }),
        sha256: None,
        destination: None,
    };
    let vault = match open_vault(data_dir, key) {
        Ok(vault) => vault,
        Err(error) => {
            audit.append(AuditRecord {
                details: serde_json::json!({ "found": false, "refused": "vault not opened" }),
                ..record(false)
            })?;
            return Err(error);
        }
    };
    let found = vault.lookup(research_id);
    audit.append(record(found.is_some()))?;
    found.ok_or_else(|| anyhow::anyhow!("unknown research ID {research_id:?}"))
}

/// Adds (or, with `remove`, takes back) a patient's opt-out. Returns
/// whether the list changed. The audit entry never names the patient.
pub fn opt_out(
    data_dir: &Path,
    key: &KeySource,
    patient_id: &str,
    remove: bool,
    operator: &str,
) -> anyhow::Result<bool> {
    anyhow::ensure!(!patient_id.trim().is_empty(), "an empty patient ID");
    let mut vault = open_vault(data_dir, key)?;
    let changed = if remove {
        vault.opt_out_remove(patient_id)
    } else {
        vault.opt_out_add(patient_id)
    };
    vault.save()?;
    AuditLog::open(data_dir)?.append(AuditRecord {
        operator: operator.to_owned(),
        action: if remove { "opt-out.remove" } else { "opt-out.add" }.into(),
        subject: "opt-out list".into(),
        details: serde_json::json!({ "changed": changed, "patients_opted_out": vault.opt_out_count() }),
        sha256: None,
        destination: None,
    })?;
    Ok(changed)
}
