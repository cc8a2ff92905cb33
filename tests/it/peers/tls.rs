//! DICOM over TLS against DCMTK: `storescu +tls` sending to a chestnode
//! process whose `[tls]` is on, and `storescp +tls` receiving its results.
//! Certificates are made at test time with `openssl` (`crate::common::certs`).
//!
//! Every test's node gets one plain TCP connection at start-up — the
//! harness's readiness probe — which fails the TLS handshake: counts of
//! failed handshakes are therefore checked as "at least".

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::certs::Certs;
use crate::common::config::{FAST_RETRIES, destination, write_config};
use crate::common::http::metric_sample;
use crate::common::storescp::StoreScp;
use crate::common::{Node, combined_output, test_data, wait_until};

/// 1024 × 1024 chest CR, JPEG baseline: quick to analyse.
const CHEST: &str = "dicom/misc/siim_cr_chest_jpeg_baseline.dcm";
/// A small DX, for a second instance.
const DX: &str = "dicom/misc/dx_thorax_small.dcm";

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The `[tls]` section for `certs`, verifying client certificates when
/// `verify_clients`.
fn scp_tls(certs: &Certs, verify_clients: bool) -> String {
    let mut section = format!(
        "[tls]\nenabled = true\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        text(&certs.crt("server")),
        text(&certs.key("server")),
    );
    if verify_clients {
        section += &format!("client_ca = \"{}\"\n", text(&certs.crt("ca")));
    }
    section
}

fn start(root: &Path, config: &Path, extra: &[&str]) -> Node {
    let mut args = vec!["--config", text(config)];
    args.extend_from_slice(extra);
    Node::start(root, &args)
}

