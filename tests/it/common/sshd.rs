//! A private OpenSSH server for the SFTP delivery tests: its own host key,
//! client key, `authorized_keys` and configuration in a temporary folder,
//! listening on a free loopback port as the current user, killed when
//! dropped. The SFTP side is OpenSSH's `internal-sftp`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for_port};

/// A running `sshd -D`.
pub struct Sshd {
    child: Child,
    pub port: u16,
    /// The user tests log in as (the current one).
    pub user: String,
    dir: PathBuf,
}

/// `ssh-keygen -t ed25519 -N '' -f PATH` (PATH and PATH.pub).
pub fn ed25519_key(path: &Path) {
    key_of_type(path, "ed25519");
}

/// `ssh-keygen -t KIND -N '' -f PATH` (PATH and PATH.pub).
pub fn key_of_type(path: &Path, kind: &str) {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "chestnode-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (OpenSSH) is installed");
    assert!(
        output.status.success(),
        "{}",
        super::combined_output(&output)
    );
}

impl Sshd {
    /// Makes keys and configuration under `dir` (created if need be) and
    /// starts the server, with an ed25519 host key.
    pub fn start(dir: &Path) -> Sshd {
        Sshd::start_with_host_keys(dir, &[])
    }

    /// [`Sshd::start`] with more host keys, of these `ssh-keygen -t`
    /// types (files `host_key_TYPE`).
    pub fn start_with_host_keys(dir: &Path, extra_types: &[&str]) -> Sshd {
        fs::create_dir_all(dir).unwrap();
        let dir = fs::canonicalize(dir).unwrap();
        ed25519_key(&dir.join("host_key"));
        let mut host_keys = format!("HostKey {}\n", dir.join("host_key").display());
        for kind in extra_types {
            let path = dir.join(format!("host_key_{kind}"));
            key_of_type(&path, kind);
            host_keys.push_str(&format!("HostKey {}\n", path.display()));
        }
        ed25519_key(&dir.join("client_key"));
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let user = current_user();
        let root = user == "root";
        if root && !Path::new("/run/sshd").exists() {
            // The privilege-separation folder sshd insists on when root.
            fs::create_dir_all("/run/sshd").unwrap();
        }
        let port = free_port();
        let config = dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 {host_keys}\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {authorized}\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PermitRootLogin {permit_root}\n\
                 Subsystem sftp internal-sftp\n\
                 LogLevel VERBOSE\n",
                pid = dir.join("sshd.pid").display(),
                authorized = dir.join("authorized_keys").display(),
                permit_root = if root { "prohibit-password" } else { "no" },
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("OpenSSH's sshd is installed at /usr/sbin/sshd");
        let mut sshd = Sshd {
            child,
            port,
            user,
            dir,
        };
        if let Some(status) = sshd.child.try_wait().unwrap() {
            panic!("sshd exited at once ({status}):\n{}", sshd.log());
        }
        wait_for_port(port, Duration::from_secs(10));
        sshd
    }

    /// The client's private key (ed25519, OpenSSH format, no passphrase).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_key")
    }

    /// Adds a client public key (a `.pub` file) to `authorized_keys`.
    pub fn authorize(&self, public_key: &Path) {
        let line = fs::read_to_string(public_key).unwrap();
        let mut keys = fs::read_to_string(self.dir.join("authorized_keys")).unwrap();
        keys.push_str(&line);
        fs::write(self.dir.join("authorized_keys"), keys).unwrap();
    }

    /// The server's public key line ("ssh-ed25519 AAAA… comment").
    pub fn host_public_key(&self) -> String {
        fs::read_to_string(self.dir.join("host_key.pub"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The public key line of an extra host key ([`Sshd::start_with_host_keys`]).
    pub fn extra_host_public_key(&self, kind: &str) -> String {
        fs::read_to_string(self.dir.join(format!("host_key_{kind}.pub")))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Writes a `known_hosts` at `path` with this server's key under
    /// "[127.0.0.1]:PORT".
    pub fn write_known_hosts(&self, path: &Path) {
        fs::write(
            path,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_public_key()),
        )
        .unwrap();
    }

    /// `ssh-keygen -lf` of the host key: "256 SHA256:… comment (ED25519)".
    pub fn host_fingerprint_line(&self) -> String {
        let output = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.join("host_key.pub"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn current_user() -> String {
    let output = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
