//! The analysis queue: one [`Job`] per stored instance, kept in a sled tree
//! keyed by a monotonically increasing id, so iteration order is arrival
//! order, and moved through its states by the worker:
//!
//! ```text
//! pending → analysing → analysed | not-analysed(reason) | failed(reason)
//!              └──(error, attempts left)──→ pending, not before a delay
//! ```
//!
//! The retry delay grows fourfold with each attempt, so a transient
//! problem (a file briefly unreadable) gets time to clear, and a permanent
//! one reaches `failed` without spinning.
//!
//! Jobs are created only inside the store's commit transaction (see
//! `store::index`), together with the instance record, so an instance is
//! never acknowledged without its job. A job's result (findings and
//! timings) is written in the same transaction as its final state.

mod job;
mod signal;

pub use job::{Job, JobState, Priority};
pub use signal::WorkSignal;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sled::Transactional;
use sled::transaction::TransactionError;

use crate::incidents::unix_now;

/// Name of the sled tree holding jobs.
pub const JOBS_TREE: &str = "jobs";
/// Name of the sled tree holding each finished job's result.
pub const RESULTS_TREE: &str = "results";

/// Analysis attempts before a job is marked failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// Key of a job in the jobs tree: big-endian id, so keys sort by age.
pub fn job_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The jobs and results trees, and the signal that wakes workers.
#[derive(Clone)]
pub struct JobQueue {
    jobs: sled::Tree,
    results: sled::Tree,
    signal: Arc<WorkSignal>,
}

