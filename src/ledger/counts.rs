//! Counts kept up to date as records change, so that `chestnode status`,
//! `/metrics` and the store's backlog limit never walk the trees.
//!
//! The counts are tallied once when the ledger opens, then every write
//! that adds, changes or removes an instance, a job or a delivery reports
//! the record before and after it ([`Change`]). Only one process opens the
//! index at a time (sled's lock), so counts in memory cannot be stale
//! against another writer. A change is reported only after its
//! transaction committed: sled may run a transaction's closure more than
//! once, so the closures collect their changes and the caller applies the
//! last attempt's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::delivery::{Delivery, DeliveryState};
use super::instances::InstanceRecord;
use crate::queue::Job;

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

/// A record before and after one committed write (`None`: absent).
pub(super) enum Change {
    Instance {
        before: Option<u64>,
        after: Option<u64>,
    },
    Job {
        before: Option<&'static str>,
        after: Option<&'static str>,
    },
    Delivery {
        key: Vec<u8>,
        before: Option<Box<Delivery>>,
        after: Option<Box<Delivery>>,
    },
}

impl Change {
    /// A job record written over `before` (its stored bytes, if any).
    pub(super) fn job(before: Option<&[u8]>, after: Option<&Job>) -> Change {
        Change::Job {
            before: before.and_then(job_label),
            after: after.map(|job| job.state.label()),
        }
    }

    /// A delivery record written over `before` (its stored bytes, if any).
    pub(super) fn delivery(key: &[u8], before: Option<&[u8]>, after: Option<&Delivery>) -> Change {
        Change::Delivery {
            key: key.to_vec(),
            before: before
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .map(Box::new),
            after: after.cloned().map(Box::new),
        }
    }
}

fn job_label(bytes: &[u8]) -> Option<&'static str> {
    serde_json::from_slice::<Job>(bytes)
        .ok()
        .map(|job| job.state.label())
}

#[derive(Default)]
pub(super) struct Counts {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    instances: u64,
    bytes_stored: u64,
    jobs: BTreeMap<&'static str, u64>,
    destinations: BTreeMap<String, Destination>,
    /// Keys of dead-lettered deliveries, in key order.
    dead_letters: BTreeSet<Vec<u8>>,
}

#[derive(Default)]
struct Destination {
    pending: u64,
    delivered: u64,
    dead_letter: u64,
    /// Pending deliveries that failed at least once, by (time of the last
    /// attempt, key): the last entry is the destination's latest error.
    errors: BTreeMap<(u64, Vec<u8>), String>,
}

impl Counts {
    /// Counts what the trees hold now.
    pub(super) fn tally(
        instances: &sled::Tree,
        jobs: &sled::Tree,
        outbox: &sled::Tree,
    ) -> anyhow::Result<Counts> {
        let mut inner = Inner::default();
        for value in instances.iter().values() {
            let record: InstanceRecord = serde_json::from_slice(&value?)?;
            inner.instance(record.size_bytes, 1);
        }
        for value in jobs.iter().values() {
            if let Some(label) = job_label(&value?) {
                inner.job(label, 1);
            }
        }
        for entry in outbox.iter() {
            let (key, value) = entry?;
            if let Ok(delivery) = serde_json::from_slice::<Delivery>(&value) {
                inner.delivery(&key, &delivery, true);
            }
        }
        Ok(Counts {
            inner: Mutex::new(inner),
        })
    }

    /// Applies committed changes.
    pub(super) fn apply(&self, changes: impl IntoIterator<Item = Change>) {
        let mut inner = self.inner.lock().expect("counts lock");
        for change in changes {
            match change {
                Change::Instance { before, after } => {
                    if let Some(bytes) = before {
                        inner.instance(bytes, -1);
                    }
                    if let Some(bytes) = after {
                        inner.instance(bytes, 1);
                    }
                }
                Change::Job { before, after } => {
                    if let Some(label) = before {
                        inner.job(label, -1);
                    }
                    if let Some(label) = after {
                        inner.job(label, 1);
                    }
                }
                Change::Delivery { key, before, after } => {
                    if let Some(delivery) = before {
                        inner.delivery(&key, &delivery, false);
                    }
                    if let Some(delivery) = after {
                        inner.delivery(&key, &delivery, true);
                    }
                }
            }
        }
    }

    /// Instances in the index, and the bytes of their files.
    pub(super) fn instances(&self) -> (u64, u64) {
        let inner = self.inner.lock().expect("counts lock");
        (inner.instances, inner.bytes_stored)
    }

    /// Jobs by state label; states with no job are left out.
    pub(super) fn jobs_by_state(&self) -> BTreeMap<String, u64> {
        let inner = self.inner.lock().expect("counts lock");
        inner
            .jobs
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|(label, count)| ((*label).to_owned(), *count))
            .collect()
    }

    /// Jobs received or being analysed.
    pub(super) fn unfinished_jobs(&self) -> u64 {
        let inner = self.inner.lock().expect("counts lock");
        ["received", "analysing"]
            .iter()
            .map(|label| inner.jobs.get(label).copied().unwrap_or(0))
            .sum()
    }

    /// Each destination that has deliveries, by name.
    pub(super) fn backlog(&self) -> Vec<DestinationBacklog> {
        let inner = self.inner.lock().expect("counts lock");
        inner
            .destinations
            .iter()
            .filter(|(_, d)| d.pending + d.delivered + d.dead_letter > 0)
            .map(|(name, d)| DestinationBacklog {
                destination: name.clone(),
                pending: d.pending,
                delivered: d.delivered,
                dead_letter: d.dead_letter,
                last_error: d.errors.values().next_back().cloned(),
            })
            .collect()
    }

    /// Keys of dead-lettered deliveries, in key order (by destination).
    pub(super) fn dead_letter_keys(&self) -> Vec<Vec<u8>> {
        let inner = self.inner.lock().expect("counts lock");
        inner.dead_letters.iter().cloned().collect()
    }
}

impl Inner {
    fn instance(&mut self, bytes: u64, sign: i8) {
        if sign > 0 {
            self.instances += 1;
            self.bytes_stored += bytes;
        } else {
            self.instances = self.instances.saturating_sub(1);
            self.bytes_stored = self.bytes_stored.saturating_sub(bytes);
        }
    }

    fn job(&mut self, label: &'static str, sign: i8) {
        let count = self.jobs.entry(label).or_insert(0);
        *count = if sign > 0 {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
    }

    /// Adds (`add`) or takes away one delivery's share.
    fn delivery(&mut self, key: &[u8], delivery: &Delivery, add: bool) {
        let step = |count: &mut u64| {
            *count = if add {
                *count + 1
            } else {
                count.saturating_sub(1)
            }
        };
        let destination = self
            .destinations
            .entry(delivery.destination.clone())
            .or_default();
        match &delivery.state {
            DeliveryState::Pending { .. } => {
                step(&mut destination.pending);
                if let Some(error) = &delivery.last_error {
                    let at = (delivery.last_attempt_at.unwrap_or(0), key.to_vec());
                    if add {
                        destination.errors.insert(at, error.clone());
                    } else {
                        destination.errors.remove(&at);
                    }
                }
            }
            DeliveryState::Delivered { .. } => step(&mut destination.delivered),
            DeliveryState::DeadLetter { .. } => {
                step(&mut destination.dead_letter);
                if add {
                    self.dead_letters.insert(key.to_vec());
                } else {
                    self.dead_letters.remove(key);
                }
            }
        }
    }
}
