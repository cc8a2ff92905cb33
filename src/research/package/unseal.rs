//! Opening a package: the reverse of sealing, for the node's own staging
//! copy and for tests. The package may come from outside, so every path in
//! the tar is checked before anything is written and only plain files and
//! folders are unpacked.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

use age::secrecy::SecretString;
use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// What opens a package.
pub enum UnsealKey {
    /// An age identity ("AGE-SECRET-KEY-1…"), or the text of an identity
    /// file (several lines, `#` comments).
    Identity(Zeroizing<String>),
    /// The passphrase of a passphrase-sealed package.
    Passphrase(Zeroizing<String>),
}

/// Decrypts `file` with `key` and unpacks its tar into `into`, which must
/// be absent or an empty folder. Refuses entries whose path would leave
/// `into` and entries that are neither files nor folders; on any error the
/// partly unpacked contents of `into` are removed.
pub fn unseal(file: &Path, key: &UnsealKey, into: &Path) -> Result<()> {
    match fs::symlink_metadata(into) {
        Ok(meta) if meta.is_dir() => {
            let mut entries =
                fs::read_dir(into).with_context(|| format!("listing {}", into.display()))?;
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; a package is unpacked only into an empty folder",
                    into.display()
                );
            }
        }
        Ok(_) => bail!("{} exists and is not a folder", into.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", into.display())),
    }
    let result = unpack(file, key, into);
    if result.is_err() {
        clear(into);
    }
    result
}

fn unpack(file: &Path, key: &UnsealKey, into: &Path) -> Result<()> {
    let input = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(input))
        .with_context(|| format!("{} is not an age file", file.display()))?;
    let reader = match key {
        UnsealKey::Passphrase(passphrase) => {
            if !decryptor.is_scrypt() {
                bail!(
                    "{} is sealed to age keys, not to a passphrase",
                    file.display()
                );
            }
            let identity =
                age::scrypt::Identity::new(SecretString::from(passphrase.as_str().to_owned()));
            decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity))
        }
        UnsealKey::Identity(text) => {
            if decryptor.is_scrypt() {
                bail!(
                    "{} is sealed to a passphrase, not to age keys",
                    file.display()
                );
            }
            let identities = parse_identities(text)?;
            decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        }
    }
    .with_context(|| format!("decrypting {}", file.display()))?;
    let mut archive = tar::Archive::new(reader);
    for entry in archive
        .entries()
        .with_context(|| format!("reading the tar in {}", file.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading the tar in {}", file.display()))?;
        let raw = entry
            .path()
            .context("reading a tar entry's path")?
            .into_owned();
        let target = into.join(safe_relative(&raw)?);
        match entry.header().entry_type() {
            tar::EntryType::Directory => fs::create_dir_all(&target)
                .with_context(|| format!("creating {}", target.display()))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                let mut out = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .with_context(|| format!("creating {}", target.display()))?;
                io::copy(&mut entry, &mut out)
                    .with_context(|| format!("unpacking {}", raw.display()))?;
            }
            other => bail!(
                "the package holds {} of type {other:?}; only files and folders are unpacked",
                raw.display()
            ),
        }
    }
    // Reads what is left after the tar's end so that age checks the last
    // chunk: a truncated or altered tail fails here.
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .with_context(|| format!("decrypting the end of {}", file.display()))?;
    Ok(())
}

/// The X25519 identities in `text` (one per line; blank lines and `#`
/// comments skipped). Errors never quote the text: it is a secret.
fn parse_identities(text: &str) -> Result<Vec<age::x25519::Identity>> {
    let identities = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .enumerate()
        .map(|(i, line)| {
            line.parse::<age::x25519::Identity>().map_err(|_| {
                anyhow::anyhow!("identity line {} is not an age X25519 secret key", i + 1)
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if identities.is_empty() {
        bail!("no age identity given");
    }
    Ok(identities)
}

/// The entry's path as plain components below the target folder: no root,
/// no drive prefix, no `..`.
fn safe_relative(raw: &Path) -> Result<PathBuf> {
    let mut relative = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => bail!(
                "the package holds the path {} that leaves the target folder; refusing it",
                raw.display()
            ),
        }
    }
    if relative.as_os_str().is_empty() {
        bail!("the package holds an entry with an empty path");
    }
    Ok(relative)
}

/// Best-effort removal of what an unpack left in `into` (which was empty).
fn clear(into: &Path) {
    if let Ok(entries) = fs::read_dir(into) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }
}
