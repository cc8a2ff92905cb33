//! The pseudonym vault: the one place where a research ID leads back to a
//! patient. It holds the pseudonym table (research ID ↔ Patient ID, Patient
//! Name, date offset), the opt-out list, each cohort's keys and the
//! patients' clinical records (`clinical.rs`), encrypted in one file, `DATA_DIR/research/vault.bin`, that never leaves the data
//! directory. Exports carry only research IDs; re-identification needs this
//! file and its key, and destroying a cohort's keys here makes what was
//! delivered under them unreadable for good (crypto-shredding).
//!
//! How the file is laid out and why is in `file.rs`: a magic line, a small
//! plaintext header (format version, key derivation and its salt, a key
//! fingerprint), a 24-byte nonce and the XChaCha20-Poly1305 ciphertext of
//! a JSON body, with the header as associated data. The key is Argon2id
//! over a passphrase (m = 64 MiB, t = 3, p = 1, recorded in the header) or
//! 32 bytes from a key file. Every save writes a temporary file, fsyncs
//! it, renames it over the old one and fsyncs the folder. An exclusive
//! lock on `research/vault.lock` is held from `open`/`create` until the
//! `Vault` is dropped, so the CLI and a running server never interleave.
//!
//! Changes are made in memory: every mutating method marks the vault dirty
//! and the caller calls [`Vault::save`] when its unit of work is done (a
//! vault dropped with unsaved changes logs a warning and loses them).
//!
//! Limits: crypto-shredding forgets keys in the current file only; a copy
//! of an older `vault.bin` (a backup, or blocks the file system has not
//! reused yet) still holds them, so backups of the data directory must
//! leave out `research/` or be destroyed with the cohort. Keys, stored
//! cohort secrets and the serialised body are wiped from memory when
//! dropped; the decoded table of names and IDs, and serde's intermediate
//! buffers, are not.
//!
//! A `Vault` is `Send` but not `Sync` (the dirty mark is a `Cell`): a
//! server that shares one puts it behind a `Mutex`.

mod clinical;
mod file;
mod hex;
mod ids;
mod key;
mod random;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use age::secrecy::ExposeSecret;
use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use self::file::{Header, VaultLock};
use self::key::Key;
use crate::research::private_dir::{ensure_research_dir, research_dir};

pub use self::clinical::ClinicalRecord;
pub use self::ids::ResearchIdFormat;
pub use self::key::{KeySource, generate_key_file};

/// File name of the vault in `DATA_DIR/research/`.
const VAULT_FILE: &str = "vault.bin";
/// File name of the lock in `DATA_DIR/research/`.
const LOCK_FILE: &str = "vault.lock";
/// How long `open`/`create` wait for another process to let go.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// Date offsets for new patients unless configured otherwise: one to ten
/// years back.
const DEFAULT_OFFSETS: RangeInclusive<i32> = -3650..=-365;
/// Up to this many IDs, a nearly full format is searched exhaustively.
const ENUMERABLE: u64 = 1_000_000;

/// A patient's research identity, as written into exported objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pseudonym {
    pub research_id: String,
    /// Days added to every date of the patient's objects (never 0).
    pub date_offset_days: i32,
}

/// What re-identification yields: the research ID and who it stands for.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    pub research_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub date_offset_days: i32,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("research_id", &self.research_id)
            .field("patient_id", &"<hidden>")
            .field("patient_name", &"<hidden>")
            .field("date_offset_days", &self.date_offset_days)
            .finish()
    }
}

/// A cohort's secrets: the key its UIDs are derived under, and the age key
/// pair its staged export is encrypted to. Forgetting them (see
/// [`Vault::shred_cohort_keys`]) makes that cohort's staged data and UID
/// mapping unrecoverable. Callers should not keep copies longer than they
/// need them.
#[derive(Clone)]
pub struct CohortKeys {
    pub uid_secret: [u8; 32],
    /// age X25519 secret key, `AGE-SECRET-KEY-1…`.
    pub staging_identity: String,
    /// Its public recipient, `age1…`.
    pub staging_recipient: String,
}

impl fmt::Debug for CohortKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CohortKeys")
            .field("uid_secret", &"<hidden>")
            .field("staging_identity", &"<hidden>")
            .field("staging_recipient", &self.staging_recipient)
            .finish()
    }
}

/// What can go wrong opening or creating the vault; callers match on the
/// kind (to prompt for the passphrase again, say).
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no research vault at {} (create one first)", .0.display())]
    NotInitialised(PathBuf),
    #[error("a research vault already exists at {}", .0.display())]
    AlreadyExists(PathBuf),
    #[error("wrong passphrase or key file")]
    WrongKey,
    #[error("the research vault is in use by another chestnode process (its lock is held)")]
    Locked,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One patient's row, keyed by Patient ID in [`Body::patients`].
