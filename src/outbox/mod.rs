//! The outbox: result objects waiting to be sent to each destination by
//! C-STORE, retried until delivered or dead-lettered.
//!
//! Every result object the worker writes is enqueued once per destination
//! that takes its kind: one [`Delivery`] record per (destination, SOP
//! Instance UID) in a sled tree, created in one transaction and flushed
//! before `enqueue` returns. Enqueueing is idempotent — a record that
//! exists, in any state, is left alone — so re-analysing an image after a
//! crash never sends a delivered object again; and because result UIDs are
//! deterministic, a crash between "sent" and "marked delivered" at worst
//! sends the same instance once more, which a PACS stores as the same
//! object.
//!
//! Each record names the job whose image it came from, and every change to
//! a record updates that job's per-destination progress in the same sled
//! transaction (see `queue::progress`), so `analysed → delivering →
//! delivered | dead-letter` on the job always agrees with its deliveries.
//!
//! One sender task per destination ([`sender`]) takes the due records,
//! sends them over one association ([`scu`], plain TCP or TLS), and records each outcome as
//! it comes: delivered; a transient failure ([`failure`]) retried after
//! exponential backoff with jitter ([`backoff`]); or a permanent one, moved
//! to the dead-letter list that `chestnode status` shows and `chestnode
//! retry` empties.

pub mod backoff;
mod delivery;
pub mod failure;
mod link;
pub mod scu;
pub mod sender;
mod signal;

pub use backoff::Backoff;
pub use delivery::{Delivery, DeliveryState};
pub use sender::OutboxSenders;
pub use signal::DeliverySignal;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use crate::config::{DestinationConfig, ResultKind};
use crate::incidents::unix_now;
use crate::queue::{DeliveryUpdate, DestinationState, Job, job_key};

/// Name of the sled tree holding deliveries.
pub const OUTBOX_TREE: &str = "outbox";

/// A result object to deliver, as the worker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub kind: ResultKind,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax_uid: String,
    /// The Part-10 file, relative to the data directory.
    pub path: PathBuf,
    pub source_sop_instance_uid: String,
    /// The job of the analysed image, whose progress the delivery updates.
    pub job_id: Option<u64>,
}

/// One destination's deliveries by state, for `chestnode status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationBacklog {
    pub destination: String,
    pub pending: u64,
    pub delivered: u64,
    pub dead_letter: u64,
    /// The latest error among pending deliveries (why they are waiting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The deliveries tree and the signal that wakes the senders.
#[derive(Clone)]
pub struct Outbox {
    tree: sled::Tree,
    /// The jobs tree: each delivery change is recorded on its job too.
    jobs: sled::Tree,
    signal: Arc<DeliverySignal>,
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Key of a delivery: destination name, a NUL, the SOP Instance UID.
/// Neither may contain a NUL (names are checked by the configuration, UIDs
/// are digits and dots), so keys are unambiguous and one destination's
/// records share a prefix.
fn delivery_key(destination: &str, sop_instance_uid: &str) -> Vec<u8> {
    let mut key = destination_prefix(destination);
    key.extend_from_slice(sop_instance_uid.as_bytes());
    key
}

fn destination_prefix(destination: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(destination.len() + 1);
    prefix.extend_from_slice(destination.as_bytes());
    prefix.push(0);
    prefix
}

impl Outbox {
    pub fn new(tree: sled::Tree, jobs: sled::Tree, signal: Arc<DeliverySignal>) -> Outbox {
        Outbox { tree, jobs, signal }
    }

    pub fn signal(&self) -> &DeliverySignal {
        &self.signal
    }

