//! The outbox against real peers: DCMTK's storescp and Orthanc.
//!
//! Real DICOM files from the shared test data stand in for result objects:
//! they are copied under the data directory's `results/`, enqueued, and
//! sent by the outbox senders — in-process through the library, or by the
//! `chestnode serve` binary — to a peer that is down, up, or refusing us.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::config::{FAST_RETRIES, destination as config_destination, write_config};
use crate::common::orthanc::{Orthanc, OrthancOptions};
use crate::common::storescp::{StoreScp, received_file};
use crate::common::{backlog, free_port, test_data, wait_for_port, wait_until};
use chestnode::config::{Config, DestinationConfig, ResultKind};
use chestnode::ledger::Ledger;
use chestnode::outbox::{Delivery, DeliveryState, NewDelivery, Outbox, OutboxSenders};
use tokio_util::sync::CancellationToken;

/// Real objects standing in for results: (file, kind).
const RESULTS: [(&str, ResultKind); 5] = [
    ("misc/highdicom_sr_document.dcm", ResultKind::Sr),
    (
        "reference/tid1500_cxr_nodule_comprehensive3dsr.dcm",
        ResultKind::Sr,
    ),
    ("reference/gsps_cxr_nodule_box.dcm", ResultKind::Gsps),
    // Half a megabyte: several PDUs.
    ("reference/source_dx_for_reference.dcm", ResultKind::Sc),
    // JPEG baseline: a peer that takes only uncompressed data gets it
    // re-encoded.
    ("misc/siim_cr_chest_jpeg_baseline.dcm", ResultKind::Sc),
];

/// Copies a test file under `<data_dir>/results/` and describes it.
fn result_object(data_dir: &Path, file: &str, kind: ResultKind) -> NewDelivery {
    let source = test_data().join("dicom").join(file);
    let object = dicom_object::open_file(&source).expect("test data present");
    let meta = object.meta();
    let uid = meta.media_storage_sop_instance_uid().to_owned();
    let relative = PathBuf::from("results").join(format!("{uid}.dcm"));
    std::fs::create_dir_all(data_dir.join("results")).unwrap();
    std::fs::copy(&source, data_dir.join(&relative)).unwrap();
    NewDelivery {
        kind,
        sop_class_uid: meta.media_storage_sop_class_uid().to_owned(),
        sop_instance_uid: uid,
        transfer_syntax_uid: meta.transfer_syntax().to_owned(),
        path: relative,
        source_sop_instance_uid: "1.2.826.0.1.3680043.10.1.1".into(),
        job_id: None,
    }
}

fn all_results(data_dir: &Path) -> Vec<NewDelivery> {
    RESULTS
        .iter()
        .map(|&(file, kind)| result_object(data_dir, file, kind))
        .collect()
}

fn destination(name: &str, ae_title: &str, port: u16) -> DestinationConfig {
    DestinationConfig {
        name: name.into(),
        ae_title: ae_title.into(),
        host: "127.0.0.1".into(),
        port,
        kinds: ResultKind::ALL.to_vec(),
        tls: None,
    }
}

/// A configuration with tiny retry delays, so tests are fast.
fn config(data_dir: &Path, destinations: Vec<DestinationConfig>) -> Config {
    let mut config = Config::default();
    config.node.data_dir = data_dir.to_path_buf();
    config.outbox.retry_delay_secs = 1;
    config.outbox.max_retry_delay_secs = 2;
    config.outbox.timeout_secs = 10;
    config.destinations = destinations;
    config.validate().unwrap();
    config
}

/// The outbox senders running in this process on their own runtime.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    db: Ledger,
    outbox: Outbox,
    senders: Option<OutboxSenders>,
    config: Config,
}

impl InProcess {
    fn open(config: Config) -> InProcess {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let db = Ledger::open(&config.node.data_dir).unwrap();
        let outbox = Outbox::new(&db, config.destinations.clone());
        InProcess {
            runtime,
            db,
            outbox,
            senders: None,
            config,
        }
    }

    fn enqueue(&self, objects: &[NewDelivery]) -> usize {
        objects
            .iter()
            .map(|o| self.outbox.enqueue(o).unwrap())
            .sum()
    }

    fn start(&mut self) {
        let _entered = self.runtime.enter();
        self.senders = Some(OutboxSenders::start(
            &self.config,
            &self.outbox,
            &self.db,
            self.config.node.data_dir.clone(),
            &CancellationToken::new(),
            std::sync::Arc::new(chestnode::metrics::Metrics::new()),
        ));
    }

    fn stop(&mut self) {
        if let Some(senders) = self.senders.take() {
            self.runtime.block_on(senders.stop(Duration::from_secs(30)));
        }
    }

    fn deliveries(&self, destination: &str) -> Vec<Delivery> {
        self.outbox.for_destination(destination).unwrap()
    }

