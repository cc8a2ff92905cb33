//! Bad input and interrupted transfers: the node answers with a clear
//! status, leaves nothing half-written, and keeps serving.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::scu::{RawScu, dx_association};
use crate::common::{Node, combined_output, files_below, test_data, wait_until};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::open_file;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

const CANNOT_UNDERSTAND: u16 = 0xC000;
const DATA_SET_DOES_NOT_MATCH: u16 = 0xA900;
const OUT_OF_RESOURCES: u16 = 0xA700;

fn dx_file() -> PathBuf {
    test_data().join("dicom/misc/dx_thorax_small.dcm")
}

/// The data set of a file, encoded in explicit VR little endian.
fn data_set_bytes(path: &Path) -> Vec<u8> {
    let object = open_file(path).unwrap();
    let mut bytes = Vec::new();
    object
        .write_dataset_with_ts(&mut bytes, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    bytes
}

fn dx_sop_instance_uid() -> String {
    let object = open_file(dx_file()).unwrap();
    object
        .meta()
        .media_storage_sop_instance_uid()
        .trim_end_matches('\0')
        .to_owned()
}

/// Writes a copy of `source` with one string attribute replaced.
fn variant(source: &Path, destination: &Path, tag: dicom_core::Tag, value: &str) {
    let mut object = open_file(source).unwrap();
    object.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(value)));
    object.write_to_file(destination).unwrap();
}

fn assert_nothing_stored(node: &Node) {
    assert!(
        node.instance_files().is_empty(),
        "{:?}",
        node.instance_files()
    );
    assert!(
        node.temporary_files().is_empty(),
        "{:?}",
        node.temporary_files()
    );
    assert_eq!(node.status()["jobs_total"].as_u64(), Some(0));
}

#[test]
fn a_malformed_data_set_gets_a_failure_status_and_the_node_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let mut scu = dx_association(&node, "CRAFTER");
    // A valid first element, then an element header promising more bytes
    // than follow.
    let mut garbage = data_set_bytes(&dx_file())[..64].to_vec();
    garbage.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xff, 0x7f]);
    let response = scu.store_raw(
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        "1.2.3.4.5",
        &garbage,
        7,
    );
    assert_eq!(response.status, CANNOT_UNDERSTAND);
    assert!(response.error_comment.unwrap().contains("cannot be parsed"));
    assert_eq!(
        response.affected_sop_instance_uid.as_deref(),
        Some("1.2.3.4.5")
    );

    // A complete header but pixel data cut short.
    let full = data_set_bytes(&dx_file());
    let uid = dx_sop_instance_uid();
    let response = scu.store_raw(
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        &uid,
        &full[..full.len() - 100],
        16 * 1024,
    );
    assert_eq!(response.status, CANNOT_UNDERSTAND);
    assert!(
        response
            .error_comment
            .unwrap()
            .contains("ends inside an element")
    );

    // The same association still works for a good instance.
    let good = data_set_bytes(&dx_file());
    let response = scu.store_raw(
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        &uid,
        &good,
        1000,
    );
    assert_eq!(response.status, 0x0000, "{response:?}");
    scu.release();

    // And so does the next association.
    assert!(node.echoscu(&[]).status.success());
    assert_eq!(node.pending_jobs(), 1);
    assert!(node.temporary_files().is_empty());
    let status = node.status();
    assert!(
        status["last_errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("0xC000"),
        "{status}"
    );
    node.stop();
}

#[test]
fn a_data_set_that_contradicts_its_command_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let bytes = data_set_bytes(&dx_file());
    let mut scu = dx_association(&node, "CRAFTER");
    let response = scu.store_raw(
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        "1.2.3.999",
        &bytes,
        4096,
    );
    assert_eq!(response.status, DATA_SET_DOES_NOT_MATCH);
    assert!(response.error_comment.unwrap().contains("SOP Instance UID"));
    scu.release();

    // Command says CR, data set is DX.
    let uid = dx_sop_instance_uid();
    let mut scu = RawScu::connect(
        node.port,
        "CRAFTER",
        uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
        &[uids::EXPLICIT_VR_LITTLE_ENDIAN],
    )
    .unwrap();
    let response = scu.store_raw(uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE, &uid, &bytes, 4096);
    assert_eq!(response.status, DATA_SET_DOES_NOT_MATCH);
    assert!(response.error_comment.unwrap().contains("SOP Class UID"));
    scu.release();
    assert_nothing_stored(&node);
    node.stop();
}

#[test]
fn crafted_uids_never_become_paths() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let bytes = data_set_bytes(&dx_file());
    let mut scu = dx_association(&node, "CRAFTER");
    let too_long = format!("1.{}", "2".repeat(70));
    for crafted in [
        "../../../../tmp/chestnode-escape",
        "1.2.3/../../escape",
        too_long.as_str(),
        "1.2.3\\escape",
    ] {
        let response = scu.store_raw(
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            crafted,
            &bytes,
            8192,
        );
        assert_eq!(response.status, CANNOT_UNDERSTAND, "{crafted}");
        assert!(
            response
                .error_comment
                .unwrap()
                .contains("invalid Affected SOP Instance UID")
        );
    }
    scu.release();

    // A real peer sending a file whose Study Instance UID climbs out.
    let crafted_file = root.path().join("crafted.dcm");
    variant(
        &dx_file(),
        &crafted_file,
        tags::STUDY_INSTANCE_UID,
        "../../../escape",
    );
    let output = node.storescu(&["-v"], &[&crafted_file]);
    let text = combined_output(&output);
    assert!(
        text.contains("Error: CannotUnderstand") || text.contains("0xc000"),
        "{text}"
    );

    assert_nothing_stored(&node);
    let stray: Vec<_> = files_below(root.path())
        .into_iter()
        .chain(
            files_below(Path::new("/tmp"))
                .into_iter()
                .filter(|p| p.to_string_lossy().contains("chestnode-escape")),
        )
        .filter(|p| p.to_string_lossy().contains("escape"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert!(node.echoscu(&[]).status.success());
    node.stop();
}

#[test]
fn below_the_free_space_watermark_stores_are_refused_with_a700() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &["--min-free-mb", "100000000"]);
    let output = node.storescu(&["-v"], &[&dx_file()]);
    let text = combined_output(&output);
    assert!(text.contains("Refused: OutOfResources"), "{text}");
    let mut scu = dx_association(&node, "CRAFTER");
    let response = scu.store_raw(
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        "1.2.3",
        &[0; 100],
        10,
    );
    assert_eq!(response.status, OUT_OF_RESOURCES);
    scu.release();
    assert_nothing_stored(&node);
    assert!(node.echoscu(&[]).status.success());
    node.stop();
}

