//! A real Orthanc PACS for tests: started from the Debian package's
//! `/usr/sbin/Orthanc` with a temporary configuration, storage and index in
//! a temporary directory, on free loopback DICOM and HTTP ports; stopped
//! when dropped. Its REST API answers what arrived.
//!
//! Every C-STORE that reaches Orthanc is also written to its log by a small
//! Lua filter, so tests can count deliveries, duplicates included (Orthanc
//! itself keeps one copy per SOP Instance UID and would hide them).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, wait_until};

/// The prefix of the log line the Lua filter writes for each C-STORE.
const RECEIVED_MARK: &str = "chestnode-test received ";

/// How an Orthanc should behave.
#[derive(Debug, Clone)]
pub struct OrthancOptions {
    pub ae_title: String,
    /// DICOM port; a free one when `None`.
    pub dicom_port: Option<u16>,
    /// Accept C-STORE from any calling AE title. When false, Orthanc knows
    /// no modality at all and rejects every association with
    /// A-ASSOCIATE-RJ *rejected-permanent, service-user, calling AE title
    /// not recognized* (checked against Orthanc 1.10).
    pub accept_unknown_calling: bool,
}

impl Default for OrthancOptions {
    fn default() -> Self {
        OrthancOptions {
            ae_title: "ORTHANC".into(),
            dicom_port: None,
            accept_unknown_calling: true,
        }
    }
}

/// A running Orthanc.
pub struct Orthanc {
    pub ae_title: String,
    pub dicom_port: u16,
    pub http_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Orthanc {
    /// Starts Orthanc and waits until its REST API and DICOM port answer.
    /// Panics (failing the test) if Orthanc is not installed.
    pub fn start(options: OrthancOptions) -> Orthanc {
        let binary = PathBuf::from("/usr/sbin/Orthanc");
        assert!(
            binary.exists(),
            "Orthanc is not installed (/usr/sbin/Orthanc; apt-get install orthanc)"
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let lua = dir.path().join("count.lua");
        std::fs::write(
            &lua,
            format!(
                "function ReceivedInstanceFilter(dicom, origin, info)\n  \
                 print('{RECEIVED_MARK}' .. dicom.SOPInstanceUID)\n  return true\nend\n"
            ),
        )
        .unwrap();
        let dicom_port = options.dicom_port.unwrap_or_else(free_port);
        let http_port = free_port();
        let allow = options.accept_unknown_calling;
        let config = serde_json::json!({
            "Name": "chestnode-test",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": http_port,
            "DicomPort": dicom_port,
            "DicomAet": options.ae_title,
            "DicomCheckCalledAet": true,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": false,
            "HttpsVerifyPeers": false,
            "Plugins": [],
            "LuaScripts": [lua],
            "DicomModalities": {},
            "DicomAlwaysAllowStore": allow,
            "DicomAlwaysAllowEcho": allow,
            "DicomAlwaysAllowFind": false,
            "DicomAlwaysAllowFindWorklist": false,
            "DicomAlwaysAllowGet": false,
            "DicomAlwaysAllowMove": false,
            "SaveJobs": false,
            "StableAge": 3600,
        });
        let config_path = dir.path().join("orthanc.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let log = std::fs::File::create(dir.path().join("orthanc.log")).unwrap();
        let child = Command::new(&binary)
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("Orthanc starts");
        let mut orthanc = Orthanc {
            ae_title: options.ae_title,
            dicom_port,
            http_port,
            dir,
            child: Some(child),
        };
        let ready = wait_until(Duration::from_secs(30), || {
            orthanc.try_get("/system").is_some()
                && TcpStream::connect(("127.0.0.1", dicom_port)).is_ok()
        });
        if !ready {
            let log = orthanc.log();
            orthanc.stop();
            panic!("Orthanc did not come up; log:\n{log}");
        }
        orthanc
    }

    /// Stops Orthanc (SIGTERM) and waits until its DICOM port is free.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            super::signal(&child, "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("orthanc.log")).unwrap_or_default()
    }

    /// How many C-STORE requests for this SOP Instance UID reached Orthanc,
    /// duplicates included.
    pub fn times_received(&self, sop_instance_uid: &str) -> usize {
        let wanted = format!("{RECEIVED_MARK}{sop_instance_uid}");
        self.log()
            .lines()
            .filter(|line| line.trim_end().ends_with(&wanted))
            .count()
    }

    /// How many associations Orthanc rejected.
    pub fn rejected_associations(&self) -> usize {
        self.log().matches("Rejected association").count()
    }

    /// Orthanc's ids of every stored instance.
    pub fn instances(&self) -> Vec<String> {
        serde_json::from_value(self.get("/instances")).unwrap()
    }

    pub fn instance_count(&self) -> u64 {
        self.get("/statistics")["CountInstances"].as_u64().unwrap()
    }

    /// Orthanc's id of the instance with this SOP Instance UID, if stored.
    pub fn find_instance(&self, sop_instance_uid: &str) -> Option<String> {
        let found = self.post("/tools/lookup", sop_instance_uid);
        found
            .as_array()?
            .iter()
            .find(|r| r["Type"] == "Instance")
            .and_then(|r| r["ID"].as_str())
            .map(str::to_owned)
    }

    /// The instance's tags by keyword (`StudyInstanceUID`, `PatientID`, …).
    pub fn simplified_tags(&self, instance_id: &str) -> serde_json::Value {
        self.get(&format!("/instances/{instance_id}/simplified-tags"))
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} failed; log:\n{}", self.log()))
    }

    pub fn post(&self, path: &str, body: &str) -> serde_json::Value {
        let (status, reply) = self
            .request("POST", path, body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert_eq!(status, 200, "POST {path}: {reply}");
        serde_json::from_str(&reply).unwrap()
    }

    fn try_get(&self, path: &str) -> Option<serde_json::Value> {
        match self.request("GET", path, "") {
            Ok((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// One HTTP/1.0 request to the REST API on loopback.
    fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let reply = super::http::request(self.http_port, method, path, body)?;
        Ok((reply.status, reply.body))
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
