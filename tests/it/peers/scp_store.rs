//! The Storage SCP against real DCMTK peers: C-ECHO, C-STORE of every test
//! file in its own transfer syntax, concurrency, duplicates, restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::compare::assert_same_data_set;
use crate::common::{Node, all_test_dicom_files, combined_output, test_data};
use dicom_dictionary_std::{tags, uids};

/// The storescu flag that proposes a file's own transfer syntax.
fn storescu_flag_for(transfer_syntax: &str) -> &'static str {
    match transfer_syntax {
        uids::EXPLICIT_VR_LITTLE_ENDIAN => "-xe",
        uids::IMPLICIT_VR_LITTLE_ENDIAN => "-xi",
        uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN => "-xd",
        uids::JPEG_BASELINE8_BIT => "-xy",
        uids::JPEG_EXTENDED12_BIT => "-xx",
        uids::JPEG_LOSSLESS_SV1 => "-xs",
        uids::JPEGLS_LOSSLESS => "-xt",
        uids::JPEGLS_NEAR_LOSSLESS => "-xu",
        uids::JPEG2000_LOSSLESS => "-xv",
        uids::JPEG2000 => "-xw",
        uids::RLE_LOSSLESS => "-xr",
        other => panic!("no storescu flag for transfer syntax {other}"),
    }
}

struct Identity {
    transfer_syntax: String,
    sop_instance_uid: String,
}

fn identity(path: &Path) -> Identity {
    let object = dicom_object::open_file(path).unwrap();
    Identity {
        transfer_syntax: object
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned(),
        sop_instance_uid: object
            .meta()
            .media_storage_sop_instance_uid()
            .trim_end_matches('\0')
            .to_owned(),
    }
}

/// The stored file for a SOP Instance UID.
fn stored_file(node: &Node, sop_instance_uid: &str) -> PathBuf {
    let name = format!("{sop_instance_uid}.dcm");
    node.instance_files()
        .into_iter()
        .find(|p| p.file_name().unwrap() == name.as_str())
        .unwrap_or_else(|| panic!("{sop_instance_uid} not stored"))
}

fn assert_stored(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "storescu failed:\n{}",
        combined_output(output)
    );
}

#[test]
fn echoscu_gets_success() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let output = node.echoscu(&["-v"]);
    assert!(output.status.success(), "{}", combined_output(&output));
    assert!(combined_output(&output).contains("Received Echo Response (Success)"));
    node.stop();
}

#[test]
fn every_test_file_is_stored_unchanged_in_its_own_transfer_syntax() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    // First file sent with each SOP Instance UID: that copy is the one kept.
    let mut first_sent: BTreeMap<String, PathBuf> = BTreeMap::new();
    let files = all_test_dicom_files();
    assert!(files.len() >= 25, "test data incomplete");
    for file in &files {
        let id = identity(file);
        let output = node.storescu(&["-R", storescu_flag_for(&id.transfer_syntax)], &[file]);
        assert_stored(&output);
        first_sent
            .entry(id.sop_instance_uid)
            .or_insert_with(|| file.clone());
    }
    for (uid, original) in &first_sent {
        let stored = stored_file(&node, uid);
        let stored_ts = identity(&stored).transfer_syntax;
        assert_eq!(
            stored_ts,
            identity(original).transfer_syntax,
            "{uid}: transcoded"
        );
        assert_same_data_set(original, &stored);
    }
    let status = node.status();
    let distinct = first_sent.len() as u64;
    assert_eq!(status["server_running"], true);
    assert_eq!(status["instances_received"].as_u64(), Some(distinct));
    assert_eq!(status["jobs_total"].as_u64(), Some(distinct));
    assert_eq!(status["jobs_by_state"]["received"].as_u64(), Some(distinct));
    assert!(node.temporary_files().is_empty());
    assert!(
        node.log().contains("duplicate instance"),
        "the test data repeats UIDs"
    );
    node.stop();
    assert_no_patient_data_in(&node.log(), &files);
}

#[test]
fn uncompressed_files_are_stored_in_implicit_and_deflated_syntaxes() {
    let files = [
        test_data().join("dicom/wg04/RG3_UNC.dcm"),
        test_data().join("dicom/wg04/CT1_UNC.dcm"),
    ];
    for (flag, expected) in [
        ("-xi", uids::IMPLICIT_VR_LITTLE_ENDIAN),
        ("-xd", uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN),
    ] {
        let root = tempfile::tempdir().unwrap();
        let mut node = Node::start(root.path(), &[]);
        let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        assert_stored(&node.storescu(&[flag], &refs));
        for file in &files {
            let stored = stored_file(&node, &identity(file).sop_instance_uid);
            assert_eq!(identity(&stored).transfer_syntax, expected);
            assert_same_data_set(file, &stored);
        }
        assert_eq!(node.pending_jobs(), 2);
        node.stop();
    }
}

