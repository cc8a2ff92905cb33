//! Unit tests of the outbox records: idempotent enqueueing, the state
//! transitions of a delivery, dead-letter retry and the backlog.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::clock::{unix_now, unix_now_ms};

fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    (dir, ledger)
}

/// An outbox to [`destinations`].
fn outbox() -> (tempfile::TempDir, Outbox) {
    outbox_to(destinations())
}

fn outbox_to(destinations: Vec<DestinationConfig>) -> (tempfile::TempDir, Outbox) {
    let (dir, ledger) = ledger();
    (dir, Outbox::new(&ledger, destinations))
}

fn destination(name: &str, kinds: &[ResultKind]) -> DestinationConfig {
    DestinationConfig {
        name: name.into(),
        ae_title: name.to_uppercase(),
        host: "127.0.0.1".into(),
        port: 104,
        kinds: kinds.to_vec(),
        tls: None,
    }
}

fn object(uid: &str, kind: ResultKind) -> NewDelivery {
    NewDelivery {
        kind,
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.88.34".into(),
        sop_instance_uid: uid.into(),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
        path: PathBuf::from(format!("results/{uid}.dcm")),
        source_sop_instance_uid: "1.2.3".into(),
        job_id: None,
    }
}

fn destinations() -> Vec<DestinationConfig> {
    vec![
        destination("pacs", &[ResultKind::Sr, ResultKind::Sc]),
        destination("viewer", &[ResultKind::Gsps]),
    ]
}

/// Retry schedule that makes a deferred delivery wait about a minute.
fn minute() -> Backoff {
    Backoff {
        first: Duration::from_secs(60),
        max: Duration::from_secs(600),
    }
}

#[test]
fn enqueue_creates_one_delivery_per_destination_taking_the_kind() {
    let all_kinds = destination("archive", &ResultKind::ALL);
    let mut destinations = destinations();
    destinations.push(all_kinds);
    let (_dir, outbox) = outbox_to(destinations);
    assert_eq!(
        outbox.enqueue(&object("1.2.9.1", ResultKind::Sr)).unwrap(),
        2
    );
    assert!(outbox.get("pacs", "1.2.9.1").unwrap().is_some());
    assert!(outbox.get("archive", "1.2.9.1").unwrap().is_some());
    assert!(outbox.get("viewer", "1.2.9.1").unwrap().is_none());
    let delivery = outbox.get("pacs", "1.2.9.1").unwrap().unwrap();
    assert_eq!(delivery.attempts, 0);
    assert!(delivery.is_due(unix_now_ms()));
}

#[test]
fn enqueue_is_idempotent_in_every_state() {
    let (_dir, outbox) = outbox();
    let sr = object("1.2.9.2", ResultKind::Sr);
    assert_eq!(outbox.enqueue(&sr).unwrap(), 1);
    assert_eq!(outbox.enqueue(&sr).unwrap(), 0, "pending");

    let pending = outbox.get("pacs", "1.2.9.2").unwrap().unwrap();
    outbox.mark_delivered(&pending).unwrap();
    assert_eq!(outbox.enqueue(&sr).unwrap(), 0, "delivered");
    let delivered = outbox.get("pacs", "1.2.9.2").unwrap().unwrap();
    assert_eq!(delivered.state.label(), "delivered");
    assert_eq!(delivered.attempts, 1);

    let sc = object("1.2.9.3", ResultKind::Sc);
    outbox.enqueue(&sc).unwrap();
    let pending = outbox.get("pacs", "1.2.9.3").unwrap().unwrap();
    outbox.dead_letter(&pending, "refused").unwrap();
    assert_eq!(outbox.enqueue(&sc).unwrap(), 0, "dead letter");
    assert_eq!(
        outbox
            .get("pacs", "1.2.9.3")
            .unwrap()
            .unwrap()
            .state
            .label(),
        "dead-letter"
    );
}

#[test]
fn enqueue_wakes_the_senders_only_when_it_creates_something() {
    let (_dir, outbox) = outbox();
    let mut receiver = outbox.signal().subscribe();
    receiver.borrow_and_update();
    outbox.enqueue(&object("1.2.9.4", ResultKind::Sr)).unwrap();
    assert!(receiver.has_changed().unwrap());
    receiver.borrow_and_update();
    outbox.enqueue(&object("1.2.9.4", ResultKind::Sr)).unwrap();
    assert!(!receiver.has_changed().unwrap());
}