/// `storescu` arguments for TLS with this key and certificate, trusting
/// our CA.
fn tls_args(certs: &Certs, who: &str) -> Vec<String> {
    [
        "+tls",
        text(&certs.key(who)),
        text(&certs.crt(who)),
        "-pw",
        "+cf",
        text(&certs.crt("ca")),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `storescu` with `args`, proposing JPEG baseline too (the chest CR is
/// JPEG).
fn storescu(node: &Node, args: &[String], file: &str) -> std::process::Output {
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.push("-xy");
    node.storescu(&args, &[&test_data().join(file)])
}

/// `chestnode_associations_total{outcome="tls_failed"}`.
fn tls_failures(node: &Node) -> f64 {
    let body = crate::common::http::get(node.http_port, "/metrics").body;
    metric_sample(
        &body,
        r#"chestnode_associations_total{outcome="tls_failed"}"#,
    )
    .unwrap_or(0.0)
}

#[test]
fn storescu_over_tls_is_stored_and_a_plain_peer_does_no_harm() {
    let root = tempfile::tempdir().unwrap();
    let certs = Certs::generate(&root.path().join("certs"));
    let config = write_config(root.path(), &scp_tls(&certs, false));
    let mut node = start(root.path(), &config, &[]);

    let output = storescu(&node, &tls_args(&certs, "client"), CHEST);
    assert!(output.status.success(), "{}", combined_output(&output));
    assert_eq!(node.instance_files().len(), 1);

    // Plain TCP to a TLS port: refused, counted, logged.
    let plain = storescu(&node, &[], DX);
    assert!(!plain.status.success(), "{}", combined_output(&plain));
    assert!(wait_until(Duration::from_secs(5), || tls_failures(&node) >= 2.0));
    assert!(
        node.log().contains("TLS handshake failed"),
        "{}",
        node.log()
    );

    // The node carries on serving TLS peers.
    let output = storescu(&node, &tls_args(&certs, "client"), DX);
    assert!(output.status.success(), "{}", combined_output(&output));
    assert_eq!(node.instance_files().len(), 2);
    node.stop();
}

#[test]
fn with_client_ca_only_peers_with_a_certificate_from_it_get_in() {
    let root = tempfile::tempdir().unwrap();
    let certs = Certs::generate(&root.path().join("certs"));
    let config = write_config(root.path(), &scp_tls(&certs, true));
    let mut node = start(root.path(), &config, &[]);

    // TLS without a client certificate.
    let anonymous = ["+tla", "+cf", text(&certs.crt("ca"))].map(str::to_owned);
    let output = storescu(&node, &anonymous, CHEST);
    assert!(!output.status.success(), "{}", combined_output(&output));
    // A client certificate from a CA the node does not trust.
    let output = storescu(&node, &tls_args(&certs, "rogue-client"), CHEST);
    assert!(!output.status.success(), "{}", combined_output(&output));
    assert!(wait_until(Duration::from_secs(5), || tls_failures(&node) >= 3.0));
    assert!(node.instance_files().is_empty());

    let output = storescu(&node, &tls_args(&certs, "client"), CHEST);
    assert!(output.status.success(), "{}", combined_output(&output));
    assert_eq!(node.instance_files().len(), 1);
    node.stop();
}

#[test]
fn a_silent_connection_is_dropped_after_artim_and_busy_peers_are_told_over_tls() {
    let root = tempfile::tempdir().unwrap();
    let certs = Certs::generate(&root.path().join("certs"));
    let config = write_config(root.path(), &scp_tls(&certs, false));
    let mut node = start(
        root.path(),
        &config,
        &["--max-associations", "1", "--association-timeout", "3"],
    );
    // Let the readiness probe's handshake fail and free the only slot.
    assert!(wait_until(Duration::from_secs(5), || tls_failures(&node) >= 1.0));

    // A peer that connects and never starts the handshake holds the slot...
    let mut silent = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    let connected = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // ...so a TLS peer meanwhile gets a transient rejection it can read.
    let busy = storescu(&node, &tls_args(&certs, "client"), CHEST);
    let busy_text = combined_output(&busy);
    assert!(!busy.status.success(), "{busy_text}");
    assert!(
        busy_text.contains("Transient") && busy_text.contains("Local Limit Exceeded"),
        "{busy_text}"
    );

    // ARTIM covers the handshake: the silent peer is cut off.
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut byte = [0u8; 1];
    let read = silent.read(&mut byte);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "closed, not answered: {read:?}"
    );
    assert!(connected.elapsed() < Duration::from_secs(15));

    let output = storescu(&node, &tls_args(&certs, "client"), CHEST);
    assert!(output.status.success(), "{}", combined_output(&output));
    node.stop();
}

/// A `[[destinations]]` entry for storescp on `port` over TLS, trusting
/// `ca`, and presenting our client certificate when `with_client_certificate`.
fn tls_destination(
    certs: &Certs,
    name: &str,
    port: u16,
    ca: &str,
    with_client_certificate: bool,
) -> String {
    let client = if with_client_certificate {
        format!(
            r#", client_certificate = "{}", client_key = "{}""#,
            text(&certs.crt("client")),
            text(&certs.key("client")),
        )
    } else {
        String::new()
    };
    format!(
        "{}tls = {{ ca_certificate = \"{}\"{client} }}\n",
        destination(name, "STORESCP", port, r#""sr", "sc""#),
        text(&certs.crt(ca)),
    )
}

#[test]
fn results_reach_storescp_over_mutual_tls() {
    let root = tempfile::tempdir().unwrap();
    let certs = Certs::generate(&root.path().join("certs"));
    let received = root.path().join("received");
    // storescp requires and verifies our client certificate (-rc is its
    // default).
    let scp = StoreScp::start(
        &received,
        &[
            "+tls",
            text(&certs.key("server")),
            text(&certs.crt("server")),
            "-pw",
            "+cf",
            text(&certs.crt("ca")),
        ],
    );
    let config = write_config(
        root.path(),
        &format!(
            "{}{FAST_RETRIES}{}",
            scp_tls(&certs, true),
            tls_destination(&certs, "pacs", scp.port, "ca", true)
        ),
    );
    let mut node = start(root.path(), &config, &["--workers", "1"]);
    let output = storescu(&node, &tls_args(&certs, "client"), CHEST);
    assert!(output.status.success(), "{}", combined_output(&output));

    // The SR and the overlay arrive, each once.
    let arrived = wait_until(Duration::from_secs(90), || {
        crate::common::files_below(&received).len() == 2
            && node.backlog("pacs")["delivered"].as_u64() == Some(2)
    });
    assert!(arrived, "{:#}\n{}", node.status(), node.log());
    for file in crate::common::files_below(&received) {
        dicom_object::open_file(&file).expect("a DICOM file");
    }
    node.stop();
}

#[test]
fn untrusted_or_unauthenticated_tls_destinations_are_not_delivered_to() {
    let root = tempfile::tempdir().unwrap();
    let certs = Certs::generate(&root.path().join("certs"));
    let received = root.path().join("received");
    let server = |name: &str| {
        [
            "+tls".to_owned(),
            text(&certs.key(name)).to_owned(),
            text(&certs.crt(name)).to_owned(),
            "-pw".to_owned(),
        ]
    };
    let args = |base: &[String], extra: &[&str]| -> Vec<String> {
        base.iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let start_scp = |dir: &str, args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        StoreScp::start(&received.join(dir), &args)
    };
    // A certificate from the CA nobody trusts.
    let rogue = start_scp("rogue", args(&server("rogue-server"), &["-ic"]));
    // A trusted certificate, but it requires ours, which we do not send.
    let strict = start_scp(
        "strict",
        args(&server("server"), &["-rc", "+cf", text(&certs.crt("ca"))]),
    );
    // All well.
    let trusted = start_scp("trusted", args(&server("server"), &["-ic"]));
    let config = write_config(
        root.path(),
        &format!(
            "{FAST_RETRIES}{}{}{}",
            tls_destination(&certs, "rogue", rogue.port, "ca", true),
            tls_destination(&certs, "strict", strict.port, "ca", false),
            tls_destination(&certs, "trusted", trusted.port, "ca", true),
        ),
    );
    let mut node = start(root.path(), &config, &["--workers", "1"]);
    let output = storescu(&node, &[], CHEST);
    assert!(output.status.success(), "{}", combined_output(&output));

    let settled = wait_until(Duration::from_secs(90), || {
        node.backlog("trusted")["delivered"].as_u64() == Some(2)
            && node.backlog("rogue")["last_error"].is_string()
            && node.backlog("strict")["last_error"].is_string()
    });
    assert!(settled, "{:#}\n{}", node.status(), node.log());
    for name in ["rogue", "strict"] {
        let waiting = node.backlog(name);
        assert_eq!(waiting["delivered"].as_u64(), Some(0), "{waiting}");
        assert!(crate::common::files_below(&received.join(name)).is_empty());
    }
    let reason = node.backlog("rogue")["last_error"].to_string();
    assert!(
        reason.contains("TLS handshake failed") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    let reason = node.backlog("strict")["last_error"].to_string();
    assert!(reason.contains("client certificate"), "{reason}");
    assert_eq!(
        crate::common::files_below(&received.join("trusted")).len(),
        2
    );
    node.stop();
}

#[test]
fn a_missing_certificate_file_stops_the_node_at_start_up() {
    let root = tempfile::tempdir().unwrap();
    let config = write_config(
        root.path(),
        "[tls]\nenabled = true\ncertificate = \"/nonexistent/node.crt\"\n\
         private_key = \"/nonexistent/node.key\"\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args(["serve", "--config", text(&config), "--data-dir"])
        .arg(root.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tls.certificate") && stderr.contains("/nonexistent/node.crt"),
        "{stderr}"
    );
}