    /// Creates one pending delivery for each destination that takes
    /// `object.kind`, in one transaction, flushes, and wakes the senders.
    /// A delivery that already exists for a destination — pending,
    /// delivered or dead-lettered — is left as it is. Returns how many were
    /// created.
    pub fn enqueue(
        &self,
        destinations: &[DestinationConfig],
        object: &NewDelivery,
    ) -> anyhow::Result<usize> {
        check_relative(&object.path)?;
        if object.sop_instance_uid.is_empty() || object.sop_instance_uid.contains('\0') {
            bail!("invalid SOP Instance UID {:?}", object.sop_instance_uid);
        }
        let now = unix_now();
        let mut records = Vec::new();
        for destination in destinations
            .iter()
            .filter(|d| d.kinds.contains(&object.kind))
        {
            let delivery = Delivery {
                destination: destination.name.clone(),
                kind: object.kind,
                sop_class_uid: object.sop_class_uid.clone(),
                sop_instance_uid: object.sop_instance_uid.clone(),
                transfer_syntax_uid: object.transfer_syntax_uid.clone(),
                path: object.path.clone(),
                source_sop_instance_uid: object.source_sop_instance_uid.clone(),
                job_id: object.job_id,
                attempts: 0,
                created_at: now,
                last_attempt_at: None,
                state: DeliveryState::Pending { not_before_ms: 0 },
                last_error: None,
            };
            records.push((
                delivery_key(&destination.name, &object.sop_instance_uid),
                delivery,
            ));
        }
        if records.is_empty() {
            return Ok(0);
        }
        let outcome = (&self.tree, &self.jobs).transaction(|(tree, jobs)| {
            let mut created = 0;
            for (key, delivery) in &records {
                // An existing record keeps its state; the job learns it.
                let current = match tree.get(key)? {
                    Some(existing) => {
                        serde_json::from_slice(&existing).unwrap_or_else(|_| delivery.clone())
                    }
                    None => {
                        let value = serde_json::to_vec(delivery).expect("serialisable");
                        tree.insert(key.as_slice(), value)?;
                        created += 1;
                        delivery.clone()
                    }
                };
                record_on_job(jobs, &current, false)?;
            }
            Ok::<_, ConflictableTransactionError<()>>(created)
        });
        let created = match outcome {
            Ok(created) => created,
            Err(TransactionError::Abort(())) => unreachable!("never aborted"),
            Err(TransactionError::Storage(error)) => return Err(error.into()),
        };
        self.tree.flush().context("flushing the outbox")?;
        if created > 0 {
            self.signal.notify();
        }
        Ok(created)
    }

    /// The delivery of one object to one destination.
    pub fn get(
        &self,
        destination: &str,
        sop_instance_uid: &str,
    ) -> anyhow::Result<Option<Delivery>> {
        Ok(
            match self.tree.get(delivery_key(destination, sop_instance_uid))? {
                Some(value) => Some(serde_json::from_slice(&value)?),
                None => None,
            },
        )
    }

    /// Every delivery, grouped by destination.
    pub fn iter(&self) -> impl Iterator<Item = anyhow::Result<Delivery>> + '_ {
        self.tree
            .iter()
            .values()
            .map(|value| Ok(serde_json::from_slice(&value?)?))
    }

    /// One destination's deliveries.
    pub fn for_destination(&self, destination: &str) -> anyhow::Result<Vec<Delivery>> {
        self.tree
            .scan_prefix(destination_prefix(destination))
            .values()
            .map(|value| Ok(serde_json::from_slice(&value?)?))
            .collect()
    }

    /// Up to `limit` pending deliveries for `destination` that are due at
    /// `now_ms`, oldest first. Only that destination's sender changes
    /// pending records, so taking them needs no lock.
    pub fn due(
        &self,
        destination: &str,
        now_ms: u64,
        limit: usize,
    ) -> anyhow::Result<Vec<Delivery>> {
        let mut due: Vec<Delivery> = self
            .for_destination(destination)?
            .into_iter()
            .filter(|d| d.is_due(now_ms))
            .collect();
        due.sort_by(|a, b| {
            (a.created_at, &a.sop_instance_uid).cmp(&(b.created_at, &b.sop_instance_uid))
        });
        due.truncate(limit);
        Ok(due)
    }

