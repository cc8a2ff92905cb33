//! Slow and stalled peers: a sender that stops half-way through a PDU, or
//! between the command and its data set, is timed out and aborted; the
//! transfer leaves nothing behind; and other senders are served normally
//! all the while.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::scu::dx_association;
use crate::common::{Node, test_data, wait_until};
use dicom_dictionary_std::uids;

/// The first bytes of a P-DATA-TF PDU announcing `length` bytes, and a
/// PDV item header for a data fragment of context `context_id`.
fn partial_p_data(length: u32, context_id: u8) -> Vec<u8> {
    let mut bytes = vec![0x04, 0x00];
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(&(length - 4).to_be_bytes());
    bytes.extend_from_slice(&[context_id, 0x00]);
    bytes.extend_from_slice(&[0u8; 64]);
    bytes
}

/// Waits for the node to end the stalled association: an A-ABORT PDU
/// (type 0x07) or the connection closed. Returns how long it took.
fn ended_by_node(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reply = [0u8; 10];
    let read = stream.read(&mut reply).unwrap_or(0);
    assert!(
        read == 0 || reply[0] == 0x07,
        "expected A-ABORT or close, got {:?}",
        &reply[..read]
    );
    started.elapsed()
}

/// While one association is stalled, a real sender stores an image.
fn others_are_served(node: &Node) {
    let image = test_data().join("dicom/misc/dx_thorax_small.dcm");
    let output = node.storescu(&[], &[&image]);
    assert!(
        output.status.success(),
        "{}",
        crate::common::combined_output(&output)
    );
    assert!(node.echoscu(&[]).status.success());
}

#[test]
fn a_sender_stalled_half_way_through_a_pdu_is_aborted_and_others_keep_working() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(
        root.path(),
        &["--idle-timeout", "3", "--dimse-timeout", "2"],
    );
    let mut stalled = dx_association(&node, "STALLER");
    let context_id = stalled.context_id();
    let stream = stalled.association.inner_stream();
    // A PDU announcing 4096 bytes, of which 76 arrive.
    stream.write_all(&partial_p_data(4096, context_id)).unwrap();
    stream.flush().unwrap();

    others_are_served(&node);
    let waited = ended_by_node(stream);
    assert!(waited < Duration::from_secs(10), "ended after {waited:?}");
    assert!(
        wait_until(Duration::from_secs(5), || node.log().contains("timeout")),
        "{}",
        node.log()
    );
    others_are_served(&node);
    node.stop();
}

#[test]
fn a_sender_stalled_between_command_and_data_set_is_aborted_leaving_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(
        root.path(),
        &["--idle-timeout", "30", "--dimse-timeout", "2"],
    );
    let mut stalled = dx_association(&node, "STALLER");
    let context_id = stalled.context_id();
    stalled.send_store_command(
        uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
        "1.2.826.0.1.3680043.10.1.99.1",
    );
    let stream = stalled.association.inner_stream();
    // The data set starts, then nothing more: half a PDU of it.
    stream.write_all(&partial_p_data(8192, context_id)).unwrap();
    stream.flush().unwrap();

    others_are_served(&node);
    let waited = ended_by_node(stream);
    // The DIMSE timeout (2 s), not the idle timeout (30 s), applies.
    assert!(waited < Duration::from_secs(10), "ended after {waited:?}");
    assert!(
        wait_until(Duration::from_secs(5), || node
            .log()
            .contains("DIMSE timeout")),
        "{}",
        node.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || node.temporary_files().is_empty()),
        "the half-received data set is removed: {:?}",
        node.temporary_files()
    );
    let status = node.status();
    assert_eq!(
        status["instances_received"], 1,
        "only the good sender's image"
    );
    node.stop();
}
