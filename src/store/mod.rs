//! Durable instance storage: Part-10 files under `instances/`, named by
//! validated UIDs, and their records in the sled index.
//!
//! The SCP hands us a byte stream and asks one question: "is this durable
//! yet?". [`Store::commit`] answers only after the file is fsynced, renamed
//! into place (with its directory fsynced) and the index transaction that
//! also creates its analysis job is flushed. Anything short of that leaves
//! no trace: temporary files are deleted on drop, and leftovers from a crash
//! are swept at start-up.

mod declared_lengths;
mod incoming;
pub(crate) mod results;
mod structure;
mod uid;

pub use crate::ledger::{Indexed, InstanceRecord};
pub(crate) use incoming::part10_header;
pub use incoming::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, Incoming, IncomingMeta};
pub use uid::{UidError, ValidUid};

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use anyhow::Context;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use crate::clock::unix_now;
use crate::ledger::Ledger;
use declared_lengths::ReadExtent;
use structure::Encoding;

/// How long a starting server waits for a `chestnode status` run to let go
/// of the index.
const INDEX_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Data sets up to this size are parsed completely before they are
/// accepted; larger ones are parsed up to Pixel Data, to bound memory.
const FULL_PARSE_LIMIT_BYTES: u64 = 32 << 20;

/// Why an instance was not stored. The SCP maps each to a DIMSE status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Disk full, below the free-space watermark, or an I/O failure.
    #[error("out of resources: {0}")]
    OutOfResources(String),
    /// The data set could not be parsed.
    #[error("data set cannot be parsed: {0}")]
    Unparsable(String),
    /// The data set contradicts its C-STORE request.
    #[error("data set does not match the request: {0}")]
    Mismatch(String),
    /// A UID needed to name the file is not a valid UID.
    #[error("invalid {0}: {1}")]
    InvalidUid(&'static str, UidError),
}

impl From<io::Error> for StoreError {
    fn from(error: io::Error) -> StoreError {
        StoreError::OutOfResources(error.to_string())
    }
}

/// What a successful commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Newly stored and queued for analysis.
    New(InstanceRecord),
    /// Already stored under this SOP Instance UID: the first copy is kept,
    /// the new one discarded, and no second job is created.
    Duplicate(InstanceRecord),
}