#[derive(Clone, Serialize, Deserialize)]
struct PatientRow {
    research_id: String,
    patient_name: String,
    date_offset_days: i32,
}

/// A cohort's keys as stored; wiped from memory when dropped.
#[derive(Clone, Serialize, Deserialize)]
struct StoredCohortKeys {
    /// Hex of the 32-byte UID secret.
    uid_secret: String,
    staging_identity: String,
    staging_recipient: String,
}

impl Drop for StoredCohortKeys {
    fn drop(&mut self) {
        self.uid_secret.zeroize();
        self.staging_identity.zeroize();
    }
}

/// The encrypted JSON body.
#[derive(Serialize, Deserialize)]
struct Body {
    ids: ResearchIdFormat,
    date_offset_min: i32,
    date_offset_max: i32,
    /// By Patient ID.
    patients: BTreeMap<String, PatientRow>,
    opt_out: BTreeSet<String>,
    /// By cohort name.
    cohorts: BTreeMap<String, StoredCohortKeys>,
    /// Clinical records by Patient ID (absent from vaults of format 1).
    #[serde(default)]
    clinical: BTreeMap<String, Vec<ClinicalRecord>>,
}

/// The open, locked, decrypted vault. See the module documentation.
pub struct Vault {
    path: PathBuf,
    header: Header,
    key: Key,
    body: Body,
    /// Research ID → Patient ID.
    by_research_id: HashMap<String, String>,
    dirty: Cell<bool>,
    _lock: VaultLock,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("path", &self.path)
            .field("ids", &self.body.ids)
            .field("patients", &self.body.patients.len())
            .field("opted_out", &self.body.opt_out.len())
            .field("cohorts", &self.body.cohorts.len())
            .field("dirty", &self.dirty.get())
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// `DATA_DIR/research/vault.bin`.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        research_dir(data_dir).join(VAULT_FILE)
    }

    /// Whether a vault file exists in `data_dir`.
    pub fn exists(data_dir: &Path) -> bool {
        Self::path_in(data_dir).exists()
    }

    /// Creates and saves an empty vault; refuses if one exists.
    pub fn create(
        data_dir: &Path,
        key: &KeySource,
        ids: ResearchIdFormat,
    ) -> Result<Vault, VaultError> {
        Self::create_waiting(data_dir, key, ids, LOCK_WAIT)
    }

    /// Opens and decrypts the vault, holding its lock until dropped; waits
    /// a few seconds for another process's lock, then gives up with
    /// [`VaultError::Locked`].
    pub fn open(data_dir: &Path, key: &KeySource) -> Result<Vault, VaultError> {
        Self::open_waiting(data_dir, key, LOCK_WAIT)
    }

    fn create_waiting(
        data_dir: &Path,
        key: &KeySource,
        ids: ResearchIdFormat,
        wait: Duration,
    ) -> Result<Vault, VaultError> {
        let dir = ensure_research_dir(data_dir)?;
        let lock = VaultLock::acquire(&dir.join(LOCK_FILE), wait)?;
        let path = dir.join(VAULT_FILE);
        if path.exists() {
            return Err(VaultError::AlreadyExists(path));
        }
        let (header, key) = Header::fresh(key)?;
        let vault = Vault {
            path,
            header,
            key,
            body: Body {
                ids,
                date_offset_min: *DEFAULT_OFFSETS.start(),
                date_offset_max: *DEFAULT_OFFSETS.end(),
                patients: BTreeMap::new(),
                opt_out: BTreeSet::new(),
                cohorts: BTreeMap::new(),
                clinical: BTreeMap::new(),
            },
            by_research_id: HashMap::new(),
            dirty: Cell::new(false),
            _lock: lock,
        };
        vault.save()?;
        Ok(vault)
    }

    fn open_waiting(data_dir: &Path, key: &KeySource, wait: Duration) -> Result<Vault, VaultError> {
        let path = Self::path_in(data_dir);
        if !path.exists() {
            return Err(VaultError::NotInitialised(path));
        }
        let lock = VaultLock::acquire(&research_dir(data_dir).join(LOCK_FILE), wait)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VaultError::NotInitialised(path));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("reading {}", path.display()))
                    .into());
            }
        };
        let (header, key, plaintext) = file::unseal(&bytes, key)?;
        let body: Body = serde_json::from_slice(&plaintext)
            .context("the research vault's content is unreadable (saved by a newer chestnode?)")?;
        let mut by_research_id = HashMap::with_capacity(body.patients.len());
        for (patient_id, row) in &body.patients {
            if by_research_id
                .insert(row.research_id.clone(), patient_id.clone())
                .is_some()
            {
                return Err(anyhow::anyhow!(
                    "the research vault is inconsistent: research ID {} is given to two patients",
                    row.research_id
                )
                .into());
            }
        }
        Ok(Vault {
            path,
            header,
            key,
            body,
            by_research_id,
            dirty: Cell::new(false),
            _lock: lock,
        })
    }

    /// Re-encrypts the vault under a new key (a new salt for a passphrase)
    /// and saves it at once.
    pub fn change_key(&mut self, new_key: &KeySource) -> Result<(), VaultError> {
        let (header, key) = Header::fresh(new_key)?;
        let old_header = std::mem::replace(&mut self.header, header);
        let old_key = std::mem::replace(&mut self.key, key);
        if let Err(e) = self.save() {
            self.header = old_header;
            self.key = old_key;
            return Err(e.into());
        }
        Ok(())
    }

    /// The patient's pseudonym, made on first use: research ID random from
    /// the format, unique in the vault, never derived from the patient ID
    /// (OS randomness); date offset random, uniform in the configured range
    /// (default −3650..=−365 days, never 0), fixed per patient forever.
    /// The name recorded is the one given on first use. Marks the vault
    /// dirty when it makes a new one. Opt-outs are not checked here: the
    /// caller checks [`is_opted_out`](Self::is_opted_out) first.
    pub fn pseudonym(&mut self, patient_id: &str, patient_name: &str) -> anyhow::Result<Pseudonym> {
        let patient_id = normalise(patient_id)?;
        if let Some(found) = self.find_pseudonym(patient_id) {
            return Ok(found);
        }
        let research_id = self.new_research_id()?;
        let range = self.date_offset_range();
        let date_offset_days = loop {
            let offset = random::in_range(&range)?;
            if offset != 0 {
                break offset;
            }
        };
        self.body.patients.insert(
            patient_id.to_owned(),
            PatientRow {
                research_id: research_id.clone(),
                patient_name: patient_name.to_owned(),
                date_offset_days,
            },
        );
        self.by_research_id
            .insert(research_id.clone(), patient_id.to_owned());
        self.dirty.set(true);
        Ok(Pseudonym {
            research_id,
            date_offset_days,
        })
    }

    /// The patient's pseudonym if one was made.
    pub fn find_pseudonym(&self, patient_id: &str) -> Option<Pseudonym> {
        let row = self.body.patients.get(normalise(patient_id).ok()?)?;
        Some(Pseudonym {
            research_id: row.research_id.clone(),
            date_offset_days: row.date_offset_days,
        })
    }

    /// Re-identification: who a research ID stands for. The caller writes
    /// it to the audit log.
    pub fn lookup(&self, research_id: &str) -> Option<Identity> {
        let patient_id = self.by_research_id.get(research_id.trim())?;
        let row = &self.body.patients[patient_id];
        Some(Identity {
            research_id: row.research_id.clone(),
            patient_id: patient_id.clone(),
            patient_name: row.patient_name.clone(),
            date_offset_days: row.date_offset_days,
        })
    }

    /// Adds a patient who declined research use; true when new.
    pub fn opt_out_add(&mut self, patient_id: &str) -> bool {
        let Ok(patient_id) = normalise(patient_id) else {
            return false;
        };
        let added = self.body.opt_out.insert(patient_id.to_owned());
        self.mark(added)
    }

    /// Removes a patient from the opt-out list; true when they were on it.
    pub fn opt_out_remove(&mut self, patient_id: &str) -> bool {
        let Ok(patient_id) = normalise(patient_id) else {
            return false;
        };
        let removed = self.body.opt_out.remove(patient_id);
        self.mark(removed)
    }

    /// Whether the patient declined research use.
    pub fn is_opted_out(&self, patient_id: &str) -> bool {
        normalise(patient_id).is_ok_and(|id| self.body.opt_out.contains(id))
    }

    pub fn opt_out_count(&self) -> usize {
        self.body.opt_out.len()
    }

    /// The opted-out Patient IDs, sorted (PHI: for the operator's eyes only).
    pub fn opted_out(&self) -> impl Iterator<Item = &str> {
        self.body.opt_out.iter().map(String::as_str)
    }

    /// The cohort's keys, made on first use (UID secret from OS randomness,
    /// a new age X25519 key pair); marks the vault dirty when it makes them.
    pub fn cohort_keys(&mut self, cohort: &str) -> anyhow::Result<CohortKeys> {
        ensure!(!cohort.trim().is_empty(), "empty cohort name");
        if !self.body.cohorts.contains_key(cohort) {
            let uid_secret = Zeroizing::new(random::bytes::<32>()?);
            let identity = age::x25519::Identity::generate();
            let stored = StoredCohortKeys {
                uid_secret: hex::encode(&uid_secret[..]),
                staging_identity: identity.to_string().expose_secret().to_owned(),
                staging_recipient: identity.to_public().to_string(),
            };
            self.body.cohorts.insert(cohort.to_owned(), stored);
            self.dirty.set(true);
        }
        let stored = &self.body.cohorts[cohort];
        let uid_secret = hex::decode::<32>(&stored.uid_secret)
            .context("the research vault holds a damaged cohort UID secret")?;
        Ok(CohortKeys {
            uid_secret: *uid_secret,
            staging_identity: stored.staging_identity.clone(),
            staging_recipient: stored.staging_recipient.clone(),
        })
    }

    pub fn has_cohort_keys(&self, cohort: &str) -> bool {
        self.body.cohorts.contains_key(cohort)
    }

    /// Crypto-shredding: forgets the cohort's keys for good once the caller
    /// saves. True when there were keys to forget.
    pub fn shred_cohort_keys(&mut self, cohort: &str) -> bool {
        let shredded = self.body.cohorts.remove(cohort).is_some();
        self.mark(shredded)
    }

    /// Encrypts the vault with a fresh nonce and replaces the file
    /// atomically; clears the dirty mark.
    pub fn save(&self) -> anyhow::Result<()> {
        let body = Zeroizing::new(
            serde_json::to_vec(&self.body).context("serialising the research vault")?,
        );
        let sealed = file::seal(&self.header, &self.key, &body)?;
        file::write_atomic(&self.path, &sealed)
            .with_context(|| format!("saving the research vault {}", self.path.display()))?;
        self.dirty.set(false);
        Ok(())
    }

    /// Whether there are changes not yet saved.
    pub fn is_dirty(&self) -> bool {
        self.dirty.get()
    }

    /// How many patients have a pseudonym.
    pub fn patients(&self) -> usize {
        self.body.patients.len()
    }

    /// The research ID format chosen at creation.
    pub fn ids(&self) -> &ResearchIdFormat {
        &self.body.ids
    }

    /// The range new patients' date offsets are drawn from.
    pub fn date_offset_range(&self) -> RangeInclusive<i32> {
        self.body.date_offset_min..=self.body.date_offset_max
    }

    /// Sets the range for new patients' date offsets (existing patients
    /// keep theirs); it must hold a value other than 0. Marks dirty.
    pub fn set_date_offset_range(&mut self, range: RangeInclusive<i32>) -> anyhow::Result<()> {
        ensure!(
            !range.is_empty(),
            "the date offset range {range:?} is empty"
        );
        ensure!(
            range != (0..=0),
            "the date offset range must allow an offset other than 0"
        );
        self.body.date_offset_min = *range.start();
        self.body.date_offset_max = *range.end();
        self.dirty.set(true);
        Ok(())
    }

    /// The vault file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn mark(&self, changed: bool) -> bool {
        if changed {
            self.dirty.set(true);
        }
        changed
    }

    /// A research ID of the format not yet in use, and not equal to any
    /// Patient ID in the vault (so that the two cannot be confused).
    fn new_research_id(&self) -> anyhow::Result<String> {
        let ids = &self.body.ids;
        let capacity = ids.capacity();
        let used = self.by_research_id.len() as u64;
        let free = |id: &str| {
            !self.by_research_id.contains_key(id) && !self.body.patients.contains_key(id)
        };
        if used >= capacity {
            bail!(
                "the research ID format {ids} has room for {capacity} IDs and all are taken; create the vault with a format with more '#'"
            );
        }
        for _ in 0..1000 {
            let id = ids.random()?;
            if free(&id) {
                return Ok(id);
            }
        }
        if capacity <= ENUMERABLE {
            let candidates: Vec<String> = (0..capacity)
                .map(|n| ids.nth(n))
                .collect::<anyhow::Result<Vec<_>>>()?
                .into_iter()
                .filter(|id| free(id))
                .collect();
            if !candidates.is_empty() {
                let pick = random::below(candidates.len() as u64)? as usize;
                return Ok(candidates[pick].clone());
            }
        }
        bail!(
            "the research ID format {ids} is full ({used} of {capacity} IDs taken, the rest collide with Patient IDs); create the vault with a format with more '#'"
        )
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        if self.dirty.get() {
            tracing::warn!(
                path = %self.path.display(),
                "research vault closed with unsaved changes; they are lost"
            );
        }
    }
}

/// A Patient ID as the vault keys it: without the padding DICOM may leave
/// (spaces, NUL), and not empty.
fn normalise(patient_id: &str) -> anyhow::Result<&str> {
    let id = patient_id.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    ensure!(!id.is_empty(), "empty Patient ID");
    Ok(id)
}
