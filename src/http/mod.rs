//! The operations HTTP endpoint (axum), on its own port, loopback by
//! default (`[http]` in the configuration):
//!
//! - `GET /health` — liveness and readiness ([`health`]);
//! - `GET /metrics` — Prometheus text format, from the registry in
//!   [`crate::metrics`];
//! - `GET /api/jobs` — recent jobs as JSON ([`jobs`]).
//!
//! Everything is read-only: nothing here changes the node, so the endpoint
//! needs no authentication as long as it stays on loopback (or behind a
//! proxy that adds it). It starts before the model loads, so `/health`
//! answers "not ready" while the node is still starting, and stops with
//! the node's shutdown token. Connections are bounded in number and time
//! out when idle (see `connections.rs`).

mod connections;
mod health;
mod jobs;

pub use health::{LoadedModel, Readiness};

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::HttpConfig;
use crate::metrics::{self, Metrics};
use crate::store::Store;
use connections::{GuardedListener, IDLE_TIMEOUT, MAX_CONNECTIONS};

/// What every handler reads.
#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// `storage.min_free_mb`, in bytes.
    pub min_free_bytes: u64,
}

/// The running endpoint.
pub struct HttpServer {
    task: JoinHandle<std::io::Result<()>>,
}

/// The routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(scrape))
        .route("/api/jobs", get(jobs::jobs))
        .with_state(state)
}

impl HttpServer {
    /// Binds `config.listen_addr()` and serves until `shutdown` is
    /// cancelled. A port that cannot be bound is an error, like the DICOM
    /// port.
    pub async fn start(
        config: &HttpConfig,
        state: HttpState,
        shutdown: CancellationToken,
    ) -> anyhow::Result<HttpServer> {
        let listener = TcpListener::bind(config.listen_addr())
            .await
            .with_context(|| format!("binding the HTTP endpoint to {}", config.listen_addr()))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "operations endpoint listening (/health, /metrics, /api/jobs)");
        let task = tokio::spawn(async move {
            let listener = GuardedListener::new(listener, MAX_CONNECTIONS, IDLE_TIMEOUT);
            axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        });
        Ok(HttpServer { task })
    }

    /// Waits, at most `limit`, for the server to finish the requests in
    /// progress after the shutdown token was cancelled.
    pub async fn stopped(self, limit: Duration) {
        let abort = self.task.abort_handle();
        match tokio::time::timeout(limit, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "operations endpoint failed"),
            Ok(Err(error)) => tracing::warn!(%error, "operations endpoint task failed"),
            Err(_) => {
                tracing::warn!("operations endpoint did not stop in time; closing it");
                abort.abort();
            }
        }
    }
}

/// `GET /metrics`: reads the index-backed gauges, then encodes everything.
async fn scrape(State(state): State<HttpState>) -> Response {
    let store = state.store.clone();
    let snapshot = tokio::task::spawn_blocking(move || -> anyhow::Result<metrics::Snapshot> {
        let db = store.ledger();
        Ok(metrics::Snapshot {
            jobs_by_state: db.jobs_by_state(),
            deliveries: db.deliveries().backlog(),
            disk_free_bytes: store.free_bytes().ok(),
        })
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|gathered| gathered);
    match snapshot {
        Ok(snapshot) => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            state.metrics.encode(&snapshot),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "/metrics: cannot read the index");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the index: {error:#}"),
            )
                .into_response()
        }
    }
}
