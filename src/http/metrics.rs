//! The node's metrics registry, and its Prometheus text exposition.
//!
//! One [`Metrics`] is made by `node::serve` and shared (behind an `Arc`)
//! with the SCP, the analysis workers, the outbox senders and the HTTP
//! endpoint. Events are counted as they happen, one call per event, on
//! lock-free atomics (histograms take a short mutex). What sled already
//! knows — jobs by state, deliveries by state, free disk — is not
//! duplicated in memory: it is read at scrape time into a [`Snapshot`] and
//! written into gauges just before encoding.
//!
//! End-to-end latency is measured **per delivered result object and
//! destination**: from the moment the source image was stored (its index
//! record's `received_at`) to the moment this destination accepted the
//! result object. The last of an image's objects to arrive gives that
//! image's end-to-end time. Result objects are enqueued one by one, so
//! "all of an image's results are delivered" cannot be decided without a
//! race until jobs record their delivery state themselves; per-object
//! observations are exact and never double-counted. `received_at` is kept
//! in whole seconds, so observations are accurate to about a second.
//!
//! Counters are process-lifetime (they restart at zero with the node, as
//! Prometheus expects); gauges from the snapshot survive restarts.

use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::clock::unix_now_ms;
use crate::outbox::DestinationBacklog;

/// The `Content-Type` of what [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the analysis latency buckets: one image on a
/// CPU takes from a fraction of a second to tens of seconds.
const ANALYSIS_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];
/// Upper bounds (seconds) of the end-to-end latency buckets: from seconds
/// (idle node, PACS up) to hours (PACS down, deliveries retried).
const END_TO_END_BUCKETS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0,
];

/// How an association attempt ended, as far as the listener knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationOutcome {
    /// A-ASSOCIATE-AC sent; the session runs.
    Accepted,
    /// A-ASSOCIATE-RJ sent: over the association limit, or the Called or
    /// Calling AE title was refused.
    Rejected,
    /// No association: ARTIM timeout, a malformed request, a lost connection.
    Failed,
    /// No association: the TLS handshake failed (a plain-TCP peer, an
    /// untrusted or missing client certificate).
    TlsFailed,
}

impl AssociationOutcome {
    fn label(self) -> &'static str {
        match self {
            AssociationOutcome::Accepted => "accepted",
            AssociationOutcome::Rejected => "rejected",
            AssociationOutcome::Failed => "failed",
            AssociationOutcome::TlsFailed => "tls_failed",
        }
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The destination answered success or a warning.
    Delivered,
    /// Failed; will be retried after a backoff.
    Transient,
    /// Failed; moved to the dead-letter list.
    Permanent,
}

