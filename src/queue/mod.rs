//! The analysis queue: one [`Job`] per stored instance, kept in a sled tree
//! keyed by a monotonically increasing id, so iteration order is arrival
//! order.
//!
//! Jobs are created only inside the store's commit transaction (see
//! `store::index`), together with the instance record, so an instance is
//! never acknowledged without its job, and a job never exists without its
//! file.

mod job;

pub use job::{Job, JobState, Priority};

use std::collections::BTreeMap;

/// Name of the sled tree holding jobs.
pub const JOBS_TREE: &str = "jobs";

/// Key of a job in the jobs tree: big-endian id, so keys sort by age.
pub fn job_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Read access to the jobs tree.
#[derive(Clone)]
pub struct JobQueue {
    jobs: sled::Tree,
}

impl JobQueue {
    pub fn new(jobs: sled::Tree) -> JobQueue {
        JobQueue { jobs }
    }

    /// All jobs in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = anyhow::Result<Job>> + '_ {
        self.jobs
            .iter()
            .values()
            .map(|value| Ok(serde_json::from_slice(&value?)?))
    }

    /// Number of jobs in each state, by state label.
    pub fn counts_by_state(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let mut counts = BTreeMap::new();
        for job in self.iter() {
            *counts.entry(job?.state.label().to_owned()).or_insert(0) += 1;
        }
        Ok(counts)
    }

    pub fn get(&self, id: u64) -> anyhow::Result<Option<Job>> {
        Ok(match self.jobs.get(job_key(id))? {
            Some(value) => Some(serde_json::from_slice(&value)?),
            None => None,
        })
    }
}
