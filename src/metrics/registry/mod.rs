//! The registry itself: every metric the node exposes, the one call per
//! event that updates each, and the Prometheus text exposition, with the
//! gauges read from the index at scrape time ([`Snapshot`]).

use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::outcomes::{AssociationOutcome, DeliveryOutcome};
use crate::clock::unix_now_ms;
use crate::ledger::DestinationBacklog;

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
    /// `Ledger::jobs_by_state`.
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
mod tests;
