//! Delivery of a sealed package to the partner's SFTP server with libssh2
//! (the `ssh2` crate).
//!
//! The server must prove it is the one the hospital agreed on: its host key
//! is checked against a `known_hosts` file before the client authenticates
//! or sends a byte, and an unknown or changed key stops the delivery. The
//! upload goes to "NAME.part" and is renamed when complete, so the partner
//! never picks up half a package, and an existing NAME is never replaced.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use ssh2::{OpenFlags, OpenType, RenameFlags, Session};

use super::host_key::{check_host_key, prefer_known_key_types};
use super::manifest::sha256_file;

/// How long the TCP connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long any one SSH operation may block.
const SESSION_TIMEOUT_MS: u32 = 60_000;

/// SFTP destination, parsed from "sftp://user@host[:port]/remote/dir".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SftpTarget {
    pub user: String,
    /// A name or an address; an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// Absolute path of the remote folder.
    pub remote_dir: String,
    /// The client's private key (OpenSSH or PEM; ed25519 or RSA).
    pub private_key: PathBuf,
    /// OpenSSH `known_hosts` holding the server's key ("[host]:port" for a
    /// port other than 22).
    pub known_hosts: PathBuf,
}

impl SftpTarget {
    /// Parses "sftp://user@host[:port]/remote/dir" ("[v6addr]" for IPv6).
    pub fn parse(url: &str, private_key: PathBuf, known_hosts: PathBuf) -> Result<Self> {
        let rest = url
            .strip_prefix("sftp://")
            .with_context(|| format!("{url:?} is not an sftp:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => bail!("{url:?} has no remote folder (sftp://user@host[:port]/folder)"),
        };
        let (user, host_port) = authority
            .rsplit_once('@')
            .with_context(|| format!("{url:?} has no user (sftp://user@host/folder)"))?;
        if user.is_empty() {
            bail!("{url:?} has an empty user name");
        }
        if user.contains(':') {
            bail!("the SFTP URL must not hold a password; authentication is by key");
        }
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .with_context(|| format!("{url:?} has an unclosed '[' in its host"))?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').with_context(|| {
                        format!("{url:?}: expected ':port' after the bracketed host")
                    })?),
                ),
            }
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            bail!("{url:?} has no host");
        }
        let port = match port {
            None => 22,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .with_context(|| format!("{url:?} has an invalid port {port:?}"))?,
        };
        let mut remote_dir = path.to_owned();
        while remote_dir.len() > 1 && remote_dir.ends_with('/') {
            remote_dir.pop();
        }
        if remote_dir.chars().any(char::is_control) {
            bail!("{url:?} has a control character in its folder");
        }
        Ok(SftpTarget {
            user: user.to_owned(),
            host: host.to_owned(),
            port,
            remote_dir,
            private_key,
            known_hosts,
        })
    }

    /// The URL again, port shown only when not 22.
    pub fn display_url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let port = if self.port == 22 {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        format!("sftp://{}@{host}{port}{}", self.user, self.remote_dir)
    }

    /// The name of this server in `known_hosts`.
    pub(super) fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }

    fn remote_path(&self, name: &str) -> String {
        if self.remote_dir.ends_with('/') {
            format!("{}{name}", self.remote_dir)
        } else {
            format!("{}/{name}", self.remote_dir)
        }
    }
}

/// What was delivered, and to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReceipt {
    pub remote_path: String,
    pub bytes: u64,
    /// Lowercase hex sha256 of the local file that was sent.
    pub sha256: String,
    /// The server's host key fingerprint as OpenSSH shows it
    /// ("SHA256:" and unpadded base64, as `ssh-keygen -lf` prints).
    pub host_key_sha256: String,
}

/// Uploads `file` into the target's remote folder: the server's host key
/// must match `known_hosts`, authentication is by the target's private key,
/// the data goes to "NAME.part" and is renamed to NAME (refused if NAME
/// exists), and the remote size is checked. Blocking.
pub fn upload(file: &Path, target: &SftpTarget) -> Result<UploadReceipt> {
    upload_with_key_passphrase(file, target, None)
}