#[test]
fn paths_outside_the_data_directory_are_refused() {
    let (_dir, outbox) = outbox();
    for path in ["/etc/passwd", "../elsewhere.dcm", "results/../../x.dcm", ""] {
        let mut bad = object("1.2.9.5", ResultKind::Sr);
        bad.path = PathBuf::from(path);
        assert!(outbox.enqueue(&bad).is_err(), "{path:?}");
    }
    assert!(outbox.backlog().is_empty());
}

#[test]
fn a_transient_failure_counts_the_attempt_and_waits() {
    let (_dir, outbox) = outbox();
    outbox.enqueue(&object("1.2.9.6", ResultKind::Sr)).unwrap();
    let due = outbox.due("pacs", unix_now_ms(), 10).unwrap();
    assert_eq!(due.len(), 1);
    let before = unix_now_ms();
    let deferred = outbox
        .record_transient_failure(&due[0], "connection refused", &minute())
        .unwrap();
    assert_eq!(deferred.attempts, 1);
    assert_eq!(deferred.last_error.as_deref(), Some("connection refused"));
    assert!(deferred.last_attempt_at.is_some());
    let DeliveryState::Pending { not_before_ms } = deferred.state else {
        panic!("still pending: {:?}", deferred.state)
    };
    // 60 s ± 25 %.
    assert!(not_before_ms >= before + 45_000 && not_before_ms <= unix_now_ms() + 75_000);
    assert!(outbox.due("pacs", unix_now_ms(), 10).unwrap().is_empty());
    assert_eq!(outbox.next_due_ms("pacs").unwrap(), Some(not_before_ms));
    assert_eq!(outbox.due("pacs", not_before_ms, 10).unwrap().len(), 1);

    // The second failure waits about twice as long.
    let again = outbox
        .record_transient_failure(&deferred, "connection refused", &minute())
        .unwrap();
    assert_eq!(again.attempts, 2);
    let DeliveryState::Pending { not_before_ms } = again.state else {
        panic!("still pending")
    };
    assert!(not_before_ms >= before + 90_000);
}

#[test]
fn dead_letters_wait_for_retry_and_only_pending_deliveries_settle() {
    let (_dir, outbox) = outbox();
    outbox.enqueue(&object("1.2.9.7", ResultKind::Sr)).unwrap();
    outbox
        .enqueue(&object("1.2.9.8", ResultKind::Gsps))
        .unwrap();
    let pacs = outbox.get("pacs", "1.2.9.7").unwrap().unwrap();
    let viewer = outbox.get("viewer", "1.2.9.8").unwrap().unwrap();
    let dead = outbox
        .dead_letter(&pacs, "calling AE title not recognized")
        .unwrap();
    outbox.dead_letter(&viewer, "0xA900").unwrap();
    assert_eq!(dead.attempts, 1);
    assert!(outbox.due("pacs", u64::MAX, 10).unwrap().is_empty());
    assert_eq!(outbox.next_due_ms("pacs").unwrap(), None);
    // A dead letter is not settled again by a late outcome.
    assert!(outbox.mark_delivered(&pacs).is_err());
    assert_eq!(outbox.dead_letters().unwrap().len(), 2);

    assert_eq!(outbox.retry_dead_letters(Some("pacs")).unwrap(), 1);
    let retried = outbox.get("pacs", "1.2.9.7").unwrap().unwrap();
    assert!(retried.is_due(unix_now_ms()));
    assert_eq!(retried.attempts, 1, "attempts are kept for the record");
    assert_eq!(outbox.dead_letters().unwrap().len(), 1);
    assert_eq!(outbox.retry_dead_letters(None).unwrap(), 1);
    assert_eq!(outbox.retry_dead_letters(None).unwrap(), 0);

    let delivered = outbox.mark_delivered(&retried).unwrap();
    assert_eq!(delivered.attempts, 2);
    assert!(outbox.mark_delivered(&delivered).is_err(), "delivered once");
}

#[test]
fn due_deliveries_come_oldest_first_up_to_the_limit() {
    let (_dir, ledger) = ledger();
    let outbox = Outbox::new(&ledger, destinations());
    for uid in ["1.2.9.13", "1.2.9.11", "1.2.9.12"] {
        outbox.enqueue(&object(uid, ResultKind::Sc)).unwrap();
    }
    let due = outbox.due("pacs", unix_now_ms(), 2).unwrap();
    assert_eq!(due.len(), 2);
    assert!(outbox.due("viewer", unix_now_ms(), 10).unwrap().is_empty());
    // A destination's name is not a prefix of another's records.
    let other = Outbox::new(&ledger, vec![destination("pac", &[ResultKind::Sc])]);
    assert_eq!(outbox.for_destination("pac").unwrap().len(), 0);
    other.enqueue(&object("1.2.9.14", ResultKind::Sc)).unwrap();
    assert_eq!(outbox.for_destination("pac").unwrap().len(), 1);
    assert_eq!(outbox.for_destination("pacs").unwrap().len(), 3);
}

