//! The accept loop: takes TCP connections, enforces the association limit,
//! negotiates each association and hands it to a session task.
//!
//! The limit is a semaphore. A connection that finds no permit is still
//! answered properly — with a *transient* A-ASSOCIATE-RJ — so a modality
//! retries later instead of giving up. Shutdown has two steps: `shutdown`
//! stops accepting, and `abort` (cancelled by the caller after a grace
//! period) tells sessions still running to send A-ABORT.
//!
//! With `[tls]` on, every connection is TLS: the handshake comes first, and
//! the ARTIM timer covers it together with the A-ASSOCIATE-RQ, so a peer
//! that connects and never completes a handshake is dropped like one that
//! never asks for an association. A failed handshake (a plain-TCP peer, a
//! client certificate that does not verify) is logged, counted as
//! `tls_failed`, and affects no other connection. A connection over the
//! limit is also answered over TLS — a plain A-ASSOCIATE-RJ would be
//! unreadable to a TLS peer — so it costs a handshake, bounded by
//! `MAX_PENDING_REJECTIONS` and ARTIM like the rejection itself.

use std::net::SocketAddr;
use std::sync::Arc;

use dicom_ul::association::AsyncServerAssociation;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::error::Elapsed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::Config;
use crate::dimse::describe_chain;
use crate::metrics::AssociationOutcome;
use crate::scp::association::{AccessPolicy, AllowedCaller, acceptor_options, reject_busy};
use crate::scp::session::{self, SessionContext, Transport};

/// How many over-limit connections may be in the middle of being rejected
/// at once; beyond that, connections are simply closed.
const MAX_PENDING_REJECTIONS: usize = 64;

/// Everything the accept loop needs.
pub struct Listener {
    pub listener: TcpListener,
    pub config: Arc<Config>,
    pub allowed: Arc<Vec<AllowedCaller>>,
    pub session_context: Arc<SessionContext>,
    /// `Some` when `[tls]` is on: every connection must speak TLS.
    pub tls: Option<Arc<ServerConfig>>,
}

impl Listener {
    /// Resolves the allow-list and loads the TLS certificates once, at
    /// start-up.
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
        let tls = crate::tls::server_config(&config.tls)?;
        Ok(Listener {
            listener,
            config,
            allowed: Arc::new(allowed),
            session_context,
            tls,
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
                    let tls = self.tls.clone();
                    tracker.spawn(async move {
                        negotiate_and_serve(socket, peer, &config, tls, allowed, context, abort)
                            .await;
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
                        let tls = self.tls.clone();
                        tokio::spawn(async move {
                            match tls {
                                None => reject_busy(socket, artim, max_pdu).await,
                                Some(tls) => {
                                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                                    let handshake = acceptor.accept(socket);
                                    if let Ok(Ok(stream)) =
                                        tokio::time::timeout(artim, handshake).await
                                    {
                                        reject_busy(stream, artim, max_pdu).await;
                                    }
                                }
                            }
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
    tls: Option<Arc<ServerConfig>>,
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
    match tls {
        None => {
            let established = tokio::time::timeout(artim, options.establish_async(socket)).await;
            serve_established(established, peer, context, abort).await;
        }
        Some(tls) => {
            let options = options.tls_config(tls);
            let established =
                tokio::time::timeout(artim, options.establish_tls_async(socket)).await;
            serve_established(established, peer, context, abort).await;
        }
    }
}

/// Serves a negotiated association, or logs and counts why there is none.
async fn serve_established<S: Transport>(
    established: Result<Result<AsyncServerAssociation<S>, dicom_ul::association::Error>, Elapsed>,
    peer: SocketAddr,
    context: Arc<SessionContext>,
    abort: CancellationToken,
) {
    use dicom_ul::association::Error;
    match established {
        Ok(Ok(association)) => {
            let _active = context.metrics.association(AssociationOutcome::Accepted);
            let span = tracing::info_span!("association", %peer);
            session::serve(association, context.clone(), abort)
                .instrument(span)
                .await;
        }
        Ok(Err(error @ (Error::TlsHandshake { .. } | Error::TlsConnection { .. }))) => {
            context.metrics.association(AssociationOutcome::TlsFailed);
            // dicom-ul's own message only asks whether the peer speaks
            // TLS; the cause says what went wrong.
            let cause =
                std::error::Error::source(&error).map_or_else(|| error.to_string(), describe_chain);
            tracing::warn!(%peer, error = %cause, "TLS handshake failed");
        }
        Ok(Err(error)) => {
            let outcome = match &error {
                Error::Rejected { .. } => AssociationOutcome::Rejected,
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
