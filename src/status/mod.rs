//! `chestnode status`: what the node has received, what its jobs are doing,
//! what each destination still has to receive and what went wrong lately,
//! read from the data directory; and `chestnode retry`, which sends dead
//! letters again.
//!
//! While a server runs, the report comes from it over the control socket
//! (`control`); when none runs, the index is opened directly. Either way
//! the report is gathered by the same function, [`StatusReport::gather`].

mod control;

pub use control::{
    ControlRequest, ControlSocket, RetryReport, control_socket_path, read_status, research,
    retry_dead_letters, users,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analysis::AnalysisResult;
pub use crate::annotator::{
    MIN_PASSWORD_LEN, Role, UserSummary, UsersReply, UsersRequest, hash_password,
};
use crate::ledger::{DeliveryState, DestinationBacklog, Incident, Ledger};
use crate::queue::{Job, JobState};

/// How many recent errors the report lists.
const RECENT_ERRORS: usize = 10;
/// How many recent jobs the report lists.
const RECENT_JOBS: usize = 20;
/// How many dead letters the report lists (the backlog counts them all).
const DEAD_LETTERS: usize = 50;

/// The status of a data directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    pub data_dir: PathBuf,
    /// Whether a server was running (and answered) when this was gathered.
    pub server_running: bool,
    pub instances_received: u64,
    pub bytes_stored: u64,
    pub jobs_total: u64,
    pub jobs_by_state: BTreeMap<String, u64>,
    pub disk_free_bytes: Option<u64>,
    /// Use of the data directory's file system, in percent (retention
    /// deletes delivered instances above `retention.max_used_percent`).
    #[serde(default)]
    pub disk_used_percent: f64,
    /// Newest first.
    pub last_errors: Vec<Incident>,
    /// The most recent jobs, newest first, with what analysis found.
    pub recent_jobs: Vec<JobSummary>,
    /// Each destination's deliveries by state, by name.
    #[serde(default)]
    pub destinations: Vec<DestinationBacklog>,
    /// Deliveries that failed permanently, waiting for `chestnode retry`.
    #[serde(default)]
    pub dead_letters: Vec<DeadLetterSummary>,
}

/// One dead-lettered delivery as `status` shows it: identifiers only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetterSummary {
    pub destination: String,
    pub sop_instance_uid: String,
    pub kind: String,
    pub reason: String,
    pub attempts: u32,
}

/// One job as `status` shows it: identifiers and results, no patient data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobSummary {
    pub id: u64,
    pub sop_instance_uid: String,
    pub state: String,
    /// Why it was not analysed, or why analysis failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub attempts: u32,
    /// Analysed jobs: the model, positive categories and regions found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub positive: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_ms: Option<f64>,
    /// The result objects made from the image (SR, overlay, GSPS).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub results: Vec<ResultSummary>,
    /// Each destination's state: delivering, delivered or dead-letter.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub deliveries: BTreeMap<String, String>,
    /// Seconds since the Unix epoch.
    pub received_at: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub analysed_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delivered_at: Option<u64>,
}

/// One result object of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResultSummary {
    pub kind: String,
    pub sop_instance_uid: String,
}

impl JobSummary {
    fn of(job: &Job, db: &Ledger) -> JobSummary {
        let reason = match &job.state {
            JobState::NotAnalysed { reason } | JobState::DeadLetter { reason } => {
                Some(reason.clone())
            }
            _ => None,
        };
        let queue = db.queue();
        let published = queue.published(job).unwrap_or_default();
        let result: Option<AnalysisResult> = queue
            .result(job.id)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        JobSummary {
            id: job.id,
            sop_instance_uid: job.sop_instance_uid.clone(),
            state: job.state.label().to_owned(),
            reason,
            attempts: job.attempts,
            model: result
                .as_ref()
                .map(|r| format!("{} {}", r.findings.model.name, r.findings.model.version)),
            positive: result
                .as_ref()
                .map(|r| {
                    r.findings
                        .categories
                        .iter()
                        .filter(|c| c.positive)
                        .map(|c| c.category.key().to_owned())
                        .collect()
                })
                .unwrap_or_default(),
            regions: result.as_ref().map(|r| r.findings.localised.len()),
            analysis_ms: result.as_ref().map(|r| r.timings.total_ms),
            results: published
                .iter()
                .map(|object| ResultSummary {
                    kind: object.kind.key().to_owned(),
                    sop_instance_uid: object.sop_instance_uid.clone(),
                })
                .collect(),
            deliveries: job
                .deliveries
                .iter()
                .map(|(name, progress)| (name.clone(), progress.state.label().to_owned()))
                .collect(),
            received_at: job.created_at,
            analysed_at: job.analysed_at,
            delivered_at: job.delivered_at,
        }
    }
}