#[test]
fn several_storescu_processes_at_once() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let groups: [(&str, &[&str]); 4] = [
        (
            "-xe",
            &[
                "wg04/RG3_UNC",
                "wg04/CT1_UNC",
                "misc/CT_small",
                "misc/dx_thorax_small",
            ],
        ),
        ("-xs", &["wg04/RG3_JPLL", "wg04/CT1_JPLL"]),
        ("-xr", &["wg04/RG3_RLE", "wg04/CT1_RLE"]),
        ("-xt", &["wg04/RG3_JLSL", "wg04/CT1_JLSL"]),
    ];
    let mut senders = Vec::new();
    let mut expected = Vec::new();
    for (index, (flag, names)) in groups.iter().enumerate() {
        let files: Vec<PathBuf> = names
            .iter()
            .map(|n| test_data().join(format!("dicom/{n}.dcm")))
            .collect();
        expected.extend(files.iter().map(|f| identity(f).sop_instance_uid));
        let child = std::process::Command::new("storescu")
            .args([
                "-aec",
                "CHESTNODE",
                "-aet",
                &format!("SENDER{index}"),
                "-R",
                flag,
            ])
            .arg("127.0.0.1")
            .arg(node.port.to_string())
            .args(&files)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        senders.push(child);
    }
    for sender in senders {
        assert_stored(&sender.wait_with_output().unwrap());
    }
    assert_eq!(node.pending_jobs(), expected.len() as u64);
    for uid in &expected {
        stored_file(&node, uid);
    }
    node.stop();
}

#[test]
fn jobs_survive_a_restart_and_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let files: Vec<PathBuf> = ["RG3_UNC", "CT1_UNC", "RG1_JLSN"]
        .iter()
        .map(|name| test_data().join(format!("dicom/wg04/{name}.dcm")))
        .collect();
    assert_stored(&node.storescu(&["-xu"], &[&files[0], &files[1]]));
    node.stop();
    // Status works while the server is stopped.
    let stopped = node.status();
    assert_eq!(stopped["server_running"], false);
    assert_eq!(stopped["jobs_by_state"]["received"].as_u64(), Some(2));

    node.start_again();
    assert_eq!(node.pending_jobs(), 2);
    assert_stored(&node.storescu(&["-xu", "-R"], &[&files[2]]));
    // A crash right after the acknowledgement loses nothing.
    node.kill();
    assert_eq!(node.status()["jobs_by_state"]["received"].as_u64(), Some(3));
    node.start_again();
    assert_eq!(node.pending_jobs(), 3);
    assert_eq!(node.instance_files().len(), 3);
    node.stop();
}

#[test]
fn a_duplicate_instance_is_acknowledged_but_creates_no_second_job() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let file = test_data().join("dicom/misc/dx_thorax_small.dcm");
    assert_stored(&node.storescu(&[], &[&file]));
    let output = node.storescu(&["-v"], &[&file]);
    assert_stored(&output);
    assert!(combined_output(&output).contains("Received Store Response (Success)"));
    assert_eq!(node.pending_jobs(), 1);
    assert_eq!(node.instance_files().len(), 1);
    assert!(crate::common::wait_until(Duration::from_secs(5), || node
        .log()
        .contains("duplicate instance")));
    node.stop();
}

/// The info-level log must not contain any patient's name or ID.
fn assert_no_patient_data_in(log: &str, files: &[PathBuf]) {
    let mut checked = 0;
    for file in files {
        let object = dicom_object::open_file(file).unwrap();
        for tag in [tags::PATIENT_NAME, tags::PATIENT_ID] {
            let Some(value) = object
                .element_opt(tag)
                .ok()
                .flatten()
                .and_then(|e| e.to_str().ok())
            else {
                continue;
            };
            let value = value.trim_end_matches(['\0', ' ']);
            if value.len() >= 3 {
                checked += 1;
                assert!(
                    !log.contains(value),
                    "log contains patient data {value:?} from {}",
                    file.display()
                );
            }
        }
    }
    assert!(checked > 10, "too few patient names and IDs to check");
}
