//! The command line: help text, configuration file plus flag overrides,
//! clear errors for bad configuration, and `status` while a server starts.

use std::process::Command;

use crate::common::cli::chestnode;
use crate::common::{Node, free_port, status_of, wait_for_port};

#[test]
fn help_describes_every_subcommand_and_option() {
    let text = String::from_utf8(chestnode(["--help"]).stdout).unwrap();
    assert!(text.contains("serve") && text.contains("status"));
    assert!(text.contains("Research use only, not for diagnosis"));
    let serve = String::from_utf8(chestnode(["serve", "--help"]).stdout).unwrap();
    for flag in [
        "--config",
        "--data-dir",
        "--ae-title",
        "--bind",
        "--port",
        "--max-associations",
        "--max-pdu-length",
        "--min-free-mb",
        "--allow-calling",
        "--association-timeout",
        "--dimse-timeout",
        "--idle-timeout",
        "--shutdown-grace",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
    let status = String::from_utf8(chestnode(["status", "--help"]).stdout).unwrap();
    assert!(status.contains("--json"));
}

#[test]
fn flags_override_the_configuration_file() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("node.toml");
    let file_port = free_port();
    std::fs::write(
        &config,
        format!("[node]\nae_title = \"FILEAE\"\nport = {file_port}\n[storage]\nmin_free_mb = 1\n"),
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(root.path().join("data"))
        .args(["--port", &port.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, std::time::Duration::from_secs(20));
    // AE title from the file, port from the flag.
    let echo = Command::new("echoscu")
        .args(["-aec", "FILEAE", "127.0.0.1", &port.to_string()])
        .output()
        .unwrap();
    assert!(echo.status.success());
    assert!(std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err());
    crate::common::signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("bad.toml");
    std::fs::write(&config, "[node]\nae_titel = \"TYPO\"\n").unwrap();
    let output = chestnode(["serve", "--config", config.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ae_titel"));

    let output = chestnode([
        "serve",
        "--ae-title",
        "THIS_IS_MUCH_TOO_LONG",
        "--data-dir",
        "/nonexistent/x",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("AE title"));
}

#[test]
fn status_of_a_missing_data_directory_says_so() {
    let output = chestnode(["status", "--data-dir", "/nonexistent/chestnode"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no data directory"));
}

/// `chestnode status` asked again and again while a crashed server starts
/// again: every run answers (from the index, then from the server once its
/// control socket is up), and no run keeps the server from taking the index.
#[test]
fn status_during_a_restart_after_a_crash_always_answers_and_never_blocks_the_server() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let root = tempfile::tempdir().unwrap();
    let mut node = Node::start(root.path(), &[]);
    node.kill();
    assert!(
        node.data_dir.join("control.sock").exists(),
        "a crash leaves its socket file behind"
    );

    let data_dir = node.data_dir.clone();
    let restarted = Arc::new(AtomicBool::new(false));
    let asker = {
        let restarted = restarted.clone();
        std::thread::spawn(move || {
            let mut answers_after_restart = Vec::new();
            loop {
                let done = restarted.load(Ordering::SeqCst);
                let report = status_of(&data_dir);
                if done {
                    answers_after_restart.push(report["server_running"].as_bool());
                    if answers_after_restart.len() == 3 {
                        return answers_after_restart;
                    }
                }
            }
        })
    };
    // Let the asker get going, so some runs overlap the server's start.
    std::thread::sleep(std::time::Duration::from_millis(200));
    node.start_again();
    restarted.store(true, Ordering::SeqCst);
    let answers = asker.join().expect("every status run answered");
    assert_eq!(
        answers,
        vec![Some(true); 3],
        "once the DICOM port is open, the server answers status itself"
    );
    node.stop();
}
