//! Series, as the research wing needs them: which instances make up a
//! series, and whether the series is complete.
//!
//! DICOM has no "end of series" message: a CT arrives as hundreds of
//! C-STOREs, perhaps over several associations. A series is taken to be
//! complete ("stable", as Orthanc calls it) once no new instance has arrived
//! for a configured time. A cohort only takes stable series, so an export
//! never holds half a CT.
//!
//! Three trees, written in the same transaction as the instance itself
//! ([`Ledger::insert_with_job`]) and by the retention sweep's
//! [`Ledger::forget`]:
//! - `series`: one [`SeriesRecord`] per Series Instance UID;
//! - `series_members`: `series UID \0 SOP Instance UID`, so a series' instances
//!   are a prefix scan, not a walk over every instance;
//! - `series_open`: the series not yet stable, with the time of their last
//!   instance, so the stability sweep reads only those.
//!
//! No patient data: UIDs, SOP classes, counts and times.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::Ledger;
use super::instances::InstanceRecord;

/// What the ledger knows about one series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesRecord {
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    /// The SOP class of its first instance (a CT series is CT images).
    pub sop_class_uid: String,
    /// A SOP Instance UID of the series, to read the series' header from.
    pub first_sop_instance_uid: String,
    /// Instances indexed (and not yet removed by retention).
    pub instances: u64,
    /// Seconds since the Unix epoch.
    pub first_received_at: u64,
    pub last_received_at: u64,
    /// When the stability sweep found it complete; `None` while instances
    /// may still arrive (a new instance reopens a stable series).
    pub stable_at: Option<u64>,
}

impl SeriesRecord {
    /// Whether the series is complete.
    pub fn is_stable(&self) -> bool {
        self.stable_at.is_some()
    }
}

/// The series trees, read and swept.
pub struct SeriesIndex {
    ledger: Ledger,
}

/// Key of an instance in `series_members`.
fn member_key(series: &str, sop: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(series.len() + sop.len() + 1);
    key.extend_from_slice(series.as_bytes());
    key.push(0);
    key.extend_from_slice(sop.as_bytes());
    key
}

fn corrupt<E>(error: serde_json::Error) -> ConflictableTransactionError<E>
where
    E: From<String>,
{
    ConflictableTransactionError::Abort(E::from(format!("corrupt series record: {error}")))
}

/// Adds a new instance to its series, inside the instance's transaction.
pub(super) fn record_instance(
    series: &TransactionalTree,
    members: &TransactionalTree,
    open: &TransactionalTree,
    record: &InstanceRecord,
) -> Result<(), ConflictableTransactionError<String>> {
    let key = record.series_instance_uid.as_bytes();
    let updated = match series.get(key)? {
        Some(bytes) => {
            let mut existing: SeriesRecord = serde_json::from_slice(&bytes).map_err(corrupt)?;
            existing.instances += 1;
            existing.last_received_at = existing.last_received_at.max(record.received_at);
            existing.stable_at = None;
            existing
        }
        None => SeriesRecord {
            series_instance_uid: record.series_instance_uid.clone(),
            study_instance_uid: record.study_instance_uid.clone(),
            sop_class_uid: record.sop_class_uid.clone(),
            first_sop_instance_uid: record.sop_instance_uid.clone(),
            instances: 1,
            first_received_at: record.received_at,
            last_received_at: record.received_at,
            stable_at: None,
        },
    };
    let bytes = serde_json::to_vec(&updated).map_err(corrupt)?;
    series.insert(key, bytes)?;
    members.insert(
        member_key(&record.series_instance_uid, &record.sop_instance_uid),
        &[] as &[u8],
    )?;
    open.insert(key, &updated.last_received_at.to_be_bytes())?;
    Ok(())
}

/// Removes a forgotten instance from its series, inside the retention
/// sweep's transaction. The series record stays (with its count lowered),
/// so a cohort that lists it can say its instances are gone.
pub(super) fn forget_instance(
    series: &TransactionalTree,
    members: &TransactionalTree,
    record: &InstanceRecord,
) -> Result<(), UnabortableTransactionError> {
    let key = record.series_instance_uid.as_bytes();
    let removed = members
        .remove(member_key(
            &record.series_instance_uid,
            &record.sop_instance_uid,
        ))?
        .is_some();
    if removed
        && let Some(bytes) = series.get(key)?
        && let Ok(mut existing) = serde_json::from_slice::<SeriesRecord>(&bytes)
    {
        existing.instances = existing.instances.saturating_sub(1);
        if let Ok(bytes) = serde_json::to_vec(&existing) {
            series.insert(key, bytes)?;
        }
    }
    Ok(())
}

impl SeriesIndex {
    pub(super) fn new(ledger: Ledger) -> SeriesIndex {
        SeriesIndex { ledger }
    }

