//! The operations endpoint of a real `chestnode serve`: images go in with
//! DCMTK's `storescu`, results out to a real Orthanc, and `/health`,
//! `/metrics` and `/api/jobs` are read over HTTP to see that they tell
//! what happened — associations, instances and bytes, queue depth, analysis
//! and end-to-end latency, deliveries per destination — and that the node
//! listens on loopback only by default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::config::{FAST_RETRIES, destination, write_config};
use crate::common::http::{Reply, get, metric_sample as sample};
use crate::common::orthanc::{Orthanc, OrthancOptions};
use crate::common::{Node, combined_output, free_port, test_data, wait_until};

/// 1024 × 1024 chest CR, JPEG baseline: analysed.
const CHEST: &str = "dicom/misc/siim_cr_chest_jpeg_baseline.dcm";
/// A CT slice: stored, not analysed.
const CT: &str = "dicom/misc/CT_small.dcm";
/// The chest image's Patient ID (also its Patient Name): must never appear.
const CHEST_PATIENT_ID: &str = "16d7f894-55d7-4d95-8957-d18987f0e981";

fn metrics(node: &Node) -> String {
    let reply = get(node.http_port, "/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    reply.body
}

/// The value of `series`, 0 when absent (a counter not yet incremented).
fn value(node: &Node, series: &str) -> f64 {
    sample(&metrics(node), series).unwrap_or(0.0)
}

fn health(node: &Node) -> Reply {
    get(node.http_port, "/health")
}

fn wait_ready(node: &Node) {
    let ready = wait_until(Duration::from_secs(60), || {
        let reply = health(node);
        reply.status == 200 && reply.json()["ready"] == true
    });
    assert!(ready, "{:?}\n{}", health(node), node.log());
}

fn job_list(node: &Node, query: &str) -> Vec<serde_json::Value> {
    let reply = get(node.http_port, &format!("/api/jobs{query}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        !reply.body.contains(CHEST_PATIENT_ID),
        "no patient data: {}",
        reply.body
    );
    reply.json()["jobs"].as_array().unwrap().clone()
}

fn send(node: &Node, args: &[&str], file: &str) {
    node.storescu_ok(args, &[&test_data().join(file)]);
}

/// Data set bytes of a stored Part-10 file: what came over the wire.
fn data_set_bytes(file: &Path) -> u64 {
    let object = dicom_object::open_file(file).unwrap();
    let meta_bytes = 128 + 4 + 12 + u64::from(object.meta().information_group_length);
    std::fs::metadata(file).unwrap().len() - meta_bytes
}

#[test]
fn health_metrics_and_jobs_follow_images_through_the_node() {
    let root = tempfile::tempdir().unwrap();
    let node = Node::start(root.path(), &["--workers", "1"]);
    wait_ready(&node);
    let answer = health(&node).json();
    assert_eq!(answer["live"], true);
    for check in ["index", "disk", "model", "dicom"] {
        assert_eq!(answer["checks"][check]["ok"], true, "{answer:#}");
    }
    assert!(answer["checks"]["model"]["name"].is_string(), "{answer:#}");

    send(&node, &["-xy"], CHEST);
    send(&node, &[], CT);
    let refused = node.storescu(&["-aec", "SOMEONE_ELSE"], &[&test_data().join(CT)]);
    assert!(
        !refused.status.success(),
        "wrong called AE title is rejected"
    );

    let analysed = wait_until(Duration::from_secs(120), || {
        let text = metrics(&node);
        sample(&text, r#"chestnode_queue_jobs{state="analysed"}"#) == Some(1.0)
            && sample(&text, r#"chestnode_queue_jobs{state="not-analysed"}"#) == Some(1.0)
    });
    assert!(analysed, "{}\n{}", metrics(&node), node.log());

    let text = metrics(&node);
    let at = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}\n{text}"));
    assert_eq!(
        at(r#"chestnode_associations_total{outcome="accepted"}"#),
        2.0
    );
    assert_eq!(
        at(r#"chestnode_associations_total{outcome="rejected"}"#),
        1.0
    );
    assert_eq!(at("chestnode_associations_active"), 0.0);
    assert_eq!(
        at(r#"chestnode_instances_received_total{status="success"}"#),
        2.0
    );
    let stored: u64 = node
        .instance_files()
        .iter()
        .map(|f| data_set_bytes(f))
        .sum();
    assert_eq!(node.instance_files().len(), 2);
    assert_eq!(at("chestnode_received_bytes_total"), stored as f64);
    assert_eq!(at("chestnode_analysis_duration_seconds_count"), 1.0);
    let analysis_seconds = at("chestnode_analysis_duration_seconds_sum");
    assert!(analysis_seconds > 0.0, "{text}");
    assert_eq!(
        at(r#"chestnode_analysis_duration_seconds_bucket{le="+Inf"}"#),
        1.0
    );
    assert!(at("chestnode_disk_free_bytes") > 0.0);

    let all = job_list(&node, "");
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0]["id"].as_u64() > all[1]["id"].as_u64(),
        "newest first"
    );
    let done = job_list(&node, "?state=analysed");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["state"], "analysed");
    assert_eq!(done[0]["sop_instance_uid"], all[1]["sop_instance_uid"]);
    assert!(done[0]["analysis_ms"].as_f64().unwrap() > 0.0);
    let skipped = job_list(&node, "?state=not-analysed");
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["reason"].is_string());
    assert_eq!(job_list(&node, "?state=received").len(), 0);
    let newest = job_list(&node, "?limit=1");
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0]["id"], all[0]["id"]);
    assert_eq!(get(node.http_port, "/api/jobs?limit=0").status, 400);
    assert_eq!(get(node.http_port, "/api/jobs?limit=lots").status, 400);
    assert_eq!(get(node.http_port, "/nothing-here").status, 404);
    let post = crate::common::http::request(node.http_port, "POST", "/api/jobs", "{}").unwrap();
    assert_eq!(post.status, 405, "read-only");
}

#[test]
fn queue_depth_counts_pending_jobs_and_a_duplicate_adds_none() {
    let root = tempfile::tempdir().unwrap();
    // No workers: what is received stays pending.
    let node = Node::start(root.path(), &[]);
    wait_ready(&node);
    send(&node, &["-xy"], CHEST);
    send(&node, &[], CT);
    let text = metrics(&node);
    assert_eq!(
        sample(&text, r#"chestnode_queue_jobs{state="received"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"chestnode_instances_received_total{status="success"}"#
        ),
        Some(2.0)
    );
    assert_eq!(job_list(&node, "?state=received").len(), 2);
    assert_eq!(
        sample(&text, "chestnode_analysis_duration_seconds_count"),
        Some(0.0)
    );

    // The CT again: a duplicate, answered with success, making no job.
    let output = node.storescu(&[], &[&test_data().join(CT)]);
    assert!(output.status.success(), "{}", combined_output(&output));
    assert_eq!(
        value(
            &node,
            r#"chestnode_instances_received_total{status="success"}"#
        ),
        3.0
    );
    assert_eq!(
        value(&node, r#"chestnode_queue_jobs{state="received"}"#),
        2.0,
        "a duplicate makes no job"
    );
}

#[test]
fn health_is_503_when_the_disk_watermark_is_not_met() {
    let root = tempfile::tempdir().unwrap();
    // 1 EiB free is more than any test machine has.
    let node = Node::start(root.path(), &["--min-free-mb", "1099511627776"]);
    let answered = wait_until(Duration::from_secs(60), || {
        health(&node).json()["checks"]["model"]["ok"] == true
    });
    assert!(answered, "{}", node.log());
    let reply = health(&node);
    assert_eq!(reply.status, 503, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["live"], true);
    assert_eq!(answer["ready"], false);
    assert_eq!(answer["checks"]["disk"]["ok"], false, "{answer:#}");
    assert_eq!(
        answer["checks"]["disk"]["min_free_bytes"].as_u64(),
        Some(1_099_511_627_776 * 1024 * 1024)
    );
    assert_eq!(answer["checks"]["index"]["ok"], true);
    assert_eq!(answer["checks"]["model"]["ok"], true);

    // And the SCP refuses the instance (0xA700), which /metrics counts.
    let output = node.storescu(&["-v", "-xy"], &[&test_data().join(CHEST)]);
    let said = combined_output(&output);
    assert!(said.contains("Refused: OutOfResources"), "{said}");
    let text = metrics(&node);
    assert_eq!(
        sample(
            &text,
            r#"chestnode_instances_received_total{status="failure"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"chestnode_instances_received_total{status="success"}"#
        ),
        None
    );
    assert_eq!(sample(&text, "chestnode_received_bytes_total"), Some(0.0));
}

/// A configuration with three destinations: a real Orthanc taking every
/// kind; the same Orthanc under a wrong AE title (it rejects the
/// association permanently); and a port nobody listens on (transient).
fn config_with_destinations(root: &Path, orthanc_port: u16) -> PathBuf {
    let body = [
        FAST_RETRIES.to_owned(),
        destination("orthanc", "ORTHANC", orthanc_port, r#""sr", "sc", "gsps""#),
        destination("wrong-ae", "NOT_ORTHANC", orthanc_port, r#""sr""#),
        destination("nowhere", "NOBODY", free_port(), r#""sr""#),
    ];
    write_config(root, &body.concat())
}

#[test]
fn deliveries_are_counted_per_destination_with_end_to_end_latency() {
    let root = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(OrthancOptions::default());
    let config = config_with_destinations(root.path(), orthanc.dicom_port);
    let node = Node::start(
        root.path(),
        &["--workers", "1", "--config", config.to_str().unwrap()],
    );
    wait_ready(&node);
    send(&node, &["-xy"], CHEST);

    let settled = wait_until(Duration::from_secs(120), || {
        let text = metrics(&node);
        let get = |series: &str| sample(&text, series).unwrap_or(0.0);
        get(r#"chestnode_delivery_attempts_total{destination="orthanc",outcome="delivered"}"#)
            == 3.0
            && get(
                r#"chestnode_delivery_attempts_total{destination="wrong-ae",outcome="permanent"}"#,
            ) == 1.0
            && get(
                r#"chestnode_delivery_attempts_total{destination="nowhere",outcome="transient"}"#,
            ) >= 2.0
    });
    assert!(settled, "{}\n{}", metrics(&node), node.log());
    assert_eq!(orthanc.instance_count(), 3);

    let text = metrics(&node);
    let at = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}\n{text}"));
    // Orthanc took everything at the first attempt.
    assert_eq!(
        sample(
            &text,
            r#"chestnode_delivery_attempts_total{destination="orthanc",outcome="transient"}"#
        ),
        None
    );
    assert_eq!(
        at(r#"chestnode_end_to_end_duration_seconds_count{destination="orthanc"}"#),
        3.0
    );
    let end_to_end = at(r#"chestnode_end_to_end_duration_seconds_sum{destination="orthanc"}"#);
    let analysis = at("chestnode_analysis_duration_seconds_sum");
    assert!(
        end_to_end >= 3.0 * (analysis - 1.0),
        "each result reached Orthanc after the analysis: {end_to_end} vs {analysis}"
    );
    assert!(end_to_end < 3.0 * 120.0, "{end_to_end}");
    // Nothing was delivered elsewhere, so there is no end-to-end time.
    assert_eq!(
        sample(
            &text,
            r#"chestnode_end_to_end_duration_seconds_count{destination="nowhere"}"#
        ),
        None
    );
    assert_eq!(
        at(r#"chestnode_outbox_deliveries{destination="orthanc",state="delivered"}"#),
        3.0
    );
    assert_eq!(
        at(r#"chestnode_outbox_deliveries{destination="wrong-ae",state="dead-letter"}"#),
        1.0
    );
    assert_eq!(
        at(r#"chestnode_outbox_deliveries{destination="nowhere",state="pending"}"#),
        1.0
    );
}

/// `(local address, port)` of every TCP socket the process listens on,
/// from `/proc/<pid>/fd` and `/proc/net/tcp{,6}`.
fn listening_sockets(pid: u32) -> Vec<(String, u16)> {
    let mut inodes = std::collections::HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        if let Ok(target) = std::fs::read_link(entry.unwrap().path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
    }
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A = LISTEN), inode
            let (local, state, inode) = (fields[1], fields[3], fields[9]);
            if state == "0A" && inodes.contains(inode) {
                let (address, port) = local.split_once(':').unwrap();
                found.push((address.to_owned(), u16::from_str_radix(port, 16).unwrap()));
            }
        }
    }
    found
}

#[test]
fn listens_on_loopback_only_by_default() {
    let defaults = chestnode::config::Config::default();
    assert!(defaults.http.enabled);
    assert!(defaults.http.bind.is_loopback());
    assert!(defaults.node.bind.is_loopback());

    let root = tempfile::tempdir().unwrap();
    let node = Node::start(root.path(), &[]);
    wait_ready(&node);
    let sockets = listening_sockets(node.pid());
    let ports: Vec<u16> = sockets.iter().map(|(_, port)| *port).collect();
    assert!(ports.contains(&node.port), "{sockets:?}");
    assert!(ports.contains(&node.http_port), "{sockets:?}");
    for (address, port) in &sockets {
        // 127.0.0.1 as /proc/net/tcp writes it (little-endian hex).
        assert_eq!(address, "0100007F", "port {port} is not on loopback");
    }
}
