//! The research audit log, `DATA_DIR/research/audit.jsonl`: every act that
//! touches patient data or research exports (cohorts made and shown,
//! exports, deliveries, re-identifications, opt-outs, destruction) is one
//! JSON line, so that the hospital can show afterwards who did what, when,
//! and to what.
//!
//! The log is append-only and hash-chained: each entry carries `prev`, the
//! previous entry's `hash`, and its own `hash`, SHA-256 over the entry's
//! canonical serialisation without `hash` (fields in the order of
//! `AuditEntry`, keys of `details` sorted). The first entry's `prev` is 64
//! zeros. Editing, deleting, inserting or reordering lines breaks the chain
//! at the first line affected, and [`AuditLog::verify`] says where.
//!
//! Limit: a chain cannot reveal that its tail was cut off, since what is
//! left is still a valid chain. `verify` reports the head hash (the last
//! entry's) so that it can be noted down outside the node (a ticket, a
//! signed e-mail); comparing against a recorded head shows whether the
//! entries up to it are still there. Someone who can rewrite the whole file
//! can also recompute every hash; the chain makes tampering evident, it
//! does not prevent it.
//!
//! Appends from several processes and threads are serialised by an
//! exclusive lock on `research/audit.lock`; each line is written with one
//! `O_APPEND` write and fsynced before `append` returns. A crash mid-write
//! can leave an incomplete last line: `verify` reports it, and `append`
//! refuses to chain onto it, because entries written after it would be
//! unverifiable; the operator repairs the file by hand (removing the
//! fragment) and notes that in the log.
//!
//! Subjects and details name cohorts and research IDs, never a Patient ID
//! or name: the log is meant to be shown to auditors.

#[cfg(test)]
mod tests;

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use fs2::FileExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::research::private_dir::{ensure_research_dir, sync_dir};

/// File name of the log in `DATA_DIR/research/`.
const AUDIT_FILE: &str = "audit.jsonl";
/// File name of the append lock in `DATA_DIR/research/`.
const LOCK_FILE: &str = "audit.lock";
/// `prev` of the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What the caller says about an act; the log adds sequence, time and hashes.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    /// Who acts; see [`operator`].
    pub operator: String,
    /// `cohort.create`, `export`, `deliver`, `lookup`, `opt-out.add`, …
    pub action: String,
    /// A cohort name or research ID: never a Patient ID or name.
    pub subject: String,
    /// Anything else worth keeping (counts, file names, reasons); `null` if none.
    pub details: Value,
    /// Lowercase hex SHA-256 of what was exported or delivered.
    pub sha256: Option<String>,
    /// Where it went (host and path), for deliveries.
    pub destination: Option<String>,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1 for the first line, then one more per line.
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub operator: String,
    pub action: String,
    pub subject: String,
    pub details: Value,
    pub sha256: Option<String>,
    pub destination: Option<String>,
    /// The previous entry's `hash`; 64 zeros for the first.
    pub prev: String,
    /// SHA-256 over this entry without `hash`, lowercase hex.
    pub hash: String,
}

/// The entry without its hash, in the fixed field order that is hashed.
#[derive(Serialize)]
struct Unhashed<'a> {
    seq: u64,
    time: &'a str,
    operator: &'a str,
    action: &'a str,
    subject: &'a str,
    details: &'a Value,
    sha256: &'a Option<String>,
    destination: &'a Option<String>,
    prev: &'a str,
}

impl AuditEntry {
    /// The hash this entry should carry.
    fn compute_hash(&self) -> String {
        let details = canonical(&self.details);
        let unhashed = Unhashed {
            seq: self.seq,
            time: &self.time,
            operator: &self.operator,
            action: &self.action,
            subject: &self.subject,
            details: &details,
            sha256: &self.sha256,
            destination: &self.destination,
            prev: &self.prev,
        };
        let bytes = serde_json::to_vec(&unhashed).expect("an audit entry serialises");
        Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// `value` with every object's keys in sorted order, whichever map type
/// serde_json was built with, so that the hash does not depend on the
/// order keys were written in.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A log that verified: how many entries, and the last hash (64 zeros for
/// an empty log) to note down outside the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerified {
    pub entries: u64,
    pub head: String,
}

/// Where and why the chain is broken (lines count from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at line {line}: {reason}")]
pub struct AuditBroken {
    pub line: u64,
    pub reason: String,
}

/// The audit log of a data directory.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
    lock_path: PathBuf,
}

