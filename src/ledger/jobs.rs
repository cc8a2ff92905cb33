//! The analysis jobs as stored: claiming the next due job, recording how
//! an attempt ended (with the result, in one transaction), retrying with a
//! growing delay, and requeueing what a stopped node left half done.
//!
//! Which job is due and in what order is the queue's policy
//! ([`crate::queue`]: states, priorities, ageing); this file is how those
//! rules are applied to the records, atomically.

use std::time::Duration;

use sled::Transactional;
use sled::transaction::TransactionError;

use super::counts::Change;
use super::{Ledger, job_key};
use crate::clock::unix_now;
use crate::queue::{Job, JobState, MAX_ATTEMPTS, PublishedObject, WorkSignal};

/// The jobs and results trees, through the ledger.
#[derive(Clone)]
pub struct JobQueue {
    ledger: Ledger,
}

impl JobQueue {
    pub(super) fn new(ledger: Ledger) -> JobQueue {
        JobQueue { ledger }
    }

    /// All jobs in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = anyhow::Result<Job>> + '_ {
        self.ledger
            .jobs
            .iter()
            .values()
            .map(|value| Ok(serde_json::from_slice(&value?)?))
    }

    /// The newest jobs first.
    pub fn newest_first(&self) -> impl Iterator<Item = anyhow::Result<Job>> + '_ {
        self.ledger.jobs.iter().rev().map(|entry| {
            let (_, value) = entry?;
            Ok(serde_json::from_slice(&value)?)
        })
    }

    pub fn get(&self, id: u64) -> anyhow::Result<Option<Job>> {
        Ok(match self.ledger.jobs.get(job_key(id))? {
            Some(value) => Some(serde_json::from_slice(&value)?),
            None => None,
        })
    }

    /// The stored result of a finished job, as written by the worker.
    pub fn result(&self, id: u64) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.ledger.results.get(job_key(id))?.map(|v| v.to_vec()))
    }

    /// The result objects made for a job: from the job record, or, for
    /// jobs analysed by versions that kept them inside the stored result,
    /// from there.
    pub fn published(&self, job: &Job) -> anyhow::Result<Vec<PublishedObject>> {
        if !job.published.is_empty() {
            return Ok(job.published.clone());
        }
        #[derive(serde::Deserialize)]
        struct Legacy {
            #[serde(default)]
            published: Vec<PublishedObject>,
        }
        Ok(self
            .result(job.id)?
            .and_then(|bytes| serde_json::from_slice::<Legacy>(&bytes).ok())
            .map(|legacy| legacy.published)
            .unwrap_or_default())
    }

    /// Wakes workers: new work may be pending.
    pub fn notify(&self) {
        self.signal().notify();
    }

    pub fn signal(&self) -> &WorkSignal {
        &self.ledger.work_available
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
            for entry in self.ledger.jobs.iter() {
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
                .ledger
                .jobs
                .compare_and_swap(job_key(job.id), Some(&old), Some(new))?
                .is_ok()
            {
                self.ledger
                    .counts
                    .apply([Change::job(Some(old.as_ref()), Some(&job))]);
                return Ok(Some(job));
            }
        }
    }

    /// Records how an analysis attempt ended and, for analysed jobs, the
    /// result, in one transaction; then flushes. The stored record is
    /// read inside the transaction, so delivery progress the outbox
    /// recorded meanwhile (results are queued before the job is finished)
    /// is kept, and an analysed job whose results are queued goes straight
    /// to `delivering`. The caller's `attempts`, `not_before` and
    /// `published` (the result objects made) are kept.
    pub fn finish(&self, job: &Job, state: JobState, result: Option<&[u8]>) -> anyhow::Result<()> {
        let key = job_key(job.id);
        let ledger = &self.ledger;
        let outcome = (&ledger.jobs, &ledger.results).transaction(|(jobs, results)| {
            let before = jobs.get(key)?;
            let mut stored: Job = match &before {
                Some(bytes) => serde_json::from_slice(bytes).unwrap_or_else(|_| job.clone()),
                None => job.clone(),
            };
            let now = unix_now();
            stored.attempts = job.attempts;
            stored.not_before = job.not_before;
            stored.published = job.published.clone();
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
            Ok(Change::job(before.as_deref(), Some(&stored)))
        });
        match outcome {
            Ok(change) => ledger.counts.apply([change]),
            Err(TransactionError::Abort(())) => unreachable!("never aborted"),
            Err(TransactionError::Storage(error)) => return Err(error.into()),
        }
        ledger.jobs.flush()?;
        Ok(())
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
                let before = self
                    .ledger
                    .jobs
                    .insert(job_key(job.id), serde_json::to_vec(&job)?)?;
                self.ledger
                    .counts
                    .apply([Change::job(before.as_deref(), Some(&job))]);
                requeued += 1;
            }
        }
        self.ledger.jobs.flush()?;
        Ok(requeued)
    }

    /// Writes a job record as it is, keeping the counts: for tests that
    /// need a job in a given state without living through its history.
    #[cfg(test)]
    pub(crate) fn put(&self, job: &Job) {
        let before = self
            .ledger
            .jobs
            .insert(job_key(job.id), serde_json::to_vec(job).unwrap())
            .unwrap();
        self.ledger
            .counts
            .apply([Change::job(before.as_deref(), Some(job))]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{DeliveryUpdate, DestinationState, Priority};

    fn queue() -> (tempfile::TempDir, JobQueue) {
        let dir = tempfile::tempdir().unwrap();
        let queue = Ledger::open(dir.path()).unwrap().queue();
        (dir, queue)
    }

    fn add(queue: &JobQueue, id: u64, priority: Priority) {
        queue.put(&Job::received(id, format!("1.2.{id}"), priority, 0));
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
        assert_eq!(queue.ledger.jobs_by_state()["analysing"], 3);
    }

    #[test]
    fn waiting_routine_work_overtakes_fresh_urgent_work() {
        let (_dir, queue) = queue();
        let now = unix_now();
        let mut routine = Job::received(1, "1.2.1".into(), Priority::Low, now - 650);
        routine.created_at = now - 650;
        let urgent = Job::received(2, "1.2.2".into(), Priority::High, now);
        for job in [&routine, &urgent] {
            queue.put(job);
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
        queue.put(&stored);
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
