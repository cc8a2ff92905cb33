//! Load: 32 senders at once, 2,000 instances in all, against a node that
//! serves at most 16 associations. Senders turned away get the transient
//! rejection and retry, as modalities do; in the end every instance is
//! stored and indexed exactly once, no more than 16 associations were ever
//! served at once, and the node's memory stayed bounded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::{Node, acknowledged_files, test_data};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;

const SENDERS: usize = 32;
const INSTANCES: usize = 2000;
const MAX_ASSOCIATIONS: u64 = 16;
/// Resident memory the node may reach under this load. It holds no
/// instance in memory (data sets stream to disk), so its footprint is the
/// model, the runtime and sled's cache, whatever the number of instances.
const MAX_RSS_MB: u64 = 256;

/// `INSTANCES` copies of a small DX image, each with its own SOP Instance
/// UID, split among the senders.
fn instances(dir: &Path) -> Vec<Vec<PathBuf>> {
    let mut object = dicom_object::open_file(test_data().join("dicom/misc/dx_thorax_small.dcm"))
        .expect("test data present");
    let mut batches = vec![Vec::new(); SENDERS];
    for i in 0..INSTANCES {
        let uid = format!("1.2.826.0.1.3680043.10.1.77.{i}");
        object.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uid.as_str()),
        ));
        object.meta_mut().media_storage_sop_instance_uid = uid;
        object.update_meta(|_| {});
        let path = dir.join(format!("dx{i:04}.dcm"));
        object.write_to_file(&path).unwrap();
        batches[i % SENDERS].push(path);
    }
    batches
}

/// One modality: sends its batch with `storescu`, and re-sends what was not
/// acknowledged (rejected association, or refused store) until all is.
fn sender(port: u16, calling: String, batch: Vec<PathBuf>, rejections: Arc<AtomicU64>) {
    let mut acked = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while acked.len() < batch.len() {
        assert!(Instant::now() < deadline, "{calling} never finished");
        let remaining: Vec<&PathBuf> = batch.iter().filter(|p| !acked.contains(*p)).collect();
        let output = Command::new("storescu")
            .args(["-v", "-aec", "CHESTNODE", "-aet", &calling])
            .arg("127.0.0.1")
            .arg(port.to_string())
            .args(&remaining)
            .output()
            .expect("storescu (DCMTK) is installed");
        let log = crate::common::combined_output(&output);
        if log.contains("Association Rejected") {
            assert!(log.contains("Transient"), "a permanent rejection: {log}");
            rejections.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100 + fastrand::u64(..200)));
        }
        acked.extend(acknowledged_files(&log));
    }
}

/// The node's resident set size, in MiB.
fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn active_associations(http_port: u16) -> Option<f64> {
    let reply = crate::common::http::request(http_port, "GET", "/metrics", "").ok()?;
    reply
        .body
        .lines()
        .find_map(|l| l.strip_prefix("chestnode_associations_active "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
#[ignore = "soak: 32 senders, 2,000 instances"]
fn thirty_two_senders_two_thousand_instances_nothing_lost_and_limits_held() {
    let root = tempfile::tempdir().unwrap();
    let batches = instances(root.path());
    let mut node = Node::start(
        root.path(),
        &["--max-associations", &MAX_ASSOCIATIONS.to_string()],
    );
    let pid = node.pid();

    // Watch associations and memory while the load runs.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, http_port) = (done.clone(), node.http_port);
        std::thread::spawn(move || {
            let (mut peak_associations, mut peak_rss, mut samples) = (0f64, 0u64, 0u32);
            while !done.load(Ordering::Relaxed) {
                if let Some(active) = active_associations(http_port) {
                    peak_associations = peak_associations.max(active);
                    samples += 1;
                }
                peak_rss = peak_rss.max(rss_mb(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            (peak_associations, peak_rss, samples)
        })
    };

    let started = Instant::now();
    let rejections = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = batches
        .into_iter()
        .enumerate()
        .map(|(i, batch)| {
            let (port, rejections) = (node.port, rejections.clone());
            std::thread::spawn(move || sender(port, format!("MODALITY{i:02}"), batch, rejections))
        })
        .collect();
    for sender in senders {
        sender.join().expect("a sender finished");
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (peak_associations, peak_rss, samples) = watcher.join().unwrap();
    eprintln!(
        "{INSTANCES} instances from {SENDERS} senders in {:.1} s; {} rejected associations \
         retried; peak {peak_associations} associations ({samples} samples), peak RSS {peak_rss} MiB",
        elapsed.as_secs_f64(),
        rejections.load(Ordering::Relaxed)
    );

    let status = node.status();
    assert_eq!(status["instances_received"], INSTANCES as u64, "{status:#}");
    assert_eq!(status["jobs_total"], INSTANCES as u64);
    assert_eq!(node.instance_files().len(), INSTANCES, "one file each");
    assert!(node.temporary_files().is_empty());
    assert!(samples > 0, "metrics were read during the load");
    assert!(
        peak_associations <= MAX_ASSOCIATIONS as f64,
        "at most {MAX_ASSOCIATIONS} associations at once, saw {peak_associations}"
    );
    assert!(
        rejections.load(Ordering::Relaxed) > 0,
        "32 senders against 16 slots meet the limit"
    );
    assert!(peak_rss < MAX_RSS_MB, "peak RSS {peak_rss} MiB");
    node.stop();
}
