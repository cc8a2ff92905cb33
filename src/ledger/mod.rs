//! The ledger: the node's one sled database, and the only module that
//! touches its trees.
//!
//! Every record the node keeps lives here: one per stored instance, one job
//! per instance with its analysis result, one delivery per result object
//! and destination, and the incident log. The stages never see a
//! `sled::Tree`; they call the ledger's methods, each of which is one
//! transaction over the trees it needs, so the rules that tie records
//! together are kept in one place:
//!
//! | tree        | written by (all in this module)                           |
//! |-------------|-----------------------------------------------------------|
//! | `instances` | [`Ledger::insert_with_job`], [`Ledger::forget`]           |
//! | `jobs`      | the same, [`JobQueue`] (claim, finish, retry) and every delivery change ([`Deliveries`]) |
//! | `results`   | [`JobQueue::finish`], [`Ledger::forget`]                  |
//! | `outbox`    | [`Deliveries`], [`Ledger::forget`]                        |
//! | `incidents` | [`IncidentLog`]                                           |
//! | `series`, `series_members`, `series_open` | [`Ledger::insert_with_job`], [`Ledger::forget`], [`SeriesIndex::mark_stable`] |
//! | `cohorts`   | [`Cohorts`] (the research wing's stored cohort versions)  |
//! | `annotations` | [`Annotations`] (doctors' annotations, versioned)      |
//! | `users`     | [`Users`] (the annotator's accounts)                      |
//!
//! The counts that `chestnode status`, `/metrics` and the backlog limit
//! read are kept up to date as records change (`counts`), so reading them
//! costs the same with a hundred jobs as with a million.
//!
//! sled allows one process at a time, which is why `chestnode status` asks
//! a running server over its control socket instead of opening the
//! database itself (see `status`). The lock is held by a server for its
//! whole life, but by `chestnode status` or `retry` only for a moment; so a
//! server that finds the index locked waits a little before giving up
//! ([`Ledger::open_waiting`]), and a client can tell "locked" from "broken"
//! ([`Ledger::try_open`]).

mod annotations;
mod cohorts;
mod counts;
mod deliveries;
mod delivery;
mod incidents;
mod instances;
mod jobs;
mod retention;
mod series;
mod users;
mod views;

pub use annotations::{Annotations, StoredAnnotation};
pub use cohorts::Cohorts;
pub use counts::DestinationBacklog;
pub use deliveries::{Deliveries, NewDelivery};
pub use delivery::{Delivery, DeliveryState};
pub use incidents::{Incident, IncidentLog};
pub use instances::{Indexed, InstanceRecord};
pub use jobs::JobQueue;
pub use retention::Removable;
pub use series::{SeriesIndex, SeriesRecord};
pub use users::Users;
pub use views::IndexCheck;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::queue::WorkSignal;
use counts::Counts;

const INSTANCES_TREE: &str = "instances";
const JOBS_TREE: &str = "jobs";
const RESULTS_TREE: &str = "results";
const OUTBOX_TREE: &str = "outbox";
const SERIES_TREE: &str = "series";
const SERIES_MEMBERS_TREE: &str = "series_members";
const SERIES_OPEN_TREE: &str = "series_open";
const COHORTS_TREE: &str = "cohorts";
const ANNOTATIONS_TREE: &str = "annotations";
const USERS_TREE: &str = "users";

/// The open database: its trees, the counts kept over them, and the signal
/// that wakes analysis workers when a job is created or requeued.
#[derive(Clone)]
pub struct Ledger {
    db: sled::Db,
    instances: sled::Tree,
    jobs: sled::Tree,
    results: sled::Tree,
    outbox: sled::Tree,
    series: sled::Tree,
    series_members: sled::Tree,
    series_open: sled::Tree,
    cohorts: sled::Tree,
    annotations: sled::Tree,
    users: sled::Tree,
    incidents: IncidentLog,
    counts: Arc<Counts>,
    work_available: Arc<WorkSignal>,
}

