//! DCMTK's storescp as a destination for tests, writing every object it
//! receives to its own file (`+uf`), so duplicates would show.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for_port};

/// DCMTK's storescp (by path: another `storescp` may come first on PATH),
/// killed when dropped.
pub struct StoreScp {
    child: Child,
    pub port: u16,
}

impl StoreScp {
    pub fn start(output: &Path, extra: &[&str]) -> StoreScp {
        let port = free_port();
        std::fs::create_dir_all(output).unwrap();
        let child = Command::new("/usr/bin/storescp")
            .args(["-aet", "STORESCP", "+uf", "-od"])
            .arg(output)
            .args(extra)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("DCMTK storescp is installed at /usr/bin/storescp");
        wait_for_port(port, Duration::from_secs(10));
        StoreScp { child, port }
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The file storescp wrote for this SOP Instance UID (its names are not
/// the UIDs), if any.
pub fn received_file(received: &Path, sop_instance_uid: &str) -> Option<PathBuf> {
    super::files_below(received).into_iter().find(|f| {
        dicom_object::open_file(f)
            .is_ok_and(|o| o.meta().media_storage_sop_instance_uid() == sop_instance_uid)
    })
}
