//! `chestnode status`: what the node has received, what its jobs are doing,
//! what each destination still has to receive and what went wrong lately,
//! read from the data directory; and `chestnode retry`, which sends dead
//! letters again.
//!
//! sled lets only one process open the index, so while a server runs the
//! report comes from it, over a Unix socket in the data directory
//! (`control.sock`); when no server answers there, the index is opened
//! directly. Either way the report is gathered by the same function.
//!
//! The server binds the socket as soon as it holds the index, before the
//! model loads or the DICOM port opens, and a client that finds the index
//! locked but no answer yet keeps asking for a few seconds: a server caught
//! between taking the lock and binding the socket is starting, not stuck.
//!
//! The control protocol: the client writes one JSON [`ControlRequest`]
//! (nothing at all means `status`), shuts down its side, and reads the JSON
//! answer until the server closes the connection.

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
pub use crate::annotator::{
    MIN_PASSWORD_LEN, Role, UserSummary, UsersReply, UsersRequest, hash_password,
};
use crate::config::ResearchConfig;
use crate::ledger::{DeliveryState, DestinationBacklog, Incident, Ledger};
use crate::outbox::Outbox;
use crate::queue::{Job, JobState};
use crate::research::{ResearchReply, ResearchRequest};
use crate::store::Store;

/// How many recent errors the report lists.
const RECENT_ERRORS: usize = 10;
/// How many recent jobs the report lists.
const RECENT_JOBS: usize = 20;
/// How many dead letters the report lists (the backlog counts them all).
const DEAD_LETTERS: usize = 50;
/// The largest control request read (a clinical data import carries its
/// CSV file; the CLI refuses files over 8 MiB).
const MAX_REQUEST: u64 = 32 * 1024 * 1024;

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

/// Path of the control socket in a data directory.
pub fn control_socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// A request on the control socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum ControlRequest {
    /// Answered with a [`StatusReport`].
    Status,
    /// Moves dead letters (of one destination, or all) back to pending;
    /// answered with a [`RetryReport`].
    RetryDeadLetters { destination: Option<String> },
    /// A research command that needs the ledger; answered with a
    /// [`ResearchReply`].
    Research(ResearchRequest),
    /// A `chestnode users` command; answered with a [`UsersReply`].
    Users(UsersRequest),
}

/// What `chestnode retry` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryReport {
    /// Dead letters moved back to pending.
    pub retried: usize,
    /// Whether a running server did it (and its senders were woken).
    pub server_running: bool,
}

/// Reads the status of a data directory, from its running server if there
/// is one, else from the index directly.
pub async fn read_status(data_dir: &Path) -> anyhow::Result<StatusReport> {
    let db = match open_or_ask(data_dir, &ControlRequest::Status).await? {
        Served::ByServer(reply) => return Ok(serde_json::from_slice(&reply)?),
        Served::Directly(db) => db,
    };
    StatusReport::gather(&db, data_dir, false)
}

/// Moves dead letters back to pending, through the running server if there
/// is one, else in the index directly.
pub async fn retry_dead_letters(
    data_dir: &Path,
    destination: Option<&str>,
) -> anyhow::Result<RetryReport> {
    let request = ControlRequest::RetryDeadLetters {
        destination: destination.map(str::to_owned),
    };
    let db = match open_or_ask(data_dir, &request).await? {
        Served::ByServer(reply) => return Ok(serde_json::from_slice(&reply)?),
        Served::Directly(db) => db,
    };
    // No server runs, so no sender waits to be woken.
    let retried = db.deliveries().retry_dead_letters(destination)?;
    db.flush()?;
    Ok(RetryReport {
        retried,
        server_running: false,
    })
}