    fn count(&self, destination: &str, label: &str) -> usize {
        self.deliveries(destination)
            .iter()
            .filter(|d| d.state.label() == label)
            .count()
    }

    /// Stops the senders and closes the index, so a `chestnode` process
    /// can open the data directory.
    fn close(mut self) {
        self.stop();
        self.db.flush().unwrap();
    }
}

/// `dcmdump` of a file's data set (the meta group left out), in the given
/// file's own transfer syntax or as written.
fn dump_data_set(file: &Path) -> Vec<String> {
    let output = Command::new("dcmdump")
        .arg("-q")
        .arg(file)
        .output()
        .expect("dcmdump (DCMTK) is installed");
    assert!(output.status.success(), "dcmdump {}", file.display());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('(') && !l.starts_with("(0002,"))
        .map(str::to_owned)
        .collect()
}

fn transfer_syntax_of(file: &Path) -> String {
    dicom_object::open_file(file)
        .unwrap()
        .meta()
        .transfer_syntax()
        .to_owned()
}

/// `chestnode ARGS --data-dir DATA_DIR`.
fn chestnode(args: &[&str], data_dir: &Path) -> std::process::Output {
    let data_dir_args = [OsStr::new("--data-dir"), data_dir.as_os_str()];
    crate::common::cli::chestnode(args.iter().map(OsStr::new).chain(data_dir_args))
}

/// Polls `chestnode status` (a process each time, so not too often)
/// until this destination's `field` reaches `expected`.
fn wait_for_backlog(data_dir: &Path, destination: &str, field: &str, expected: usize) -> bool {
    wait_until(Duration::from_secs(60), || {
        std::thread::sleep(Duration::from_millis(200));
        backlog(&crate::common::status_of(data_dir), destination)[field] == expected
    })
}

/// In-process senders for one destination, started with `results` (test
/// files standing in for result objects of a kind) enqueued.
fn sending(
    data_dir: &Path,
    to: DestinationConfig,
    results: &[(&str, ResultKind)],
) -> (InProcess, Vec<NewDelivery>) {
    let mut node = InProcess::open(config(data_dir, vec![to]));
    let objects: Vec<NewDelivery> = results
        .iter()
        .map(|&(file, kind)| result_object(data_dir, file, kind))
        .collect();
    node.enqueue(&objects);
    node.start();
    (node, objects)
}

#[test]
fn delivers_to_storescp_and_re_encodes_what_the_peer_does_not_take() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let received = root.path().join("received");
    let scp = StoreScp::start(&received, &[]);
    let config = config(&data_dir, vec![destination("dcmtk", "STORESCP", scp.port)]);
    let mut node = InProcess::open(config);
    let objects = all_results(&data_dir);
    assert_eq!(node.enqueue(&objects), objects.len());
    node.start();
    assert!(
        wait_until(Duration::from_secs(60), || node.count("dcmtk", "delivered")
            == objects.len()),
        "not all delivered: {:#?}",
        node.deliveries("dcmtk")
    );
    node.stop();

    let files = crate::common::files_below(&received);
    assert_eq!(files.len(), objects.len(), "one file per object: {files:?}");
    for object in &objects {
        let file = &received_file(&received, &object.sop_instance_uid)
            .unwrap_or_else(|| panic!("{} not received", object.sop_instance_uid));
        let original = data_dir.join(&object.path);
        if object.transfer_syntax_uid == "1.2.840.10008.1.2.4.50" {
            // storescp takes no JPEG: re-encoded, pixels decompressed.
            assert_ne!(transfer_syntax_of(file), object.transfer_syntax_uid);
            let dump = dump_data_set(file).join("\n");
            assert!(dump.contains("(7fe0,0010) OW"), "native pixel data");
        } else {
            assert_eq!(transfer_syntax_of(file), object.transfer_syntax_uid);
            assert_eq!(dump_data_set(file), dump_data_set(&original));
        }
    }
    assert!(node.deliveries("dcmtk").iter().all(|d| d.attempts == 1));
}

#[test]
fn a_peer_taking_only_implicit_vr_gets_re_encoded_data_sets() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let received = root.path().join("received");
    let scp = StoreScp::start(&received, &["+xi"]);
    let (mut node, objects) = sending(
        &data_dir,
        destination("implicit", "STORESCP", scp.port),
        &[
            ("misc/highdicom_sr_document.dcm", ResultKind::Sr),
            ("reference/source_dx_for_reference.dcm", ResultKind::Sc),
        ],
    );
    assert!(wait_until(Duration::from_secs(60), || node
        .count("implicit", "delivered")
        == 2));
    node.stop();
    for object in &objects {
        let file = received_file(&received, &object.sop_instance_uid).unwrap();
        assert_eq!(transfer_syntax_of(&file), "1.2.840.10008.1.2");
        // Same elements and values, only the encoding differs.
        let strip_vr = |lines: Vec<String>| -> Vec<String> {
            lines
                .into_iter()
                .map(|l| l.split('#').next().unwrap().trim_end().to_owned())
                .collect()
        };
        assert_eq!(
            strip_vr(dump_data_set(&file)),
            strip_vr(dump_data_set(&data_dir.join(&object.path)))
        );
    }
}

