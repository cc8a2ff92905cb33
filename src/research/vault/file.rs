//! The vault file on disk: its layout, sealing and unsealing, the atomic
//! save, and the lock that keeps two processes from interleaving.
//!
//! Layout of `research/vault.bin`:
//!
//! ```text
//! CHESTNODE-RESEARCH-VAULT\n                      magic line
//! {"version":1,"kdf":"argon2id","m_cost_kib":65536,"t_cost":3,"p_cost":1,
//!  "salt":"<32 hex>","check":"<32 hex>"}\n        header, one JSON line
//! <24-byte nonce><XChaCha20-Poly1305 ciphertext of the JSON body + 16-byte tag>
//! ```
//!
//! The header is plaintext because `open` needs it before it has a key
//! (which derivation, which salt); it is bound to the ciphertext as
//! associated data, so editing it (say, lowering the Argon2 costs) makes
//! decryption fail rather than yield anything. `check` is a fingerprint of
//! the key that tells a wrong key from a damaged file. The nonce is fresh
//! on every save, so a key is never used twice with the same nonce.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use fs2::FileExt;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::key::{Kdf, Key, KeySource, check_value};
use super::{VaultError, random};
use crate::research::private_dir::sync_dir;

const MAGIC: &[u8] = b"CHESTNODE-RESEARCH-VAULT\n";
/// The format written. Version 2 added the body's clinical section; a
/// version 1 file still opens (the section is empty) and is written as
/// version 2 on its next save, so that an older chestnode, which would
/// drop the section it does not know, refuses the file instead.
const FORMAT_VERSION: u32 = 2;
/// The oldest format read.
const OLDEST_VERSION: u32 = 1;
const NONCE_LEN: usize = 24;
/// A header line is small; a longer one means this is not a vault file.
const MAX_HEADER_LEN: usize = 4096;

/// The plaintext header: the format version, the key derivation and the
/// key fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Header {
    version: u32,
    #[serde(flatten)]
    kdf: Kdf,
    check: String,
}

impl Header {
    /// A header for a new key from `source`; returns the key too.
    pub(super) fn fresh(source: &KeySource) -> Result<(Header, Key), VaultError> {
        let kdf = Kdf::fresh(source)?;
        let key = kdf.derive(source)?;
        let header = Header {
            version: FORMAT_VERSION,
            kdf,
            check: check_value(&key),
        };
        Ok((header, key))
    }
}

/// Encrypts `body` under `key` with a fresh nonce: the whole file content.
/// The file is always written in the current format, whatever `header`
/// was read as.
pub(super) fn seal(header: &Header, key: &Key, body: &[u8]) -> anyhow::Result<Vec<u8>> {
    seal_as(FORMAT_VERSION, header, key, body)
}

/// [`seal`] in format `version` (tests write older formats with it).
pub(super) fn seal_as(
    version: u32,
    header: &Header,
    key: &Key,
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let header = Header {
        version,
        ..header.clone()
    };
    let mut aad = MAGIC.to_vec();
    serde_json::to_writer(&mut aad, &header).context("writing the vault header")?;
    aad.push(b'\n');
    let nonce = XNonce::from(random::bytes::<NONCE_LEN>()?);
    let cipher = XChaCha20Poly1305::new_from_slice(&key[..]).expect("32-byte key");
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .map_err(|_| anyhow::anyhow!("encrypting the vault"))?;
    let mut out = aad;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Checks the file's layout, derives the key its header names from
/// `source`, and decrypts: the header, the key and the plaintext body.
pub(super) fn unseal(
    bytes: &[u8],
    source: &KeySource,
) -> Result<(Header, Key, Zeroizing<Vec<u8>>), VaultError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .context("not a research vault file (its first line is wrong)")?;
    let end = rest
        .iter()
        .take(MAX_HEADER_LEN)
        .position(|&b| b == b'\n')
        .context("the research vault file's header is damaged (no end of line)")?;
    let header: Header = serde_json::from_slice(&rest[..end])
        .context("the research vault file's header is damaged")?;
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&header.version) {
        return Err(anyhow::anyhow!(
            "the research vault file has format version {}; this chestnode reads versions {OLDEST_VERSION} to {FORMAT_VERSION}",
            header.version
        )
        .into());
    }
    let aad = &bytes[..MAGIC.len() + end + 1];
    let sealed = &rest[end + 1..];
    if sealed.len() < NONCE_LEN + 16 {
        return Err(anyhow::anyhow!("the research vault file is truncated").into());
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);

    let key = header.kdf.derive(source)?;
    if check_value(&key) != header.check {
        return Err(VaultError::WrongKey);
    }
    let cipher = XChaCha20Poly1305::new_from_slice(&key[..]).expect("32-byte key");
    let nonce = XNonce::try_from(nonce).expect("24-byte nonce");
    let body = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| {
            anyhow::anyhow!(
                "the research vault file is damaged or was altered (authentication failed)"
            )
        })?;
    Ok((header, key, Zeroizing::new(body)))
}

/// Replaces `path` with `bytes` durably: a temporary file beside it (mode
/// 0600), fsync, rename, fsync of the folder. A crash leaves either the
/// old file or the new one, never a mix.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("the vault path has no folder")?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let written = (|| -> anyhow::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(temporary)
            .with_context(|| format!("creating {}", temporary.display()))?;
        file.write_all(bytes)
            .and_then(|_| file.sync_all())
            .with_context(|| format!("writing {}", temporary.display()))?;
        fs::rename(temporary, path).with_context(|| format!("renaming to {}", path.display()))
    })();
    if written.is_err() {
        let _ = fs::remove_file(temporary);
    }
    written?;
    sync_dir(dir)
}

/// The exclusive lock on `research/vault.lock`, held while a `Vault` lives.
/// The kernel releases it when the file is closed (drop, or process exit).
#[derive(Debug)]
pub(super) struct VaultLock {
    _file: File,
}

impl VaultLock {
    /// Takes the lock, retrying for up to `wait`.
    pub(super) fn acquire(path: &Path, wait: Duration) -> Result<VaultLock, VaultError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock_exclusive() {
                Ok(()) => return Ok(VaultLock { _file: file }),
                Err(e) if e.kind() == fs2::lock_contended_error().kind() => {
                    if Instant::now() >= deadline {
                        return Err(VaultError::Locked);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("locking {}", path.display()))
                        .into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed() -> (Header, Key) {
        let key = Zeroizing::new([7u8; 32]);
        let header = Header {
            version: FORMAT_VERSION,
            kdf: Kdf::KeyFile,
            check: check_value(&key),
        };
        (header, key)
    }

    #[test]
    fn fresh_nonce_every_seal() {
        let (header, key) = keyed();
        let a = seal(&header, &key, b"{}").unwrap();
        let b = seal(&header, &key, b"{}").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(MAGIC));
    }
}
