//! Tier 2: chestnode against real peers — DCMTK (`storescu`, `storescp`,
//! `echoscu`, `dcmdump`, `dsrdump`, `dcmodify`), `dciodvfy`, Orthanc,
//! highdicom and pynetdicom through Python, `openssl` for the TLS
//! certificates, and `age`, `tar`, `sha256sum` and OpenSSH's `sshd` for
//! research delivery; headless Chromium (selenium) for the browser annotator.

mod analysis;
mod annotator;
mod cli;
mod http_endpoint;
mod outbox;
mod priority;
mod report_objects;
mod report_overlay;
mod research_annotations_dicom;
mod research_clinical;
mod research_dataset;
mod research_deid;
mod research_delivery;
mod research_export;
mod results_to_pacs;
mod scp_associations;
mod scp_faults;
mod scp_pynetdicom;
mod scp_store;
mod slow_peers;
mod synth;
mod tls;
