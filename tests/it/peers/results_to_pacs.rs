//! The whole path with Orthanc as the PACS: `storescu` sends a chest
//! radiograph to a real chestnode process, which analyses it and delivers
//! its SR, overlay and presentation state to a real Orthanc. Orthanc's REST
//! API (and a Lua filter counting every C-STORE it receives) tells what
//! arrived, how often, and in which study.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::config::{FAST_RETRIES, destination, write_config};
use crate::common::orthanc::{Orthanc, OrthancOptions};
use crate::common::{Node, free_port, test_data, wait_until};
use dicom_dictionary_std::tags;

/// 1024 × 1024 chest CR, JPEG baseline: quick to analyse.
const CHEST: &str = "dicom/misc/siim_cr_chest_jpeg_baseline.dcm";
/// 1955 × 1841 chest CR, JPEG-LS.
const LARGE_CHEST: &str = "dicom/wg04/RG1_JLSN.dcm";

/// Writes a configuration sending `kinds` to Orthanc on `port`.
fn config_for(root: &Path, port: u16, kinds: &str) -> PathBuf {
    let orthanc = destination("orthanc", "ORTHANC", port, kinds);
    write_config(root, &format!("{FAST_RETRIES}{orthanc}"))
}

fn start_node(root: &Path, config: &Path) -> Node {
    Node::start(
        root,
        &["--workers", "1", "--config", config.to_str().unwrap()],
    )
}

/// A node whose retention deletes delivered instances at once (1 % disk).
fn start_node_keeping_less(root: &Path, config: &Path) -> Node {
    Node::start(
        root,
        &[
            "--workers",
            "1",
            "--retention-max-used-percent",
            "1",
            "--config",
            config.to_str().unwrap(),
        ],
    )
}

/// Sends the quick chest CR with `storescu` and checks it was accepted.
fn send_chest(node: &Node) {
    node.storescu_ok(&["-xy"], &[&test_data().join(CHEST)]);
}

/// A source attribute, as text.
fn source_attribute(file: &str, tag: dicom_core::Tag) -> String {
    dicom_object::open_file(test_data().join(file))
        .unwrap()
        .get(tag)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_owned()
}

