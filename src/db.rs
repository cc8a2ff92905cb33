//! The sled database in the data directory, and the trees the stages share.
//!
//! One sled database holds every record the node keeps: instances, jobs,
//! result deliveries and the incident log. sled allows one process at a time, which is why
//! `chestnode status` asks a running server over its control socket instead
//! of opening the database itself (see `status`).

use std::path::{Path, PathBuf};

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

    pub fn open(data_dir: &Path) -> anyhow::Result<Database> {
        let path = Self::path_in(data_dir);
        let db = sled::Config::new()
            .path(&path)
            .open()
            .with_context(|| format!("opening the index at {}", path.display()))?;
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
        Ok(database)
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
