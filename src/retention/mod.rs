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
mod tests;