#[test]
fn unsendable_files_are_dead_lettered_at_once_and_the_rest_still_go() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let received = root.path().join("received");
    let scp = StoreScp::start(&received, &[]);
    let config = config(&data_dir, vec![destination("dcmtk", "STORESCP", scp.port)]);
    let mut node = InProcess::open(config);
    // A value of odd length: a peer would wait for ever for its last byte.
    let odd = result_object(&data_dir, "misc/dx_thorax_small.dcm", ResultKind::Sc);
    let missing = result_object(&data_dir, "misc/highdicom_sr_document.dcm", ResultKind::Sr);
    std::fs::remove_file(data_dir.join(&missing.path)).unwrap();
    let good = result_object(
        &data_dir,
        "reference/gsps_cxr_nodule_box.dcm",
        ResultKind::Gsps,
    );
    node.enqueue(&[odd.clone(), missing.clone(), good.clone()]);
    node.start();
    assert!(wait_until(Duration::from_secs(30), || node
        .count("dcmtk", "dead-letter")
        == 2
        && node.count("dcmtk", "delivered") == 1));
    node.stop();
    let reason = |uid: &str| match node.outbox.get("dcmtk", uid).unwrap().unwrap() {
        Delivery {
            attempts: 1,
            state: DeliveryState::DeadLetter { reason },
            ..
        } => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason(&odd.sop_instance_uid).contains("odd length"));
    assert!(reason(&missing.sop_instance_uid).contains("reading result file"));
    let files = crate::common::files_below(&received);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(received_file(&received, &good.sop_instance_uid).is_some());
}

#[test]
fn orthanc_down_then_up_gets_everything_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let port = free_port();
    let config = config(&data_dir, vec![destination("pacs", "ORTHANC", port)]);
    let mut node = InProcess::open(config);
    let objects = all_results(&data_dir);
    node.enqueue(&objects);
    node.start();

    // Down: every object is tried, fails transiently and waits longer
    // each time.
    assert!(
        wait_until(Duration::from_secs(30), || node
            .deliveries("pacs")
            .iter()
            .all(|d| d.attempts >= 2)),
        "{:#?}",
        node.deliveries("pacs")
    );
    for delivery in node.deliveries("pacs") {
        assert!(
            matches!(delivery.state, DeliveryState::Pending { .. }),
            "{delivery:?}"
        );
        assert!(delivery.last_error.is_some());
    }

    // Up, on the same port.
    let orthanc = Orthanc::start(OrthancOptions {
        dicom_port: Some(port),
        ..Default::default()
    });
    assert!(
        wait_until(Duration::from_secs(60), || node.count("pacs", "delivered")
            == objects.len()),
        "{:#?}\n{}",
        node.deliveries("pacs"),
        orthanc.log()
    );
    assert_eq!(orthanc.instance_count(), objects.len() as u64);
    for object in &objects {
        assert_eq!(orthanc.times_received(&object.sop_instance_uid), 1);
        let id = orthanc
            .find_instance(&object.sop_instance_uid)
            .expect("stored in Orthanc");
        let original = dicom_object::open_file(data_dir.join(&object.path)).unwrap();
        let study = original
            .element_by_name("StudyInstanceUID")
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches('\0')
            .to_owned();
        assert_eq!(orthanc.simplified_tags(&id)["StudyInstanceUID"], study);
    }

    // Enqueueing the same results again (re-analysis after a crash) sends
    // nothing.
    assert_eq!(node.enqueue(&objects), 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(orthanc.instance_count(), objects.len() as u64);
    for object in &objects {
        assert_eq!(orthanc.times_received(&object.sop_instance_uid), 1);
    }
    node.close();
}