impl DeliveryOutcome {
    fn label(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Transient => "transient",
            DeliveryOutcome::Permanent => "permanent",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabel {
    destination: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationOutcomeLabels {
    destination: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationStateLabels {
    destination: String,
    state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// What sled and the file system say at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `queue().counts_by_state()`.
    pub jobs_by_state: BTreeMap<String, u64>,
    /// `outbox().backlog()`.
    pub deliveries: Vec<DestinationBacklog>,
    pub disk_free_bytes: Option<u64>,
}

/// Every metric the node exposes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    associations: Family<OutcomeLabel, Counter>,
    associations_active: Gauge,
    instances: Family<StatusLabel, Counter>,
    received_bytes: Counter,
    analysis_seconds: Histogram,
    end_to_end_seconds: HistogramFamily<DestinationLabel>,
    delivery_attempts: Family<DestinationOutcomeLabels, Counter>,
    jobs: Family<StateLabel, Gauge>,
    deliveries: Family<DestinationStateLabels, Gauge>,
    disk_free_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, under the `chestnode_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("chestnode");
        let associations = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "associations",
            "Association requests by outcome (accepted, rejected with A-ASSOCIATE-RJ, failed before either, TLS handshake failed)",
            associations.clone(),
        );
        let associations_active = Gauge::default();
        registry.register(
            "associations_active",
            "Associations being served now",
            associations_active.clone(),
        );
        let instances = Family::<StatusLabel, Counter>::default();
        registry.register(
            "instances_received",
            "C-STORE requests answered, by status (success includes duplicates, answered 0x0000)",
            instances.clone(),
        );
        let received_bytes = Counter::default();
        registry.register_with_unit(
            "received",
            "Data set bytes of C-STORE requests answered with success",
            Unit::Bytes,
            received_bytes.clone(),
        );
        let analysis_seconds = Histogram::new(ANALYSIS_BUCKETS);
        registry.register_with_unit(
            "analysis_duration",
            "Time to analyse one image: decode, preprocess, model, findings",
            Unit::Seconds,
            analysis_seconds.clone(),
        );
        let end_to_end_seconds: HistogramFamily<DestinationLabel> =
            Family::new_with_constructor(|| Histogram::new(END_TO_END_BUCKETS));
        registry.register_with_unit(
            "end_to_end_duration",
            "From a source image being stored to one of its result objects being accepted by a destination (per result object; whole-second resolution)",
            Unit::Seconds,
            end_to_end_seconds.clone(),
        );
        let delivery_attempts = Family::<DestinationOutcomeLabels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "C-STORE attempts of result objects, by destination and outcome (delivered, transient or permanent failure)",
            delivery_attempts.clone(),
        );
        let jobs = Family::<StateLabel, Gauge>::default();
        registry.register(
            "queue_jobs",
            "Analysis jobs by state (queue depth), read from the index at scrape time",
            jobs.clone(),
        );
        let deliveries = Family::<DestinationStateLabels, Gauge>::default();
        registry.register(
            "outbox_deliveries",
            "Result deliveries by destination and state, read from the index at scrape time",
            deliveries.clone(),
        );
        let disk_free_bytes = Gauge::default();
        registry.register_with_unit(
            "disk_free",
            "Free space on the data directory's file system",
            Unit::Bytes,
            disk_free_bytes.clone(),
        );
        Metrics {
            registry,
            associations,
            associations_active,
            instances,
            received_bytes,
            analysis_seconds,
            end_to_end_seconds,
            delivery_attempts,
            jobs,
            deliveries,
            disk_free_bytes,
        }
    }

    /// Counts an association attempt. For an accepted one, returns a guard
    /// that keeps it counted as active until dropped.
    pub fn association(&self, outcome: AssociationOutcome) -> Option<ActiveAssociation<'_>> {
        self.associations
            .get_or_create(&OutcomeLabel {
                outcome: outcome.label(),
            })
            .inc();
        (outcome == AssociationOutcome::Accepted).then(|| {
            self.associations_active.inc();
            ActiveAssociation { metrics: self }
        })
    }

    /// Counts one answered C-STORE; `bytes` (its data set) only on success.
    pub fn instance_received(&self, success: bool, bytes: u64) {
        let status = if success { "success" } else { "failure" };
        self.instances.get_or_create(&StatusLabel { status }).inc();
        if success {
            self.received_bytes.inc_by(bytes);
        }
    }

    /// Records the analysis time of one image (the worker's `total_ms`).
    pub fn image_analysed(&self, total_ms: f64) {
        self.analysis_seconds.observe(total_ms / 1000.0);
    }

    /// Counts one delivery attempt to `destination`.
    pub fn delivery_attempt(&self, destination: &str, outcome: DeliveryOutcome) {
        self.delivery_attempts
            .get_or_create(&DestinationOutcomeLabels {
                destination: destination.to_owned(),
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Records the end-to-end time of a result object that `destination`
    /// just accepted, whose source image was stored at `received_at`
    /// (seconds since the Unix epoch).
    pub fn result_delivered(&self, destination: &str, received_at: u64) {
        let seconds = (unix_now_ms() as f64 / 1000.0 - received_at as f64).max(0.0);
        self.end_to_end_seconds
            .get_or_create(&DestinationLabel {
                destination: destination.to_owned(),
            })
            .observe(seconds);
    }

    /// Writes the snapshot into the gauges, then every metric in the
    /// Prometheus text format (version 0.0.4).
    pub fn encode(&self, snapshot: &Snapshot) -> String {
        // Exactly what the index holds now: a state no job is in any more
        // disappears instead of keeping an earlier scrape's count.
        self.jobs.clear();
        for (state, count) in &snapshot.jobs_by_state {
            self.jobs
                .get_or_create(&StateLabel {
                    state: state.clone(),
                })
                .set(saturating_i64(*count));
        }
        self.deliveries.clear();
        for backlog in &snapshot.deliveries {
            for (state, count) in [
                ("pending", backlog.pending),
                ("delivered", backlog.delivered),
                ("dead-letter", backlog.dead_letter),
            ] {
                self.deliveries
                    .get_or_create(&DestinationStateLabels {
                        destination: backlog.destination.clone(),
                        state,
                    })
                    .set(saturating_i64(count));
            }
        }
        self.disk_free_bytes
            .set(snapshot.disk_free_bytes.map_or(-1, saturating_i64));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// An association counted as active; counted out when dropped, however the
/// session ends.
pub struct ActiveAssociation<'a> {
    metrics: &'a Metrics,
}

impl Drop for ActiveAssociation<'_> {
    fn drop(&mut self) {
        self.metrics.associations_active.dec();
    }
}

#[cfg(test)]
mod tests {
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
            value(
                r#"chestnode_delivery_attempts_total{destination="archive",outcome="permanent"}"#
            ),
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
}
