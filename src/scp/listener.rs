//! The accept loop: takes TCP connections, enforces the association limit,
//! negotiates each association and hands it to a session task.
//!
//! The limit is a semaphore. A connection that finds no permit is still
//! answered properly — with a *transient* A-ASSOCIATE-RJ — so a modality
//! retries later instead of giving up. Shutdown has two steps: `shutdown`
//! stops accepting, and `abort` (cancelled by the caller after a grace
//! period) tells sessions still running to send A-ABORT.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::Config;
use crate::http::AssociationOutcome;
use crate::scp::association::{AccessPolicy, AllowedCaller, acceptor_options, reject_busy};
use crate::scp::session::{self, SessionContext};

/// How many over-limit connections may be in the middle of being rejected
/// at once; beyond that, connections are simply closed.
const MAX_PENDING_REJECTIONS: usize = 64;

/// Everything the accept loop needs.
pub struct Listener {
    pub listener: TcpListener,
    pub config: Arc<Config>,
    pub allowed: Arc<Vec<AllowedCaller>>,
    pub session_context: Arc<SessionContext>,
}

impl Listener {
    /// Resolves the allow-list once, at start-up.
    pub fn new(
        listener: TcpListener,
        config: Arc<Config>,
        session_context: Arc<SessionContext>,
    ) -> anyhow::Result<Listener> {
        let allowed = config
            .access
            .allowed_calling
            .iter()
            .map(|entry| AllowedCaller::parse(entry))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Listener {
            listener,
            config,
            allowed: Arc::new(allowed),
            session_context,
        })
    }

    /// Accepts until `shutdown` is cancelled. Sessions are spawned on
    /// `tracker`, so the caller can wait for them.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        abort: CancellationToken,
        tracker: TaskTracker,
    ) {
        let association_slots = Arc::new(Semaphore::new(self.config.network.max_associations));
        let rejection_slots = Arc::new(Semaphore::new(MAX_PENDING_REJECTIONS));
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = shutdown.cancelled() => break,
            };
            let (socket, peer) = match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Usually EMFILE: back off briefly rather than spin.
                    tracing::error!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            match association_slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let context = self.session_context.clone();
                    let config = self.config.clone();
                    let allowed = self.allowed.clone();
                    let abort = abort.clone();
                    tracker.spawn(async move {
                        negotiate_and_serve(socket, peer, &config, allowed, context, abort).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    self.session_context
                        .metrics
                        .association(AssociationOutcome::Rejected);
                    tracing::warn!(%peer, limit = self.config.network.max_associations, "association limit reached; rejecting (transient)");
                    if let Ok(permit) = rejection_slots.clone().try_acquire_owned() {
                        let artim = self.config.network.association_timeout();
                        let max_pdu = self.config.network.max_pdu_length;
                        tokio::spawn(async move {
                            reject_busy(socket, artim, max_pdu).await;
                            drop(permit);
                        });
                    }
                }
            }
        }
        tracing::info!("no longer accepting associations");
    }
}

async fn negotiate_and_serve(
    socket: TcpStream,
    peer: SocketAddr,
    config: &Config,
    allowed: Arc<Vec<AllowedCaller>>,
    context: Arc<SessionContext>,
    abort: CancellationToken,
) {
    let policy = AccessPolicy {
        our_ae_title: config.node.ae_title.clone(),
        require_called_ae_title: config.access.require_called_ae_title,
        allowed,
        peer: peer.ip(),
    };
    let options = acceptor_options(config).ae_access_control(policy);
    let artim = config.network.association_timeout();
    match tokio::time::timeout(artim, options.establish_async(socket)).await {
        Ok(Ok(association)) => {
            let _active = context.metrics.association(AssociationOutcome::Accepted);
            let span = tracing::info_span!("association", %peer);
            session::serve(association, context.clone(), abort)
                .instrument(span)
                .await;
        }
        Ok(Err(error)) => {
            let outcome = match &error {
                dicom_ul::association::Error::Rejected { .. } => AssociationOutcome::Rejected,
                _ => AssociationOutcome::Failed,
            };
            context.metrics.association(outcome);
            tracing::warn!(%peer, %error, "association not established");
        }
        Err(_) => {
            context.metrics.association(AssociationOutcome::Failed);
            tracing::warn!(%peer, "association request timed out (ARTIM)");
        }
    }
}
