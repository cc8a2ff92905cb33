//! The senders: one tokio task per configured destination, delivering its
//! due records over one association at a time and recording each outcome
//! as soon as the peer answers.
//!
//! A sender sleeps until a delivery is enqueued or retried (the outbox's
//! signal) or the earliest pending one becomes due, whichever comes first.
//! On shutdown it finishes the C-STORE in progress, releases the
//! association and stops; anything not yet sent stays pending in sled for
//! the next run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::failure::{Failure, StatusOutcome, classify_status};
use super::scu::{ObjectToStore, ScuSettings, StoreAssociation, StoreError};
use super::{Backoff, Delivery, DeliveryState, Outbox};
use crate::clock::unix_now_ms;
use crate::config::{Config, DestinationConfig};
use crate::ledger::{IncidentLog, Ledger};
use crate::metrics::{DeliveryOutcome, Metrics};

/// Deliveries sent over one association at most; the sender then looks
/// for due work again (and lets a shutdown in).
const BATCH: usize = 32;
/// How long a sender with nothing pending sleeps before looking again,
/// in case a wake-up was missed.
const IDLE_RECHECK: Duration = Duration::from_secs(60);
/// Pause after the outbox itself could not be read.
const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// The running senders.
pub struct OutboxSenders {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl OutboxSenders {
    /// Starts one sender per destination of `outbox`. They stop when
    /// `shutdown` is cancelled or [`OutboxSenders::stop`] is called. A
    /// destination whose TLS files cannot be loaded gets no sender (its
    /// deliveries stay pending); `serve` checks them before it gets here.
    pub fn start(
        config: &Config,
        outbox: &Outbox,
        db: &Ledger,
        data_dir: PathBuf,
        shutdown: &CancellationToken,
        metrics: Arc<Metrics>,
    ) -> OutboxSenders {
        let stop = shutdown.child_token();
        let tracker = TaskTracker::new();
        let settings = ScuSettings {
            calling_ae_title: config.node.ae_title.clone(),
            timeout: Duration::from_secs(config.outbox.timeout_secs),
            max_pdu_length: config.outbox.max_pdu_length,
        };
        let data_dir = Arc::new(data_dir);
        for destination in outbox.destinations() {
            let tls = match destination.tls.as_ref().map(crate::tls::client_config) {
                None => None,
                Some(Ok(tls)) => Some(tls),
                Some(Err(error)) => {
                    tracing::error!(
                        destination = %destination.name,
                        error = format!("{error:#}"),
                        "outbox sender not started: its TLS configuration cannot be loaded"
                    );
                    continue;
                }
            };
            let sender = DestinationSender {
                destination: destination.clone(),
                tls,
                outbox: outbox.clone(),
                incidents: db.incidents().clone(),
                settings: settings.clone(),
                backoff: Backoff::from_config(&config.outbox),
                data_dir: data_dir.clone(),
                stop: stop.clone(),
                db: db.clone(),
                metrics: metrics.clone(),
            };
            tracing::info!(
                destination = %destination.name,
                ae_title = %destination.ae_title,
                host = %destination.host,
                port = destination.port,
                tls = destination.tls.is_some(),
                "outbox sender started"
            );
            tracker.spawn(sender.run());
        }
        tracker.close();
        OutboxSenders { tracker, stop }
    }

    /// Asks every sender to stop and waits for them, at most `limit`:
    /// each finishes its current C-STORE and releases its association.
    pub async fn stop(self, limit: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.tracker.len(),
                "outbox senders did not stop in time"
            );
        }
    }
}

/// One destination's sender.
struct DestinationSender {
    destination: DestinationConfig,
    /// The client TLS configuration, for a TLS destination.
    tls: Option<Arc<ClientConfig>>,
    outbox: Outbox,
    incidents: IncidentLog,
    settings: ScuSettings,
    backoff: Backoff,
    data_dir: Arc<PathBuf>,
    stop: CancellationToken,
    /// For the source image's receipt time (end-to-end latency).
    db: Ledger,
    metrics: Arc<Metrics>,
}

