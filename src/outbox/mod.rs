//! The outbox: result objects waiting to be sent to each destination by
//! C-STORE, retried until delivered or dead-lettered.
//!
//! The outbox owns the destination list and the routing: which result
//! kinds are made at all ([`Outbox::kinds`]), and which destinations each
//! object goes to. Every result object the worker writes is enqueued once
//! per destination that takes its kind: one [`Delivery`] record per
//! (destination, SOP Instance UID), kept by the ledger
//! ([`crate::ledger::Deliveries`]), created in one transaction and flushed
//! before `enqueue` returns. Enqueueing is idempotent — a record that
//! exists, in any state, is left alone — so re-analysing an image after a
//! crash never sends a delivered object again; and because result UIDs are
//! deterministic, a crash between "sent" and "marked delivered" at worst
//! sends the same instance once more, which a PACS stores as the same
//! object. Every change to a delivery also moves its job's
//! per-destination progress, in the same transaction.
//!
//! One sender task per destination (`sender`) takes the due records,
//! sends them over one association (`scu`, plain TCP or TLS), and records each outcome as
//! it comes: delivered; a transient failure (`failure`) retried after
//! exponential backoff with jitter (`backoff`); or a permanent one, moved
//! to the dead-letter list that `chestnode status` shows and `chestnode
//! retry` empties.

mod backoff;
mod failure;
mod link;
mod scu;
mod sender;
mod signal;

pub use backoff::Backoff;
pub use sender::OutboxSenders;
pub use signal::DeliverySignal;

pub use crate::ledger::{Delivery, DeliveryState, DestinationBacklog, NewDelivery};

use std::sync::Arc;

use crate::config::{DestinationConfig, ResultKind};
use crate::ledger::{Deliveries, Ledger};

/// The destinations, their deliveries, and the signal that wakes the
/// senders. One is made at start-up and shared by the worker (which
/// enqueues), the senders and the control socket (which retries).
#[derive(Clone)]
pub struct Outbox {
    deliveries: Deliveries,
    destinations: Arc<Vec<DestinationConfig>>,
    signal: Arc<DeliverySignal>,
}

impl Outbox {
    pub fn new(ledger: &Ledger, destinations: Vec<DestinationConfig>) -> Outbox {
        Outbox {
            deliveries: ledger.deliveries(),
            destinations: Arc::new(destinations),
            signal: Arc::new(DeliverySignal::default()),
        }
    }

    pub fn signal(&self) -> &DeliverySignal {
        &self.signal
    }

    /// The configured destinations.
    pub fn destinations(&self) -> &[DestinationConfig] {
        &self.destinations
    }

    /// The kinds to make for every image: SR and SC always (they are what
    /// `status` and PACS show), GSPS only when a destination takes it.
    pub fn kinds(&self) -> Vec<ResultKind> {
        ResultKind::ALL
            .into_iter()
            .filter(|kind| {
                *kind != ResultKind::Gsps
                    || self.destinations.iter().any(|d| d.kinds.contains(kind))
            })
            .collect()
    }

    /// Creates one pending delivery for each destination that takes
    /// `object.kind`, in one transaction, flushes, and wakes the senders.
    /// A delivery that already exists for a destination — pending,
    /// delivered or dead-lettered — is left as it is. Returns how many were
    /// created.
    pub fn enqueue(&self, object: &NewDelivery) -> anyhow::Result<usize> {
        let takers: Vec<&str> = self
            .destinations
            .iter()
            .filter(|d| d.kinds.contains(&object.kind))
            .map(|d| d.name.as_str())
            .collect();
        let created = self.deliveries.enqueue(&takers, object)?;
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
        self.deliveries.get(destination, sop_instance_uid)
    }

    /// One destination's deliveries.
    pub fn for_destination(&self, destination: &str) -> anyhow::Result<Vec<Delivery>> {
        self.deliveries.for_destination(destination)
    }

    /// Up to `limit` pending deliveries for `destination` that are due at
    /// `now_ms`, oldest first.
    pub fn due(
        &self,
        destination: &str,
        now_ms: u64,
        limit: usize,
    ) -> anyhow::Result<Vec<Delivery>> {
        self.deliveries.due(destination, now_ms, limit)
    }

    /// When the next pending delivery for `destination` becomes due.
    pub fn next_due_ms(&self, destination: &str) -> anyhow::Result<Option<u64>> {
        self.deliveries.next_due_ms(destination)
    }

    /// The destination took the object.
    pub fn mark_delivered(&self, delivery: &Delivery) -> anyhow::Result<Delivery> {
        self.deliveries.mark_delivered(delivery)
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
        self.deliveries
            .record_transient_failure(delivery, reason, delay)
    }

    /// A permanent failure: the delivery goes to the dead-letter list.
    pub fn dead_letter(&self, delivery: &Delivery, reason: &str) -> anyhow::Result<Delivery> {
        self.deliveries.dead_letter(delivery, reason)
    }

    /// Moves dead letters — of one destination, or all — back to pending,
    /// due at once, and wakes the senders. Returns how many.
    pub fn retry_dead_letters(&self, destination: Option<&str>) -> anyhow::Result<usize> {
        let retried = self.deliveries.retry_dead_letters(destination)?;
        if retried > 0 {
            self.signal.notify();
        }
        Ok(retried)
    }

    /// Deliveries by state for each destination that has any, by name.
    pub fn backlog(&self) -> Vec<DestinationBacklog> {
        self.deliveries.backlog()
    }

    /// Every dead-lettered delivery, by destination.
    pub fn dead_letters(&self) -> anyhow::Result<Vec<Delivery>> {
        self.deliveries.dead_letters()
    }
}

#[cfg(test)]
mod tests;
