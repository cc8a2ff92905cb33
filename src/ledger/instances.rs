//! The instance index: one sled record per stored instance, written in the
//! same transaction as its analysis job (the store calls this when it
//! commits an instance).
//!
//! This transaction is the moment an instance becomes "received": before it
//! commits, nothing refers to the file; after it (and the flush that
//! follows), the instance and its pending job survive any crash.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::counts::Change;
use super::{Ledger, job_key, series};
use crate::queue::{Job, Priority};

/// What the index knows about a stored instance. No patient data: UIDs,
/// sizes and where the file is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub transfer_syntax_uid: String,
    /// Path of the Part-10 file, relative to the data directory.
    pub path: String,
    pub size_bytes: u64,
    pub calling_ae_title: String,
    /// Seconds since the Unix epoch.
    pub received_at: u64,
    /// The analysis job created with this instance.
    pub job_id: u64,
}

/// Result of trying to index an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexed {
    /// A new instance, with its new pending job.
    New(InstanceRecord),
    /// The SOP Instance UID was already indexed; nothing changed.
    Duplicate(InstanceRecord),
}

impl Ledger {
    /// Looks up an instance by SOP Instance UID.
    pub fn find_instance(&self, sop_instance_uid: &str) -> anyhow::Result<Option<InstanceRecord>> {
        Ok(match self.instances.get(sop_instance_uid.as_bytes())? {
            Some(value) => Some(serde_json::from_slice(&value)?),
            None => None,
        })
    }

    /// Records the instance and a received job for it in one transaction,
    /// then flushes sled. `record.job_id` is filled in here.
    pub fn insert_with_job(
        &self,
        mut record: InstanceRecord,
        priority: Priority,
    ) -> anyhow::Result<Indexed> {
        let job_id = self.db.generate_id()?;
        record.job_id = job_id;
        let job = Job::received(
            job_id,
            record.sop_instance_uid.clone(),
            priority,
            record.received_at,
        );
        let record_bytes = serde_json::to_vec(&record)?;
        let job_bytes = serde_json::to_vec(&job)?;
        let key = record.sop_instance_uid.as_bytes();

        let trees = (
            &self.instances,
            &self.jobs,
            &self.series,
            &self.series_members,
            &self.series_open,
        );
        let outcome = trees.transaction(|(instances, jobs, series, members, open)| {
            if let Some(existing) = instances.get(key)? {
                let existing: InstanceRecord = serde_json::from_slice(&existing)
                    .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                return Ok(Indexed::Duplicate(existing));
            }
            instances.insert(key, record_bytes.as_slice())?;
            jobs.insert(&job_key(job_id), job_bytes.as_slice())?;
            series::record_instance(series, members, open, &record)?;
            Ok(Indexed::New(record.clone()))
        });
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(TransactionError::Abort(message)) => {
                anyhow::bail!("corrupt instance record: {message}")
            }
            Err(TransactionError::Storage(error)) => return Err(error.into()),
        };
        if matches!(outcome, Indexed::New(_)) {
            self.counts.apply([
                Change::Instance {
                    before: None,
                    after: Some(record.size_bytes),
                },
                Change::job(None, Some(&job)),
            ]);
            self.flush()?;
        }
        Ok(outcome)
    }
}
