//! chestnode: a DICOM node that receives chest radiographs, analyses them
//! and sends the findings back to PACS; and, offline, the lab that makes
//! and measures its models.
//!
//! ```text
//! modality --C-STORE--> scp --> store (files) + ledger (instance and job)
//!   --> queue --> worker: analysis = imaging -> model -> findings
//!   --> worker's publisher: report (objects) -> store (files) -> outbox (routing)
//!   --> outbox senders --C-STORE--> PACS
//! ```
//!
//! The modules, in data-flow order (`docs/architecture.md` follows one
//! image through them and says who owns which sled tree):
//!
//! | module | role |
//! |---|---|
//! | [`config`] | the TOML configuration, validated once; priority levels and rules |
//! | [`dimse`] | the DICOM wire both roles share: command sets, PDU reader, error chains |
//! | `tls` | certificates for DICOM over TLS, SCP and SCU |
//! | [`scp`] | the Storage SCP: listener, association, presentation contexts, session |
//! | `store` | durable files: incoming instances under `instances/`, results under `results/`; validated UIDs |
//! | [`ledger`] | the sled database and the only owner of its trees: instances, jobs, results, deliveries, incidents; maintained counts |
//! | [`queue`] | what a job is, its states and priorities, and the signal that wakes workers |
//! | `worker` | analysis threads: claim, analyse, publish, record |
//! | [`analysis`] | one image: gate, decode, preprocess, model, findings, with timings |
//! | [`imaging`] | decoding every transfer syntax, the greyscale pipeline, gating |
//! | [`model`] | the models, one folder per architecture (`densenet`, `compact`), shared CPU kernels, manifests, embedded weights |
//! | [`findings`] | what a model's output means: categories, regions, anatomical axes |
//! | [`report`] | pure builders of the result objects: SR (TID 1500), overlay SC, GSPS |
//! | [`outbox`] | destinations and routing, one sender per destination, the SCU, backoff |
//! | `series_watch` | marks a series complete once no instance has arrived for a while |
//! | `retention` | deleting what every destination has, oldest first |
//! | [`metrics`] | the node-wide Prometheus registry |
//! | `http` | the operations endpoint: health, metrics, jobs |
//! | `annotator` | the browser annotator: logins, cohorts, the image viewer, annotations |
//! | [`status`] | `chestnode status` and `retry`, over the control socket or the index |
//! | [`node`] | `chestnode serve`: starts and stops the stages in order |
//! | `clock` | time as the records store it |
//! | [`allocator`] | glibc malloc tuning for model work |
//! | [`fuzzing`] | entry points the fuzz targets and their corpus test share |
//! | [`research`] | cohorts, de-identification under a research ID, the pseudonym vault, the audit log, encrypted export and delivery; doctors' annotations and clinical data |
//! | [`lab`] | offline: `dataset` (the format's one owner), `synth`, `train`, `evaluate`; the pipeline never imports it |

// In data-flow order, as in the map above (one per group, so rustfmt
// keeps the order).
pub mod config;

pub mod dimse;

mod tls;

pub mod scp;

mod store;

pub mod ledger;

pub mod queue;

mod worker;

pub mod analysis;

pub mod imaging;

pub mod model;

pub mod findings;

pub mod report;

pub mod outbox;

mod retention;

mod series_watch;

pub mod metrics;

mod http;

mod annotator;

pub mod status;

pub mod node;

mod clock;

pub mod allocator;

pub mod fuzzing;

pub mod lab;

pub mod research;