/// [`upload`] with a passphrase for the private key.
pub fn upload_with_key_passphrase(
    file: &Path,
    target: &SftpTarget,
    key_passphrase: Option<&str>,
) -> Result<UploadReceipt> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable file name", file.display()))?;
    let (sha256, bytes) = sha256_file(file)?;
    let url = target.display_url();

    let session = connect(target)?;
    let host_key_sha256 = check_host_key(&session, target)?;
    session
        .userauth_pubkey_file(&target.user, None, &target.private_key, key_passphrase)
        .with_context(|| {
            format!(
                "{url}: public-key authentication with {} failed",
                target.private_key.display()
            )
        })?;
    if !session.authenticated() {
        bail!("{url}: the server did not accept the key");
    }
    let sftp = session
        .sftp()
        .with_context(|| format!("{url}: starting the SFTP subsystem"))?;

    let final_path = target.remote_path(name);
    let part_path = target.remote_path(&format!("{name}.part"));
    if sftp.lstat(Path::new(&final_path)).is_ok() {
        bail!("{url}: {final_path} already exists on the server; a delivery never replaces one");
    }
    let mut local = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut remote = sftp
        .open_mode(
            Path::new(&part_path),
            OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
            0o644,
            OpenType::File,
        )
        .with_context(|| format!("{url}: creating {part_path}"))?;
    copy(&mut local, &mut remote).with_context(|| format!("{url}: writing {part_path}"))?;
    // fsync is an OpenSSH extension; a server without it still has the
    // data once the handle is closed.
    let _ = remote.fsync();
    remote
        .close()
        .with_context(|| format!("{url}: closing {part_path}"))?;
    drop(remote);

    // Without OVERWRITE: SFTP v3 (OpenSSH) refuses to rename onto an
    // existing name, so a file that appeared meanwhile survives.
    sftp.rename(
        Path::new(&part_path),
        Path::new(&final_path),
        Some(RenameFlags::ATOMIC | RenameFlags::NATIVE),
    )
    .with_context(|| format!("{url}: renaming {part_path} to {final_path}"))?;
    let stat = sftp
        .stat(Path::new(&final_path))
        .with_context(|| format!("{url}: reading back {final_path}"))?;
    if stat.size != Some(bytes) {
        bail!(
            "{url}: {final_path} has {:?} bytes on the server, {bytes} were sent",
            stat.size
        );
    }
    drop(sftp);
    let _ = session.disconnect(None, "delivered", None);
    Ok(UploadReceipt {
        remote_path: final_path,
        bytes,
        sha256,
        host_key_sha256,
    })
}

/// TCP with a timeout, then the SSH handshake.
fn connect(target: &SftpTarget) -> Result<Session> {
    let url = target.display_url();
    let addresses: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("{url}: resolving {}", target.host))?
        .collect();
    let mut last_error = None;
    let mut stream = None;
    for address in &addresses {
        match TcpStream::connect_timeout(address, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let stream = match (stream, last_error) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(e).with_context(|| format!("{url}: connecting")),
        (None, None) => bail!("{url}: {} resolves to no address", target.host),
    };
    let mut session = Session::new().context("starting libssh2")?;
    session.set_timeout(SESSION_TIMEOUT_MS);
    let preferred = prefer_known_key_types(&session, target);
    session.set_tcp_stream(stream);
    session.handshake().with_context(|| match preferred {
        Some(algorithms) => format!(
            "{url}: SSH handshake (asking for the host key types {} lists for this server: {algorithms})",
            target.known_hosts.display()
        ),
        None => format!("{url}: SSH handshake"),
    })?;
    Ok(session)
}

/// `io::copy` with a buffer the size of an SFTP write.
fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buffer = vec![0u8; 32 * 1024];
    let mut total = 0;
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        to.write_all(&buffer[..n])?;
        total += n as u64;
    }
    to.flush()?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_urls() {
        let t = SftpTarget::parse(
            "sftp://ai@partner.example:2222/in/box/",
            "k".into(),
            "h".into(),
        )
        .unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("ai", "partner.example", 2222)
        );
        assert_eq!(t.remote_dir, "/in/box");
        assert_eq!(t.display_url(), "sftp://ai@partner.example:2222/in/box");
        assert_eq!(t.known_hosts_name(), "[partner.example]:2222");
        assert_eq!(t.remote_path("a.age"), "/in/box/a.age");
        let t = SftpTarget::parse("sftp://u@[::1]/", "k".into(), "h".into()).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.remote_dir.as_str()),
            ("::1", 22, "/")
        );
        assert_eq!(t.display_url(), "sftp://u@[::1]/");
        assert_eq!(t.remote_path("a"), "/a");
        for bad in [
            "http://u@h/x",
            "sftp://h/x",
            "sftp://u@h",
            "sftp://u:pw@h/x",
            "sftp://u@h:0/x",
            "sftp://u@h:99999/x",
            "sftp://@h/x",
        ] {
            assert!(
                SftpTarget::parse(bad, "k".into(), "h".into()).is_err(),
                "{bad}"
            );
        }
    }
}