    /// When the next pending delivery for `destination` becomes due
    /// (milliseconds since the epoch), if any is pending.
    pub fn next_due_ms(&self, destination: &str) -> anyhow::Result<Option<u64>> {
        Ok(self
            .for_destination(destination)?
            .iter()
            .filter_map(|d| match d.state {
                DeliveryState::Pending { not_before_ms } => Some(not_before_ms),
                _ => None,
            })
            .min())
    }

    /// The destination took the object.
    pub fn mark_delivered(&self, delivery: &Delivery) -> anyhow::Result<Delivery> {
        self.settle(delivery, None, DeliveryState::Delivered { at: unix_now() })
    }

    /// A transient failure: counts the attempt and waits the backoff delay
    /// for the attempts failed so far before the next.
    pub fn record_transient_failure(
        &self,
        delivery: &Delivery,
        reason: &str,
        backoff: &Backoff,
    ) -> anyhow::Result<Delivery> {
        let delay = backoff.delay(delivery.attempts + 1);
        let not_before_ms = unix_now_ms() + delay.as_millis() as u64;
        self.settle(
            delivery,
            Some(reason),
            DeliveryState::Pending { not_before_ms },
        )
    }

    /// A permanent failure: counts the attempt and moves the delivery to
    /// the dead-letter list.
    pub fn dead_letter(&self, delivery: &Delivery, reason: &str) -> anyhow::Result<Delivery> {
        let state = DeliveryState::DeadLetter {
            reason: reason.to_owned(),
        };
        self.settle(delivery, Some(reason), state)
    }

    /// Records the outcome of one attempt on a pending delivery, and on its
    /// job, in one transaction; then flushes.
    fn settle(
        &self,
        delivery: &Delivery,
        error: Option<&str>,
        state: DeliveryState,
    ) -> anyhow::Result<Delivery> {
        let key = delivery_key(&delivery.destination, &delivery.sop_instance_uid);
        let outcome = (&self.tree, &self.jobs).transaction(|(tree, jobs)| {
            let Some(old) = tree.get(&key)? else {
                return Err(ConflictableTransactionError::Abort(None));
            };
            let mut record: Delivery = serde_json::from_slice(&old)
                .map_err(|_| ConflictableTransactionError::Abort(None))?;
            if !matches!(record.state, DeliveryState::Pending { .. }) {
                return Err(ConflictableTransactionError::Abort(Some(
                    record.state.label(),
                )));
            }
            record.attempts += 1;
            record.last_attempt_at = Some(unix_now());
            record.state = state.clone();
            if let Some(error) = error {
                record.last_error = Some(error.to_owned());
            }
            tree.insert(
                key.as_slice(),
                serde_json::to_vec(&record).expect("serialisable"),
            )?;
            record_on_job(jobs, &record, true)?;
            Ok(record)
        });
        let updated = match outcome {
            Ok(record) => record,
            Err(TransactionError::Abort(None)) => bail!(
                "no delivery of {} to {}",
                delivery.sop_instance_uid,
                delivery.destination
            ),
            Err(TransactionError::Abort(Some(label))) => bail!(
                "delivery of {} to {} is {label}, not pending",
                delivery.sop_instance_uid,
                delivery.destination
            ),
            Err(TransactionError::Storage(error)) => return Err(error.into()),
        };
        self.tree.flush().context("flushing the outbox")?;
        Ok(updated)
    }

    /// Moves dead letters — of one destination, or all — back to pending,
    /// due at once, and wakes the senders. Returns how many.
    pub fn retry_dead_letters(&self, destination: Option<&str>) -> anyhow::Result<usize> {
        let entries: Vec<_> = match destination {
            Some(name) => self.tree.scan_prefix(destination_prefix(name)).collect(),
            None => self.tree.iter().collect(),
        };
        let mut retried = 0;
        for entry in entries {
            let (key, _) = entry?;
            let outcome = (&self.tree, &self.jobs).transaction(|(tree, jobs)| {
                let Some(value) = tree.get(&key)? else {
                    return Ok(false);
                };
                let mut delivery: Delivery = match serde_json::from_slice(&value) {
                    Ok(delivery) => delivery,
                    Err(_) => return Ok(false),
                };
                if !matches!(delivery.state, DeliveryState::DeadLetter { .. }) {
                    return Ok(false);
                }
                delivery.state = DeliveryState::Pending { not_before_ms: 0 };
                tree.insert(&key, serde_json::to_vec(&delivery).expect("serialisable"))?;
                record_on_job(jobs, &delivery, false)?;
                Ok::<_, ConflictableTransactionError<()>>(true)
            });
            match outcome {
                Ok(true) => retried += 1,
                Ok(false) => {}
                Err(TransactionError::Abort(())) => unreachable!("never aborted"),
                Err(TransactionError::Storage(error)) => return Err(error.into()),
            }
        }
        self.tree.flush().context("flushing the outbox")?;
        if retried > 0 {
            self.signal.notify();
        }
        Ok(retried)
    }