/// A DX file of about `megabytes` MB: the small DX with huge pixel data.
fn large_file(directory: &Path, megabytes: usize) -> PathBuf {
    let mut object = open_file(dx_file()).unwrap();
    let side = ((megabytes * 1_000_000 / 2) as f64).sqrt() as u16;
    object.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(side),
    ));
    object.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(side),
    ));
    object.put(DataElement::new(
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(16u16),
    ));
    object.put(DataElement::new(
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(12u16),
    ));
    object.put(DataElement::new(
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(11u16),
    ));
    let pixels = vec![0x0123u16; side as usize * side as usize];
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
    let path = directory.join("large.dcm");
    object.write_to_file(&path).unwrap();
    path
}

fn spawn_storescu(node: &Node, file: &Path) -> std::process::Child {
    Command::new("storescu")
        .args(["-aec", "CHESTNODE", "127.0.0.1", &node.port.to_string()])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn killing_storescu_mid_transfer_leaves_no_file_and_no_job() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let file = large_file(root.path(), 300);
    let mut sender = spawn_storescu(&node, &file);
    assert!(
        wait_until(Duration::from_secs(30), || !node
            .temporary_files()
            .is_empty()),
        "transfer never started"
    );
    sender.kill().unwrap();
    sender.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || node
            .temporary_files()
            .is_empty()),
        "partial file left behind"
    );
    assert_nothing_stored(&node);
    assert!(node.echoscu(&[]).status.success());
    node.stop();
}

#[test]
fn sigterm_lets_an_in_flight_transfer_finish() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let file = large_file(root.path(), 150);
    let sender = spawn_storescu(&node, &file);
    assert!(wait_until(Duration::from_secs(30), || !node
        .temporary_files()
        .is_empty()));
    node.stop();
    let output = sender.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", combined_output(&output));
    node.start_again();
    assert_eq!(node.pending_jobs(), 1);
    assert_eq!(node.instance_files().len(), 1);
    node.stop();
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct SmallDisk {
    mount_point: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. "4m"); `None` where mounting is not
    /// permitted (not root, or no mount namespace rights).
    fn mount(root: &Path, size: &str) -> Option<SmallDisk> {
        let mount_point = root.join("small-disk");
        std::fs::create_dir_all(&mount_point).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { mount_point })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount_point).status();
    }
}

#[test]
fn a_full_disk_gives_a700_leaves_nothing_behind_and_the_node_recovers() {
    let root = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(root.path(), "4m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the watermark test still covers 0xA700"
        );
        return;
    };
    let mut node = Node::start(&disk.mount_point, &["--min-free-mb", "0"]);
    // 6 MB does not fit in 4 MB: the write fails part way.
    let output = node.storescu(&["-v"], &[&test_data().join("dicom/wg04/RG3_UNC.dcm")]);
    let text = combined_output(&output);
    assert!(text.contains("Refused: OutOfResources"), "{text}");
    assert!(
        node.temporary_files().is_empty(),
        "partial file left on a full disk"
    );
    assert!(node.instance_files().is_empty());
    // Space came back when the partial file went: a small image fits.
    assert!(
        node.storescu(&[], &[&test_data().join("dicom/wg04/CT1_UNC.dcm")])
            .status
            .success()
    );
    assert_eq!(node.pending_jobs(), 1);
    let status = node.status();
    assert!(
        status["last_errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{status}"
    );
    node.stop();
}

#[test]
fn a_full_analysis_queue_refuses_stores_with_a700_until_it_drains() {
    // Backpressure: with no workers and room for two queued jobs, the third
    // image is refused; once a node with a worker has analysed the backlog
    // (the count survives the restart), it is accepted.
    let root = tempfile::tempdir().unwrap();
    let images = crate::common::distinct_copies(
        "dicom/misc/siim_cr_chest_jpeg_baseline.dcm",
        root.path(),
        "chest",
        3,
    );

    let mut node = Node::start(root.path(), &["--max-queued-jobs", "2"]);
    assert!(
        node.storescu(&["-xy"], &[&images[0], &images[1]])
            .status
            .success()
    );
    let text = combined_output(&node.storescu(&["-xy", "-v"], &[&images[2]]));
    assert!(text.contains("Refused: OutOfResources"), "{text}");
    assert_eq!(node.status()["instances_received"], 2);
    node.stop();

    let mut node = Node::start(root.path(), &["--max-queued-jobs", "2", "--workers", "1"]);
    let drained = wait_until(Duration::from_secs(60), || node.pending_jobs() == 0);
    assert!(drained, "{:#}", node.status());
    assert!(node.storescu(&["-xy"], &[&images[2]]).status.success());
    assert_eq!(node.status()["instances_received"], 3);
    node.stop();
}
