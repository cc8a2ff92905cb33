//! Unit tests of the ledger: the lock, and counts that stay equal to a
//! fresh tally whatever is written.

use super::*;

#[test]
fn a_held_index_is_reported_as_locked_not_as_broken() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Ledger::open(dir.path()).unwrap();
    assert!(Ledger::try_open(dir.path()).unwrap().is_none());
    let error = Ledger::open_waiting(dir.path(), Duration::from_millis(250))
        .err()
        .expect("the lock is held");
    assert!(error.to_string().contains("locked by another process"));
    drop(holder);
    assert!(Ledger::try_open(dir.path()).unwrap().is_some());
}

/// Every kind of write keeps the counts equal to a fresh tally of the
/// trees.
#[test]
fn maintained_counts_match_a_fresh_tally() {
    use crate::config::ResultKind;
    use crate::queue::{JobState, Priority};
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let record = |uid: &str| InstanceRecord {
        sop_instance_uid: uid.into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.1".into(),
        study_instance_uid: "1.2".into(),
        series_instance_uid: "1.2.3".into(),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
        path: format!("instances/{uid}.dcm"),
        size_bytes: uid.len() as u64,
        calling_ae_title: "MODALITY".into(),
        received_at: 1,
        job_id: 0,
    };
    for uid in ["1.1", "1.22", "1.333"] {
        ledger
            .insert_with_job(record(uid), Priority::Medium)
            .unwrap();
    }
    ledger
        .insert_with_job(record("1.1"), Priority::Medium)
        .unwrap();
    let queue = ledger.queue();
    let first = queue.claim_next(Duration::ZERO).unwrap().unwrap();
    queue
        .finish(&first, JobState::Analysed, Some(b"{}"))
        .unwrap();
    let second = queue.claim_next(Duration::ZERO).unwrap().unwrap();
    queue
        .retry_or_fail(&second, "busy", Duration::ZERO)
        .unwrap();
    let third = queue.claim_next(Duration::ZERO).unwrap().unwrap();
    let reason = JobState::NotAnalysed {
        reason: "lateral".into(),
    };
    queue.finish(&third, reason, None).unwrap();

    let deliveries = ledger.deliveries();
    for uid in ["9.1", "9.2", "9.3"] {
        let object = NewDelivery {
            kind: ResultKind::Sr,
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.88.34".into(),
            sop_instance_uid: uid.into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            path: format!("results/{uid}.dcm").into(),
            source_sop_instance_uid: first.sop_instance_uid.clone(),
            job_id: Some(first.id),
        };
        deliveries.enqueue(&["pacs", "viewer"], &object).unwrap();
    }
    let get = |destination, uid| deliveries.get(destination, uid).unwrap().unwrap();
    deliveries.mark_delivered(&get("pacs", "9.1")).unwrap();
    deliveries
        .record_transient_failure(&get("pacs", "9.2"), "timed out", Duration::ZERO)
        .unwrap();
    deliveries
        .dead_letter(&get("viewer", "9.1"), "0xA900")
        .unwrap();
    deliveries
        .dead_letter(&get("viewer", "9.2"), "0xA900")
        .unwrap();
    deliveries.retry_dead_letters(Some("viewer")).unwrap();
    deliveries
        .dead_letter(&get("viewer", "9.3"), "0xC000")
        .unwrap();
    for candidate in ledger.retention_candidates().unwrap() {
        ledger.forget(&candidate).unwrap();
    }

    let fresh = Counts::tally(&ledger.instances, &ledger.jobs, &ledger.outbox).unwrap();
    assert_eq!(ledger.counts.instances(), fresh.instances());
    assert_eq!(ledger.counts.instances().0, 2, "one instance forgotten");
    assert_eq!(ledger.counts.jobs_by_state(), fresh.jobs_by_state());
    assert_eq!(ledger.counts.backlog(), fresh.backlog());
    assert_eq!(ledger.counts.dead_letter_keys(), fresh.dead_letter_keys());
    assert_eq!(ledger.counts.dead_letter_keys().len(), 1);
    assert_eq!(
        ledger.counts.backlog()[0].last_error.as_deref(),
        Some("timed out")
    );
}

#[test]
fn a_broken_index_is_an_error_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(Ledger::path_in(dir.path()), b"not a directory").unwrap();
    assert!(Ledger::try_open(dir.path()).is_err());
}
