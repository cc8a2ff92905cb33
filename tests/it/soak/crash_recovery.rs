//! Crashes for real: chestnode is killed with SIGKILL at several moments
//! while `storescu` sends and the node analyses and delivers. After each
//! restart the sender re-sends what it did not see acknowledged, as a
//! modality does. At the end every acknowledged image has its SR and
//! overlay in Orthanc exactly once: nothing acknowledged is lost, and a
//! result sent twice (a crash between "sent" and "marked delivered") is the
//! same instance, so Orthanc still holds one copy.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::orthanc::{Orthanc, OrthancOptions};
use crate::common::{Node, acknowledged_files, distinct_copies, wait_until};

/// Images sent in all.
const IMAGES: usize = 100;
/// How many times the node is killed.
const KILLS: usize = 6;
/// Kills land at a random moment within this many milliseconds of each
/// (re)start: while receiving, analysing or delivering.
const KILL_WITHIN_MS: u64 = 4000;

/// Starts `storescu -v` sending `files` to the node.
fn send(node: &Node, files: &[&PathBuf]) -> std::process::Child {
    Command::new("storescu")
        .args(["-v", "-xy", "-aec", "CHESTNODE", "-aet", "MODALITY"])
        .arg("127.0.0.1")
        .arg(node.port.to_string())
        .args(files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("storescu (DCMTK) is installed")
}

#[test]
#[ignore = "soak: kills the node 6 times while 100 images flow to Orthanc"]
fn sigkill_at_random_moments_loses_nothing_acknowledged_and_duplicates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let images = distinct_copies(
        "dicom/misc/siim_cr_chest_jpeg_baseline.dcm",
        root.path(),
        "chest",
        IMAGES,
    );
    let orthanc = Orthanc::start(OrthancOptions::default());
    let config = root.path().join("chestnode.toml");
    std::fs::write(
        &config,
        format!(
            "[outbox]\nretry_delay_secs = 1\nmax_retry_delay_secs = 2\n\n\
             [[destinations]]\nname = \"orthanc\"\nae_title = \"ORTHANC\"\n\
             host = \"127.0.0.1\"\nport = {}\nkinds = [\"sr\", \"sc\"]\n",
            orthanc.dicom_port
        ),
    )
    .unwrap();
    let mut node = Node::start(
        root.path(),
        &["--workers", "1", "--config", config.to_str().unwrap()],
    );

    // Random moments, from a seed printed so a failure can be replayed
    // (CHESTNODE_KILL_SEED=...).
    let seed = std::env::var("CHESTNODE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("kill moments from seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut acked = BTreeSet::new();
    for _ in 0..KILLS {
        let delay = rng.u64(300..KILL_WITHIN_MS);
        let remaining: Vec<&PathBuf> = images.iter().filter(|p| !acked.contains(*p)).collect();
        let sender = send(&node, &remaining);
        std::thread::sleep(Duration::from_millis(delay));
        node.kill();
        let output = sender.wait_with_output().unwrap();
        acked.extend(acknowledged_files(&crate::common::combined_output(&output)));
        node.start_again();
    }
    // The modality re-sends whatever is still unacknowledged.
    let remaining: Vec<&PathBuf> = images.iter().filter(|p| !acked.contains(*p)).collect();
    if !remaining.is_empty() {
        let output = send(&node, &remaining).wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            crate::common::combined_output(&output)
        );
        acked.extend(acknowledged_files(&crate::common::combined_output(&output)));
    }
    assert_eq!(acked.len(), IMAGES, "every image acknowledged in the end");

    let finished = wait_until(Duration::from_secs(240), || {
        let status = node.status();
        let delivered = status["destinations"]
            .as_array()
            .and_then(|d| d.first())
            .map(|d| d["delivered"].as_u64() == Some(2 * IMAGES as u64))
            .unwrap_or(false);
        status["instances_received"].as_u64() == Some(IMAGES as u64)
            && status["jobs_by_state"]["delivered"].as_u64() == Some(IMAGES as u64)
            && delivered
    });
    let status = node.status();
    assert!(finished, "{status:#}\n{}", node.log());

    // One SR and one overlay per image in Orthanc: nothing missing, no
    // duplicates (a re-send after a crash is the same instance).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(orthanc.instance_count(), 2 * IMAGES as u64);
    let mut resent = 0;
    for id in orthanc.instances() {
        let uid = orthanc.simplified_tags(&id)["SOPInstanceUID"]
            .as_str()
            .unwrap()
            .to_owned();
        let times = orthanc.times_received(&uid);
        assert!((1..=2).contains(&times), "{uid} received {times} times");
        resent += times - 1;
    }
    eprintln!("results re-sent after a crash (same UID, de-duplicated): {resent}");
    assert_eq!(
        status["jobs_by_state"]["dead-letter"].as_u64().unwrap_or(0),
        0
    );
    node.stop();
}
