//! `chestnode status`: what the node has received, what its jobs are doing
//! and what went wrong lately, read from the data directory.
//!
//! sled lets only one process open the index, so while a server runs the
//! report comes from it, over a Unix socket in the data directory
//! (`control.sock`); when no server answers there, the index is opened
//! directly. Either way the report is gathered by the same function.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::analysis::AnalysisResult;
use crate::db::Database;
use crate::incidents::Incident;
use crate::queue::{Job, JobState};
use crate::store::{InstanceRecord, Store};

/// How many recent errors the report lists.
const RECENT_ERRORS: usize = 10;
/// How many recent jobs the report lists.
const RECENT_JOBS: usize = 20;

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
    /// Newest first.
    pub last_errors: Vec<Incident>,
    /// The most recent jobs, newest first, with what analysis found.
    pub recent_jobs: Vec<JobSummary>,
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
}

impl JobSummary {
    fn of(job: &Job, db: &Database) -> JobSummary {
        let reason = match &job.state {
            JobState::NotAnalysed { reason } | JobState::Failed { reason } => Some(reason.clone()),
            _ => None,
        };
        let result: Option<AnalysisResult> = db
            .queue()
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
        }
    }
}

impl StatusReport {
    pub fn gather(
        db: &Database,
        data_dir: &Path,
        server_running: bool,
    ) -> anyhow::Result<StatusReport> {
        let mut instances_received = 0;
        let mut bytes_stored = 0;
        for value in db.instances.iter().values() {
            let record: InstanceRecord = serde_json::from_slice(&value?)?;
            instances_received += 1;
            bytes_stored += record.size_bytes;
        }
        let jobs_by_state = db.queue().counts_by_state()?;
        Ok(StatusReport {
            data_dir: data_dir.to_path_buf(),
            server_running,
            instances_received,
            bytes_stored,
            jobs_total: jobs_by_state.values().sum(),
            jobs_by_state,
            disk_free_bytes: fs2::available_space(data_dir).ok(),
            last_errors: db.incidents.latest(RECENT_ERRORS),
            recent_jobs: recent_jobs(db)?,
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
                "disk free: {:.1} GiB\n",
                free as f64 / (1024.0 * 1024.0 * 1024.0)
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
                out += "\n";
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

/// The newest [`RECENT_JOBS`] jobs, newest first.
fn recent_jobs(db: &Database) -> anyhow::Result<Vec<JobSummary>> {
    db.jobs
        .iter()
        .rev()
        .take(RECENT_JOBS)
        .map(|entry| {
            let (_, value) = entry?;
            let job: Job = serde_json::from_slice(&value)?;
            Ok(JobSummary::of(&job, db))
        })
        .collect()
}

/// Path of the control socket in a data directory.
pub fn control_socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// Reads the status of a data directory, from its running server if there
/// is one, else from the index directly.
pub async fn read_status(data_dir: &Path) -> anyhow::Result<StatusReport> {
    if !data_dir.is_dir() {
        anyhow::bail!("no data directory at {}", data_dir.display());
    }
    if let Some(report) = ask_running_server(&control_socket_path(data_dir)).await {
        return Ok(report);
    }
    let db = Database::open(data_dir).context(
        "the index is locked, but no server answered on control.sock; is another chestnode process using this data directory?",
    )?;
    StatusReport::gather(&db, data_dir, false)
}

async fn ask_running_server(socket: &Path) -> Option<StatusReport> {
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await.ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.ok()?;
        serde_json::from_slice(&reply).ok()
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}

/// Answers status requests on the control socket until `shutdown`.
pub async fn serve_control_socket(
    store: Arc<Store>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let path = control_socket_path(store.data_dir());
    // A stale socket from a crashed run; the index lock proves it is ours.
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    loop {
        let (mut stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = shutdown.cancelled() => break,
        };
        let store = store.clone();
        tokio::spawn(async move {
            let report = tokio::task::spawn_blocking(move || {
                StatusReport::gather(store.database(), store.data_dir(), true)
            })
            .await;
            if let Ok(Ok(report)) = report {
                if let Ok(bytes) = serde_json::to_vec(&report) {
                    let _ = stream.write_all(&bytes).await;
                }
            }
        });
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
