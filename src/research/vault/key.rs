//! The vault's key: where it comes from (a passphrase stretched with
//! Argon2id, or 32 bytes in a key file) and how the file's header records
//! which one, so that `open` can derive the same key again.
//!
//! Key material lives in `Zeroizing` buffers so that it is wiped from
//! memory when dropped.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{VaultError, hex, random};

/// Where the vault key comes from.
pub enum KeySource {
    /// A passphrase, stretched with Argon2id (m = 64 MiB, t = 3, p = 1).
    Passphrase(Zeroizing<String>),
    /// A file holding the key itself: 64 hexadecimal digits (surrounding
    /// white space ignored) or exactly 32 raw bytes. The file must not be
    /// accessible to group or others (mode 0600 or 0400).
    KeyFile(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Passphrase(_) => f.write_str("Passphrase(<hidden>)"),
            KeySource::KeyFile(path) => f.debug_tuple("KeyFile").field(path).finish(),
        }
    }
}

/// The 32-byte key that encrypts the vault body.
pub(super) type Key = Zeroizing<[u8; 32]>;

/// Argon2id cost: memory in KiB, passes, lanes.
const ARGON2_M_COST_KIB: u32 = 64 * 1024;
const ARGON2_T_COST: u32 = 3;
const ARGON2_P_COST: u32 = 1;
const SALT_LEN: usize = 16;

/// How the key is derived, as recorded in the vault header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kdf")]
pub(super) enum Kdf {
    #[serde(rename = "argon2id")]
    Argon2id {
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
        /// Hex of 16 random bytes.
        salt: String,
    },
    #[serde(rename = "keyfile")]
    KeyFile,
}

impl Kdf {
    /// A derivation for a new key from `source`: Argon2id with a fresh salt
    /// for a passphrase.
    pub(super) fn fresh(source: &KeySource) -> anyhow::Result<Kdf> {
        Ok(match source {
            KeySource::Passphrase(_) => Kdf::Argon2id {
                m_cost_kib: ARGON2_M_COST_KIB,
                t_cost: ARGON2_T_COST,
                p_cost: ARGON2_P_COST,
                salt: hex::encode(&random::bytes::<SALT_LEN>()?),
            },
            KeySource::KeyFile(_) => Kdf::KeyFile,
        })
    }

    /// The key from `source` under this derivation.
    pub(super) fn derive(&self, source: &KeySource) -> Result<Key, VaultError> {
        match (self, source) {
            (
                Kdf::Argon2id {
                    m_cost_kib,
                    t_cost,
                    p_cost,
                    salt,
                },
                KeySource::Passphrase(passphrase),
            ) => Ok(stretch(passphrase, *m_cost_kib, *t_cost, *p_cost, salt)?),
            (Kdf::KeyFile, KeySource::KeyFile(path)) => Ok(read_key_file(path)?),
            (Kdf::Argon2id { .. }, KeySource::KeyFile(_)) => Err(VaultError::Other(
                anyhow::anyhow!("this research vault is protected by a passphrase, not a key file"),
            )),
            (Kdf::KeyFile, KeySource::Passphrase(_)) => Err(VaultError::Other(anyhow::anyhow!(
                "this research vault is protected by a key file, not a passphrase"
            ))),
        }
    }
}

/// Argon2id over the passphrase. The costs come from the file header, so
/// they are bounded here: a forged header must not make `open` allocate
/// gigabytes or run for hours.
fn stretch(
    passphrase: &str,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: &str,
) -> anyhow::Result<Key> {
    ensure!(!passphrase.is_empty(), "the vault passphrase is empty");
    ensure!(
        m_cost_kib <= 1024 * 1024 && t_cost <= 64 && p_cost <= 16,
        "the vault header asks for Argon2id costs beyond the allowed bounds (m {m_cost_kib} KiB, t {t_cost}, p {p_cost})"
    );
    let salt = hex::decode::<SALT_LEN>(salt).context("the vault header's salt")?;
    let params = Params::new(m_cost_kib, t_cost, p_cost, Some(32))
        .map_err(|e| anyhow::anyhow!("Argon2id parameters in the vault header: {e}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), &salt[..], &mut key[..])
        .map_err(|e| anyhow::anyhow!("deriving the vault key: {e}"))?;
    Ok(key)
}

/// Reads a key file: refuses one that group or others may access, then
/// takes 64 hex digits or 32 raw bytes.
fn read_key_file(path: &Path) -> anyhow::Result<Key> {
    let meta =
        fs::metadata(path).with_context(|| format!("reading key file {}", path.display()))?;
    ensure!(
        meta.is_file(),
        "key file {} is not a regular file",
        path.display()
    );
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "key file {} is accessible by group or others (mode {mode:04o}); restrict it with `chmod 600`",
            path.display()
        );
    }
    let bytes = Zeroizing::new(
        fs::read(path).with_context(|| format!("reading key file {}", path.display()))?,
    );
    if let Ok(text) = std::str::from_utf8(&bytes)
        && text.trim().len() == 64
    {
        return hex::decode::<32>(text.trim())
            .with_context(|| format!("key file {} is not 64 hexadecimal digits", path.display()));
    }
    ensure!(
        bytes.len() == 32,
        "key file {} holds neither 64 hexadecimal digits nor 32 raw bytes",
        path.display()
    );
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Writes a new random key file (64 hex digits and a newline, mode 0600);
/// refuses to replace an existing file.
pub fn generate_key_file(path: &Path) -> anyhow::Result<()> {
    let key = Zeroizing::new(random::bytes::<32>()?);
    let text = Zeroizing::new(format!("{}\n", hex::encode(&key[..])));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating key file {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
        .with_context(|| format!("writing key file {}", path.display()))
}

/// A short public fingerprint of the key, kept in the header so that a
/// wrong key is told apart from a damaged file. It reveals nothing useful:
/// testing a passphrase against it costs the same Argon2id run as trying
/// to decrypt.
pub(super) fn check_value(key: &Key) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"chestnode research vault key check\0");
    hasher.update(&key[..]);
    hex::encode(&hasher.finalize()[..16])
}