    /// One series by its UID.
    pub fn get(&self, series_instance_uid: &str) -> anyhow::Result<Option<SeriesRecord>> {
        Ok(
            match self.ledger.series.get(series_instance_uid.as_bytes())? {
                Some(bytes) => Some(serde_json::from_slice(&bytes)?),
                None => None,
            },
        )
    }

    /// Every series, in UID order.
    pub fn all(&self) -> anyhow::Result<Vec<SeriesRecord>> {
        self.ledger
            .series
            .iter()
            .map(|entry| Ok(serde_json::from_slice(&entry?.1)?))
            .collect()
    }

    /// The SOP Instance UIDs of a series, in UID order.
    pub fn members(&self, series_instance_uid: &str) -> anyhow::Result<Vec<String>> {
        let mut prefix = series_instance_uid.as_bytes().to_vec();
        prefix.push(0);
        self.ledger
            .series_members
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, _) = entry?;
                Ok(String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            })
            .collect()
    }

    /// Marks complete every open series whose last instance is at least
    /// `stable_after_secs` old at `now`, and returns them. A series that
    /// received an instance meanwhile stays open (its time moved on).
    pub fn mark_stable(
        &self,
        now: u64,
        stable_after_secs: u64,
    ) -> anyhow::Result<Vec<SeriesRecord>> {
        let mut due = Vec::new();
        for entry in self.ledger.series_open.iter() {
            let (key, value) = entry?;
            let last = value
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if now.saturating_sub(last) >= stable_after_secs {
                due.push(key);
            }
        }
        let mut stable = Vec::new();
        for key in due {
            let outcome =
                (&self.ledger.series, &self.ledger.series_open).transaction(|(series, open)| {
                    let Some(last) = open.get(&key)? else {
                        return Ok(None);
                    };
                    let last = last
                        .as_ref()
                        .try_into()
                        .map(u64::from_be_bytes)
                        .unwrap_or(0);
                    if now.saturating_sub(last) < stable_after_secs {
                        return Ok(None);
                    }
                    open.remove(&key)?;
                    let Some(bytes) = series.get(&key)? else {
                        return Ok(None);
                    };
                    let mut record: SeriesRecord =
                        serde_json::from_slice(&bytes).map_err(corrupt::<String>)?;
                    record.stable_at = Some(now);
                    let bytes = serde_json::to_vec(&record).map_err(corrupt::<String>)?;
                    series.insert(&key, bytes)?;
                    Ok(Some(record))
                });
            match outcome {
                Ok(Some(record)) => stable.push(record),
                Ok(None) => {}
                Err(TransactionError::Abort(message)) => anyhow::bail!(message),
                Err(TransactionError::Storage(error)) => return Err(error.into()),
            }
        }
        if !stable.is_empty() {
            self.ledger.flush()?;
        }
        Ok(stable)
    }

    /// Builds the series trees from the instance records, for an index
    /// written before series were tracked. Every series starts open, so the
    /// next sweep decides its stability from its last instance's time.
    pub(super) fn backfill(ledger: &Ledger) -> anyhow::Result<usize> {
        if !ledger.series.is_empty() || ledger.instances.is_empty() {
            return Ok(0);
        }
        let mut records: std::collections::BTreeMap<String, SeriesRecord> = Default::default();
        let mut members = sled::Batch::default();
        for entry in ledger.instances.iter() {
            let (_, value) = entry?;
            let instance: InstanceRecord = serde_json::from_slice(&value)?;
            members.insert(
                member_key(&instance.series_instance_uid, &instance.sop_instance_uid),
                &[] as &[u8],
            );
            let record = records
                .entry(instance.series_instance_uid.clone())
                .or_insert_with(|| SeriesRecord {
                    series_instance_uid: instance.series_instance_uid.clone(),
                    study_instance_uid: instance.study_instance_uid.clone(),
                    sop_class_uid: instance.sop_class_uid.clone(),
                    first_sop_instance_uid: instance.sop_instance_uid.clone(),
                    instances: 0,
                    first_received_at: instance.received_at,
                    last_received_at: instance.received_at,
                    stable_at: None,
                });
            record.instances += 1;
            record.first_received_at = record.first_received_at.min(instance.received_at);
            record.last_received_at = record.last_received_at.max(instance.received_at);
        }
        let mut series = sled::Batch::default();
        let mut open = sled::Batch::default();
        for (uid, record) in &records {
            series.insert(uid.as_bytes(), serde_json::to_vec(record)?);
            open.insert(uid.as_bytes(), &record.last_received_at.to_be_bytes());
        }
        ledger.series_members.apply_batch(members)?;
        ledger.series_open.apply_batch(open)?;
        // The series tree last: it being non-empty is what says "done".
        ledger.series.apply_batch(series)?;
        ledger.flush()?;
        Ok(records.len())
    }
}