/// The result objects the analysed jobs published, from `status --json`.
fn published_uids(node: &Node) -> Vec<String> {
    let status = node.status();
    let mut uids: Vec<String> = status["recent_jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|job| job["results"].as_array().cloned().unwrap_or_default())
        .map(|result| result["sop_instance_uid"].as_str().unwrap().to_owned())
        .collect();
    uids.sort();
    uids
}

#[test]
fn sr_overlay_and_gsps_reach_orthanc_in_the_source_study() {
    let root = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(OrthancOptions::default());
    let config = config_for(root.path(), orthanc.dicom_port, r#""sr", "sc", "gsps""#);
    let mut node = start_node(root.path(), &config);
    send_chest(&node);

    let arrived = wait_until(Duration::from_secs(90), || orthanc.instance_count() == 3);
    assert!(arrived, "{}\n{:#}", node.log(), node.status());

    let study = source_attribute(CHEST, tags::STUDY_INSTANCE_UID);
    let patient = source_attribute(CHEST, tags::PATIENT_ID);
    let mut modalities = Vec::new();
    for id in orthanc.instances() {
        let tags = orthanc.simplified_tags(&id);
        assert_eq!(tags["StudyInstanceUID"], study.as_str(), "same study");
        assert_eq!(tags["PatientID"], patient.as_str(), "same patient");
        assert!(
            tags["SeriesDescription"]
                .as_str()
                .unwrap()
                .contains("RESEARCH USE ONLY")
        );
        modalities.push(tags["Modality"].as_str().unwrap().to_owned());
    }
    modalities.sort();
    assert_eq!(modalities, ["OT", "PR", "SR"]);

    let delivered = wait_until(Duration::from_secs(10), || {
        node.backlog("orthanc")["delivered"].as_u64() == Some(3)
    });
    assert!(delivered, "{:#}", node.status());
    assert_eq!(node.backlog("orthanc")["pending"], 0);
    // The job went all the way: delivered, with its time and destination.
    let status = node.status();
    assert_eq!(status["jobs_by_state"]["delivered"], 1, "{status:#}");
    let job = &status["recent_jobs"][0];
    assert_eq!(job["state"], "delivered");
    assert_eq!(job["deliveries"]["orthanc"], "delivered");
    assert!(job["delivered_at"].as_u64() >= job["analysed_at"].as_u64());
    // Exactly once each.
    for uid in published_uids(&node) {
        assert_eq!(orthanc.times_received(&uid), 1, "{uid}");
    }
    node.stop();
}

#[test]
fn results_wait_while_orthanc_is_down_and_arrive_once_when_it_is_up() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config_for(root.path(), port, r#""sr", "sc""#);
    let mut node = start_node(root.path(), &config);
    let chest = test_data().join(CHEST);
    assert!(node.storescu(&["-xy"], &[&chest]).status.success());
    let large = test_data().join(LARGE_CHEST);
    assert!(node.storescu(&["-xu", "-R"], &[&large]).status.success());

    // Both images analysed, four results waiting with an error to show.
    let waiting = wait_until(Duration::from_secs(90), || {
        let backlog = node.backlog("orthanc");
        backlog["pending"].as_u64() == Some(4) && backlog["last_error"].is_string()
    });
    assert!(waiting, "{:#}", node.status());
    std::thread::sleep(Duration::from_secs(3)); // a few more failed attempts

    let orthanc = Orthanc::start(OrthancOptions {
        dicom_port: Some(port),
        ..OrthancOptions::default()
    });
    let delivered = wait_until(Duration::from_secs(60), || {
        node.backlog("orthanc")["delivered"].as_u64() == Some(4)
    });
    assert!(delivered, "{:#}\n{}", node.status(), node.log());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(orthanc.instance_count(), 4);
    let uids = published_uids(&node);
    assert_eq!(uids.len(), 4);
    for uid in &uids {
        assert_eq!(orthanc.times_received(uid), 1, "{uid} delivered once");
    }

    // A restart finds nothing left to send and sends nothing again.
    node.restart();
    std::thread::sleep(Duration::from_secs(3));
    for uid in &uids {
        assert_eq!(orthanc.times_received(uid), 1, "{uid} after restart");
    }
    node.stop();
}

#[test]
fn a_pacs_that_rejects_us_permanently_gets_a_dead_letter_not_a_loop() {
    let root = tempfile::tempdir().unwrap();
    let orthanc = Orthanc::start(OrthancOptions {
        accept_unknown_calling: false,
        ..OrthancOptions::default()
    });
    let config = config_for(root.path(), orthanc.dicom_port, r#""sr", "sc""#);
    let mut node = start_node(root.path(), &config);
    send_chest(&node);
    let dead = wait_until(Duration::from_secs(90), || {
        node.backlog("orthanc")["dead_letter"].as_u64() == Some(2)
    });
    assert!(dead, "{:#}", node.status());
    let rejected = orthanc.rejected_associations();
    // With retry_delay_secs = 1, a loop would have tried again by now.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(orthanc.rejected_associations(), rejected, "no retry loop");
    let status = node.status();
    for letter in status["dead_letters"].as_array().unwrap() {
        assert_eq!(letter["attempts"], 1, "{letter}");
        assert!(
            letter["reason"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("reject"),
            "{letter}"
        );
    }
    assert_eq!(orthanc.instance_count(), 0);
    // The job is a dead letter too, saying which destination refused it.
    assert_eq!(status["jobs_by_state"]["dead-letter"], 1, "{status:#}");
    let job = &status["recent_jobs"][0];
    assert_eq!(job["deliveries"]["orthanc"], "dead-letter");
    assert!(
        job["reason"]
            .as_str()
            .unwrap()
            .starts_with("delivery to orthanc:"),
        "{job}"
    );
    node.stop();
}

#[test]
fn two_nodes_analysing_the_same_image_make_the_same_objects() {
    // Deterministic UIDs: results made twice (here by two nodes, as after a
    // lost record) are the same instances, so PACS keeps one copy of each.
    let orthanc = Orthanc::start(OrthancOptions::default());
    let mut uids = Vec::new();
    for _ in 0..2 {
        let root = tempfile::tempdir().unwrap();
        let config = config_for(root.path(), orthanc.dicom_port, r#""sr", "sc""#);
        let mut node = start_node(root.path(), &config);
        send_chest(&node);
        let delivered = wait_until(Duration::from_secs(90), || {
            node.backlog("orthanc")["delivered"].as_u64() == Some(2)
        });
        assert!(delivered, "{:#}", node.status());
        uids.push(published_uids(&node));
        node.stop();
    }
    assert_eq!(uids[0], uids[1]);
    assert_eq!(orthanc.instance_count(), 2, "one copy of each in PACS");
    for uid in &uids[0] {
        assert_eq!(orthanc.times_received(uid), 2, "sent by each node");
    }
}

#[test]
fn retention_deletes_delivered_images_and_keeps_undelivered_ones() {
    // A watermark of 1 % (--retention-max-used-percent) is always
    // exceeded, so every instance whose results are all delivered goes at
    // the next sweep (every second).
    let orthanc = Orthanc::start(OrthancOptions::default());
    let root = tempfile::tempdir().unwrap();
    let down = free_port();
    let config = root.path().join("chestnode.toml");
    std::fs::write(
        &config,
        format!(
            "[retention]\nsweep_interval_secs = 1\n\
             [outbox]\nretry_delay_secs = 1\n\n\
             [[destinations]]\nname = \"orthanc\"\nae_title = \"ORTHANC\"\n\
             host = \"127.0.0.1\"\nport = {}\nkinds = [\"sr\"]\n",
            orthanc.dicom_port
        ),
    )
    .unwrap();
    let mut node = start_node_keeping_less(root.path(), &config);
    send_chest(&node);
    let swept = wait_until(Duration::from_secs(90), || {
        node.status()["instances_received"].as_u64() == Some(0)
    });
    assert!(swept, "{:#}\n{}", node.status(), node.log());
    assert_eq!(orthanc.instance_count(), 1, "the SR was delivered first");
    assert!(node.instance_files().is_empty());
    assert!(crate::common::files_below(&node.data_dir.join("results")).is_empty());
    node.stop();

    // With the destination down, the SR waits, and so does the image.
    let root = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&orthanc.dicom_port.to_string(), &down.to_string());
    let config = root.path().join("chestnode.toml");
    std::fs::write(&config, text).unwrap();
    let mut node = start_node_keeping_less(root.path(), &config);
    send_chest(&node);
    let waiting = wait_until(Duration::from_secs(90), || {
        node.backlog("orthanc")["pending"].as_u64() == Some(1)
    });
    assert!(waiting, "{:#}", node.status());
    std::thread::sleep(Duration::from_secs(3)); // several sweeps
    assert_eq!(node.status()["instances_received"], 1);
    assert_eq!(node.instance_files().len(), 1);
    node.stop();
}
