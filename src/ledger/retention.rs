//! The records side of retention: which instances are fully dealt with,
//! and forgetting one (instance, job, result and deliveries in one
//! transaction). When to delete, and the files, are the retention
//! policy's ([`crate::retention`]).

use std::collections::HashMap;

use sled::Transactional;
use sled::transaction::TransactionError;

use super::counts::Change;
use super::delivery::{Delivery, DeliveryState};
use super::instances::InstanceRecord;
use super::{Ledger, job_key};
use crate::queue::{Job, JobState};

/// A finished instance: its record, and the files that go with it.
pub struct Removable {
    pub record: InstanceRecord,
    /// The result objects' files, relative to the data directory.
    pub result_files: Vec<String>,
    delivery_keys: Vec<Vec<u8>>,
}

impl Ledger {
    /// Instances whose job is final (analysed, delivered or not analysed)
    /// and whose results are all delivered, in index order.
    pub fn retention_candidates(&self) -> anyhow::Result<Vec<Removable>> {
        // Deliveries by source image: their keys, and whether all are done.
        let mut deliveries: HashMap<String, (bool, Vec<Vec<u8>>)> = HashMap::new();
        for entry in self.outbox.iter() {
            let (key, value) = entry?;
            let delivery: Delivery = serde_json::from_slice(&value)?;
            let slot = deliveries
                .entry(delivery.source_sop_instance_uid.clone())
                .or_insert((true, Vec::new()));
            slot.0 &= matches!(delivery.state, DeliveryState::Delivered { .. });
            slot.1.push(key.to_vec());
        }
        let mut found = Vec::new();
        for entry in self.instances.iter() {
            let (_, value) = entry?;
            let record: InstanceRecord = serde_json::from_slice(&value)?;
            let Some(bytes) = self.jobs.get(job_key(record.job_id))? else {
                continue;
            };
            let job: Job = serde_json::from_slice(&bytes)?;
            if !matches!(
                job.state,
                JobState::Analysed | JobState::Delivered | JobState::NotAnalysed { .. }
            ) {
                continue;
            }
            let (all_delivered, delivery_keys) = deliveries
                .remove(&record.sop_instance_uid)
                .unwrap_or((true, Vec::new()));
            if !all_delivered {
                continue;
            }
            let result_files = self
                .queue()
                .published(&job)?
                .iter()
                .map(|object| object.path.to_string_lossy().into_owned())
                .collect();
            found.push(Removable {
                record,
                result_files,
                delivery_keys,
            });
        }
        Ok(found)
    }

    /// Removes a finished instance's records — instance, job, result and
    /// deliveries — in one transaction, then flushes. Its files must be
    /// gone first: a crash in between leaves records whose files are gone,
    /// which the next sweep finishes.
    pub fn forget(&self, candidate: &Removable) -> anyhow::Result<()> {
        let record = &candidate.record;
        let key = job_key(record.job_id);
        let trees = (
            &self.instances,
            &self.jobs,
            &self.results,
            &self.outbox,
            &self.series,
            &self.series_members,
        );
        let outcome = trees.transaction(|(instances, jobs, results, outbox, series, members)| {
            super::series::forget_instance(series, members, record)?;
            let mut changes = Vec::new();
            if let Some(old) = instances.remove(record.sop_instance_uid.as_bytes())? {
                let size = serde_json::from_slice::<InstanceRecord>(&old)
                    .map(|r| r.size_bytes)
                    .unwrap_or(0);
                changes.push(Change::Instance {
                    before: Some(size),
                    after: None,
                });
            }
            if let Some(old) = jobs.remove(&key)? {
                changes.push(Change::job(Some(&old), None));
            }
            results.remove(&key)?;
            for delivery in &candidate.delivery_keys {
                if let Some(old) = outbox.remove(delivery.as_slice())? {
                    changes.push(Change::delivery(delivery, Some(&old), None));
                }
            }
            Ok(changes)
        });
        match outcome {
            Ok(changes) => self.counts.apply(changes),
            Err(TransactionError::Abort(())) => unreachable!("never aborted"),
            Err(TransactionError::Storage(error)) => return Err(error.into()),
        }
        self.flush()
    }
}
