//! The exposition as Prometheus reads it: names, suffixes, labels,
//! cumulative buckets and gauges that follow the index.

use super::*;

/// The value of the sample `name` (with its labels, exactly as
/// written), if present.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name).then(|| value.parse().unwrap())
        })
}

#[test]
fn counters_have_total_suffix_labels_and_help() {
    let metrics = Metrics::new();
    let active = metrics.association(AssociationOutcome::Accepted);
    metrics.association(AssociationOutcome::Rejected);
    metrics.association(AssociationOutcome::Rejected);
    metrics.instance_received(true, 1000);
    metrics.instance_received(true, 24);
    metrics.instance_received(false, 999);
    metrics.delivery_attempt("pacs", DeliveryOutcome::Delivered);
    metrics.delivery_attempt("pacs", DeliveryOutcome::Transient);
    metrics.delivery_attempt("archive", DeliveryOutcome::Permanent);
    let text = metrics.encode(&Snapshot::default());

    assert!(text.contains("# TYPE chestnode_associations_total counter\n"));
    assert!(text.contains("# HELP chestnode_associations_total Association requests"));
    let value = |name: &str| sample(&text, name);
    assert_eq!(
        value(r#"chestnode_associations_total{outcome="accepted"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"chestnode_associations_total{outcome="rejected"}"#),
        Some(2.0)
    );
    assert_eq!(value("chestnode_associations_active"), Some(1.0));
    assert_eq!(
        value(r#"chestnode_instances_received_total{status="success"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(r#"chestnode_instances_received_total{status="failure"}"#),
        Some(1.0)
    );
    assert!(text.contains("# TYPE chestnode_received_bytes_total counter\n"));
    assert_eq!(value("chestnode_received_bytes_total"), Some(1024.0));
    assert_eq!(
        value(r#"chestnode_delivery_attempts_total{destination="pacs",outcome="delivered"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"chestnode_delivery_attempts_total{destination="pacs",outcome="transient"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(r#"chestnode_delivery_attempts_total{destination="archive",outcome="permanent"}"#),
        Some(1.0)
    );

    drop(active);
    let text = metrics.encode(&Snapshot::default());
    assert_eq!(sample(&text, "chestnode_associations_active"), Some(0.0));
    assert_eq!(
        sample(&text, r#"chestnode_associations_total{outcome="accepted"}"#),
        Some(1.0),
        "counters do not go down"
    );
}

#[test]
fn histogram_buckets_are_cumulative_with_sum_and_count() {
    let metrics = Metrics::new();
    for ms in [30.0, 400.0, 450.0, 3_000.0, 500_000.0] {
        metrics.image_analysed(ms);
    }
    let text = metrics.encode(&Snapshot::default());
    assert!(text.contains("# TYPE chestnode_analysis_duration_seconds histogram\n"));
    let bucket = |le: &str| {
        sample(
            &text,
            &format!(r#"chestnode_analysis_duration_seconds_bucket{{le="{le}"}}"#),
        )
        .unwrap_or_else(|| panic!("bucket le={le} in\n{text}"))
    };
    assert_eq!(bucket("0.05"), 1.0);
    assert_eq!(bucket("0.25"), 1.0);
    assert_eq!(bucket("0.5"), 3.0);
    assert_eq!(bucket("5"), 4.0);
    assert_eq!(bucket("120"), 4.0);
    assert_eq!(
        bucket("+Inf"),
        5.0,
        "the +Inf bucket holds every observation"
    );
    let mut previous = 0.0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("chestnode_analysis_duration_seconds_bucket"))
    {
        let value: f64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
        assert!(value >= previous, "buckets never decrease: {line}");
        previous = value;
    }
    assert_eq!(
        sample(&text, "chestnode_analysis_duration_seconds_count"),
        Some(5.0)
    );
    let sum = sample(&text, "chestnode_analysis_duration_seconds_sum").unwrap();
    assert!((sum - 503.88).abs() < 1e-9, "sum in seconds: {sum}");
}

#[test]
fn end_to_end_is_labelled_by_destination() {
    let metrics = Metrics::new();
    let now = unix_now_ms() / 1000;
    metrics.result_delivered("pacs", now - 40);
    metrics.result_delivered("pacs", now);
    let text = metrics.encode(&Snapshot::default());
    let value = |name: &str| sample(&text, name).unwrap_or_else(|| panic!("{name}\n{text}"));
    assert_eq!(
        value(r#"chestnode_end_to_end_duration_seconds_count{destination="pacs"}"#),
        2.0
    );
    assert_eq!(
        value(r#"chestnode_end_to_end_duration_seconds_bucket{destination="pacs",le="30"}"#),
        1.0
    );
    assert_eq!(
        value(r#"chestnode_end_to_end_duration_seconds_bucket{destination="pacs",le="60"}"#),
        2.0
    );
    let sum = value(r#"chestnode_end_to_end_duration_seconds_sum{destination="pacs"}"#);
    assert!((40.0..43.0).contains(&sum), "{sum}");
}

#[test]
fn snapshot_gauges_follow_the_index() {
    let metrics = Metrics::new();
    let mut snapshot = Snapshot {
        jobs_by_state: BTreeMap::from([("received".into(), 3), ("analysed".into(), 2)]),
        deliveries: vec![DestinationBacklog {
            destination: "pacs".into(),
            pending: 1,
            delivered: 5,
            dead_letter: 0,
            last_error: None,
        }],
        disk_free_bytes: Some(123_456),
    };
    let text = metrics.encode(&snapshot);
    assert!(text.contains("# TYPE chestnode_queue_jobs gauge\n"));
    assert_eq!(
        sample(&text, r#"chestnode_queue_jobs{state="received"}"#),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, r#"chestnode_queue_jobs{state="analysed"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"chestnode_outbox_deliveries{destination="pacs",state="delivered"}"#
        ),
        Some(5.0)
    );
    assert_eq!(sample(&text, "chestnode_disk_free_bytes"), Some(123_456.0));

    snapshot.jobs_by_state = BTreeMap::from([("analysed".into(), 5)]);
    let text = metrics.encode(&snapshot);
    assert_eq!(
        sample(&text, r#"chestnode_queue_jobs{state="received"}"#),
        None,
        "a state no job is in is not reported from an earlier scrape"
    );
    assert_eq!(
        sample(&text, r#"chestnode_queue_jobs{state="analysed"}"#),
        Some(5.0)
    );
}
