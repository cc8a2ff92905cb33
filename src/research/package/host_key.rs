//! Is this the partner's server? The host key the server presents must be
//! the one the hospital's `known_hosts` holds for it, checked before the
//! client authenticates or sends anything.
//!
//! libssh2 negotiates one host key type, its favourite among the server's;
//! if `known_hosts` holds another of the server's types, the check would
//! fail for a legitimate server, so the negotiation is steered to the types
//! `known_hosts` lists for this server.

use std::fs;

use anyhow::{Context, Result, bail};
use ssh2::{CheckResult, KnownHostFileKind, MethodType, Session};

use super::sftp::SftpTarget;

/// Asks libssh2 (before the handshake) to negotiate only host key
/// algorithms of the key types `known_hosts` lists for this server. Leaves
/// the defaults when it lists none (the check then refuses the server) or
/// the file cannot be read (the check then says why). Returns the
/// algorithms asked for, if any.
pub(super) fn prefer_known_key_types(session: &Session, target: &SftpTarget) -> Option<String> {
    let text = fs::read_to_string(&target.known_hosts).ok()?;
    let types = key_types_for(&text, &target.known_hosts_name());
    let supported = session
        .supported_algs(MethodType::HostKey)
        .unwrap_or_default();
    let wanted: Vec<&str> = types
        .iter()
        .flat_map(|t| algorithms(t))
        .filter(|a| supported.contains(a))
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let wanted = wanted.join(",");
    session.method_pref(MethodType::HostKey, &wanted).ok()?;
    Some(wanted)
}

/// The key types of the `known_hosts` lines that may be for `name`: those
/// naming it in their (comma-separated) host list, and hashed ones, which
/// cannot be told apart without the salted hash. Revoked and CA lines
/// (`@revoked`, `@cert-authority`) are skipped.
fn key_types_for(text: &str, name: &str) -> Vec<String> {
    let mut types = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        let matches = hosts.starts_with("|1|") || hosts.split(',').any(|h| h == name);
        if matches && !types.iter().any(|t| t == kind) {
            types.push(kind.to_owned());
        }
    }
    types
}

/// The host key algorithms that present a key of this type.
fn algorithms(key_type: &str) -> Vec<&str> {
    match key_type {
        "ssh-rsa" => vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        other => vec![other],
    }
}

/// Refuses unless the server's host key is the one `known_hosts` holds for
/// it; returns its fingerprint.
pub(super) fn check_host_key(session: &Session, target: &SftpTarget) -> Result<String> {
    let url = target.display_url();
    let (key, _kind) = session
        .host_key()
        .with_context(|| format!("{url}: the server sent no host key"))?;
    let fingerprint = fingerprint(key);
    let mut known = session.known_hosts().context("libssh2 known hosts")?;
    known
        .read_file(&target.known_hosts, KnownHostFileKind::OpenSSH)
        .with_context(|| format!("reading {}", target.known_hosts.display()))?;
    let name = target.known_hosts_name();
    match known.check(&name, key) {
        CheckResult::Match => Ok(fingerprint),
        CheckResult::Mismatch => bail!(
            "{url}: the server's host key ({fingerprint}) does not match the key for {name} in {}; \
             refusing to deliver (the server was replaced, or someone is in between)",
            target.known_hosts.display()
        ),
        CheckResult::NotFound => bail!(
            "{url}: {name} is not in {} (the server's host key is {fingerprint}); \
             refusing to deliver to an unknown server",
            target.known_hosts.display()
        ),
        CheckResult::Failure => bail!(
            "{url}: checking the host key against {} failed",
            target.known_hosts.display()
        ),
    }
}

/// "SHA256:" and the unpadded base64 of the key's sha256, as OpenSSH prints.
fn fingerprint(key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("SHA256:{}", base64_unpadded(&Sha256::digest(key)))
}

fn base64_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_types_listed_for_a_server() {
        let text = "# comment\n\
            [10.0.0.1]:2222 ecdsa-sha2-nistp256 AAAA\n\
            other,[10.0.0.1]:2222 ssh-rsa AAAA\n\
            10.0.0.1 ssh-ed25519 AAAA\n\
            |1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA\n\
            @revoked [10.0.0.1]:2222 ssh-dss AAAA\n";
        assert_eq!(
            key_types_for(text, "[10.0.0.1]:2222"),
            ["ecdsa-sha2-nistp256", "ssh-rsa", "ssh-ed25519"]
        );
        assert_eq!(algorithms("ssh-rsa")[0], "rsa-sha2-512");
    }

    #[test]
    fn fingerprints_like_openssh() {
        assert_eq!(base64_unpadded(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_unpadded(b"fooba"), "Zm9vYmE");
        assert_eq!(base64_unpadded(b"foob"), "Zm9vYg");
    }
}
