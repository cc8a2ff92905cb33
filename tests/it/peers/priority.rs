//! Priority for real: images from a calling AE title configured as urgent
//! are analysed before routine images that arrived earlier.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common::{Node, distinct_copies, wait_until};

const DX: &str = "dicom/misc/dx_thorax_small.dcm";

fn send(node: &Node, calling: &str, files: &[PathBuf]) {
    let output = Command::new("storescu")
        .args(["-aec", "CHESTNODE", "-aet", calling, "127.0.0.1"])
        .arg(node.port.to_string())
        .args(files)
        .output()
        .expect("storescu (DCMTK) is installed");
    assert!(
        output.status.success(),
        "{}",
        crate::common::combined_output(&output)
    );
}

/// Job ids in the order the log says they were analysed.
fn analysis_order(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains(" analysed "))
        .filter_map(|l| l.split("job=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn an_urgent_calling_ae_title_overtakes_earlier_routine_work() {
    let root = tempfile::tempdir().unwrap();
    let routine = distinct_copies(DX, root.path(), "routine", 3);
    let urgent = distinct_copies(DX, root.path(), "urgent", 1);
    let config = root.path().join("chestnode.toml");
    std::fs::write(
        &config,
        "[priority]\ncalling_ae_titles = { ED_CR = \"high\" }\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();

    // Received while no worker runs: routine first, then urgent.
    let mut node = Node::start(root.path(), &["--config", config]);
    send(&node, "WARD_DX", &routine);
    send(&node, "ED_CR", &urgent);
    assert_eq!(node.pending_jobs(), 4);
    node.stop();

    // One worker: the urgent image (the newest job) goes first, then the
    // routine ones, oldest first.
    let mut node = Node::start(root.path(), &["--config", config, "--workers", "1"]);
    assert!(wait_until(Duration::from_secs(60), || analysis_order(
        &node.log()
    )
    .len()
        == 4));
    let order = analysis_order(&node.log());
    let mut arrival = order.clone();
    arrival.sort();
    let expected = [vec![arrival[3]], arrival[..3].to_vec()].concat();
    assert_eq!(order, expected, "urgent first, then routine by age");
    node.stop();
}