/// The store rooted at a data directory.
pub struct Store {
    data_dir: PathBuf,
    tmp_dir: PathBuf,
    instances_dir: PathBuf,
    min_free_bytes: u64,
    /// Refuse new instances while this many jobs are unfinished (0: never).
    max_queued_jobs: u64,
    db: Ledger,
    /// SOP Instance UIDs being committed right now, so two associations
    /// sending the same instance at once cannot both create it.
    committing: Mutex<HashSet<String>>,
    committed_one: Condvar,
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, and deletes
    /// temporary files a previous run left behind.
    pub fn open(
        data_dir: &Path,
        min_free_bytes: u64,
        max_queued_jobs: u64,
    ) -> anyhow::Result<Store> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        let tmp_dir = data_dir.join("tmp");
        let instances_dir = data_dir.join("instances");
        fs::create_dir_all(&tmp_dir)?;
        fs::create_dir_all(&instances_dir)?;
        // The lock first: the sweep below must never touch the transfers of
        // another server that is running on this directory.
        let db = Ledger::open_waiting(&data_dir, INDEX_LOCK_WAIT)?;
        let swept = sweep_temporary_files(&tmp_dir)?;
        if swept > 0 {
            tracing::warn!(
                files = swept,
                "removed unfinished transfers left by an earlier run"
            );
        }
        Ok(Store {
            data_dir,
            tmp_dir,
            instances_dir,
            min_free_bytes,
            max_queued_jobs,
            db,
            committing: Mutex::new(HashSet::new()),
            committed_one: Condvar::new(),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The index: instance, job and delivery records.
    pub fn ledger(&self) -> &Ledger {
        &self.db
    }

    /// Free bytes on the file system holding the data directory.
    pub fn free_bytes(&self) -> io::Result<u64> {
        fs2::available_space(&self.data_dir)
    }

    /// Whether free space is above the configured watermark.
    pub fn has_room(&self) -> bool {
        self.free_bytes()
            .map(|free| free >= self.min_free_bytes)
            .unwrap_or(false)
    }

    /// Starts receiving an instance into a temporary file.
    pub fn begin(&self, meta: IncomingMeta) -> Result<Incoming, StoreError> {
        if !self.has_room() {
            return Err(StoreError::OutOfResources(
                "free disk space below watermark".into(),
            ));
        }
        let queued = self.db.unfinished_jobs();
        if self.max_queued_jobs > 0 && queued >= self.max_queued_jobs {
            return Err(StoreError::OutOfResources(format!(
                "analysis queue full ({queued} images waiting)"
            )));
        }
        Ok(Incoming::create(&self.tmp_dir, meta)?)
    }

    /// Makes a fully received instance durable and queues it. Blocking:
    /// call from a blocking thread.
    pub fn commit(&self, incoming: Incoming) -> Result<Stored, StoreError> {
        let started = std::time::Instant::now();
        // The fsync waits on the disk while the check reads headers from
        // the page cache: do both at once.
        let (synced, identity) = std::thread::scope(|scope| {
            let check = scope.spawn(|| check_and_identify(&incoming));
            let synced = incoming.sync();
            (
                synced,
                check.join().expect("the data set check does not panic"),
            )
        });
        synced?;
        let identity = identity?;
        let size = incoming.file_bytes();
        let (temp_path, meta) = incoming.into_parts();
        let durable = started.elapsed();
        if identity.sop_instance_uid != meta.sop_instance_uid.as_str() {
            return Err(StoreError::Mismatch(
                "SOP Instance UID differs from Affected SOP Instance UID".into(),
            ));
        }
        if identity.sop_class_uid != meta.sop_class_uid {
            return Err(StoreError::Mismatch(
                "SOP Class UID differs from Affected SOP Class UID".into(),
            ));
        }
        let study = ValidUid::parse(&identity.study_instance_uid)
            .map_err(|e| StoreError::InvalidUid("Study Instance UID", e))?;
        let series = ValidUid::parse(&identity.series_instance_uid)
            .map_err(|e| StoreError::InvalidUid("Series Instance UID", e))?;

        let _guard = self.lock_uid(meta.sop_instance_uid.as_str());
        if let Some(existing) = self
            .db
            .find_instance(meta.sop_instance_uid.as_str())
            .map_err(|e| StoreError::OutOfResources(e.to_string()))?
        {
            return Ok(Stored::Duplicate(existing));
        }
        let relative = Path::new("instances")
            .join(study.as_str())
            .join(series.as_str())
            .join(format!("{}.dcm", meta.sop_instance_uid));
        let destination = self.data_dir.join(&relative);
        let series_dir = destination.parent().expect("has a parent");
        create_dir_durably(series_dir, &self.instances_dir)?;
        temp_path.persist(&destination).map_err(|e| e.error)?;
        File::open(series_dir)?.sync_all()?;
        let renamed = started.elapsed();

        let record = InstanceRecord {
            sop_instance_uid: meta.sop_instance_uid.to_string(),
            sop_class_uid: meta.sop_class_uid,
            study_instance_uid: study.to_string(),
            series_instance_uid: series.to_string(),
            transfer_syntax_uid: meta.transfer_syntax_uid,
            path: relative.to_string_lossy().into_owned(),
            size_bytes: size,
            calling_ae_title: meta.calling_ae_title,
            received_at: unix_now(),
            job_id: 0,
        };
        let indexed = self.db.insert_with_job(record, meta.priority);
        tracing::debug!(?durable, ?renamed, total = ?started.elapsed(), "commit timings");
        match indexed {
            Ok(Indexed::New(record)) => {
                self.db.work_available().notify();
                Ok(Stored::New(record))
            }
            Ok(Indexed::Duplicate(record)) => Ok(Stored::Duplicate(record)),
            Err(error) => {
                // Not indexed means not received: take the file back out so
                // nothing unacknowledged stays in instances/.
                let _ = fs::remove_file(&destination);
                Err(StoreError::OutOfResources(format!("index: {error:#}")))
            }
        }
    }

    /// Waits until no other commit holds this SOP Instance UID, then holds
    /// it until the guard drops.
    fn lock_uid(&self, uid: &str) -> UidGuard<'_> {
        let mut committing = self.committing.lock().expect("not poisoned");
        while committing.contains(uid) {
            committing = self.committed_one.wait(committing).expect("not poisoned");
        }
        committing.insert(uid.to_owned());
        UidGuard {
            store: self,
            uid: uid.to_owned(),
        }
    }
}

struct UidGuard<'a> {
    store: &'a Store,
    uid: String,
}

impl Drop for UidGuard<'_> {
    fn drop(&mut self) {
        let mut committing = self.store.committing.lock().expect("not poisoned");
        committing.remove(&self.uid);
        self.store.committed_one.notify_all();
    }
}

/// The identifying attributes read back from a received data set.
pub(crate) struct Identity {
    sop_class_uid: String,
    sop_instance_uid: String,
    study_instance_uid: String,
    series_instance_uid: String,
}