    /// Deliveries by state for each destination that has any, by name.
    pub fn backlog(&self) -> anyhow::Result<Vec<DestinationBacklog>> {
        let mut by_destination: BTreeMap<String, (DestinationBacklog, u64)> = BTreeMap::new();
        for delivery in self.iter() {
            let delivery = delivery?;
            let (entry, last_error_at) = by_destination
                .entry(delivery.destination.clone())
                .or_insert_with(|| {
                    let backlog = DestinationBacklog {
                        destination: delivery.destination.clone(),
                        ..Default::default()
                    };
                    (backlog, 0)
                });
            match delivery.state {
                DeliveryState::Pending { .. } => {
                    entry.pending += 1;
                    let at = delivery.last_attempt_at.unwrap_or(0);
                    if delivery.last_error.is_some() && at >= *last_error_at {
                        *last_error_at = at;
                        entry.last_error = delivery.last_error.clone();
                    }
                }
                DeliveryState::Delivered { .. } => entry.delivered += 1,
                DeliveryState::DeadLetter { .. } => entry.dead_letter += 1,
            }
        }
        Ok(by_destination.into_values().map(|(b, _)| b).collect())
    }

    /// Every dead-lettered delivery, by destination.
    pub fn dead_letters(&self) -> anyhow::Result<Vec<Delivery>> {
        let mut dead = Vec::new();
        for delivery in self.iter() {
            let delivery = delivery?;
            if matches!(delivery.state, DeliveryState::DeadLetter { .. }) {
                dead.push(delivery);
            }
        }
        Ok(dead)
    }
}

/// Records a delivery's current state on its job, inside the transaction
/// that changed the delivery. A delivery without a job (made by an older
/// version), or whose job is gone, records nothing.
fn record_on_job(
    jobs: &TransactionalTree,
    delivery: &Delivery,
    attempted: bool,
) -> Result<(), UnabortableTransactionError> {
    let Some(job_id) = delivery.job_id else {
        return Ok(());
    };
    let key = job_key(job_id);
    let Some(bytes) = jobs.get(key)? else {
        return Ok(());
    };
    let Ok(mut job) = serde_json::from_slice::<Job>(&bytes) else {
        return Ok(());
    };
    let (state, error) = match &delivery.state {
        DeliveryState::Pending { .. } => (
            DestinationState::Delivering,
            attempted
                .then_some(delivery.last_error.as_deref())
                .flatten(),
        ),
        DeliveryState::Delivered { .. } => (DestinationState::Delivered, None),
        DeliveryState::DeadLetter { reason } => {
            (DestinationState::DeadLetter, Some(reason.as_str()))
        }
    };
    let update = DeliveryUpdate {
        destination: &delivery.destination,
        sop_instance_uid: &delivery.sop_instance_uid,
        state,
        attempted,
        error,
    };
    job.record_delivery(&update, unix_now());
    jobs.insert(&key, serde_json::to_vec(&job).expect("serialisable"))?;
    Ok(())
}

/// A result path must stay inside the data directory: relative, without
/// `..` or a root.
fn check_relative(path: &Path) -> anyhow::Result<()> {
    if path.as_os_str().is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_)))
    {
        bail!(
            "result path {} must be relative to the data directory, without '..'",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