impl Ledger {
    /// Where the database lives inside a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("index.sled")
    }

    /// Opens the index, failing at once if another process holds it.
    pub fn open(data_dir: &Path) -> anyhow::Result<Ledger> {
        Self::open_waiting(data_dir, Duration::ZERO)
    }

    /// Opens the index, waiting up to `wait` while another process (a
    /// `chestnode status` run, say) holds its lock.
    pub fn open_waiting(data_dir: &Path, wait: Duration) -> anyhow::Result<Ledger> {
        let deadline = Instant::now() + wait;
        let mut announced = false;
        loop {
            if let Some(ledger) = Self::try_open(data_dir)? {
                return Ok(ledger);
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "the index at {} is locked by another process; is another chestnode \
                     server using this data directory?",
                    Self::path_in(data_dir).display()
                );
            }
            if !announced {
                tracing::info!("the index is locked by another process; waiting for it");
                announced = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens the index; `None` when another process holds its lock. Counts
    /// the records once, to start the maintained counts from.
    pub fn try_open(data_dir: &Path) -> anyhow::Result<Option<Ledger>> {
        let path = Self::path_in(data_dir);
        let db = match sled::Config::new().path(&path).open() {
            Ok(db) => db,
            Err(error) if is_lock_held(&error) => return Ok(None),
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("opening the index at {}", path.display()));
            }
        };
        let instances = db.open_tree(INSTANCES_TREE)?;
        let jobs = db.open_tree(JOBS_TREE)?;
        let outbox = db.open_tree(OUTBOX_TREE)?;
        let counts = Arc::new(Counts::tally(&instances, &jobs, &outbox)?);
        let work_available = Arc::new(WorkSignal::default());
        let ledger = Ledger {
            results: db.open_tree(RESULTS_TREE)?,
            series: db.open_tree(SERIES_TREE)?,
            series_members: db.open_tree(SERIES_MEMBERS_TREE)?,
            series_open: db.open_tree(SERIES_OPEN_TREE)?,
            cohorts: db.open_tree(COHORTS_TREE)?,
            annotations: db.open_tree(ANNOTATIONS_TREE)?,
            users: db.open_tree(USERS_TREE)?,
            incidents: IncidentLog::open(&db)?,
            instances,
            jobs,
            outbox,
            counts,
            work_available,
            db,
        };
        let backfilled = SeriesIndex::backfill(&ledger)?;
        if backfilled > 0 {
            tracing::info!(
                series = backfilled,
                "series index built from the instance records"
            );
        }
        Ok(Some(ledger))
    }

    /// The analysis jobs: claim, finish, retry.
    pub fn queue(&self) -> JobQueue {
        JobQueue::new(self.clone())
    }

    /// The result deliveries, one per object and destination.
    pub fn deliveries(&self) -> Deliveries {
        Deliveries::new(self.clone())
    }

    /// The series and their completion.
    pub fn series(&self) -> SeriesIndex {
        SeriesIndex::new(self.clone())
    }

    /// The research wing's stored cohorts.
    pub fn cohorts(&self) -> Cohorts {
        Cohorts::new(self.clone())
    }

    /// Doctors' annotations of stored images.
    pub fn annotations(&self) -> Annotations {
        Annotations::new(self.clone())
    }

    /// The annotator's accounts.
    pub fn users(&self) -> Users {
        Users::new(self.clone())
    }

    /// The recent errors `chestnode status` shows.
    pub fn incidents(&self) -> &IncidentLog {
        &self.incidents
    }

    /// Wakes analysis workers, and counts the jobs still to analyse for
    /// the backlog limit.
    pub fn work_available(&self) -> &Arc<WorkSignal> {
        &self.work_available
    }

    /// Forces everything written so far to disk.
    pub fn flush(&self) -> anyhow::Result<()> {
        self.db.flush().context("flushing the index")?;
        Ok(())
    }
}

/// Whether sled refused to open because another process holds the lock.
/// sled 0.34 reports this only as an I/O error with its own wording.
fn is_lock_held(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Key of a job (and its result) in the jobs and results trees: the
/// big-endian id, so keys sort by age.
fn job_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Fills a ledger quickly for tests that need a large index: `count`
/// instances, each with a received job, written in batches without the
/// per-instance flush of [`Ledger::insert_with_job`]. The ledger must be
/// reopened afterwards, so its counts are tallied from what was written.
#[cfg(test)]
pub(crate) fn fill_for_test(data_dir: &Path, count: u64) {
    use crate::queue::{Job, Priority};
    let db = sled::Config::new()
        .path(Ledger::path_in(data_dir))
        .open()
        .unwrap();
    let instances = db.open_tree(INSTANCES_TREE).unwrap();
    let jobs = db.open_tree(JOBS_TREE).unwrap();
    let mut next = 0;
    while next < count {
        let mut instance_batch = sled::Batch::default();
        let mut job_batch = sled::Batch::default();
        for id in next..(next + 10_000).min(count) {
            let uid = format!("1.2.826.0.1.{id}");
            let record = InstanceRecord {
                sop_instance_uid: uid.clone(),
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.1".into(),
                study_instance_uid: "1.2".into(),
                series_instance_uid: "1.2.3".into(),
                transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
                path: format!("instances/1.2/1.2.3/{uid}.dcm"),
                size_bytes: 1000,
                calling_ae_title: "MODALITY".into(),
                received_at: 1,
                job_id: id,
            };
            let job = Job::received(id, uid.clone(), Priority::Medium, 1);
            instance_batch.insert(uid.as_bytes(), serde_json::to_vec(&record).unwrap());
            job_batch.insert(&job_key(id), serde_json::to_vec(&job).unwrap());
        }
        instances.apply_batch(instance_batch).unwrap();
        jobs.apply_batch(job_batch).unwrap();
        next += 10_000;
    }
    db.flush().unwrap();
}

#[cfg(test)]
mod tests;
