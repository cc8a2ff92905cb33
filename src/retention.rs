//! Retention: deleting what has been fully dealt with, so the data
//! directory does not grow without end.
//!
//! An instance may go once its job is final — analysed (with every result
//! delivered to every destination that takes it) or not analysed (nothing
//! to deliver) — and either it is older than `keep_days`, or the disk is
//! fuller than `max_used_percent` (then the oldest go first until it is
//! not). Anything still pending, analysing, failed (kept for inspection),
//! or with a result not yet delivered or dead-lettered is never deleted.
//!
//! Files go first, then the records (instance, job, result, deliveries)
//! in one transaction: a crash in between leaves records whose files are
//! already gone, which the next sweep finishes. An image sent again after
//! its records were swept is simply new; its results get the same UIDs, so
//! PACS keeps one copy.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ledger::{Ledger, Removable};

/// When instances may be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Delete finished instances older than this many days; 0: never by age.
    pub keep_days: u64,
    /// Delete finished instances, oldest first, while the disk is fuller
    /// than this percentage; 0 or 100: never by disk use.
    pub max_used_percent: u8,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    pub instances_deleted: u64,
    pub files_deleted: u64,
    pub bytes_freed: u64,
}

/// Deletes what `policy` allows. `now` is seconds since the epoch;
/// `used_percent` reports the file system's use after each deletion.
pub fn sweep(
    db: &Ledger,
    data_dir: &Path,
    policy: RetentionPolicy,
    now: u64,
    mut used_percent: impl FnMut() -> f64,
) -> anyhow::Result<SweepReport> {
    let mut candidates = db.retention_candidates()?;
    candidates.sort_by_key(|c| c.record.received_at);
    let mut report = SweepReport::default();
    let age_limit = policy.keep_days.saturating_mul(86_400);
    let by_disk = (1..100).contains(&policy.max_used_percent);
    for candidate in candidates {
        let expired =
            policy.keep_days > 0 && now.saturating_sub(candidate.record.received_at) >= age_limit;
        let disk_full = by_disk && used_percent() > policy.max_used_percent as f64;
        if !expired && !disk_full {
            // Oldest first: everything after this is younger, and the disk
            // only empties by deleting.
            break;
        }
        remove(db, data_dir, &candidate, &mut report)?;
    }
    Ok(report)
}

