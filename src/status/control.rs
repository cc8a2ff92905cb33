//! The control socket: how a command reaches the running server, and how
//! it does the work itself when none runs.
//!
//! sled lets only one process open the index, so while a server runs,
//! `status`, `retry`, `users` and the research commands that need the index
//! are answered by it, over a Unix socket in the data directory
//! (`control.sock`, mode 0600: the node's own user only); when no server
//! answers there, the command opens the index directly.
//!
//! The server binds the socket as soon as it holds the index, before the
//! model loads or the DICOM port opens, and a client that finds the index
//! locked but no answer yet keeps asking for a few seconds: a server caught
//! between taking the lock and binding the socket is starting, not stuck.
//!
//! The protocol: the client writes one JSON [`ControlRequest`] (nothing at
//! all means `status`), shuts down its side, and reads the JSON answer until
//! the server closes the connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::annotator::{UsersReply, UsersRequest};
use crate::config::ResearchConfig;
use crate::ledger::Ledger;
use crate::outbox::Outbox;
use crate::research::{ResearchReply, ResearchRequest};
use crate::store::Store;

use super::StatusReport;

/// The largest control request read (a clinical data import carries its
/// CSV file; the CLI refuses files over 8 MiB).
const MAX_REQUEST: u64 = 32 * 1024 * 1024;

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
    use crate::annotator::Role;

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
}