/// Runs a research request: by the running server if there is one (so
/// research never stops ingest), else here with the index opened directly.
pub async fn research(
    data_dir: &Path,
    config: &ResearchConfig,
    request: ResearchRequest,
) -> anyhow::Result<ResearchReply> {
    let control = ControlRequest::Research(request.clone());
    let db = match open_or_ask(data_dir, &control).await? {
        Served::ByServer(reply) => return Ok(serde_json::from_slice(&reply)?),
        Served::Directly(db) => db,
    };
    let data_dir = data_dir.to_path_buf();
    let config = config.clone();
    let reply = tokio::task::spawn_blocking(move || {
        crate::research::execute(&db, &data_dir, &config, request)
    })
    .await?;
    Ok(reply)
}

/// Runs a `chestnode users` request: by the running server if there is
/// one, else here with the index opened directly.
pub async fn users(data_dir: &Path, request: UsersRequest) -> anyhow::Result<UsersReply> {
    let control = ControlRequest::Users(request.clone());
    let db = match open_or_ask(data_dir, &control).await? {
        Served::ByServer(reply) => return Ok(serde_json::from_slice(&reply)?),
        Served::Directly(db) => db,
    };
    let data_dir = data_dir.to_path_buf();
    let reply = tokio::task::spawn_blocking(move || {
        crate::annotator::execute_users(&db, &data_dir, request)
    })
    .await?;
    Ok(reply)
}

enum Served {
    ByServer(Vec<u8>),
    Directly(Ledger),
}

/// How long a client waits for a server that holds the index lock but does
/// not answer on the control socket yet.
const STARTING_SERVER_WAIT: Duration = Duration::from_secs(15);

/// Sends `request` to the running server, or opens the index when none
/// answers.
async fn open_or_ask(data_dir: &Path, request: &ControlRequest) -> anyhow::Result<Served> {
    if !data_dir.is_dir() {
        anyhow::bail!("no data directory at {}", data_dir.display());
    }
    let socket = control_socket_path(data_dir);
    let deadline = tokio::time::Instant::now() + STARTING_SERVER_WAIT;
    loop {
        if let Some(reply) = ask_running_server(&socket, request).await {
            return Ok(Served::ByServer(reply));
        }
        if let Some(db) = Ledger::try_open(data_dir)? {
            return Ok(Served::Directly(db));
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "the index is locked, but no server answered on control.sock; \
                 is another chestnode process using this data directory?"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long a client waits for the server's answer: a status is quick; a
/// research export may de-identify thousands of images.
fn answer_timeout(request: &ControlRequest) -> Duration {
    match request {
        ControlRequest::Research(_) => Duration::from_secs(6 * 3600),
        _ => Duration::from_secs(10),
    }
}

async fn ask_running_server(socket: &Path, request: &ControlRequest) -> Option<Vec<u8>> {
    let exchange = async {
        let mut stream = UnixStream::connect(socket).await.ok()?;
        let request = serde_json::to_vec(request).ok()?;
        stream.write_all(&request).await.ok()?;
        stream.shutdown().await.ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.ok()?;
        (!reply.is_empty()).then_some(reply)
    };
    tokio::time::timeout(answer_timeout(request), exchange)
        .await
        .ok()
        .flatten()
}

/// The server's end of the control socket, bound but not yet answering.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    store: Arc<Store>,
    outbox: Outbox,
    research: Arc<ResearchConfig>,
}

impl ControlSocket {
    /// Binds `control.sock` in the store's data directory. A socket file
    /// left by a crashed run is replaced: holding the index lock proves no
    /// other server uses it.
    pub fn bind(
        store: Arc<Store>,
        outbox: Outbox,
        research: ResearchConfig,
    ) -> anyhow::Result<ControlSocket> {
        let path = control_socket_path(store.data_dir());
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
        // Only the node's own user may ask: research requests import
        // annotations and list what is stored.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
        Ok(ControlSocket {
            listener,
            path,
            store,
            outbox,
            research: Arc::new(research),
        })
    }

    /// Answers control requests until `shutdown`, then removes the socket.
    pub async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let (mut stream, _) = tokio::select! {
                accepted = self.listener.accept() => accepted?,
                _ = shutdown.cancelled() => break,
            };
            let store = self.store.clone();
            let outbox = self.outbox.clone();
            let research = self.research.clone();
            tokio::spawn(async move {
                if let Some(reply) = answer(&mut stream, store, outbox, research).await {
                    let _ = stream.write_all(&reply).await;
                }
            });
        }
        let _ = std::fs::remove_file(&self.path);
        Ok(())
    }
}