#[test]
fn backlog_counts_each_destination_by_state() {
    let (_dir, outbox) = outbox();
    for uid in ["1.2.9.21", "1.2.9.22", "1.2.9.23"] {
        outbox.enqueue(&object(uid, ResultKind::Sr)).unwrap();
    }
    outbox
        .enqueue(&object("1.2.9.24", ResultKind::Gsps))
        .unwrap();
    let get = |uid| outbox.get("pacs", uid).unwrap().unwrap();
    outbox.mark_delivered(&get("1.2.9.21")).unwrap();
    outbox.dead_letter(&get("1.2.9.22"), "0xC000").unwrap();
    outbox
        .record_transient_failure(&get("1.2.9.23"), "timed out", &minute())
        .unwrap();
    let backlog = outbox.backlog();
    assert_eq!(
        backlog,
        vec![
            DestinationBacklog {
                destination: "pacs".into(),
                pending: 1,
                delivered: 1,
                dead_letter: 1,
                last_error: Some("timed out".into()),
            },
            DestinationBacklog {
                destination: "viewer".into(),
                pending: 1,
                ..Default::default()
            },
        ]
    );
}

/// An outbox over a ledger that also holds one analysing job, id 1.
fn outbox_with_job() -> (tempfile::TempDir, Outbox, crate::ledger::JobQueue) {
    use crate::queue::{Job, JobState, Priority};
    let (dir, ledger) = ledger();
    let mut job = Job::received(1, "1.2.3".into(), Priority::Medium, unix_now());
    job.state = JobState::Analysing;
    let jobs = ledger.queue();
    jobs.put(&job);
    (dir, Outbox::new(&ledger, destinations()), jobs)
}

fn job_in(jobs: &crate::ledger::JobQueue) -> crate::queue::Job {
    jobs.get(1).unwrap().unwrap()
}

#[test]
fn every_delivery_change_moves_its_job_through_the_lifecycle() {
    use crate::queue::{DestinationState, JobState};
    let (_dir, outbox, jobs) = outbox_with_job();
    for (uid, kind) in [("1.2.9.10", ResultKind::Sr), ("1.2.9.11", ResultKind::Gsps)] {
        let mut result = object(uid, kind);
        result.job_id = Some(1);
        outbox.enqueue(&result).unwrap();
    }
    let mut job = job_in(&jobs);
    assert_eq!(job.state, JobState::Analysing);
    job.finish_analysis(unix_now());
    jobs.put(&job);

    let sr = outbox.get("pacs", "1.2.9.10").unwrap().unwrap();
    outbox
        .record_transient_failure(&sr, "connection refused", &minute())
        .unwrap();
    let job = job_in(&jobs);
    assert_eq!(job.state, JobState::Delivering);
    assert_eq!(job.deliveries["pacs"].attempts, 1);
    assert_eq!(
        job.deliveries["pacs"].last_error.as_deref(),
        Some("connection refused")
    );

    let gsps = outbox.get("viewer", "1.2.9.11").unwrap().unwrap();
    outbox.dead_letter(&gsps, "0xA900 refused").unwrap();
    assert_eq!(
        job_in(&jobs).deliveries["viewer"].state,
        DestinationState::DeadLetter
    );
    assert_eq!(
        job_in(&jobs).state,
        JobState::Delivering,
        "pacs still to go"
    );

    outbox.retry_dead_letters(Some("viewer")).unwrap();
    assert_eq!(
        job_in(&jobs).deliveries["viewer"].state,
        DestinationState::Delivering
    );
    let sr = outbox.get("pacs", "1.2.9.10").unwrap().unwrap();
    let mut due = sr.clone();
    due.state = DeliveryState::Pending { not_before_ms: 0 };
    outbox.mark_delivered(&due).unwrap();
    let gsps = outbox.get("viewer", "1.2.9.11").unwrap().unwrap();
    outbox.dead_letter(&gsps, "0xA900 refused again").unwrap();
    assert_eq!(
        job_in(&jobs).state,
        JobState::DeadLetter {
            reason: "delivery to viewer: 0xA900 refused again".into()
        }
    );
    outbox.retry_dead_letters(None).unwrap();
    let gsps = outbox.get("viewer", "1.2.9.11").unwrap().unwrap();
    outbox.mark_delivered(&gsps).unwrap();
    let job = job_in(&jobs);
    assert_eq!(job.state, JobState::Delivered);
    assert!(job.delivered_at.is_some());
}