#[test]
fn a_permanent_rejection_dead_letters_without_looping_and_retry_brings_it_back() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let orthanc = Orthanc::start(OrthancOptions {
        accept_unknown_calling: false,
        ..Default::default()
    });
    let (node, objects) = sending(
        &data_dir,
        destination("strict", "ORTHANC", orthanc.dicom_port),
        &[
            ("misc/highdicom_sr_document.dcm", ResultKind::Sr),
            ("reference/gsps_cxr_nodule_box.dcm", ResultKind::Gsps),
        ],
    );
    assert!(wait_until(Duration::from_secs(30), || node
        .count("strict", "dead-letter")
        == 2));
    // Several retry delays later: still one attempt each, one association.
    std::thread::sleep(Duration::from_secs(4));
    for delivery in node.deliveries("strict") {
        assert_eq!(delivery.attempts, 1, "{delivery:?}");
        let DeliveryState::DeadLetter { reason } = &delivery.state else {
            panic!("{delivery:?}")
        };
        assert!(
            reason.contains("calling AE title not recognized"),
            "{reason}"
        );
        assert!(reason.contains("permanent"), "{reason}");
    }
    assert_eq!(orthanc.rejected_associations(), 1, "{}", orthanc.log());
    assert_eq!(orthanc.instance_count(), 0);
    node.close();

    // `chestnode status` with the server stopped shows them.
    let status = crate::common::status_of(&data_dir);
    assert_eq!(status["server_running"], false);
    let strict = backlog(&status, "strict");
    assert_eq!(strict["dead_letter"], 2);
    assert_eq!(strict["pending"], 0);
    let dead = status["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 2);
    for letter in dead {
        assert_eq!(letter["destination"], "strict");
        assert_eq!(letter["attempts"], 1);
        assert!(
            objects
                .iter()
                .any(|o| letter["sop_instance_uid"] == o.sop_instance_uid.as_str())
        );
    }
    let text = chestnode(&["status"], &data_dir);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("dead letters"), "{text}");
    assert!(
        text.contains("strict: pending 0, delivered 0, dead-letter 2"),
        "{text}"
    );

    // `chestnode retry` with the server stopped moves them back.
    let output = chestnode(&["retry", "--destination", "elsewhere"], &data_dir);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("0 dead letter"));
    let output = chestnode(&["retry"], &data_dir);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("2 dead letter(s) moved back"),
        "{output:?}"
    );
    let status = crate::common::status_of(&data_dir);
    assert_eq!(backlog(&status, "strict")["pending"], 2);
    assert_eq!(backlog(&status, "strict")["dead_letter"], 0);
    assert!(status["dead_letters"].as_array().unwrap().is_empty());
}

#[test]
fn the_served_node_sends_and_retries_dead_letters_through_its_control_socket() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let objects = all_results(&data_dir);
    {
        // Results enqueued as the worker would, before the node runs.
        let port = free_port();
        let node = InProcess::open(config(
            &data_dir,
            vec![destination("pacs", "ORTHANC", port)],
        ));
        assert_eq!(node.enqueue(&objects), objects.len());
        node.close();
    }
    let mut strict = Orthanc::start(OrthancOptions {
        accept_unknown_calling: false,
        ..Default::default()
    });
    let orthanc_port = strict.dicom_port;
    let port = free_port();
    let config_path = write_config(
        root.path(),
        &format!(
            "[node]\nport = {port}\n[storage]\nmin_free_mb = 1\n[analysis]\nworkers = 0\n{FAST_RETRIES}{}",
            config_destination("pacs", "ORTHANC", orthanc_port, r#""sr", "sc", "gsps""#)
        ),
    );
    let log = std::fs::File::create(root.path().join("chestnode.log")).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .arg("--data-dir")
        .arg(&data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for_port(port, Duration::from_secs(20));
    let server_log = || std::fs::read_to_string(root.path().join("chestnode.log")).unwrap();

    assert!(
        wait_for_backlog(&data_dir, "pacs", "dead_letter", objects.len()),
        "{}",
        server_log()
    );
    let status = crate::common::status_of(&data_dir);
    assert_eq!(status["server_running"], true);
    assert_eq!(strict.rejected_associations(), 1);

    // The peer learns to accept us; retry through the running server.
    strict.stop();
    let orthanc = Orthanc::start(OrthancOptions {
        dicom_port: Some(orthanc_port),
        ..Default::default()
    });
    let output = chestnode(&["retry", "--destination", "pacs"], &data_dir);
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains(&format!("{} dead letter(s)", objects.len())),
        "{said}"
    );
    assert!(said.contains("running server"), "{said}");
    assert!(
        wait_for_backlog(&data_dir, "pacs", "delivered", objects.len()),
        "{}",
        server_log()
    );
    assert_eq!(orthanc.instance_count(), objects.len() as u64);
    for object in &objects {
        assert_eq!(orthanc.times_received(&object.sop_instance_uid), 1);
    }

    crate::common::signal(&server, "TERM");
    assert!(server.wait().unwrap().success(), "{}", server_log());
    let log = server_log();
    assert!(log.contains("delivered"), "{log}");
    // Identifiers only: the test objects' patient names never reach the log.
    for object in &objects {
        let file = dicom_object::open_file(data_dir.join(&object.path)).unwrap();
        if let Ok(name) = file.element_by_name("PatientName") {
            let name = name.to_str().unwrap().trim().to_owned();
            if name.len() > 3 {
                assert!(!log.contains(&name), "patient name {name:?} in the log");
            }
        }
    }
}