/// Reads one request from a control connection and computes its answer.
async fn answer(
    stream: &mut UnixStream,
    store: Arc<Store>,
    outbox: Outbox,
    research: Arc<ResearchConfig>,
) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut limited = (&mut *stream).take(MAX_REQUEST);
    tokio::time::timeout(Duration::from_secs(10), limited.read_to_end(&mut request))
        .await
        .ok()?
        .ok()?;
    let request = if request.iter().all(u8::is_ascii_whitespace) {
        ControlRequest::Status
    } else {
        serde_json::from_slice(&request).ok()?
    };
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let db = store.ledger();
        Ok(match request {
            ControlRequest::Status => {
                serde_json::to_vec(&StatusReport::gather(db, store.data_dir(), true)?)?
            }
            ControlRequest::RetryDeadLetters { destination } => {
                let retried = outbox.retry_dead_letters(destination.as_deref())?;
                tracing::info!(retried, destination = ?destination, "dead letters retried");
                serde_json::to_vec(&RetryReport {
                    retried,
                    server_running: true,
                })?
            }
            ControlRequest::Research(request) => serde_json::to_vec(&crate::research::execute(
                db,
                store.data_dir(),
                &research,
                request,
            ))?,
            ControlRequest::Users(request) => serde_json::to_vec(
                &crate::annotator::execute_users(db, store.data_dir(), request),
            )?,
        })
    })
    .await
    .ok()?
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every research request survives the trip over the socket.
    #[test]
    fn research_requests_round_trip_as_json() {
        use crate::research::{DeidOptions, ExportRequest, VaultKey};
        let requests = [
            ResearchRequest::CohortList,
            ResearchRequest::ExportBuild {
                export: ExportRequest {
                    cohort: "c".into(),
                    version: Some(2),
                    options: DeidOptions::default(),
                    include_results: true,
                    keep_until: None,
                    annotation_consensus: Some(crate::research::annotations::Consensus::Majority),
                },
                key: VaultKey::Passphrase("p".into()),
                operator: "o".into(),
            },
            ResearchRequest::Destroy {
                cohort: "c".into(),
                force: true,
                key: VaultKey::KeyFile("/k".into()),
                operator: "o".into(),
            },
            ResearchRequest::ClinicalImport {
                csv: crate::research::clinical::ClinicalCsv("patient_id\nP\n".into()),
                allow_unknown: true,
                key: VaultKey::KeyFile("/k".into()),
                operator: "o".into(),
            },
            ResearchRequest::Dataset {
                dataset: crate::research::DatasetRequest {
                    cohort: "c".into(),
                    version: None,
                    consensus: crate::research::annotations::Consensus::Majority,
                    identified: false,
                    fractions: crate::lab::dataset::SplitFractions::default(),
                    seed: 1,
                },
                key: VaultKey::Passphrase("p".into()),
                operator: "o".into(),
            },
        ];
        for request in requests {
            let control = ControlRequest::Research(request);
            let json = serde_json::to_vec(&control).unwrap();
            let back: ControlRequest = serde_json::from_slice(&json)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json)));
            assert_eq!(back, control);
        }
    }

    /// Users requests survive the trip too, hash and all.
    #[test]
    fn users_requests_round_trip_as_json() {
        let requests = [
            UsersRequest::Add {
                name: "ann".into(),
                role: Role::Annotator,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$abc$def".into(),
                operator: "o".into(),
            },
            UsersRequest::List,
            UsersRequest::Assign {
                name: "ann".into(),
                cohort: "c".into(),
                operator: "o".into(),
            },
        ];
        for request in requests {
            let control = ControlRequest::Users(request);
            let json = serde_json::to_vec(&control).unwrap();
            let back: ControlRequest = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, control);
        }
    }

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
