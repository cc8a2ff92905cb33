//! Sealing an export: one tar of the export folder streamed straight into
//! an `age` encryptor, so that the package is a single file the partner
//! opens with the standard `age` tool and `tar`, and no unencrypted copy of
//! the tar ever touches the disk.
//!
//! The tar is reproducible (sorted, fixed modes and times, owner 0, no user
//! names) so that two seals of the same folder differ only in the
//! encryption, and it tells the partner nothing about the hospital's
//! accounts or clock.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::manifest::{Found, hex, walk};

/// Who can open a package.
pub enum Recipients {
    /// Anyone with this passphrase (age's scrypt recipient).
    Passphrase(Zeroizing<String>),
    /// Holders of the secret keys of these X25519 recipients ("age1…").
    X25519(Vec<String>),
}

/// A package on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub path: PathBuf,
    pub bytes: u64,
    /// Lowercase hex sha256 of the encrypted file.
    pub sha256: String,
}

/// Makes an age X25519 key pair: (secret "AGE-SECRET-KEY-1...", recipient
/// "age1...").
pub fn generate_age_identity() -> (Zeroizing<String>, String) {
    let identity = age::x25519::Identity::generate();
    let secret = Zeroizing::new(identity.to_string().expose_secret().to_owned());
    (secret, identity.to_public().to_string())
}

/// Packs `dir` as a tar under a top folder named `top`, encrypted to
/// `recipients`, into `out` (which must not exist). The tar's times are 0.
pub fn seal(dir: &Path, top: &str, out: &Path, recipients: &Recipients) -> Result<Sealed> {
    seal_with_mtime(dir, top, out, recipients, 0)
}

/// [`seal`] with every tar entry's modification time set to `mtime`
/// (seconds since the epoch), e.g. the export's date.
pub fn seal_with_mtime(
    dir: &Path,
    top: &str,
    out: &Path,
    recipients: &Recipients,
    mtime: u64,
) -> Result<Sealed> {
    check_top(top)?;
    if fs::symlink_metadata(out).is_ok() {
        bail!(
            "{} already exists; a package is never overwritten",
            out.display()
        );
    }
    let entries = walk(dir)?;
    let encryptor = encryptor(recipients)?;
    let file_name = out
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable file name", out.display()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temporary = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".part")
        .tempfile_in(parent)
        .with_context(|| format!("creating a temporary file in {}", parent.display()))?;
    let counting = HashingWriter::new(BufWriter::new(temporary.as_file().try_clone()?));
    let stream = encryptor
        .wrap_output(counting)
        .context("writing the age header")?;
    let mut tar = tar::Builder::new(stream);
    append_dir(&mut tar, top, mtime)?;
    for found in &entries {
        match found {
            Found::Dir(relative) => append_dir(&mut tar, &format!("{top}/{relative}"), mtime)?,
            Found::File(relative, size) => {
                let path = dir.join(relative);
                let file =
                    File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                let mut header = header(tar::EntryType::Regular, 0o644, *size, mtime);
                let exact = ExactReader {
                    inner: file,
                    left: *size,
                };
                tar.append_data(&mut header, format!("{top}/{relative}"), exact)
                    .with_context(|| format!("packing {}", path.display()))?;
            }
        }
    }
    let stream = tar.into_inner().context("finishing the tar")?;
    let counting = stream.finish().context("finishing the age stream")?;
    let (buffered, sha256, bytes) = counting.into_parts();
    buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|file| file.sync_all())
        .with_context(|| format!("writing {}", temporary.path().display()))?;
    temporary.persist_noclobber(out).map_err(|e| {
        anyhow::Error::new(e.error).context(format!("moving the package to {}", out.display()))
    })?;
    File::open(parent)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", parent.display()))?;
    Ok(Sealed {
        path: out.to_path_buf(),
        bytes,
        sha256,
    })
}

/// The top folder is one plain path component.
fn check_top(top: &str) -> Result<()> {
    if top.is_empty()
        || top == "."
        || top == ".."
        || top.contains(['/', '\\'])
        || top.chars().any(char::is_control)
    {
        bail!("the package's top folder name {top:?} is not a plain folder name");
    }
    Ok(())
}

fn encryptor(recipients: &Recipients) -> Result<age::Encryptor> {
    match recipients {
        Recipients::Passphrase(passphrase) => {
            if passphrase.is_empty() {
                bail!("the package passphrase is empty");
            }
            Ok(age::Encryptor::with_user_passphrase(SecretString::from(
                passphrase.as_str().to_owned(),
            )))
        }
        Recipients::X25519(keys) => {
            if keys.is_empty() {
                bail!("no age recipient given");
            }
            let parsed = keys
                .iter()
                .map(|key| {
                    key.trim()
                        .parse::<age::x25519::Recipient>()
                        .map_err(|e| anyhow::anyhow!("{key:?} is not an age X25519 recipient: {e}"))
                })
                .collect::<Result<Vec<_>>>()?;
            age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
                .context("setting up age encryption")
        }
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str, mtime: u64) -> Result<()> {
    let mut header = header(tar::EntryType::Directory, 0o755, 0, mtime);
    tar.append_data(&mut header, format!("{path}/"), io::empty())
        .with_context(|| format!("packing the folder {path}"))
}

/// Counts and hashes what passes through to the file.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn into_parts(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Yields exactly `left` bytes of a file, and an error if it has shrunk
/// since it was listed (the tar header already promised that size).
struct ExactReader {
    inner: File,
    left: u64,
}

impl io::Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being packed",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
