//! Association-level behaviour against real peers: the concurrency limit's
//! transient rejection, AE title checks, timeouts and strict PDU handling.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::scu::RawScu;
use crate::common::{Node, combined_output};
use dicom_dictionary_std::uids;
use dicom_ul::association::Error as UlError;
use dicom_ul::pdu::{
    AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJServiceUserReason, AssociationRJSource,
};

fn echo_context(node: &Node, calling: &str) -> Result<RawScu, UlError> {
    RawScu::connect(
        node.port,
        calling,
        uids::VERIFICATION,
        &[uids::IMPLICIT_VR_LITTLE_ENDIAN],
    )
}

fn rejection(result: Result<RawScu, UlError>) -> (AssociationRJResult, AssociationRJSource) {
    match result {
        Err(UlError::Rejected { association_rj, .. }) => {
            (association_rj.result, association_rj.source)
        }
        Err(other) => panic!("expected a rejection, got {other}"),
        Ok(_) => panic!("expected a rejection, association was accepted"),
    }
}

#[test]
fn over_the_association_limit_the_rejection_is_transient() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &["--max-associations", "1"]);
    // The harness's readiness probe holds the slot until its socket closes.
    assert!(crate::common::wait_until(Duration::from_secs(5), || node
        .echoscu(&[])
        .status
        .success()));
    let holder = echo_context(&node, "HOLDER").expect("first association accepted");

    let (result, source) = rejection(echo_context(&node, "SECOND"));
    assert_eq!(result, AssociationRJResult::Transient);
    assert_eq!(
        source,
        AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded
        )
    );
    // DCMTK sees the same.
    let output = node.echoscu(&[]);
    assert!(!output.status.success());
    let text = combined_output(&output);
    assert!(
        text.contains("Transient") && text.contains("Local Limit Exceeded"),
        "{text}"
    );

    // Once the slot is free, associations are accepted again.
    holder.release();
    assert!(crate::common::wait_until(Duration::from_secs(5), || node
        .echoscu(&[])
        .status
        .success()));
    node.stop();
}

#[test]
fn calling_ae_titles_not_on_the_allow_list_are_rejected_permanently() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(
        root.path(),
        &[
            "--allow-calling",
            "GOODSCU",
            "--allow-calling",
            "REMOTESCU@192.0.2.7",
        ],
    );
    assert!(node.echoscu(&["-aet", "GOODSCU"]).status.success());

    let output = node.echoscu(&["-aet", "EVILSCU"]);
    assert!(!output.status.success());
    let text = combined_output(&output);
    assert!(
        text.contains("Permanent") && text.contains("Calling AE Title Not Recognized"),
        "{text}"
    );

    // Right title, wrong host.
    let (result, source) = rejection(echo_context(&node, "REMOTESCU"));
    assert_eq!(result, AssociationRJResult::Permanent);
    assert_eq!(
        source,
        AssociationRJSource::ServiceUser(
            AssociationRJServiceUserReason::CallingAETitleNotRecognized
        )
    );
    node.stop();
}

#[test]
fn a_wrong_called_ae_title_is_rejected_permanently() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    let output = std::process::Command::new("echoscu")
        .args(["-aec", "SOMEONEELSE", "127.0.0.1", &node.port.to_string()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = combined_output(&output);
    assert!(
        text.contains("Permanent") && text.contains("Called AE Title Not Recognized"),
        "{text}"
    );
    node.stop();
}

#[test]
fn htj2k_and_every_other_standard_transfer_syntax_is_accepted() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    for ts in chestnode::scp::TRANSFER_SYNTAXES {
        let scu = RawScu::connect(
            node.port,
            "TSCHECK",
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            &[ts],
        )
        .unwrap_or_else(|e| panic!("{ts}: {e}"));
        let context = &scu.association.presentation_contexts()[0];
        assert_eq!(context.transfer_syntax, *ts);
        scu.release();
    }
    node.stop();
}

#[test]
fn a_silent_client_is_dropped_by_artim_and_others_keep_working() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &["--association-timeout", "1"]);
    let mut silent = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        node.echoscu(&[]).status.success(),
        "others are served meanwhile"
    );
    let started = Instant::now();
    let mut buffer = [0u8; 16];
    let read = silent.read(&mut buffer).unwrap_or(0);
    assert_eq!(read, 0, "connection closed without a PDU");
    assert!(started.elapsed() < Duration::from_secs(5));
    node.stop();
}

#[test]
fn an_idle_association_is_aborted_after_the_idle_timeout() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &["--idle-timeout", "1"]);
    let mut scu = echo_context(&node, "IDLER").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    match scu.association.receive() {
        Ok(dicom_ul::Pdu::AbortRQ { .. }) | Err(_) => {}
        Ok(other) => panic!("expected A-ABORT, got {other:?}"),
    }
    assert!(node.log().contains("idle timeout"));
    assert!(node.echoscu(&[]).status.success());
    node.stop();
}

#[test]
fn a_pdu_longer_than_our_maximum_is_answered_with_abort() {
    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &["--max-pdu-length", "16384"]);
    let mut scu = echo_context(&node, "BIGPDU").unwrap();
    let stream = scu.association.inner_stream();
    // P-DATA-TF header announcing 100000 bytes, far over 16384.
    let mut pdu = vec![0x04, 0x00];
    pdu.extend_from_slice(&100_000u32.to_be_bytes());
    pdu.extend(std::iter::repeat_n(0u8, 100_000));
    let _ = stream.write_all(&pdu);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = [0u8; 10];
    let read = stream.read(&mut reply).unwrap_or(0);
    assert!(
        read == 0 || reply[0] == 0x07,
        "expected A-ABORT (0x07) or close, got {:?}",
        &reply[..read]
    );
    assert!(node.echoscu(&[]).status.success());
    node.stop();
}
