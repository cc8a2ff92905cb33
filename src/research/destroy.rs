//! Destroying a cohort at the end of its retention: the node-side staging
//! packages are deleted and the cohort's keys are shredded from the vault
//! (crypto-shredding), so nothing left on the disk, and no backup of it,
//! can be decrypted or linked again. The cohort's record stays, marked
//! destroyed, so the audit trail still resolves.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cohort::{self, CohortVersion};
use super::private_dir::staging_dir;
use super::vault::Vault;
use super::{AuditLog, AuditRecord};
use crate::ledger::Ledger;

/// What `research destroy` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destroyed {
    pub cohort: String,
    pub versions: Vec<u32>,
    pub files_deleted: usize,
    pub keys_shredded: bool,
    /// Destroyed before its keep-until date, with `--force`.
    pub forced: bool,
}

#[allow(clippy::too_many_arguments)]
/// Destroys every version of `name`. Refuses before the latest keep-until
/// date of any version unless `force`; either way it is audited.
pub fn destroy(
    ledger: &Ledger,
    data_dir: &Path,
    vault: &mut Vault,
    audit: &AuditLog,
    name: &str,
    force: bool,
    operator: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Destroyed> {
    cohort::validate_name(name)?;
    let versions: Vec<CohortVersion> = ledger
        .cohorts()
        .versions(name)?
        .into_iter()
        .map(|(_, bytes)| serde_json::from_slice(&bytes))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!versions.is_empty(), "no cohort named {name}");
    let today = now.date_naive().format("%Y-%m-%d").to_string();
    let keep_until = versions.iter().filter_map(|v| v.keep_until.clone()).max();
    let early = keep_until
        .as_deref()
        .is_some_and(|until| today.as_str() < until);
    if early && !force {
        anyhow::bail!(
            "cohort {name} must be kept until {}; destroying it earlier needs --force (which is \
             recorded in the audit log)",
            keep_until.unwrap_or_default()
        );
    }

    let staging = staging_dir(data_dir, name)?;
    let mut files_deleted = 0;
    if staging.exists() {
        files_deleted = count_files(&staging)?;
        std::fs::remove_dir_all(&staging)?;
    }
    let keys_shredded = vault.shred_cohort_keys(name);
    vault.save()?;
    let at = now.timestamp().max(0) as u64;
    let mut numbers = Vec::new();
    for mut version in versions {
        numbers.push(version.version);
        if version.destroyed_at.is_none() {
            version.destroyed_at = Some(at);
            cohort::save(ledger, &version)?;
        }
    }
    audit.append(AuditRecord {
        operator: operator.to_owned(),
        action: "destroy".into(),
        subject: name.to_owned(),
        details: serde_json::json!({
            "versions": numbers,
            "files_deleted": files_deleted,
            "keys_shredded": keys_shredded,
            "forced": early && force,
            "keep_until": keep_until,
        }),
        sha256: None,
        destination: None,
    })?;
    Ok(Destroyed {
        cohort: name.to_owned(),
        versions: numbers,
        files_deleted,
        keys_shredded,
        forced: early && force,
    })
}

fn count_files(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            n += count_files(&entry.path())?;
        } else {
            n += 1;
        }
    }
    Ok(n)
}
