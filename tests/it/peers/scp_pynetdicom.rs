//! The SCP against pynetdicom, the client of a field report: C-STOREs of a
//! ~1 MB uncompressed image whose data set contradicts the command's
//! Affected SOP Instance UID, sent in PDUs of at most 16,382 bytes. The
//! report said the node logged the 0xA900 refusal but the client often
//! never got it and timed out; here every refusal must come back promptly,
//! and the node must go on to store a good instance.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{Node, combined_output};

const DATA_SET_DOES_NOT_MATCH: u64 = 0xA900;
const SUCCESS: u64 = 0x0000;
/// Mismatched C-STOREs sent, and over how many associations.
const STORES: usize = 30;
const ASSOCIATIONS: usize = 3;
/// The client's DIMSE timeout: a lost response shows as a store taking this
/// long with no status.
const CLIENT_DIMSE_TIMEOUT: Duration = Duration::from_secs(10);
/// "Promptly": a refused 1 MB store on loopback takes tens of milliseconds.
const PROMPT: Duration = Duration::from_secs(5);

#[test]
fn every_refused_c_store_from_pynetdicom_gets_its_response() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/store_mismatched.py");
    let work = dir.path().join("client");
    std::fs::create_dir_all(&work).unwrap();
    let output = Command::new("python3")
        .arg(&script)
        .arg(node.port.to_string())
        .arg(STORES.to_string())
        .arg(ASSOCIATIONS.to_string())
        .arg(CLIENT_DIMSE_TIMEOUT.as_secs().to_string())
        .arg(&work)
        .output()
        .expect("python3 runs");
    let text = combined_output(&output);
    assert!(
        output.status.success(),
        "the pynetdicom client failed (is pynetdicom installed? \
         tests/python/requirements.txt):\n{text}\nnode log:\n{}",
        node.log()
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let stores = result["mismatched"].as_array().unwrap();
    assert_eq!(stores.len(), STORES, "{result}");
    let lost: Vec<usize> = (0..stores.len())
        .filter(|&i| stores[i]["status"].as_u64() != Some(DATA_SET_DOES_NOT_MATCH))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {STORES} refused C-STOREs did not get 0xA900 (stores {lost:?}):\n{result}\nnode log:\n{}",
        lost.len(),
        node.log()
    );
    for store in stores {
        let seconds = store["seconds"].as_f64().unwrap();
        assert!(
            seconds < PROMPT.as_secs_f64(),
            "a refusal took {seconds} s:\n{result}"
        );
    }
    assert!(
        result["associations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a == "released"),
        "every association ends in a release: {result}"
    );
    assert_eq!(
        result["good"]["status"].as_u64(),
        Some(SUCCESS),
        "a good instance is still stored afterwards: {result}\nnode log:\n{}",
        node.log()
    );

    let log = node.log();
    assert_eq!(
        log.matches("C-STORE refused").count(),
        STORES,
        "one refusal logged per mismatched store:\n{log}"
    );
    assert!(
        !log.contains("aborting association") && !log.contains("aborted by peer"),
        "no association aborted:\n{log}"
    );
    // Still serving, and it stops cleanly.
    let mut node = node;
    node.stop();
}
