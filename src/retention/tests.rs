//! Unit tests of `retention`.

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
