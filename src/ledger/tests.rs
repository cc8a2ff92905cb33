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

fn instance(series: &str, uid: &str, received_at: u64) -> InstanceRecord {
    InstanceRecord {
        sop_instance_uid: uid.into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        study_instance_uid: "1.2".into(),
        series_instance_uid: series.into(),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
        path: format!("instances/{uid}.dcm"),
        size_bytes: 10,
        calling_ae_title: "CT".into(),
        received_at,
        job_id: 0,
    }
}

/// A series is tracked with its instances, becomes stable once quiet for
/// the configured time, and reopens when another instance arrives.
#[test]
fn series_are_tracked_and_become_stable_when_quiet() {
    use crate::queue::Priority;
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    for (series, uid, at) in [
        ("9.1", "9.1.1", 100),
        ("9.1", "9.1.2", 110),
        ("9.2", "9.2.1", 150),
    ] {
        ledger
            .insert_with_job(instance(series, uid, at), Priority::Medium)
            .unwrap();
    }
    // A duplicate does not count twice.
    ledger
        .insert_with_job(instance("9.1", "9.1.2", 120), Priority::Medium)
        .unwrap();
    let index = ledger.series();
    let first = index.get("9.1").unwrap().unwrap();
    assert_eq!(
        (
            first.instances,
            first.first_received_at,
            first.last_received_at
        ),
        (2, 100, 110)
    );
    assert_eq!(index.members("9.1").unwrap(), ["9.1.1", "9.1.2"]);
    assert!(!first.is_stable());

    // At 170 with 60 s: 9.1 (last 110) is stable, 9.2 (last 150) is not.
    let stable = index.mark_stable(170, 60).unwrap();
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].series_instance_uid, "9.1");
    assert!(index.get("9.1").unwrap().unwrap().is_stable());
    assert!(
        index.mark_stable(171, 60).unwrap().is_empty(),
        "marked once"
    );

    // A late instance reopens the series.
    ledger
        .insert_with_job(instance("9.1", "9.1.3", 200), Priority::Medium)
        .unwrap();
    assert!(!index.get("9.1").unwrap().unwrap().is_stable());
    let stable = index.mark_stable(260, 60).unwrap();
    let uids: Vec<_> = stable
        .iter()
        .map(|s| s.series_instance_uid.as_str())
        .collect();
    assert_eq!(uids, ["9.1", "9.2"]);
    assert_eq!(index.get("9.1").unwrap().unwrap().instances, 3);
}

/// An index written before series were tracked gets its series trees
/// built when opened.
#[test]
fn series_are_backfilled_from_an_older_index() {
    let dir = tempfile::tempdir().unwrap();
    fill_for_test(dir.path(), 25);
    let ledger = Ledger::open(dir.path()).unwrap();
    let index = ledger.series();
    let all = index.all().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].instances, 25);
    assert_eq!(index.members("1.2.3").unwrap().len(), 25);
    assert_eq!(index.mark_stable(1000, 60).unwrap().len(), 1);
}

/// Cohort versions are numbered from 1, kept in order, and listed by name.
#[test]
fn cohort_versions_are_added_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let cohorts = ledger.cohorts();
    assert_eq!(
        cohorts
            .add_version("tb", |v| Ok(format!("tb{v}").into_bytes()))
            .unwrap(),
        1
    );
    assert_eq!(
        cohorts
            .add_version("tb", |v| Ok(format!("tb{v}").into_bytes()))
            .unwrap(),
        2
    );
    assert_eq!(
        cohorts.add_version("copd", |_| Ok(b"c".to_vec())).unwrap(),
        1
    );
    assert_eq!(cohorts.latest("tb").unwrap().unwrap(), (2, b"tb2".to_vec()));
    assert_eq!(cohorts.versions("tb").unwrap().len(), 2);
    assert_eq!(cohorts.names().unwrap(), ["copd", "tb"]);
    cohorts.update("tb", 1, b"marked".to_vec()).unwrap();
    assert_eq!(cohorts.get("tb", 1).unwrap().unwrap(), b"marked");
    assert!(cohorts.update("tb", 9, vec![]).is_err());
    assert!(
        cohorts.latest("t").unwrap().is_none(),
        "a prefix is not a cohort"
    );
}