impl JobQueue {
    pub fn new(jobs: sled::Tree, results: sled::Tree, signal: Arc<WorkSignal>) -> JobQueue {
        JobQueue {
            jobs,
            results,
            signal,
        }
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

    /// The stored result of a finished job, as written by the worker.
    pub fn result(&self, id: u64) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.results.get(job_key(id))?.map(|v| v.to_vec()))
    }

    /// Wakes workers: new work may be pending.
    pub fn notify(&self) {
        self.signal.notify();
    }

    pub fn signal(&self) -> &WorkSignal {
        &self.signal
    }

    /// Takes the next pending job that is due — highest priority first,
    /// then oldest — and marks it analysing, counting the attempt. Safe
    /// against other workers: a job is claimed by compare-and-swap.
    pub fn claim_next(&self) -> anyhow::Result<Option<Job>> {
        let now = unix_now();
        loop {
            let mut best: Option<(Job, sled::IVec)> = None;
            for entry in self.jobs.iter() {
                let (_, value) = entry?;
                let job: Job = serde_json::from_slice(&value)?;
                if job.state == JobState::Pending
                    && job.not_before <= now
                    && best.as_ref().is_none_or(|(b, _)| job.priority > b.priority)
                {
                    best = Some((job, value));
                }
            }
            let Some((mut job, old)) = best else {
                return Ok(None);
            };
            job.state = JobState::Analysing;
            job.attempts += 1;
            job.updated_at = unix_now();
            let new = serde_json::to_vec(&job)?;
            if self
                .jobs
                .compare_and_swap(job_key(job.id), Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(job));
            }
        }
    }

    /// Records a job's final state and, for analysed jobs, its result, in
    /// one transaction; then flushes.
    pub fn finish(&self, job: &Job, state: JobState, result: Option<&[u8]>) -> anyhow::Result<()> {
        let final_state = !matches!(state, JobState::Pending | JobState::Analysing);
        let mut job = job.clone();
        job.state = state;
        job.updated_at = unix_now();
        let bytes = serde_json::to_vec(&job)?;
        let key = job_key(job.id);
        let outcome = (&self.jobs, &self.results).transaction(|(jobs, results)| {
            jobs.insert(&key, bytes.as_slice())?;
            if let Some(result) = result {
                results.insert(&key, result)?;
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {}
            Err(TransactionError::Abort(())) => unreachable!("never aborted"),
            Err(TransactionError::Storage(error)) => return Err(error.into()),
        }
        self.jobs.flush()?;
        if final_state {
            self.signal.job_finished();
        }
        Ok(())
    }

    /// Jobs not yet finished, counted at start-up and kept up to date.
    pub fn unfinished(&self) -> u64 {
        self.signal.unfinished()
    }

    /// After a failed attempt: back to pending while attempts remain, to be
    /// retried after `first_delay` × 4^(attempts − 1); else failed for good.
    /// Returns the new state.
    pub fn retry_or_fail(
        &self,
        job: &Job,
        reason: &str,
        first_delay: Duration,
    ) -> anyhow::Result<JobState> {
        let mut job = job.clone();
        let state = if job.attempts < MAX_ATTEMPTS {
            let factor = 4u64.saturating_pow(job.attempts.saturating_sub(1));
            job.not_before = unix_now() + first_delay.as_secs().saturating_mul(factor);
            JobState::Pending
        } else {
            JobState::Failed {
                reason: reason.to_owned(),
            }
        };
        self.finish(&job, state.clone(), None)?;
        Ok(state)
    }

    /// At start-up: jobs a previous run left analysing go back to pending.
    /// Returns how many.
    pub fn requeue_interrupted(&self) -> anyhow::Result<usize> {
        let mut requeued = 0;
        for job in self.iter().collect::<anyhow::Result<Vec<_>>>()? {
            if job.state == JobState::Analysing {
                let mut job = job;
                job.state = JobState::Pending;
                self.jobs
                    .insert(job_key(job.id), serde_json::to_vec(&job)?)?;
                requeued += 1;
            }
        }
        self.jobs.flush()?;
        Ok(requeued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> (tempfile::TempDir, JobQueue) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let queue = JobQueue::new(
            db.open_tree(JOBS_TREE).unwrap(),
            db.open_tree(RESULTS_TREE).unwrap(),
            Arc::new(WorkSignal::default()),
        );
        (dir, queue)
    }

    fn add(queue: &JobQueue, id: u64, priority: Priority) {
        let job = Job::pending(id, format!("1.2.{id}"), priority, 0);
        queue
            .jobs
            .insert(job_key(id), serde_json::to_vec(&job).unwrap())
            .unwrap();
    }

    #[test]
    fn claims_urgent_work_first_then_oldest() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Medium);
        add(&queue, 2, Priority::High);
        add(&queue, 3, Priority::Medium);
        let order: Vec<u64> = std::iter::from_fn(|| queue.claim_next().unwrap())
            .map(|j| j.id)
            .collect();
        assert_eq!(order, vec![2, 1, 3]);
        assert_eq!(queue.counts_by_state().unwrap()["analysing"], 3);
    }

    #[test]
    fn finishing_records_state_and_result_together() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Medium);
        let job = queue.claim_next().unwrap().unwrap();
        assert_eq!(job.attempts, 1);
        queue
            .finish(&job, JobState::Analysed, Some(b"{\"ok\":true}"))
            .unwrap();
        assert_eq!(queue.get(1).unwrap().unwrap().state, JobState::Analysed);
        assert_eq!(queue.result(1).unwrap().unwrap(), b"{\"ok\":true}");
    }

    #[test]
    fn failures_are_retried_a_bounded_number_of_times() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Low);
        for attempt in 1..=MAX_ATTEMPTS {
            let job = queue.claim_next().unwrap().unwrap();
            assert_eq!(job.attempts, attempt);
            let state = queue
                .retry_or_fail(&job, "decoder exploded", Duration::ZERO)
                .unwrap();
            assert_eq!(state == JobState::Pending, attempt < MAX_ATTEMPTS);
        }
        assert!(queue.claim_next().unwrap().is_none());
        assert_eq!(queue.get(1).unwrap().unwrap().state.label(), "failed");
    }

    #[test]
    fn a_retried_job_waits_for_its_delay() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Medium);
        let job = queue.claim_next().unwrap().unwrap();
        queue
            .retry_or_fail(&job, "file busy", Duration::from_secs(60))
            .unwrap();
        assert!(queue.claim_next().unwrap().is_none(), "not due yet");
        let waiting = queue.get(1).unwrap().unwrap();
        assert_eq!(waiting.state, JobState::Pending);
        assert!(waiting.not_before >= unix_now() + 59);
    }

    #[test]
    fn interrupted_jobs_are_requeued() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Medium);
        queue.claim_next().unwrap().unwrap();
        assert_eq!(queue.requeue_interrupted().unwrap(), 1);
        assert_eq!(queue.claim_next().unwrap().unwrap().attempts, 2);
    }
}
