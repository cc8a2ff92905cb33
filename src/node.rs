//! `chestnode serve`: opens the store, binds the control socket, starts the
//! operations endpoint, loads the model, starts the analysis workers, the
//! outbox senders and the SCP, and shuts everything down in order on SIGTERM or
//! Ctrl-C.
//!
//! Shutdown order matters for "nothing acknowledged is lost": stop
//! accepting, let in-flight associations finish (bounded by
//! `shutdown_grace_secs`, after which they are aborted — an aborted transfer
//! was never acknowledged, so nothing is lost), let the outbox senders
//! finish the C-STORE in progress (anything unsent stays pending), then
//! flush sled.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::http::{HttpServer, HttpState, LoadedModel, Readiness};
use crate::metrics::Metrics;
use crate::model::Model;
use crate::outbox::{Outbox, OutboxSenders};
use crate::retention::{RetentionPolicy, RetentionSweeper};
use crate::scp::{Listener, SessionContext};
use crate::status::ControlSocket;
use crate::store::Store;
use crate::worker::{Publisher, Schedule, WorkerPool};

/// After aborting, how long sessions get to close their sockets.
const ABORT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the node until a shutdown signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    // Certificates and keys are read now, so a bad path or PEM stops the
    // node before anything starts.
    crate::tls::check(&config)?;
    let config = Arc::new(config);
    let data_dir = config.node.data_dir.clone();
    let min_free_bytes = config.storage.min_free_mb.saturating_mul(1024 * 1024);
    let max_queued_jobs = config.storage.max_queued_jobs;
    let store = tokio::task::spawn_blocking(move || {
        Store::open(&data_dir, min_free_bytes, max_queued_jobs)
    })
    .await
    .context("opening the store")??;
    let store = Arc::new(store);

    let shutdown = CancellationToken::new();
    // An early return (a model that will not load) stops the endpoint and
    // the control socket too.
    let _stop_on_return = shutdown.clone().drop_guard();
    // `chestnode status` works from the moment the index is ours, while the
    // model is still loading.
    // The outbox owns the destinations; the control socket retries dead
    // letters through it, so the senders it wakes are the ones started below.
    let outbox = Outbox::new(store.ledger(), config.destinations.clone());
    let control = tokio::spawn(
        ControlSocket::bind(store.clone(), outbox.clone(), config.research.clone())?
            .serve(shutdown.clone()),
    );
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let http = if config.http.enabled {
        let state = HttpState {
            store: store.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            min_free_bytes,
        };
        Some(HttpServer::start(&config.http, state, shutdown.clone()).await?)
    } else {
        None
    };
    // The browser annotator, saving into the ledger's annotation records.
    let annotator = if config.annotator.enabled {
        let backend = crate::annotator::AnnotationStore::new(
            store.ledger().clone(),
            store.data_dir().to_path_buf(),
        );
        Some(
            crate::annotator::AnnotatorServer::start(
                &config.annotator,
                store.clone(),
                backend,
                shutdown.clone(),
            )
            .await?,
        )
    } else {
        None
    };

    // The model loads before the port opens: a bad manifest, hash or
    // tensor stops the node here, not at the first image.
    let device = crate::model::device_by_name(&config.analysis.device)?;
    let model_path = config.analysis.model.clone();
    let model =
        tokio::task::spawn_blocking(move || Model::from_config(model_path.as_deref(), &device))
            .await
            .context("loading the model")??;
    announce_model(&model);
    readiness.model_loaded(LoadedModel {
        name: model.manifest.model.name.clone(),
        version: model.manifest.model.version.clone(),
        placeholder: model.is_placeholder(),
    });
    let schedule = Schedule {
        workers: config.analysis.workers,
        retry_delay: std::time::Duration::from_secs(config.analysis.retry_delay_secs),
        priority_aging: config.priority.aging(),
    };
    let workers = WorkerPool::start(
        schedule,
        store.ledger().clone(),
        store.data_dir().to_path_buf(),
        Arc::new(model),
        Arc::new(Publisher::new(
            &config,
            store.data_dir().to_path_buf(),
            outbox.clone(),
        )?),
        metrics.clone(),
    )?;

    let tcp = TcpListener::bind(config.listen_addr())
        .await
        .with_context(|| format!("binding {}", config.listen_addr()))?;
    tracing::info!(
        address = %tcp.local_addr()?,
        ae_title = %config.node.ae_title,
        data_dir = %store.data_dir().display(),
        "chestnode listening"
    );
    readiness.dicom_listening();

    let abort = CancellationToken::new();
    let tracker = TaskTracker::new();

    let senders = OutboxSenders::start(
        &config,
        &outbox,
        store.ledger(),
        store.data_dir().to_path_buf(),
        &shutdown,
        metrics.clone(),
    );
    let retention = RetentionSweeper::start(
        store.ledger().clone(),
        store.data_dir().to_path_buf(),
        RetentionPolicy {
            keep_days: config.retention.keep_days,
            max_used_percent: config.retention.max_used_percent,
        },
        std::time::Duration::from_secs(config.retention.sweep_interval_secs),
    );
    tokio::spawn(crate::series_watch::run(
        store.ledger().clone(),
        config.research.series_stable_secs,
        shutdown.clone(),
    ));
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let session_context = Arc::new(SessionContext {
        store: store.clone(),
        dimse_timeout: config.network.dimse_timeout(),
        idle_timeout: config.network.idle_timeout(),
        metrics: metrics.clone(),
        priority: config.priority.clone(),
    });
    let listener = Listener::new(tcp, config.clone(), session_context)?;
    listener
        .run(shutdown.clone(), abort.clone(), tracker.clone())
        .await;

    tracker.close();
    if tokio::time::timeout(config.network.shutdown_grace(), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = tracker.len(),
            "grace period over; aborting remaining associations"
        );
        abort.cancel();
        let _ = tokio::time::timeout(ABORT_WAIT, tracker.wait()).await;
    }
    match control.await {
        Ok(Err(error)) => tracing::warn!(%error, "control socket failed"),
        Err(error) => tracing::warn!(%error, "control socket task failed"),
        Ok(Ok(())) => {}
    }
    if let Some(http) = http {
        http.stopped(ABORT_WAIT).await;
    }
    if let Some(annotator) = annotator {
        annotator.stopped(ABORT_WAIT).await;
    }
    // A sender may be waiting on a peer for up to the timeout twice
    // (association, then response); then it stops.
    let senders_limit = std::time::Duration::from_secs(config.outbox.timeout_secs)
        .saturating_mul(2)
        .saturating_add(ABORT_WAIT);
    senders.stop(senders_limit).await;
    tokio::task::spawn_blocking(move || workers.stop()).await?;
    tokio::task::spawn_blocking(move || retention.stop()).await?;
    let flush_store = store.clone();
    tokio::task::spawn_blocking(move || flush_store.ledger().flush()).await??;
    tracing::info!("chestnode stopped; index flushed");
    Ok(())
}

/// Says which model runs, loudly when it is the untrained placeholder.
fn announce_model(model: &Model) {
    let info = &model.manifest.model;
    if model.is_placeholder() {
        tracing::warn!(
            "no trained model configured: using an UNTRAINED PLACEHOLDER whose findings are meaningless \
             (set analysis.model to a manifest in weights/)"
        );
    }
    tracing::info!(
        model = %info.name,
        version = %info.version,
        architecture = %info.architecture,
        research_use_only = info.research_use_only,
        "model loaded"
    );
}

/// Cancels `shutdown` on SIGTERM or SIGINT (Ctrl-C).
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received; shutting down"),
    }
    shutdown.cancel();
}
