//! The sled database in the data directory, and the trees the stages share.
//!
//! One sled database holds every record the node keeps: instances, jobs,
//! result deliveries and the incident log. sled allows one process at a time, which is why
//! `chestnode status` asks a running server over its control socket instead
//! of opening the database itself (see `status`).
//!
//! The lock is held by a server for its whole life, but by `chestnode
//! status` or `retry` only for a moment; so a server that finds the index
//! locked waits a little before giving up ([`Database::open_waiting`]),
//! and a client can tell "locked" from "broken" ([`Database::try_open`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::incidents::IncidentLog;
use crate::outbox::{DeliverySignal, OUTBOX_TREE, Outbox};
use std::sync::Arc;

use crate::queue::{JOBS_TREE, JobQueue, RESULTS_TREE, WorkSignal};

/// Name of the sled tree holding one record per stored instance.
pub const INSTANCES_TREE: &str = "instances";

/// The open database and its trees.
#[derive(Clone)]
pub struct Database {
    pub db: sled::Db,
    pub instances: sled::Tree,
    pub jobs: sled::Tree,
    pub results: sled::Tree,
    pub incidents: IncidentLog,
    /// Wakes analysis workers when a job is created.
    pub work_available: Arc<WorkSignal>,
    /// One record per result object and destination.
    pub outbox: sled::Tree,
    /// Wakes the outbox senders when deliveries are enqueued or retried.
    pub deliveries_due: Arc<DeliverySignal>,
}

impl Database {
    /// Where the database lives inside a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("index.sled")
    }

    /// Opens the index, failing at once if another process holds it.
    pub fn open(data_dir: &Path) -> anyhow::Result<Database> {
        Self::open_waiting(data_dir, Duration::ZERO)
    }

    /// Opens the index, waiting up to `wait` while another process (a
    /// `chestnode status` run, say) holds its lock.
    pub fn open_waiting(data_dir: &Path, wait: Duration) -> anyhow::Result<Database> {
        let deadline = Instant::now() + wait;
        let mut announced = false;
        loop {
            if let Some(database) = Self::try_open(data_dir)? {
                return Ok(database);
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

    /// Opens the index; `None` when another process holds its lock.
    pub fn try_open(data_dir: &Path) -> anyhow::Result<Option<Database>> {
        let path = Self::path_in(data_dir);
        let db = match sled::Config::new().path(&path).open() {
            Ok(db) => db,
            Err(error) if is_lock_held(&error) => return Ok(None),
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("opening the index at {}", path.display()));
            }
        };
        let database = Database {
            instances: db.open_tree(INSTANCES_TREE)?,
            jobs: db.open_tree(JOBS_TREE)?,
            results: db.open_tree(RESULTS_TREE)?,
            work_available: Arc::new(WorkSignal::default()),
            outbox: db.open_tree(OUTBOX_TREE)?,
            deliveries_due: Arc::new(DeliverySignal::default()),
            incidents: IncidentLog::open(&db)?,
            db,
        };
        database.count_unfinished()?;
        Ok(Some(database))
    }

    /// Counts the jobs left unfinished in the index, for the backlog limit.
    fn count_unfinished(&self) -> anyhow::Result<()> {
        let mut unfinished = 0;
        for job in self.queue().iter() {
            if job?.state.awaits_analysis() {
                unfinished += 1;
            }
        }
        self.work_available.set_unfinished(unfinished);
        Ok(())
    }

    pub fn queue(&self) -> JobQueue {
        JobQueue::new(
            self.jobs.clone(),
            self.results.clone(),
            self.work_available.clone(),
        )
    }

    pub fn outbox(&self) -> Outbox {
        Outbox::new(
            self.outbox.clone(),
            self.jobs.clone(),
            self.deliveries_due.clone(),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_index_is_reported_as_locked_not_as_broken() {
        let dir = tempfile::tempdir().unwrap();
        let holder = Database::open(dir.path()).unwrap();
        assert!(Database::try_open(dir.path()).unwrap().is_none());
        let error = Database::open_waiting(dir.path(), Duration::from_millis(250))
            .err()
            .expect("the lock is held");
        assert!(error.to_string().contains("locked by another process"));
        drop(holder);
        assert!(Database::try_open(dir.path()).unwrap().is_some());
    }

    #[test]
    fn a_broken_index_is_an_error_at_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(Database::path_in(dir.path()), b"not a directory").unwrap();
        assert!(Database::try_open(dir.path()).is_err());
    }
}