impl AuditLog {
    /// Opens the log, creating `research/` (0700) and an empty log (0600)
    /// when missing.
    pub fn open(data_dir: &Path) -> anyhow::Result<AuditLog> {
        let dir = ensure_research_dir(data_dir)?;
        let path = dir.join(AUDIT_FILE);
        let existed = path.exists();
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        if !existed {
            sync_dir(&dir)?;
        }
        Ok(AuditLog {
            path,
            lock_path: dir.join(LOCK_FILE),
        })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry, chained to the last, and fsyncs it.
    pub fn append(&self, record: AuditRecord) -> anyhow::Result<AuditEntry> {
        ensure!(
            !record.action.trim().is_empty(),
            "an audit record needs an action"
        );
        ensure!(
            !record.operator.trim().is_empty(),
            "an audit record needs an operator"
        );
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.lock_path)
            .with_context(|| format!("opening {}", self.lock_path.display()))?;
        lock.lock_exclusive()
            .with_context(|| format!("locking {}", self.lock_path.display()))?;

        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        let (seq, prev) = match last_entry(&mut file)
            .with_context(|| format!("reading the end of {}", self.path.display()))?
        {
            Some(last) => (last.seq + 1, last.hash),
            None => (1, GENESIS.to_owned()),
        };
        let mut entry = AuditEntry {
            seq,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            operator: record.operator,
            action: record.action,
            subject: record.subject,
            details: canonical(&record.details),
            sha256: record.sha256,
            destination: record.destination,
            prev,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        let mut line = serde_json::to_vec(&entry).context("serialising an audit entry")?;
        line.push(b'\n');
        file.write_all(&line)
            .and_then(|_| file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))?;
        drop(lock);
        Ok(entry)
    }

    /// All entries, parsed but not verified.
    pub fn entries(&self) -> anyhow::Result<Vec<AuditEntry>> {
        let text = std::fs::read_to_string(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?;
        let mut entries = Vec::new();
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let Some(line) = line.strip_suffix('\n') else {
                bail!(
                    "{} line {}: incomplete last line",
                    self.path.display(),
                    i + 1
                );
            };
            entries.push(
                serde_json::from_str(line)
                    .with_context(|| format!("{} line {}", self.path.display(), i + 1))?,
            );
        }
        Ok(entries)
    }

    /// Checks every line: an entry, numbered in order, chained to the one
    /// before, with the hash of its content.
    pub fn verify(&self) -> Result<AuditVerified, AuditBroken> {
        let mut text = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut text))
            .map_err(|e| AuditBroken {
                line: 0,
                reason: format!("cannot read {}: {e}", self.path.display()),
            })?;
        let mut head = GENESIS.to_owned();
        let mut count = 0u64;
        for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
            let number = i as u64 + 1;
            let broken = |reason: String| AuditBroken {
                line: number,
                reason,
            };
            let Some(line) = line.strip_suffix(b"\n") else {
                return Err(broken(
                    "incomplete last line (a write was interrupted)".into(),
                ));
            };
            let entry: AuditEntry = serde_json::from_slice(line)
                .map_err(|e| broken(format!("not an audit entry ({e})")))?;
            if entry.seq != number {
                return Err(broken(format!(
                    "sequence number {} where {number} was expected (a line was deleted, inserted or moved)",
                    entry.seq
                )));
            }
            if entry.prev != head {
                return Err(broken(
                    "does not chain to the line before (prev differs from its hash)".into(),
                ));
            }
            if entry.compute_hash() != entry.hash {
                return Err(broken(
                    "its content does not match its hash (it was edited)".into(),
                ));
            }
            head = entry.hash;
            count = number;
        }
        Ok(AuditVerified {
            entries: count,
            head,
        })
    }
}

/// The last entry of the log, read from its end; `None` for an empty log.
fn last_entry(file: &mut File) -> anyhow::Result<Option<AuditEntry>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::with_capacity((len - start) as usize);
        Read::by_ref(file)
            .take(len - start)
            .read_to_end(&mut tail)?;
        let Some(body) = tail.strip_suffix(b"\n") else {
            bail!(
                "the audit log ends in an incomplete line (a write was interrupted); \
                 run the audit verification and remove the fragment by hand before appending"
            );
        };
        let line = match body.iter().rposition(|&b| b == b'\n') {
            Some(newline) => &body[newline + 1..],
            None if start == 0 => body,
            None => {
                window *= 4;
                continue;
            }
        };
        let entry = serde_json::from_slice(line)
            .context("the audit log's last line is not an audit entry")?;
        return Ok(Some(entry));
    }
}

/// Who acts: `explicit` (from `--operator`) when given, else the OS user
/// as "name (uid N)", the name from the password database or else `$USER`.
pub fn operator(explicit: Option<&str>) -> String {
    if let Some(name) = explicit.map(str::trim).filter(|name| !name.is_empty()) {
        return name.to_owned();
    }
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    let uid = unsafe { libc::geteuid() };
    let name = user_name(uid).or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()));
    match name {
        Some(name) => format!("{name} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// The account name of `uid` from the password database (thread-safe
/// getpwuid_r).
fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut size = 1024usize;
    loop {
        let mut buffer = vec![0u8; size];
        // SAFETY: passwd is plain data; all-zero is a valid value to be
        // overwritten by getpwuid_r.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, and the buffer's
        // length is passed with it; the strings written into `entry` point
        // into `buffer`, which outlives their use below.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if rc != 0 || result.is_null() || entry.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name is a NUL-terminated string inside `buffer`.
        let name = unsafe { CStr::from_ptr(entry.pw_name) };
        let name = name.to_string_lossy().into_owned();
        return (!name.is_empty()).then_some(name);
    }
}
