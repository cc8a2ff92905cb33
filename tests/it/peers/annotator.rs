//! The browser annotator end to end, in headless Chromium (Debian's
//! `chromium` and `chromium-driver`, driven by selenium from
//! `tests/python/annotator_browser.py`): a node with the annotator on, a
//! radiograph analysed and put in a cohort, two annotators (one assigned
//! to the cohort) made with `chestnode users`. The browser logs in (a wrong
//! password is refused), opens the image, draws a box, saves, reloads and
//! sees it; a POST without the CSRF token gets 403; the unassigned
//! annotator gets 404s. The operations endpoint still answers without a
//! login, and the audit log has the logins, views and the save, with no
//! patient name.
//!
//! With `CHESTNODE_SCREENSHOTS=DIR` the browser's screenshots are kept
//! there (docs/annotation/*.png are made this way).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::cli::chestnode;
use crate::common::config::write_config;
use crate::common::http;
use crate::common::{Node, combined_output, dicom_file, free_port, wait_until};

const SOP: &str = "1.2.826.0.1.3680043.8.498.42452074182619431090433355790131769947";
const READER_PASSWORD: &str = "reader password 2024";
const OTHER_PASSWORD: &str = "another password 99";

/// `chestnode ARGS` with the test's configuration and data directory;
/// must succeed.
fn run_ok(root: &Path, data: &Path, args: &[&str]) -> String {
    let mut all = vec![
        args[0].to_owned(),
        "--config".into(),
        root.join("chestnode.toml").display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
    ];
    all.extend(args[1..].iter().map(|s| s.to_string()));
    let output = chestnode(&all);
    let text = combined_output(&output);
    assert!(output.status.success(), "chestnode {all:?} failed:\n{text}");
    text
}

