//! The analysis worker pool: plain threads that take pending jobs from the
//! queue, analyse their images and record the outcome.
//!
//! Inference is CPU-bound and blocking, so it never runs on the async
//! runtime; the pool is bounded (`analysis.workers`, 2 by default: one
//! decodes while the other runs the model; more would only compete for
//! the cores a forward pass already spreads over). A panic in a
//! decoder or model is caught and counted as a failed attempt, so one bad
//! image cannot take a worker down; failed attempts are retried a bounded
//! number of times (`queue::MAX_ATTEMPTS`).
//!
//! SR and grayscale presentation states are not analysed: they are read as
//! doctors' annotations of the images they reference (`annotations`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

mod annotations;
mod publish;

pub use publish::Publisher;

use crate::analysis::{Analysis, Outcome, analyse_path};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::model::Model;
use crate::queue::{Job, JobState, PublishedObject};

/// How long an idle worker sleeps before looking again without a signal.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// How the pool schedules its work.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Worker threads; zero receives and queues only.
    pub workers: usize,
    /// Delay before the first retry of a failed analysis.
    pub retry_delay: Duration,
    /// A waiting job gains one priority level per this much waiting.
    pub priority_aging: Duration,
}

/// Running workers.
pub struct WorkerPool {
    stop: Arc<AtomicBool>,
    db: Ledger,
    handles: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    /// Requeues jobs a previous run left in `analysing`, then starts
    /// `workers` threads.
    pub fn start(
        schedule: Schedule,
        db: Ledger,
        data_dir: PathBuf,
        model: Arc<Model>,
        publisher: Arc<Publisher>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<WorkerPool> {
        let workers = schedule.workers;
        let requeued = db.queue().requeue_interrupted()?;
        if requeued > 0 {
            tracing::warn!(
                jobs = requeued,
                "resuming analyses interrupted by the last shutdown"
            );
        }
        if workers == 0 {
            tracing::warn!("analysis.workers is 0: images are received and queued, not analysed");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..workers)
            .map(|index| {
                let stop = stop.clone();
                let context = Worker {
                    db: db.clone(),
                    data_dir: data_dir.clone(),
                    model: model.clone(),
                    publisher: publisher.clone(),
                    schedule,
                    metrics: metrics.clone(),
                };
                std::thread::Builder::new()
                    .name(format!("analysis-{index}"))
                    .spawn(move || context.run(&stop))
                    .expect("spawning a worker thread")
            })
            .collect();
        Ok(WorkerPool { stop, db, handles })
    }

    /// Lets each worker finish its current image, then stops them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.db.work_available().notify();
        for handle in self.handles {
            let _ = handle.join();
        }
    }
}

/// What one worker thread needs.
struct Worker {
    db: Ledger,
    data_dir: PathBuf,
    model: Arc<Model>,
    /// Builds, stores and queues the result objects.
    publisher: Arc<Publisher>,
    schedule: Schedule,
    metrics: Arc<Metrics>,
}

impl Worker {
    fn run(&self, stop: &AtomicBool) {
        let queue = self.db.queue();
        let mut seen = queue.signal().generation();
        while !stop.load(Ordering::SeqCst) {
            match queue.claim_next(self.schedule.priority_aging) {
                Ok(Some(job)) => self.process(&job),
                Ok(None) => seen = queue.signal().wait(seen, IDLE_POLL),
                Err(error) => {
                    tracing::error!(%error, "cannot read the job queue");
                    std::thread::sleep(IDLE_POLL);
                }
            }
        }
    }

    /// Analyses one claimed job and records what happened.
    fn process(&self, job: &Job) {
        let queue = self.db.queue();
        let record = match self.db.find_instance(&job.sop_instance_uid) {
            Ok(Some(record)) => record,
            other => {
                let reason = match other {
                    Err(error) => format!("index lookup failed: {error:#}"),
                    _ => "no instance record for this job".to_owned(),
                };
                self.fail(job, &reason);
                return;
            }
        };
        let path = self.data_dir.join(&record.path);
        if crate::research::annotations::is_annotation_class(&record.sop_class_uid) {
            self.take_annotations(job, &record, &path);
            return;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            analyse_path(&self.model, &path).map(|analysis| self.publish(analysis, job.id))
        }));
        let recorded = match outcome {
            Ok(Ok(Err(error))) => {
                self.fail(job, &format!("publishing the results: {error:#}"));
                return;
            }
            Ok(Ok(Ok((Outcome::Analysed(result), published)))) => {
                let positives: Vec<&str> = result
                    .findings
                    .categories
                    .iter()
                    .filter(|c| c.positive)
                    .map(|c| c.category.title())
                    .collect();
                tracing::info!(
                    job = job.id,
                    sop_instance_uid = %job.sop_instance_uid,
                    total_ms = format_args!("{:.0}", result.timings.total_ms),
                    report_ms = format_args!("{:.0}", result.timings.report_ms),
                    regions = result.findings.localised.len(),
                    results = published.len(),
                    positive = ?positives,
                    "analysed"
                );
                self.metrics.image_analysed(result.timings.total_ms);
                let mut job = job.clone();
                job.published = published;
                serde_json::to_vec(&result)
                    .map_err(anyhow::Error::from)
                    .and_then(|bytes| queue.finish(&job, JobState::Analysed, Some(&bytes)))
            }
            Ok(Ok(Ok((Outcome::NotAnalysed { reason }, _)))) => {
                tracing::info!(job = job.id, sop_instance_uid = %job.sop_instance_uid, %reason, "not analysed");
                queue.finish(job, JobState::NotAnalysed { reason }, None)
            }
            Ok(Err(error)) => {
                self.fail(job, &error.to_string());
                return;
            }
            Err(_) => {
                self.fail(job, "analysis panicked");
                return;
            }
        };
        if let Err(error) = recorded {
            tracing::error!(job = job.id, %error, "could not record the analysis");
        }
    }

    /// Makes the result objects of an analysed image; other outcomes pass
    /// through (with none). Runs inside the panic guard, like the analysis
    /// itself.
    fn publish(
        &self,
        analysis: Analysis,
        job_id: u64,
    ) -> anyhow::Result<(Outcome, Vec<PublishedObject>)> {
        let Analysis {
            outcome,
            source,
            radiograph,
            ..
        } = analysis;
        match (outcome, radiograph) {
            (Outcome::Analysed(mut result), Some(radiograph)) => {
                let started = std::time::Instant::now();
                let published =
                    self.publisher
                        .publish(&source, &result, &radiograph, Some(job_id))?;
                result.timings.report_ms = started.elapsed().as_secs_f64() * 1000.0;
                Ok((Outcome::Analysed(result), published))
            }
            (outcome, _) => Ok((outcome, Vec::new())),
        }
    }

    /// Records a failed attempt: retried later while attempts remain.
    fn fail(&self, job: &Job, reason: &str) {
        match self
            .db
            .queue()
            .retry_or_fail(job, reason, self.schedule.retry_delay)
        {
            Ok(state) => {
                tracing::warn!(job = job.id, attempts = job.attempts, %reason, next = state.label(), "analysis failed");
                self.db.incidents().record(
                    "worker",
                    format!(
                        "analysis of {} failed (attempt {}): {reason}",
                        job.sop_instance_uid, job.attempts
                    ),
                );
            }
            Err(error) => {
                tracing::error!(job = job.id, %error, "could not record a failed analysis")
            }
        }
    }
}