impl DestinationSender {
    async fn run(self) {
        let mut wake = self.outbox.signal().subscribe();
        while !self.stop.is_cancelled() {
            wake.borrow_and_update();
            let wait = match self.due_or_wait().await {
                Ok(Ok(due)) => {
                    if let Some(hold) = self.send_batch(due).await {
                        // The peer is unreachable: other due deliveries
                        // would fail the same way, so they wait too.
                        tokio::select! {
                            _ = self.stop.cancelled() => break,
                            _ = tokio::time::sleep(hold) => {}
                        }
                    }
                    continue;
                }
                Ok(Err(wait)) => wait,
                Err(error) => {
                    tracing::warn!(destination = %self.destination.name, %error, "cannot read the outbox");
                    ERROR_PAUSE
                }
            };
            tokio::select! {
                _ = self.stop.cancelled() => break,
                changed = wake.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(wait).await;
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(destination = %self.destination.name, "outbox sender stopped");
    }

    /// The deliveries due now, or how long to wait for the next.
    async fn due_or_wait(&self) -> anyhow::Result<Result<Vec<Delivery>, Duration>> {
        let outbox = self.outbox.clone();
        let name = self.destination.name.clone();
        tokio::task::spawn_blocking(move || {
            let now = unix_now_ms();
            let due = outbox.due(&name, now, BATCH)?;
            if !due.is_empty() {
                return Ok(Ok(due));
            }
            let wait = match outbox.next_due_ms(&name)? {
                Some(at) => Duration::from_millis(at.saturating_sub(now)).min(IDLE_RECHECK),
                None => IDLE_RECHECK,
            };
            Ok(Err(wait))
        })
        .await?
    }

    /// Sends `due` over one association, recording each outcome. When no
    /// association could be had for a transient reason, returns how long
    /// the whole destination should wait: until the batch is due again.
    async fn send_batch(&self, due: Vec<Delivery>) -> Option<Duration> {
        let proposals: Vec<(&str, &str)> = due
            .iter()
            .map(|d| (d.sop_class_uid.as_str(), d.transfer_syntax_uid.as_str()))
            .collect();
        let mut association = match StoreAssociation::establish(
            &self.settings,
            &self.destination,
            self.tls.as_ref(),
            &proposals,
        )
        .await
        {
            Ok(association) => association,
            Err(failure) => {
                // Nothing was sent: every delivery of the batch failed
                // the same way.
                let mut next_due_ms = None;
                for delivery in &due {
                    if let Some(updated) = self.record_failure(delivery, &failure).await
                        && let DeliveryState::Pending { not_before_ms } = updated.state
                    {
                        next_due_ms =
                            Some(next_due_ms.map_or(not_before_ms, |t: u64| t.min(not_before_ms)));
                    }
                }
                let now = unix_now_ms();
                return next_due_ms.map(|at| Duration::from_millis(at.saturating_sub(now)));
            }
        };
        for delivery in &due {
            if self.stop.is_cancelled() {
                break;
            }
            let file = self.data_dir.join(&delivery.path);
            let object = ObjectToStore {
                sop_class_uid: &delivery.sop_class_uid,
                sop_instance_uid: &delivery.sop_instance_uid,
                transfer_syntax_uid: &delivery.transfer_syntax_uid,
                file: &file,
            };
            match association.store(&object).await {
                Ok(response) => match classify_status(response.status) {
                    StatusOutcome::Success => {
                        self.record_delivered(delivery, response.status).await
                    }
                    StatusOutcome::Warning => {
                        tracing::warn!(
                            destination = %self.destination.name,
                            sop_instance_uid = %delivery.sop_instance_uid,
                            status = format_args!("0x{:04X}", response.status),
                            comment = response.error_comment.as_deref().unwrap_or(""),
                            "stored with a warning"
                        );
                        self.record_delivered(delivery, response.status).await;
                    }
                    StatusOutcome::Failed(failure) => {
                        let failure = with_comment(failure, response.error_comment.as_deref());
                        self.record_failure(delivery, &failure).await;
                    }
                },
                Err(StoreError::Object(failure)) => {
                    self.record_failure(delivery, &failure).await;
                }
                Err(StoreError::Association(failure)) => {
                    // The rest of the batch was not tried; it stays due
                    // and goes out on a new association.
                    self.record_failure(delivery, &failure).await;
                    association.abort().await;
                    return None;
                }
            }
        }
        association.release().await;
        None
    }

    async fn record_delivered(&self, delivery: &Delivery, status: u16) {
        let outbox = self.outbox.clone();
        let db = self.db.clone();
        let record = delivery.clone();
        let marked = tokio::task::spawn_blocking(move || {
            let delivered = outbox.mark_delivered(&record)?;
            let source = db.find_instance(&delivered.source_sop_instance_uid);
            anyhow::Ok((delivered, source.ok().flatten()))
        });
        match marked.await {
            Ok(Ok((delivered, source))) => {
                self.metrics
                    .delivery_attempt(&delivered.destination, DeliveryOutcome::Delivered);
                if let Some(source) = source {
                    self.metrics
                        .result_delivered(&delivered.destination, source.received_at);
                }
                tracing::info!(
                    destination = %delivered.destination,
                    kind = delivered.kind.key(),
                    sop_instance_uid = %delivered.sop_instance_uid,
                    source_sop_instance_uid = %delivered.source_sop_instance_uid,
                    status = format_args!("0x{status:04X}"),
                    attempts = delivered.attempts,
                    "delivered"
                )
            }
            Ok(Err(error)) => self.cannot_record(delivery, &error.to_string()),
            Err(error) => self.cannot_record(delivery, &error.to_string()),
        }
    }

    /// Records a failed attempt; returns the updated record.
    async fn record_failure(&self, delivery: &Delivery, failure: &Failure) -> Option<Delivery> {
        let outbox = self.outbox.clone();
        let record = delivery.clone();
        let reason = failure.reason().to_owned();
        let permanent = failure.is_permanent();
        let backoff = self.backoff;
        let outcome = tokio::task::spawn_blocking(move || {
            if permanent {
                outbox.dead_letter(&record, &reason)
            } else {
                outbox.record_transient_failure(&record, &reason, &backoff)
            }
        })
        .await;
        let outcome_label = if permanent {
            DeliveryOutcome::Permanent
        } else {
            DeliveryOutcome::Transient
        };
        self.metrics
            .delivery_attempt(&self.destination.name, outcome_label);
        let updated = match outcome {
            Ok(Ok(updated)) => updated,
            Ok(Err(error)) => {
                self.cannot_record(delivery, &error.to_string());
                return None;
            }
            Err(error) => {
                self.cannot_record(delivery, &error.to_string());
                return None;
            }
        };
        if permanent {
            tracing::error!(
                destination = %updated.destination,
                kind = updated.kind.key(),
                sop_instance_uid = %updated.sop_instance_uid,
                reason = failure.reason(),
                "delivery failed permanently; moved to the dead-letter list (chestnode retry)"
            );
            self.incidents.record(
                "outbox",
                format!(
                    "{} to {}: {} (dead letter)",
                    updated.sop_instance_uid,
                    updated.destination,
                    failure.reason()
                ),
            );
        } else {
            let retry_in_ms = match updated.state {
                DeliveryState::Pending { not_before_ms } => {
                    not_before_ms.saturating_sub(unix_now_ms())
                }
                _ => 0,
            };
            tracing::warn!(
                destination = %updated.destination,
                sop_instance_uid = %updated.sop_instance_uid,
                reason = failure.reason(),
                attempts = updated.attempts,
                retry_in_ms,
                "delivery failed; will retry"
            );
        }
        Some(updated)
    }

    fn cannot_record(&self, delivery: &Delivery, error: &str) {
        tracing::error!(
            destination = %self.destination.name,
            sop_instance_uid = %delivery.sop_instance_uid,
            %error,
            "cannot record the delivery outcome"
        );
    }
}

/// Adds the peer's Error Comment to a failure's reason.
fn with_comment(failure: Failure, comment: Option<&str>) -> Failure {
    let Some(comment) = comment.filter(|c| !c.is_empty()) else {
        return failure;
    };
    match failure {
        Failure::Transient(reason) => Failure::Transient(format!("{reason} ({comment})")),
        Failure::Permanent(reason) => Failure::Permanent(format!("{reason} ({comment})")),
    }
}
