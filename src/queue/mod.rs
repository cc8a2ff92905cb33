//! The analysis queue: one [`Job`] per stored instance, kept in a sled tree
//! keyed by a monotonically increasing id, so iteration order is arrival
//! order, and moved through its states by the worker:
//!
//! ```text
//! received → analysing → analysed → delivering → delivered
//!               │                       └──→ dead-letter(reason)
//!               ├──→ not-analysed(reason) | dead-letter(reason)
//!               └──(error, attempts left)──→ received, not before a delay
//! ```
//!
//! (see [`JobState`]; the delivering half is kept by the outbox through
//! [`progress`]). The retry delay grows fourfold with each attempt, so a
//! transient problem (a file briefly unreadable) gets time to clear, and a
//! permanent one reaches `dead-letter` without spinning.
//!
//! Workers take urgent work first ([`Priority`], from the C-STORE Priority
//! field or the calling AE title), but a job gains one priority level for
//! every `priority.aging_secs` it waits, so routine work is never starved.
//!
//! Jobs are created only inside the store's commit transaction (see
//! `store::index`), together with the instance record, so an instance is
//! never acknowledged without its job. A job's result (findings and
//! timings) is written in the same transaction as its final state.

mod job;
pub mod priority;
pub mod progress;
mod signal;

pub use job::{Job, JobState};
pub use priority::{Priority, PriorityConfig};
pub use progress::{DeliveryUpdate, DestinationProgress, DestinationState};
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

    /// The jobs tree, for transactions that change a job together with
    /// another record (the outbox's deliveries).
    pub fn tree(&self) -> &sled::Tree {
        &self.jobs
    }

    /// Takes the next received job that is due — highest priority first,
    /// then oldest — and marks it analysing, counting the attempt. A job
    /// gains one level for every `aging` it has waited (none if zero), so
    /// a stream of urgent work delays routine work but never starves it.
    /// Safe against other workers: a job is claimed by compare-and-swap.
    pub fn claim_next(&self, aging: Duration) -> anyhow::Result<Option<Job>> {
        let now = unix_now();
        let rank = |job: &Job| {
            let waited = now.saturating_sub(job.created_at);
            let aged = waited.checked_div(aging.as_secs()).unwrap_or(0);
            job.priority.rank().saturating_add(aged)
        };
        loop {
            let mut best: Option<(u64, Job, sled::IVec)> = None;
            for entry in self.jobs.iter() {
                let (_, value) = entry?;
                let job: Job = serde_json::from_slice(&value)?;
                if job.state == JobState::Received && job.not_before <= now {
                    let job_rank = rank(&job);
                    if best.as_ref().is_none_or(|(b, _, _)| job_rank > *b) {
                        best = Some((job_rank, job, value));
                    }
                }
            }
            let best = best.map(|(_, job, value)| (job, value));
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

    /// Records how an analysis attempt ended and, for analysed jobs, the
    /// result, in one transaction; then flushes. The stored record is
    /// read inside the transaction, so delivery progress the outbox
    /// recorded meanwhile (results are queued before the job is finished)
    /// is kept, and an analysed job whose results are queued goes straight
    /// to `delivering`.
    pub fn finish(&self, job: &Job, state: JobState, result: Option<&[u8]>) -> anyhow::Result<()> {
        let final_state = !state.awaits_analysis();
        let key = job_key(job.id);
        let outcome = (&self.jobs, &self.results).transaction(|(jobs, results)| {
            let mut stored: Job = match jobs.get(key)? {
                Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| job.clone()),
                None => job.clone(),
            };
            let now = unix_now();
            stored.attempts = job.attempts;
            stored.not_before = job.not_before;
            stored.updated_at = now;
            match &state {
                JobState::Analysed => stored.finish_analysis(now),
                JobState::NotAnalysed { .. } => {
                    stored.state = state.clone();
                    stored.analysed_at = Some(now);
                }
                other => stored.state = other.clone(),
            }
            let bytes = serde_json::to_vec(&stored).expect("serialisable");
            jobs.insert(&key, bytes)?;
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

    /// After a failed attempt: back to received while attempts remain, to
    /// be retried after `first_delay` × 4^(attempts − 1); else dead-letter.
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
            JobState::Received
        } else {
            JobState::DeadLetter {
                reason: reason.to_owned(),
            }
        };
        self.finish(&job, state.clone(), None)?;
        Ok(state)
    }

    /// At start-up: jobs a previous run left analysing go back to received.
    /// Returns how many.
    pub fn requeue_interrupted(&self) -> anyhow::Result<usize> {
        let mut requeued = 0;
        for job in self.iter().collect::<anyhow::Result<Vec<_>>>()? {
            if job.state == JobState::Analysing {
                let mut job = job;
                job.state = JobState::Received;
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
        let job = Job::received(id, format!("1.2.{id}"), priority, 0);
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
        let order: Vec<u64> = std::iter::from_fn(|| queue.claim_next(Duration::ZERO).unwrap())
            .map(|j| j.id)
            .collect();
        assert_eq!(order, vec![2, 1, 3]);
        assert_eq!(queue.counts_by_state().unwrap()["analysing"], 3);
    }

    #[test]
    fn waiting_routine_work_overtakes_fresh_urgent_work() {
        let (_dir, queue) = queue();
        let now = unix_now();
        let mut routine = Job::received(1, "1.2.1".into(), Priority::Low, now - 650);
        routine.created_at = now - 650;
        let urgent = Job::received(2, "1.2.2".into(), Priority::High, now);
        for job in [&routine, &urgent] {
            let bytes = serde_json::to_vec(job).unwrap();
            queue.jobs.insert(job_key(job.id), bytes).unwrap();
        }
        // Waiting 650 s at one level per 300 s: low + 2 = high; older wins.
        let aging = Duration::from_secs(300);
        assert_eq!(queue.claim_next(aging).unwrap().unwrap().id, 1);
        assert_eq!(queue.claim_next(aging).unwrap().unwrap().id, 2);
    }

    #[test]
    fn finishing_keeps_delivery_progress_recorded_meanwhile() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Medium);
        let claimed = queue.claim_next(Duration::ZERO).unwrap().unwrap();
        // The publisher queues a result while the job is analysing.
        let mut stored = queue.get(1).unwrap().unwrap();
        stored.record_delivery(
            &DeliveryUpdate {
                destination: "pacs",
                sop_instance_uid: "9.9",
                state: DestinationState::Delivering,
                attempted: false,
                error: None,
            },
            unix_now(),
        );
        let bytes = serde_json::to_vec(&stored).unwrap();
        queue.jobs.insert(job_key(1), bytes).unwrap();
        queue
            .finish(&claimed, JobState::Analysed, Some(b"{}"))
            .unwrap();
        let finished = queue.get(1).unwrap().unwrap();
        assert_eq!(finished.state, JobState::Delivering);
        assert_eq!(finished.attempts, 1);
        assert!(finished.analysed_at.is_some());
        assert_eq!(finished.deliveries["pacs"].objects.len(), 1);
    }

    #[test]
    fn finishing_records_state_and_result_together() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Medium);
        let job = queue.claim_next(Duration::ZERO).unwrap().unwrap();
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
            let job = queue.claim_next(Duration::ZERO).unwrap().unwrap();
            assert_eq!(job.attempts, attempt);
            let state = queue
                .retry_or_fail(&job, "decoder exploded", Duration::ZERO)
                .unwrap();
            assert_eq!(state == JobState::Received, attempt < MAX_ATTEMPTS);
        }
        assert!(queue.claim_next(Duration::ZERO).unwrap().is_none());
        assert_eq!(queue.get(1).unwrap().unwrap().state.label(), "dead-letter");
    }

    #[test]
    fn a_retried_job_waits_for_its_delay() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Medium);
        let job = queue.claim_next(Duration::ZERO).unwrap().unwrap();
        queue
            .retry_or_fail(&job, "file busy", Duration::from_secs(60))
            .unwrap();
        assert!(
            queue.claim_next(Duration::ZERO).unwrap().is_none(),
            "not due yet"
        );
        let waiting = queue.get(1).unwrap().unwrap();
        assert_eq!(waiting.state, JobState::Received);
        assert!(waiting.not_before >= unix_now() + 59);
    }

    #[test]
    fn interrupted_jobs_are_requeued() {
        let (_dir, queue) = queue();
        add(&queue, 1, Priority::Medium);
        queue.claim_next(Duration::ZERO).unwrap().unwrap();
        assert_eq!(queue.requeue_interrupted().unwrap(), 1);
        assert_eq!(
            queue.claim_next(Duration::ZERO).unwrap().unwrap().attempts,
            2
        );
    }
}