impl StatusReport {
    pub fn gather(
        db: &Ledger,
        data_dir: &Path,
        server_running: bool,
    ) -> anyhow::Result<StatusReport> {
        let (instances_received, bytes_stored) = db.instance_totals();
        let jobs_by_state = db.jobs_by_state();
        let deliveries = db.deliveries();
        let dead_letters = deliveries
            .dead_letters()?
            .into_iter()
            .take(DEAD_LETTERS)
            .map(|d| DeadLetterSummary {
                reason: match d.state {
                    DeliveryState::DeadLetter { reason } => reason,
                    _ => unreachable!("dead_letters lists dead letters"),
                },
                destination: d.destination,
                sop_instance_uid: d.sop_instance_uid,
                kind: d.kind.key().to_owned(),
                attempts: d.attempts,
            })
            .collect();
        Ok(StatusReport {
            data_dir: data_dir.to_path_buf(),
            server_running,
            instances_received,
            bytes_stored,
            jobs_total: jobs_by_state.values().sum(),
            jobs_by_state,
            disk_free_bytes: fs2::available_space(data_dir).ok(),
            disk_used_percent: crate::retention::used_percent(data_dir),
            last_errors: db.incidents().latest(RECENT_ERRORS),
            recent_jobs: recent_jobs(db, RECENT_JOBS, None)?,
            destinations: deliveries.backlog(),
            dead_letters,
        })
    }

    /// The human-readable form printed by `chestnode status`.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let running = if self.server_running {
            "running"
        } else {
            "not running"
        };
        out += &format!(
            "data directory: {} (server {running})\n",
            self.data_dir.display()
        );
        out += &format!(
            "instances received: {} ({:.1} MiB)\n",
            self.instances_received,
            self.bytes_stored as f64 / (1024.0 * 1024.0)
        );
        if let Some(free) = self.disk_free_bytes {
            out += &format!(
                "disk free: {:.1} GiB ({:.0} % used)\n",
                free as f64 / (1024.0 * 1024.0 * 1024.0),
                self.disk_used_percent
            );
        }
        out += &format!("jobs: {}\n", self.jobs_total);
        for (state, count) in &self.jobs_by_state {
            out += &format!("  {state}: {count}\n");
        }
        if !self.recent_jobs.is_empty() {
            out += "recent jobs (newest first):\n";
            for job in &self.recent_jobs {
                out += &format!("  #{} {} {}", job.id, job.state, job.sop_instance_uid);
                if let Some(reason) = &job.reason {
                    out += &format!(" ({reason})");
                }
                if let Some(regions) = job.regions {
                    out += &format!(
                        " positive: [{}], regions: {regions}",
                        job.positive.join(", ")
                    );
                }
                if !job.results.is_empty() {
                    let kinds: Vec<&str> = job.results.iter().map(|r| r.kind.as_str()).collect();
                    out += &format!(", results: {}", kinds.join("+"));
                }
                out += "\n";
            }
        }
        if !self.destinations.is_empty() {
            out += "destinations:\n";
            for d in &self.destinations {
                out += &format!(
                    "  {}: pending {}, delivered {}, dead-letter {}",
                    d.destination, d.pending, d.delivered, d.dead_letter
                );
                if let Some(error) = &d.last_error {
                    out += &format!(" (last error: {error})");
                }
                out += "\n";
            }
        }
        if !self.dead_letters.is_empty() {
            out += "dead letters (chestnode retry sends them again):\n";
            for d in &self.dead_letters {
                out += &format!(
                    "  {} {} {} after {} attempt(s): {}\n",
                    d.destination, d.kind, d.sop_instance_uid, d.attempts, d.reason
                );
            }
        }
        if self.last_errors.is_empty() {
            out += "last errors: none\n";
        } else {
            out += "last errors (newest first):\n";
            for incident in &self.last_errors {
                out += &format!(
                    "  [{}] {}: {}\n",
                    incident.at, incident.stage, incident.message
                );
            }
        }
        out
    }
}

/// The newest `limit` jobs, newest first; only those in `state` (a
/// [`JobState::label`]) when given.
pub fn recent_jobs(
    db: &Ledger,
    limit: usize,
    state: Option<&str>,
) -> anyhow::Result<Vec<JobSummary>> {
    let mut jobs = Vec::new();
    for job in db.queue().newest_first() {
        if jobs.len() >= limit {
            break;
        }
        let job = job?;
        if state.is_none_or(|wanted| job.state.label() == wanted) {
            jobs.push(JobSummary::of(&job, db));
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The report reads maintained counts and the newest jobs, never the
    /// whole index: with 100,000 jobs it takes about as long as with a
    /// hundred. (A walk over 100,000 records takes seconds in a test build.)
    #[test]
    fn status_stays_fast_with_100_000_jobs() {
        let dir = tempfile::tempdir().unwrap();
        crate::ledger::fill_for_test(dir.path(), 100_000);
        let db = Ledger::open(dir.path()).unwrap();
        // Warm up (first reads page the newest records in).
        StatusReport::gather(&db, dir.path(), false).unwrap();
        let started = std::time::Instant::now();
        let report = StatusReport::gather(&db, dir.path(), false).unwrap();
        let took = started.elapsed();
        assert_eq!(report.instances_received, 100_000);
        assert_eq!(report.bytes_stored, 100_000 * 1000);
        assert_eq!(report.jobs_total, 100_000);
        assert_eq!(report.jobs_by_state["received"], 100_000);
        assert_eq!(report.recent_jobs.len(), RECENT_JOBS);
        assert_eq!(report.recent_jobs[0].id, 99_999);
        assert!(
            took < Duration::from_millis(250),
            "status took {took:?} with 100,000 jobs"
        );
    }
}
