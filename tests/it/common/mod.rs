//! Shared harness for integration tests: starts the real `chestnode` binary
//! on a free loopback port with a temporary data directory, runs DCMTK
//! tools against it, and stops everything afterwards.

#![allow(dead_code)]

pub mod certs;
pub mod cli;
pub mod compare;
pub mod config;
pub mod findings;
pub mod http;
pub mod orthanc;
pub mod research;
pub mod scu;
pub mod sshd;
pub mod storescp;

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The shared test data directory (`../shared/data` beside the checkout),
/// or `CHESTNODE_TEST_DATA` when set.
pub fn test_data() -> PathBuf {
    std::env::var_os("CHESTNODE_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// A file under the shared data's `dicom/` folder.
pub fn dicom_file(relative: &str) -> PathBuf {
    test_data().join("dicom").join(relative)
}

/// A file under the shared data's `dicom/` folder, parsed.
pub fn open_dicom(relative: &str) -> dicom_object::DefaultDicomObject {
    let path = dicom_file(relative);
    dicom_object::open_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every DICOM file under the shared data's `dicom/` folder, sorted.
pub fn all_test_dicom_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["wg04", "misc", "reference"] {
        for entry in
            std::fs::read_dir(test_data().join("dicom").join(sub)).expect("test data present")
        {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "dcm") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running chestnode process.
pub struct Node {
    pub port: u16,
    /// The operations endpoint's port (`--http-port`), unless a test
    /// passes its own.
    pub http_port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
}

impl Node {
    /// Starts chestnode with a data directory inside `root` and extra flags.
    pub fn start(root: &Path, extra_args: &[&str]) -> Node {
        let data_dir = root.join("data");
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let mut node = Node {
            port: free_port(),
            http_port: free_port(),
            data_dir,
            log_path: root.join("chestnode.log"),
            child: None,
            extra_args,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_chestnode"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--port")
            .arg(self.port.to_string())
            .args(if self.extra_args.iter().any(|a| a == "--http-port") {
                Vec::new()
            } else {
                vec!["--http-port".to_owned(), self.http_port.to_string()]
            })
            .args(if self.extra_args.iter().any(|a| a == "--min-free-mb") {
                &[][..]
            } else {
                &["--min-free-mb", "1"][..]
            })
            // Tests read back what they sent: no deletion by disk use, however
            // full the test machine's disk, unless a test asks for it.
            .args(
                if self
                    .extra_args
                    .iter()
                    .any(|a| a == "--retention-max-used-percent")
                {
                    &[][..]
                } else {
                    &["--retention-max-used-percent", "0"][..]
                },
            )
            // The SCP's tests look at jobs as queued: no analysis unless a
            // test asks for workers.
            .args(if self.extra_args.iter().any(|a| a == "--workers") {
                &[][..]
            } else {
                &["--workers", "0"][..]
            })
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("chestnode binary runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chestnode is not listening on port {} after 20 s; log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(
                        status.success(),
                        "chestnode exited with {status}; log:\n{}",
                        self.log()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("chestnode did not stop on SIGTERM; log:\n{}", self.log());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("chestnode is running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `chestnode status --json` for this node's data directory.
    pub fn status(&self) -> serde_json::Value {
        status_of(&self.data_dir)
    }

    pub fn pending_jobs(&self) -> u64 {
        self.status()["jobs_by_state"]["received"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Files below the data directory's `tmp/` (unfinished transfers).
    pub fn temporary_files(&self) -> Vec<PathBuf> {
        files_below(&self.data_dir.join("tmp"))
    }

    /// Stored instance files.
    pub fn instance_files(&self) -> Vec<PathBuf> {
        files_below(&self.data_dir.join("instances"))
    }

    /// `storescu` against this node, with extra arguments before the files.
    pub fn storescu(&self, args: &[&str], files: &[&Path]) -> Output {
        Command::new("storescu")
            .args(["-aec", "CHESTNODE", "-aet", "STORESCU"])
            .args(args)
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .args(files)
            .output()
            .expect("storescu (DCMTK) is installed")
    }

    /// `storescu` against this node, which must succeed (the output and
    /// the node's log are shown otherwise).
    pub fn storescu_ok(&self, args: &[&str], files: &[&Path]) -> Output {
        let output = self.storescu(args, files);
        assert!(
            output.status.success(),
            "{}\n{}",
            combined_output(&output),
            self.log()
        );
        output
    }

    /// One destination's backlog in this node's `status --json`.
    pub fn backlog(&self, destination: &str) -> serde_json::Value {
        backlog(&self.status(), destination)
    }

    /// `echoscu` against this node.
    pub fn echoscu(&self, args: &[&str]) -> Output {
        Command::new("echoscu")
            .args(["-aec", "CHESTNODE"])
            .args(args)
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .output()
            .expect("echoscu (DCMTK) is installed")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn wait_for_port(port: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `chestnode status --json` for a data directory, which must succeed.
pub fn status_of(data_dir: &Path) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_chestnode"))
        .args(["status", "--json", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// One destination's backlog (pending, delivered, dead letters, last
/// error) in a `status --json` answer; null when the destination is not
/// listed (yet).
pub fn backlog(status: &serde_json::Value, destination: &str) -> serde_json::Value {
    status["destinations"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|d| d["destination"] == destination)
                .cloned()
        })
        .unwrap_or_default()
}

/// Polls `condition` until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_below(&path));
        } else {
            found.push(path);
        }
    }
    found
}

pub fn combined_output(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Files whose C-STORE `storescu -v` saw answered with success.
pub fn acknowledged_files(storescu_log: &str) -> BTreeSet<PathBuf> {
    let mut current = None;
    let mut done = BTreeSet::new();
    for line in storescu_log.lines() {
        if let Some(file) = line.strip_prefix("I: Sending file: ") {
            current = Some(PathBuf::from(file.trim()));
        } else if line.starts_with("I: Received Store Response (Success")
            && let Some(file) = current.take()
        {
            done.insert(file);
        }
    }
    done
}

/// `count` copies of `source` (a file under the shared test data) in
/// `dir`, named `{prefix}{index}.dcm`, each given its own new SOP Instance
/// UID by DCMTK's `dcmodify`.
pub fn distinct_copies(source: &str, dir: &Path, prefix: &str, count: usize) -> Vec<PathBuf> {
    let source = test_data().join(source);
    let paths: Vec<PathBuf> = (0..count)
        .map(|i| {
            let path = dir.join(format!("{prefix}{i:03}.dcm"));
            std::fs::copy(&source, &path).unwrap();
            path
        })
        .collect();
    let status = Command::new("dcmodify")
        .args(["-nb", "-gin"])
        .args(&paths)
        .stdout(Stdio::null())
        .status()
        .expect("dcmodify (DCMTK) is installed");
    assert!(status.success());
    paths
}
