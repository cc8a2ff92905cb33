//! The result deliveries as stored: one record per (destination, result
//! object), created pending, then delivered, retried or dead-lettered by
//! that destination's sender.
//!
//! Enqueueing is idempotent: a record that exists, in any state, is left
//! alone, so re-analysing an image after a crash never sends a delivered
//! object again. Each record names the job whose image it came from, and
//! every change to a record updates that job's per-destination progress in
//! the same transaction ([`record_on_job`]), so `analysed → delivering →
//! delivered | dead-letter` on the job always agrees with its deliveries.
//! Which destinations an object goes to is the outbox's decision
//! (`outbox::routing`); this file only keeps the records.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::counts::{Change, DestinationBacklog};
use super::delivery::{Delivery, DeliveryState};
use super::{Ledger, job_key};
use crate::clock::{unix_now, unix_now_ms};
use crate::config::ResultKind;
use crate::queue::{DeliveryUpdate, DestinationState, Job};

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

/// The deliveries tree (and, for each change, the job it belongs to),
/// through the ledger.
#[derive(Clone)]
pub struct Deliveries {
    ledger: Ledger,
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

impl Deliveries {
    pub(super) fn new(ledger: Ledger) -> Deliveries {
        Deliveries { ledger }
    }

    fn tree(&self) -> &sled::Tree {
        &self.ledger.outbox
    }

    /// Creates one pending delivery of `object` for each of `destinations`
    /// (by name), in one transaction, and flushes. A delivery that already
    /// exists for a destination — pending, delivered or dead-lettered — is
    /// left as it is. Returns how many were created.
    pub fn enqueue(&self, destinations: &[&str], object: &NewDelivery) -> anyhow::Result<usize> {
        check_relative(&object.path)?;
        if object.sop_instance_uid.is_empty() || object.sop_instance_uid.contains('\0') {
            bail!("invalid SOP Instance UID {:?}", object.sop_instance_uid);
        }
        let now = unix_now();
        let mut records = Vec::new();
        for destination in destinations {
            let delivery = Delivery {
                destination: (*destination).to_owned(),
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
                delivery_key(destination, &object.sop_instance_uid),
                delivery,
            ));
        }
        if records.is_empty() {
            return Ok(0);
        }
        let ledger = &self.ledger;
        let outcome = (&ledger.outbox, &ledger.jobs).transaction(|(tree, jobs)| {
            let mut changes = Vec::new();
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
                        changes.push(Change::delivery(key, None, Some(delivery)));
                        created += 1;
                        delivery.clone()
                    }
                };
                changes.extend(record_on_job(jobs, &current, false)?);
            }
            Ok::<_, ConflictableTransactionError<()>>((created, changes))
        });
        let created = match outcome {
            Ok((created, changes)) => {
                ledger.counts.apply(changes);
                created
            }
            Err(TransactionError::Abort(())) => unreachable!("never aborted"),
            Err(TransactionError::Storage(error)) => return Err(error.into()),
        };
        self.tree().flush().context("flushing the outbox")?;
        Ok(created)
    }

    /// The delivery of one object to one destination.
    pub fn get(
        &self,
        destination: &str,
        sop_instance_uid: &str,
    ) -> anyhow::Result<Option<Delivery>> {
        Ok(
            match self
                .tree()
                .get(delivery_key(destination, sop_instance_uid))?
            {
                Some(value) => Some(serde_json::from_slice(&value)?),
                None => None,
            },
        )
    }

    /// Every delivery, grouped by destination.
    pub fn iter(&self) -> impl Iterator<Item = anyhow::Result<Delivery>> + '_ {
        self.tree()
            .iter()
            .values()
            .map(|value| Ok(serde_json::from_slice(&value?)?))
    }

    /// One destination's deliveries.
    pub fn for_destination(&self, destination: &str) -> anyhow::Result<Vec<Delivery>> {
        self.tree()
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

    /// A transient failure: counts the attempt and waits `delay` (the
    /// sender's backoff for the attempts failed so far) before the next.
    pub fn record_transient_failure(
        &self,
        delivery: &Delivery,
        reason: &str,
        delay: std::time::Duration,
    ) -> anyhow::Result<Delivery> {
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
        let ledger = &self.ledger;
        let outcome = (&ledger.outbox, &ledger.jobs).transaction(|(tree, jobs)| {
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
            let mut changes = vec![Change::delivery(&key, Some(&old), Some(&record))];
            changes.extend(record_on_job(jobs, &record, true)?);
            Ok((record, changes))
        });
        let updated = match outcome {
            Ok((record, changes)) => {
                ledger.counts.apply(changes);
                record
            }
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
        self.tree().flush().context("flushing the outbox")?;
        Ok(updated)
    }

    /// Moves dead letters — of one destination, or all — back to pending,
    /// due at once. Returns how many.
    pub fn retry_dead_letters(&self, destination: Option<&str>) -> anyhow::Result<usize> {
        let prefix = destination.map(destination_prefix);
        let keys: Vec<Vec<u8>> = self
            .ledger
            .counts
            .dead_letter_keys()
            .into_iter()
            .filter(|key| prefix.as_ref().is_none_or(|p| key.starts_with(p)))
            .collect();
        let ledger = &self.ledger;
        let mut retried = 0;
        for key in keys {
            let outcome = (&ledger.outbox, &ledger.jobs).transaction(|(tree, jobs)| {
                let Some(value) = tree.get(&key)? else {
                    return Ok(None);
                };
                let mut delivery: Delivery = match serde_json::from_slice(&value) {
                    Ok(delivery) => delivery,
                    Err(_) => return Ok(None),
                };
                if !matches!(delivery.state, DeliveryState::DeadLetter { .. }) {
                    return Ok(None);
                }
                delivery.state = DeliveryState::Pending { not_before_ms: 0 };
                tree.insert(
                    key.as_slice(),
                    serde_json::to_vec(&delivery).expect("serialisable"),
                )?;
                let mut changes = vec![Change::delivery(&key, Some(&value), Some(&delivery))];
                changes.extend(record_on_job(jobs, &delivery, false)?);
                Ok::<_, ConflictableTransactionError<()>>(Some(changes))
            });
            match outcome {
                Ok(Some(changes)) => {
                    ledger.counts.apply(changes);
                    retried += 1;
                }
                Ok(None) => {}
                Err(TransactionError::Abort(())) => unreachable!("never aborted"),
                Err(TransactionError::Storage(error)) => return Err(error.into()),
            }
        }
        self.tree().flush().context("flushing the outbox")?;
        Ok(retried)
    }

    /// Deliveries by state for each destination that has any, by name
    /// (kept as deliveries change; no walk over the records).
    pub fn backlog(&self) -> Vec<DestinationBacklog> {
        self.ledger.counts.backlog()
    }

    /// Every dead-lettered delivery, by destination.
    pub fn dead_letters(&self) -> anyhow::Result<Vec<Delivery>> {
        let mut dead = Vec::new();
        for key in self.ledger.counts.dead_letter_keys() {
            if let Some(value) = self.tree().get(&key)? {
                dead.push(serde_json::from_slice(&value)?);
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
) -> Result<Option<Change>, UnabortableTransactionError> {
    let Some(job_id) = delivery.job_id else {
        return Ok(None);
    };
    let key = job_key(job_id);
    let Some(bytes) = jobs.get(key)? else {
        return Ok(None);
    };
    let Ok(mut job) = serde_json::from_slice::<Job>(&bytes) else {
        return Ok(None);
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
    Ok(Some(Change::job(Some(&bytes), Some(&job))))
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