fn remove(
    db: &Ledger,
    data_dir: &Path,
    candidate: &Removable,
    report: &mut SweepReport,
) -> anyhow::Result<()> {
    let record = &candidate.record;
    for relative in std::iter::once(&record.path).chain(&candidate.result_files) {
        // Paths in the index were built from validated UIDs; refuse anything
        // else rather than delete outside the data directory.
        let relative = Path::new(relative);
        if relative.is_absolute()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            anyhow::bail!("refusing to delete {}", relative.display());
        }
        let path = data_dir.join(relative);
        match fs::metadata(&path) {
            Ok(metadata) => {
                fs::remove_file(&path)?;
                report.files_deleted += 1;
                report.bytes_freed += metadata.len();
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
    }
    db.forget(candidate)?;
    report.instances_deleted += 1;
    tracing::debug!(sop_instance_uid = %record.sop_instance_uid, "retention: deleted");
    Ok(())
}

/// Percentage of the file system holding `path` that is in use.
pub fn used_percent(path: &Path) -> f64 {
    match (fs2::total_space(path), fs2::available_space(path)) {
        (Ok(total), Ok(free)) if total > 0 => {
            100.0 * (total - free.min(total)) as f64 / total as f64
        }
        _ => 0.0,
    }
}

/// A thread that sweeps every `interval` until stopped.
pub struct RetentionSweeper {
    stop: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RetentionSweeper {
    pub fn start(
        db: Ledger,
        data_dir: std::path::PathBuf,
        policy: RetentionPolicy,
        interval: std::time::Duration,
    ) -> RetentionSweeper {
        let stop = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let signal = stop.clone();
        let handle = std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                loop {
                    let now = crate::clock::unix_now();
                    match sweep(&db, &data_dir, policy, now, || used_percent(&data_dir)) {
                        Ok(report) if report.instances_deleted > 0 => tracing::info!(
                            instances = report.instances_deleted,
                            files = report.files_deleted,
                            bytes = report.bytes_freed,
                            "retention: deleted delivered instances"
                        ),
                        Ok(_) => {}
                        Err(error) => tracing::error!(%error, "retention sweep failed"),
                    }
                    let guard = stopped.lock().expect("not poisoned");
                    let (guard, _) = wake
                        .wait_timeout_while(guard, interval, |stop| !*stop)
                        .expect("not poisoned");
                    if *guard {
                        return;
                    }
                }
            })
            .expect("spawning the retention thread");
        RetentionSweeper {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops after the current sweep.
    pub fn stop(mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().expect("not poisoned") = true;
        wake.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ResultKind;
    use crate::ledger::{Deliveries, Indexed, InstanceRecord, NewDelivery};
    use crate::queue::{Job, JobState, Priority, PublishedObject};

    const DAY: u64 = 86_400;

    struct Fixture {
        _dir: tempfile::TempDir,
        data_dir: std::path::PathBuf,
        db: Ledger,
        outbox: Deliveries,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        let db = Ledger::open(&data_dir).unwrap();
        let outbox = db.deliveries();
        Fixture {
            _dir: dir,
            data_dir,
            db,
            outbox,
        }
    }

    /// An instance received `received_at`, with a result file, its job in
    /// `state` and (for analysed jobs) its SR queued for one destination.
    fn instance(f: &Fixture, uid: &str, received_at: u64, state: JobState) -> Job {
        let path = format!("instances/{uid}.dcm");
        fs::create_dir_all(f.data_dir.join("instances")).unwrap();
        fs::write(f.data_dir.join(&path), b"image").unwrap();
        let record = InstanceRecord {
            sop_instance_uid: uid.into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.1".into(),
            study_instance_uid: "1.2".into(),
            series_instance_uid: "1.2.3".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            path,
            size_bytes: 5,
            calling_ae_title: "MODALITY".into(),
            received_at,
            job_id: 0,
        };
        let Indexed::New(record) = f.db.insert_with_job(record, Priority::Medium).unwrap() else {
            panic!("new")
        };
        let queue = f.db.queue();
        let mut job = queue.get(record.job_id).unwrap().unwrap();
        let result = if state == JobState::Analysed {
            let sr = format!("results/{uid}.1.dcm");
            fs::create_dir_all(f.data_dir.join("results")).unwrap();
            fs::write(f.data_dir.join(&sr), b"sr").unwrap();
            f.outbox
                .enqueue(
                    &["pacs"],
                    &NewDelivery {
                        kind: ResultKind::Sr,
                        sop_class_uid: "1.2.840.10008.5.1.4.1.1.88.34".into(),
                        sop_instance_uid: format!("{uid}.1"),
                        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
                        path: sr.clone().into(),
                        source_sop_instance_uid: uid.into(),
                        job_id: Some(record.job_id),
                    },
                )
                .unwrap();
            job.published = vec![PublishedObject {
                kind: ResultKind::Sr,
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.88.34".into(),
                sop_instance_uid: format!("{uid}.1"),
                path: sr.into(),
            }];
            Some(serde_json::json!({
                "findings": {"model": {"name": "m", "version": "1", "research_use_only": true,
                    "intended_use": "test"}, "categories": [], "localised": []},
                "timings": {"read_ms": 0.0, "decode_ms": 0.0, "preprocess_ms": 0.0,
                    "inference_ms": 0.0, "findings_ms": 0.0, "total_ms": 0.0},
                "image_size": [1, 1],
            }))
        } else {
            None
        };
        let bytes = result.map(|r| serde_json::to_vec(&r).unwrap());
        queue.finish(&job, state, bytes.as_deref()).unwrap();
        job
    }

    fn deliver_all(f: &Fixture) {
        for delivery in f.outbox.for_destination("pacs").unwrap() {
            f.outbox.mark_delivered(&delivery).unwrap();
        }
    }

    const BY_AGE: RetentionPolicy = RetentionPolicy {
        keep_days: 1,
        max_used_percent: 0,
    };

    #[test]
    fn nothing_undelivered_is_deleted_and_delivered_instances_go_after_keep_days() {
        let f = fixture();
        let analysed = instance(&f, "1.1", 0, JobState::Analysed);
        instance(&f, "1.2", 0, JobState::Received);
        instance(&f, "1.3", 0, JobState::DeadLetter { reason: "x".into() });
        // Undelivered SR: kept even when old.
        let report = sweep(&f.db, &f.data_dir, BY_AGE, 10 * DAY, || 0.0).unwrap();
        assert_eq!(report.instances_deleted, 0);

        let job_state = || f.db.queue().get(analysed.id).unwrap().unwrap().state;
        assert_eq!(job_state(), JobState::Delivering);
        deliver_all(&f);
        assert_eq!(job_state(), JobState::Delivered);
        // Delivered but young: kept.
        let report = sweep(&f.db, &f.data_dir, BY_AGE, DAY / 2, || 0.0).unwrap();
        assert_eq!(report.instances_deleted, 0);
        // Delivered and old: image and result deleted, records too.
        let report = sweep(&f.db, &f.data_dir, BY_AGE, 10 * DAY, || 0.0).unwrap();
        assert_eq!(report.instances_deleted, 1);
        assert_eq!(report.files_deleted, 2);
        assert!(!f.data_dir.join("instances/1.1.dcm").exists());
        assert!(!f.data_dir.join("results/1.1.1.dcm").exists());
        assert!(f.db.find_instance("1.1").unwrap().is_none());
        assert!(f.outbox.for_destination("pacs").unwrap().is_empty());
        assert!(f.outbox.backlog().is_empty());
        // Pending and failed jobs stay, with their files.
        assert!(f.data_dir.join("instances/1.2.dcm").exists());
        assert!(f.data_dir.join("instances/1.3.dcm").exists());
    }

    #[test]
    fn over_the_disk_watermark_the_oldest_delivered_go_first() {
        let f = fixture();
        instance(
            &f,
            "2.1",
            100,
            JobState::NotAnalysed {
                reason: "lateral".into(),
            },
        );
        instance(&f, "2.2", 50, JobState::Analysed);
        instance(&f, "2.3", 200, JobState::Analysed);
        deliver_all(&f);
        let policy = RetentionPolicy {
            keep_days: 0,
            max_used_percent: 90,
        };
        // 95 % used until one deletion brings it to 85 %.
        let mut calls = 0;
        let report = sweep(&f.db, &f.data_dir, policy, 300, || {
            calls += 1;
            if calls == 1 { 95.0 } else { 85.0 }
        })
        .unwrap();
        assert_eq!(report.instances_deleted, 1);
        assert!(!f.data_dir.join("instances/2.2.dcm").exists(), "oldest");
        assert!(f.data_dir.join("instances/2.1.dcm").exists());
        assert!(f.data_dir.join("instances/2.3.dcm").exists());
    }

    #[test]
    fn keep_days_zero_and_no_watermark_keep_everything() {
        let f = fixture();
        instance(&f, "3.1", 0, JobState::Analysed);
        deliver_all(&f);
        let never = RetentionPolicy {
            keep_days: 0,
            max_used_percent: 0,
        };
        let report = sweep(&f.db, &f.data_dir, never, 1000 * DAY, || 99.0).unwrap();
        assert_eq!(report.instances_deleted, 0);
    }
}
