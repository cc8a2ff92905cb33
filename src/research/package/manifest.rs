//! The export's table of contents: every file with its size and sha256, as
//! `manifest.json` for programs and `SHA256SUMS` for people with coreutils.
//!
//! It exists so that the partner (and the hospital, before anything leaves)
//! can prove that what arrived is exactly what was exported: `sha256sum -c
//! SHA256SUMS` in the unpacked folder needs nothing but coreutils.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file `sha256sum -c` reads.
pub(super) const SUMS_NAME: &str = "SHA256SUMS";
/// The machine-readable twin of [`SUMS_NAME`].
pub(super) const MANIFEST_NAME: &str = "manifest.json";

/// One exported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Relative to the export folder, '/'-separated.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Every file of an export, sorted by path; lists neither itself nor
/// `SHA256SUMS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: Vec<ManifestEntry>,
}

/// What a walk of an export folder finds, in sorted order.
pub(super) enum Found {
    Dir(String),
    File(String, u64),
}

/// Walks `dir` depth first, sorted by name at each level (so the relative
/// paths come out in byte order), refusing symlinks and anything that is
/// neither a regular file nor a folder. Paths are relative, '/'-separated
/// and valid UTF-8 without control characters or backslashes, so that they
/// read back unchanged from `SHA256SUMS` and tar.
pub(super) fn walk(dir: &Path) -> Result<Vec<Found>> {
    let meta = fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a folder", dir.display());
    }
    let mut found = Vec::new();
    walk_into(dir, "", &mut found)?;
    Ok(found)
}

fn walk_into(dir: &Path, prefix: &str, found: &mut Vec<Found>) -> Result<()> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().into_string().map_err(|name| {
            anyhow::anyhow!(
                "{}: a file name that is not UTF-8 ({name:?}) cannot be exported",
                dir.display()
            )
        })?;
        if name.chars().any(|c| c.is_control() || c == '\\') {
            bail!(
                "{}: the file name {name:?} has a control character or backslash",
                dir.display()
            );
        }
        names.push(name);
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let relative = format!("{prefix}{name}");
        let meta =
            fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            bail!(
                "{} is a symbolic link; exports hold only regular files",
                path.display()
            );
        } else if kind.is_dir() {
            found.push(Found::Dir(relative.clone()));
            walk_into(&path, &format!("{relative}/"), found)?;
        } else if kind.is_file() {
            found.push(Found::File(relative, meta.len()));
        } else {
            bail!("{} is neither a regular file nor a folder", path.display());
        }
    }
    Ok(())
}

/// Lowercase hex sha256 of everything `reader` yields, and its length.
pub(super) fn sha256_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

/// Lowercase hex sha256 of a file, and its length.
pub(super) fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    sha256_reader(file).with_context(|| format!("reading {}", path.display()))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_own_file(relative: &str) -> bool {
    relative == SUMS_NAME || relative == MANIFEST_NAME
}

/// The manifest of what is in `dir` now (without its own two files).
fn scan(dir: &Path) -> Result<Manifest> {
    let mut files = Vec::new();
    for found in walk(dir)? {
        if let Found::File(relative, _) = found {
            if is_own_file(&relative) {
                continue;
            }
            let (sha256, size) = sha256_file(&dir.join(&relative))?;
            files.push(ManifestEntry {
                path: relative,
                size,
                sha256,
            });
        }
    }
    // Full paths in byte order ("a.txt" before "a/b"), not the walk's
    // per-folder order.
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Manifest { files })
}

/// `SHA256SUMS` text: "HASH  PATH" per line, as `sha256sum` writes it.
fn sums_text(manifest: &Manifest) -> String {
    manifest
        .files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect()
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Walks `dir` (sorted, regular files only; refuses symlinks), writes
/// `dir/SHA256SUMS` (the format `sha256sum -c` reads) and
/// `dir/manifest.json`; neither lists itself. Returns the manifest.
pub fn write_manifest(dir: &Path) -> Result<Manifest> {
    let manifest = scan(dir)?;
    write_synced(&dir.join(SUMS_NAME), sums_text(&manifest).as_bytes())?;
    let json = serde_json::to_vec_pretty(&manifest).context("encoding the manifest")?;
    write_synced(&dir.join(MANIFEST_NAME), &json)?;
    Ok(manifest)
}

/// Checks every file of `dir/manifest.json` (size and sha256), that no file
/// is there that the manifest does not list, and that `SHA256SUMS` says the
/// same as the manifest.
pub fn verify_manifest(dir: &Path) -> Result<()> {
    let path = dir.join(MANIFEST_NAME);
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let expected: Manifest =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let mut listed_sorted = expected.files.clone();
    listed_sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let actual = scan(dir)?;
    let mut problems = Vec::new();
    let mut listed = listed_sorted.iter().peekable();
    let mut present = actual.files.iter().peekable();
    loop {
        match (listed.peek(), present.peek()) {
            (None, None) => break,
            (Some(want), Some(have)) if want.path == have.path => {
                if want.size != have.size {
                    problems.push(format!(
                        "{}: {} bytes, the manifest says {}",
                        have.path, have.size, want.size
                    ));
                } else if want.sha256 != have.sha256 {
                    problems.push(format!(
                        "{}: the sha256 differs from the manifest",
                        have.path
                    ));
                }
                listed.next();
                present.next();
            }
            (Some(want), have) if have.is_none_or(|have| want.path < have.path) => {
                problems.push(format!("{}: listed in the manifest but missing", want.path));
                listed.next();
            }
            (_, Some(have)) => {
                problems.push(format!("{}: present but not in the manifest", have.path));
                present.next();
            }
            (Some(_), None) => unreachable!("handled above"),
        }
    }
    let sums_path = dir.join(SUMS_NAME);
    let sums = fs::read_to_string(&sums_path)
        .with_context(|| format!("reading {}", sums_path.display()))?;
    if sums != sums_text(&expected) {
        problems.push(format!("{SUMS_NAME} does not match {MANIFEST_NAME}"));
    }
    if !problems.is_empty() {
        bail!(
            "the export in {} fails verification ({} problem(s)): {}",
            dir.display(),
            problems.len(),
            problems.join("; ")
        );
    }
    Ok(())
}
