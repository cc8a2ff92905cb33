//! The node's metrics registry, and its Prometheus text exposition.
//!
//! A top-level module because every stage reports to it — the SCP, the
//! analysis workers, the outbox senders — while `http` only serves it on
//! `GET /metrics`.
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
//!
//! - `outcomes`: how association and delivery attempts ended
//! - `registry`: the metrics, their events and the exposition

mod outcomes;
mod registry;

pub use outcomes::{AssociationOutcome, DeliveryOutcome};
pub use registry::{ActiveAssociation, CONTENT_TYPE, Metrics, Snapshot};
