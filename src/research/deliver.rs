//! Delivering a built export to the partner: to a directory (a disk the
//! hospital then sends), or as one `age` file encrypted to a passphrase or
//! to the partner's X25519 keys (the password-protected portable disk),
//! optionally uploaded over SFTP.
//!
//! It runs in the operator's own `chestnode research export` process, not
//! in the server: the server writes only inside its data directory, while
//! a delivery goes where the operator says. It opens the staging package
//! with the cohort's key from the vault; nothing is half-written: it works
//! in a temporary folder beside the destination and renames at the end.
//! Every delivery is audited with its destination and sha256.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::export::ExportBuilt;
use super::package::{self, Recipients, SftpTarget, UnsealKey, UploadReceipt};
use super::vault::Vault;
use super::{AuditLog, AuditRecord};
use crate::model::manifest::sha256_hex;

/// Where a delivery goes.
pub enum Destination {
    /// A plain de-identified tree in this directory (absent or empty).
    Directory(PathBuf),
    /// One `age` file (absent), to these recipients.
    Sealed {
        file: PathBuf,
        recipients: Recipients,
    },
}

/// What was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub path: PathBuf,
    /// The sealed file's sha256, or for a directory that of its
    /// `SHA256SUMS` (which lists every file's).
    pub sha256: String,
    pub upload: Option<UploadReceipt>,
}

/// Opens the staging package of `built` and delivers it.
pub fn deliver(
    data_dir: &Path,
    vault: &mut Vault,
    audit: &AuditLog,
    built: &ExportBuilt,
    destination: Destination,
    sftp: Option<&SftpTarget>,
    operator: &str,
) -> anyhow::Result<Delivered> {
    anyhow::ensure!(
        vault.has_cohort_keys(&built.cohort),
        "cohort {} has no keys (destroyed?)",
        built.cohort
    );
    let keys = vault.cohort_keys(&built.cohort)?;
    let identity = UnsealKey::Identity(Zeroizing::new(keys.staging_identity.clone()));
    let staging = data_dir.join(&built.staging);

    let target = match &destination {
        Destination::Directory(dir) => dir.clone(),
        Destination::Sealed { file, .. } => file.clone(),
    };
    if sftp.is_some() && matches!(destination, Destination::Directory(_)) {
        anyhow::bail!("an SFTP upload needs an encrypted export: give --out a FILE.age");
    }
    destination.check_free()?;
    let parent = parent_of(&target)?;
    let scratch = tempfile::Builder::new()
        .prefix(".chestnode-export-")
        .tempdir_in(&parent)?;
    let unpacked = scratch.path().join("unpacked");
    package::unseal(&staging, &identity, &unpacked)?;
    let tree = unpacked.join(&built.top);
    package::verify_manifest(&tree)?;

    let sha256 = match &destination {
        Destination::Directory(dir) => {
            if dir.exists() {
                std::fs::remove_dir(dir)?; // empty, checked above
            }
            std::fs::rename(&tree, dir)?;
            sha256_hex(&std::fs::read(dir.join("SHA256SUMS"))?)
        }
        Destination::Sealed { file, recipients } => {
            package::seal(&tree, &built.top, file, recipients)?.sha256
        }
    };
    drop(scratch);
    let method = match &destination {
        Destination::Directory(_) => "directory (not encrypted)",
        Destination::Sealed {
            recipients: Recipients::Passphrase(_),
            ..
        } => "age, passphrase",
        Destination::Sealed { .. } => "age, X25519 recipients",
    };
    audit.append(AuditRecord {
        operator: operator.to_owned(),
        action: "export".into(),
        subject: built.cohort.clone(),
        details: serde_json::json!({
            "version": built.version,
            "files": built.files,
            "patients": built.report.patients,
            "method": method,
        }),
        sha256: Some(sha256.clone()),
        destination: Some(target.display().to_string()),
    })?;

    let upload = match sftp {
        Some(sftp) => {
            let receipt = package::upload(&target, sftp)?;
            audit.append(AuditRecord {
                operator: operator.to_owned(),
                action: "deliver".into(),
                subject: built.cohort.clone(),
                details: serde_json::json!({
                    "version": built.version,
                    "bytes": receipt.bytes,
                    "host_key_sha256": receipt.host_key_sha256,
                }),
                sha256: Some(receipt.sha256.clone()),
                destination: Some(format!("{}/{}", sftp.display_url(), receipt.remote_path)),
            })?;
            Some(receipt)
        }
        None => None,
    };
    Ok(Delivered {
        path: target,
        sha256,
        upload,
    })
}

impl Destination {
    /// Refuses a destination that holds something: a non-empty directory,
    /// or an existing file. The command checks before any work, and
    /// delivery again at the end.
    pub fn check_free(&self) -> anyhow::Result<()> {
        match self {
            Destination::Directory(dir) => {
                if dir.exists() {
                    anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
                    anyhow::ensure!(
                        std::fs::read_dir(dir)?.next().is_none(),
                        "the export directory {} is not empty",
                        dir.display()
                    );
                }
            }
            Destination::Sealed { file, .. } => {
                anyhow::ensure!(!file.exists(), "{} already exists", file.display());
            }
        }
        Ok(())
    }
}

fn parent_of(target: &Path) -> anyhow::Result<PathBuf> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    anyhow::ensure!(
        parent.is_dir(),
        "{} does not exist; create it first",
        parent.display()
    );
    Ok(parent)
}