#[test]
fn a_reader_logs_in_draws_a_box_saves_it_and_sees_it_after_a_reload() {
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(
        root.path(),
        &format!(
            "[research]\nseries_stable_secs = 1\n\n[annotator]\nenabled = true\nport = {port}\n"
        ),
    );
    let config = root.path().join("chestnode.toml").display().to_string();
    let mut node = Node::start(root.path(), &["--config", &config, "--workers", "1"]);
    let data = node.data_dir.clone();
    node.storescu_ok(&[], &[&dicom_file("misc/dx_thorax_small.dcm")]);
    assert!(
        wait_until(Duration::from_secs(120), || {
            node.status()["jobs_by_state"]["analysed"].as_u64() == Some(1)
        }),
        "not analysed: {}",
        node.status()
    );
    std::thread::sleep(Duration::from_secs(3)); // the series becomes stable

    let secrets = root.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("vault"), "vault passphrase for the test\n").unwrap();
    std::fs::write(secrets.join("reader"), format!("{READER_PASSWORD}\n")).unwrap();
    std::fs::write(secrets.join("other"), format!("{OTHER_PASSWORD}\n")).unwrap();
    let vault = [
        "--vault-passphrase-file",
        &secrets.join("vault").display().to_string(),
    ]
    .map(str::to_owned);
    let research = |args: &[&str]| {
        let mut all = vec!["research", vault[0].as_str(), vault[1].as_str()];
        all.extend(args);
        run_ok(root.path(), &data, &all)
    };
    research(&["init"]);
    let created = research(&["cohort", "create", "reading-1"]);
    assert!(created.contains("reading-1"), "{created}");

    // Accounts, made while the server runs (through its control socket).
    let reader_file = secrets.join("reader").display().to_string();
    let other_file = secrets.join("other").display().to_string();
    run_ok(
        root.path(),
        &data,
        &[
            "users",
            "add",
            "reader",
            "--role",
            "annotator",
            "--password-file",
            &reader_file,
        ],
    );
    run_ok(
        root.path(),
        &data,
        &[
            "users",
            "add",
            "other",
            "--role",
            "annotator",
            "--password-file",
            &other_file,
        ],
    );
    run_ok(
        root.path(),
        &data,
        &["users", "assign", "reader", "reading-1"],
    );
    // A short password and an unknown cohort are refused.
    std::fs::write(secrets.join("short"), "short\n").unwrap();
    let short = chestnode([
        "users",
        "add",
        "x",
        "--role",
        "admin",
        "--password-file",
        &secrets.join("short").display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(!short.status.success());
    let listed = run_ok(root.path(), &data, &["users", "list", "--json"]);
    let users: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2, "{users:#}");
    assert!(!listed.contains("argon2"), "list shows no hashes");

    // The operations endpoint is as it was: no login.
    assert_eq!(http::get(node.http_port, "/health").status, 200);
    // Nothing of the annotator without a session.
    let png = http::get(port, &format!("/annotate/api/images/{SOP}/png"));
    assert_eq!(png.status, 401);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/annotator_browser.py");
    let output = Command::new("python3")
        .arg(&script)
        .args([
            &format!("http://127.0.0.1:{port}"),
            "reader",
            READER_PASSWORD,
            "other",
            OTHER_PASSWORD,
            "reading-1",
            SOP,
        ])
        .output()
        .expect("python3 runs");
    let text = combined_output(&output);
    println!("{text}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{text}\n{}",
        node.log()
    );

    // The audit log: logins (both kinds), views, the save, the logout; no
    // patient name anywhere in it.
    let audit = std::fs::read_to_string(data.join("research/audit.jsonl")).unwrap();
    for action in [
        "user.add",
        "user.assign",
        "annotator.login-failed",
        "annotator.login",
        "annotator.cohort-view",
        "annotator.image-view",
        "annotator.annotation-save",
        "annotator.logout",
    ] {
        assert!(
            audit.contains(&format!("\"action\":\"{action}\"")),
            "{action} not audited:\n{audit}"
        );
    }
    assert!(audit.contains(&format!("reading-1/{SOP}")));
    assert!(
        !audit.contains("AVeryGood"),
        "a patient name in the audit log"
    );
    assert!(
        !node.log().contains("AVeryGood"),
        "a patient name in the node's log"
    );
    node.stop();

    // What the browser saved is stored: the node is stopped, and the
    // research command reads the ledger's annotation records.
    let listed = run_ok(
        root.path(),
        &data,
        &["research", "annotations", "list", "--image", SOP],
    );
    let stored: serde_json::Value =
        serde_json::from_str(&listed[listed.find('[').unwrap()..]).unwrap();
    let stored = stored.as_array().unwrap();
    assert_eq!(stored.len(), 2, "{stored:#?}");
    for annotation in stored {
        assert_eq!(annotation["source"], "browser");
        assert_eq!(annotation["reader"], "reader");
    }
    assert!(
        stored
            .iter()
            .any(|a| a["finding"] == "nodule-mass" && a["location"]["box"].is_object())
    );
}

/// `curl` against the annotator: its status line and headers, and whether
/// it connected at all.
fn curl(args: &[&str]) -> (bool, String) {
    let output = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    (output.status.success(), combined_output(&output))
}

#[test]
fn over_tls_the_session_cookies_are_secure_and_plain_http_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let certs = crate::common::certs::Certs::generate(&root.path().join("certs"));
    let port = free_port();
    write_config(
        root.path(),
        &format!(
            "[annotator]\nenabled = true\nport = {port}\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n",
            certs.crt("server").display(),
            certs.key("server").display()
        ),
    );
    let config = root.path().join("chestnode.toml").display().to_string();
    let mut node = Node::start(root.path(), &["--config", &config]);
    let ca = certs.crt("ca").display().to_string();
    let url = format!("https://127.0.0.1:{port}/annotate/login");
    let (ok, head) = curl(&["--cacert", &ca, &url]);
    assert!(ok, "{head}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let cookie = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: chestnode_login=")
        })
        .unwrap_or_else(|| panic!("no login cookie:\n{head}"));
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/annotate", "Secure"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    // A protected page without a session: sent to the login form.
    let (_, head) = curl(&[
        "--cacert",
        &ca,
        &format!("https://127.0.0.1:{port}/annotate/"),
    ]);
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    // Plain HTTP on the TLS port gets no page.
    let (ok, head) = curl(&[&format!("http://127.0.0.1:{port}/annotate/login")]);
    assert!(!ok || !head.contains("200"), "{head}");
    node.stop();
}