/// Checks the received data set is well formed, and reads its identity.
fn check_and_identify(incoming: &Incoming) -> Result<Identity, StoreError> {
    let file = File::open(incoming.path())?;
    identify_received(
        file,
        incoming.file_bytes() - incoming.data_set_bytes(),
        &incoming.meta().transfer_syntax_uid,
    )
}

/// The check behind [`Store::commit`], on any seekable source holding a
/// Part-10 file whose data set (as received) starts at `data_set_start`.
///
/// In the little-endian syntaxes the attributes before Pixel Data are
/// parsed and the rest is walked structurally (`structure`), so pixel data
/// is never read back. Other syntaxes (deflated, big endian) are parsed in
/// full up to [`FULL_PARSE_LIMIT_BYTES`], and up to Pixel Data beyond; a
/// deflated data set is inflated and walked first as well.
pub(crate) fn identify_received<R: io::Read + Seek>(
    mut source: R,
    data_set_start: u64,
    transfer_syntax_uid: &str,
) -> Result<Identity, StoreError> {
    let file_bytes = source.seek(SeekFrom::End(0))?;
    let walkable = Encoding::of_transfer_syntax(transfer_syntax_uid);
    source.seek(SeekFrom::Start(data_set_start))?;
    structure::check_data_set_in(&mut source, transfer_syntax_uid)
        .map_err(|e| StoreError::Unparsable(e.to_string()))?;
    let parse_whole = walkable.is_none() && file_bytes <= FULL_PARSE_LIMIT_BYTES;
    let extent = if parse_whole {
        ReadExtent::Whole
    } else {
        ReadExtent::Until(tags::PIXEL_DATA)
    };
    dry_run_parser(
        &mut source,
        data_set_start,
        file_bytes.saturating_sub(data_set_start),
        transfer_syntax_uid,
        extent,
    )?;
    let options = OpenFileOptions::new();
    let options = if parse_whole {
        options
    } else {
        options.read_until(tags::PIXEL_DATA)
    };
    let object = options
        .from_reader(source)
        .map_err(|e| StoreError::Unparsable(e.to_string()))?;
    let text = |tag, name: &str| -> Result<String, StoreError> {
        object
            .element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .ok_or_else(|| StoreError::Unparsable(format!("missing {name}")))
    };
    Ok(Identity {
        sop_class_uid: text(tags::SOP_CLASS_UID, "SOP Class UID")?,
        sop_instance_uid: text(tags::SOP_INSTANCE_UID, "SOP Instance UID")?,
        study_instance_uid: text(tags::STUDY_INSTANCE_UID, "Study Instance UID")?,
        series_instance_uid: text(tags::SERIES_INSTANCE_UID, "Series Instance UID")?,
    })
}

/// Reads a whole Part-10 file from any source, once its structure shows
/// that no element claims more bytes than the source holds: the walk in
/// the little-endian syntaxes (deflated or not), then a dry run of the
/// parser itself in every syntax (`declared_lengths`). The parser reserves
/// each declared length before reading,
/// so without the check a few bytes could cost gigabytes.
pub fn open_checked<R: io::Read + Seek>(mut source: R) -> Result<DefaultDicomObject, StoreError> {
    let layout =
        structure::check_part10(&mut source).map_err(|e| StoreError::Unparsable(e.to_string()))?;
    dry_run_parser(
        &mut source,
        layout.data_set_start,
        layout.data_set_bytes,
        &layout.transfer_syntax,
        ReadExtent::Whole,
    )?;
    OpenFileOptions::new()
        .from_reader(source)
        .map_err(|e| StoreError::Unparsable(e.to_string()))
}

/// Runs the parser dry (`declared_lengths`) over the data set that starts
/// at `data_set_start` and runs `data_set_bytes`, then rewinds the source
/// for the real parse.
fn dry_run_parser<R: io::Read + Seek>(
    source: &mut R,
    data_set_start: u64,
    data_set_bytes: u64,
    transfer_syntax_uid: &str,
    extent: ReadExtent,
) -> Result<(), StoreError> {
    source.seek(SeekFrom::Start(data_set_start))?;
    declared_lengths::check_declared_lengths(
        io::Read::by_ref(source),
        data_set_bytes,
        transfer_syntax_uid,
        extent,
    )
    .map_err(|e| StoreError::Unparsable(e.to_string()))?;
    source.seek(SeekFrom::Start(0))?;
    Ok(())
}

/// Creates `dir` and any missing parents below `root`, fsyncing each parent
/// whose entries changed, so the new directories survive a crash.
fn create_dir_durably(dir: &Path, root: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().expect("below root");
    if parent != root {
        create_dir_durably(parent, root)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => File::open(parent)?.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes every file in the temporary directory; returns how many.
fn sweep_temporary_files(tmp_dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(tmp_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
