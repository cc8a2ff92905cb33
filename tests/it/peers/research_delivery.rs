//! Research delivery against the real tools the partner uses: the packages
//! chestnode seals open with Debian's `age` CLI and `tar`, and their
//! `SHA256SUMS` checks with `sha256sum -c`; uploads go to a real OpenSSH
//! server, which must hold the known host key.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use chestnode::model::manifest::sha256_hex;
use chestnode::research::{
    Recipients, SftpTarget, UnsealKey, generate_age_identity, seal, unseal, upload, write_manifest,
};
use zeroize::Zeroizing;

use crate::common::combined_output;
use crate::common::sshd::{Sshd, ed25519_key};

const LONG_PATH: &str = "RID042/1.2.826.0.1.3680043.8.498.10000000000000000000/\
    1.2.826.0.1.3680043.8.498.20000000000000000000/1.2.826.0.1.3680043.8.498.3.dcm";

/// An export folder as the research export writes one, with its manifest.
fn export(root: &Path) -> PathBuf {
    let dir = root.join("export");
    for (path, body) in [
        (
            "RID042/1.2.826.0.1/1.2.826.0.1.1/1.2.826.0.1.1.1.dcm",
            vec![1u8; 3000],
        ),
        (
            "RID042/1.2.826.0.1/1.2.826.0.1.1/1.2.826.0.1.1.2.dcm",
            vec![2u8; 70_000],
        ),
        (
            "RID042/1.2.826.0.1/1.2.826.0.1.2/1.2.826.0.1.2.1.dcm",
            b"ct slice".to_vec(),
        ),
        ("RID042/report.txt", b"no findings\n".to_vec()),
        // Longer than a tar header's 100-byte name field.
        (LONG_PATH, b"long".to_vec()),
    ] {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    write_manifest(&dir).unwrap();
    dir
}

/// Runs a shell pipeline with bash's pipefail; returns the output.
fn bash(script: &str) -> std::process::Output {
    Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .output()
        .expect("bash runs")
}

/// `sha256sum -c SHA256SUMS` inside `dir`, which must pass.
fn sha256sum_check(dir: &Path) {
    let output = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(dir)
        .output()
        .expect("sha256sum (coreutils) is installed");
    assert!(output.status.success(), "{}", combined_output(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .matches(": OK")
            .count(),
        5
    );
}

#[test]
fn age_cli_opens_a_package_sealed_to_an_x25519_recipient() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path());
    let key = root.path().join("key.txt");
    let output = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen is installed");
    assert!(output.status.success(), "{}", combined_output(&output));
    let output = Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .unwrap();
    let recipient = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");

    let package = root.path().join("cohort.tar.age");
    let sealed = seal(
        &dir,
        "cohort-42",
        &package,
        &Recipients::X25519(vec![recipient]),
    )
    .unwrap();
    assert_eq!(sealed.sha256, sha256_hex(&fs::read(&package).unwrap()));

    let opened = root.path().join("opened");
    fs::create_dir(&opened).unwrap();
    let output = bash(&format!(
        "age -d -i '{}' '{}' | tar -x -C '{}'",
        key.display(),
        package.display(),
        opened.display()
    ));
    assert!(output.status.success(), "{}", combined_output(&output));
    sha256sum_check(&opened.join("cohort-42"));

    // The tar tells nothing about the hospital: owner 0, fixed times, modes.
    let output = bash(&format!(
        "age -d -i '{}' '{}' | tar -tv --numeric-owner",
        key.display(),
        package.display()
    ));
    assert!(output.status.success(), "{}", combined_output(&output));
    let listing = String::from_utf8(output.stdout).unwrap();
    for line in listing.lines() {
        assert!(line.contains(" 0/0 "), "{line}");
        assert!(line.contains("1970-01-01"), "{line}");
        assert!(
            line.starts_with("-rw-r--r--") || line.starts_with("drwxr-xr-x"),
            "{line}"
        );
    }
    assert!(listing.contains("cohort-42/RID042/report.txt"), "{listing}");

    // chestnode's own unseal reads the key file age-keygen wrote.
    let text = Zeroizing::new(fs::read_to_string(&key).unwrap());
    let ours = root.path().join("ours");
    unseal(&package, &UnsealKey::Identity(text), &ours).unwrap();
    sha256sum_check(&ours.join("cohort-42"));
}

/// Runs `age -d -o OUT PACKAGE` in a pseudo-terminal (age reads a
/// passphrase only from a terminal), typing `passphrase` at its prompt.
fn age_decrypt_with_passphrase(package: &Path, passphrase: &str, out: &Path) -> (bool, String) {
    const SCRIPT: &str = r#"
import os, pty, signal, sys
passphrase, package, out = sys.argv[1:4]
signal.alarm(120)
pid, fd = pty.fork()
if pid == 0:
    os.execvp("age", ["age", "-d", "-o", out, package])
seen, typed = b"", False
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    seen += data
    if not typed and b"passphrase" in seen.lower():
        os.write(fd, passphrase.encode() + b"\n")
        typed = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let output = Command::new("python3")
        .args(["-c", SCRIPT, passphrase])
        .arg(package)
        .arg(out)
        .output()
        .expect("python3 is installed");
    (output.status.success(), combined_output(&output))
}

#[test]
fn age_cli_opens_a_passphrase_package_and_refuses_a_wrong_passphrase() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path());
    let package = root.path().join("cohort.tar.age");
    let passphrase = "a long passphrase read out on the phone";
    seal(
        &dir,
        "cohort-42",
        &package,
        &Recipients::Passphrase(Zeroizing::new(passphrase.to_owned())),
    )
    .unwrap();

    let wrong_tar = root.path().join("wrong.tar");
    let (ok, transcript) = age_decrypt_with_passphrase(&package, "not the passphrase", &wrong_tar);
    assert!(!ok, "age accepted a wrong passphrase:\n{transcript}");
    assert!(
        fs::metadata(&wrong_tar).map_or(true, |m| m.len() == 0),
        "{transcript}"
    );

    let tar_file = root.path().join("cohort.tar");
    let (ok, transcript) = age_decrypt_with_passphrase(&package, passphrase, &tar_file);
    assert!(ok, "{transcript}");
    let opened = root.path().join("opened");
    fs::create_dir(&opened).unwrap();
    let output = Command::new("tar")
        .arg("-xf")
        .arg(&tar_file)
        .arg("-C")
        .arg(&opened)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", combined_output(&output));
    sha256sum_check(&opened.join("cohort-42"));
}

/// A sealed package to deliver, and the folder the server stores into.
fn package_and_inbox(root: &Path) -> (PathBuf, PathBuf) {
    let dir = export(root);
    let (_, recipient) = generate_age_identity();
    let package = root.join("cohort-42.tar.age");
    seal(
        &dir,
        "cohort-42",
        &package,
        &Recipients::X25519(vec![recipient]),
    )
    .unwrap();
    let inbox = root.join("inbox");
    fs::create_dir(&inbox).unwrap();
    (package, fs::canonicalize(inbox).unwrap())
}

fn target(sshd: &Sshd, inbox: &Path, known_hosts: &Path) -> SftpTarget {
    SftpTarget::parse(
        &format!(
            "sftp://{}@127.0.0.1:{}{}",
            sshd.user,
            sshd.port,
            inbox.display()
        ),
        sshd.client_key(),
        known_hosts.to_path_buf(),
    )
    .unwrap()
}

#[test]
fn sftp_upload_to_openssh_delivers_the_package() {
    let root = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(&root.path().join("sshd"));
    let (package, inbox) = package_and_inbox(root.path());
    let known_hosts = root.path().join("known_hosts");
    sshd.write_known_hosts(&known_hosts);

    let receipt = upload(&package, &target(&sshd, &inbox, &known_hosts))
        .unwrap_or_else(|e| panic!("{e:#}\nsshd log:\n{}", sshd.log()));
    let delivered = inbox.join("cohort-42.tar.age");
    assert_eq!(receipt.remote_path, delivered.display().to_string());
    let local = fs::read(&package).unwrap();
    assert_eq!(receipt.bytes, local.len() as u64);
    assert_eq!(receipt.sha256, sha256_hex(&local));
    assert_eq!(sha256_hex(&fs::read(&delivered).unwrap()), receipt.sha256);
    let fingerprint_line = sshd.host_fingerprint_line();
    assert!(
        fingerprint_line.contains(&receipt.host_key_sha256),
        "{} not in {fingerprint_line}",
        receipt.host_key_sha256
    );
    // Only the renamed file is left: no ".part".
    assert_eq!(fs::read_dir(&inbox).unwrap().count(), 1);
}

#[test]
fn sftp_upload_refuses_a_wrong_or_unknown_host_key_before_sending() {
    let root = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(&root.path().join("sshd"));
    let (package, inbox) = package_and_inbox(root.path());

    // The right name with another server's key.
    let impostor = root.path().join("impostor_key");
    ed25519_key(&impostor);
    let impostor_key = fs::read_to_string(impostor.with_extension("pub")).unwrap();
    let known_hosts = root.path().join("known_hosts");
    fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {}", sshd.port, impostor_key.trim()),
    )
    .unwrap();
    let error = format!(
        "{:#}",
        upload(&package, &target(&sshd, &inbox, &known_hosts)).unwrap_err()
    );
    assert!(error.contains("does not match"), "{error}");
    assert_eq!(fs::read_dir(&inbox).unwrap().count(), 0);
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "the client authenticated before the host key was checked:\n{}",
        sshd.log()
    );

    // The right key under the default port's name: not this server.
    fs::write(
        &known_hosts,
        format!("127.0.0.1 {}\n", sshd.host_public_key()),
    )
    .unwrap();
    let error = format!(
        "{:#}",
        upload(&package, &target(&sshd, &inbox, &known_hosts)).unwrap_err()
    );
    assert!(error.contains("is not in"), "{error}");
    assert_eq!(fs::read_dir(&inbox).unwrap().count(), 0);
}

#[test]
fn sftp_upload_never_replaces_an_existing_remote_file() {
    let root = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(&root.path().join("sshd"));
    let (package, inbox) = package_and_inbox(root.path());
    let known_hosts = root.path().join("known_hosts");
    sshd.write_known_hosts(&known_hosts);
    let existing = inbox.join("cohort-42.tar.age");
    fs::write(&existing, "delivered last week").unwrap();

    let error = format!(
        "{:#}",
        upload(&package, &target(&sshd, &inbox, &known_hosts)).unwrap_err()
    );
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(fs::read(&existing).unwrap(), b"delivered last week");
    assert_eq!(fs::read_dir(&inbox).unwrap().count(), 1);
}

#[test]
fn sftp_upload_accepts_a_server_known_by_another_of_its_key_types() {
    // The server has ed25519 (libssh2's favourite) and ECDSA host keys;
    // the hospital was given only the ECDSA one.
    let root = tempfile::tempdir().unwrap();
    let sshd = Sshd::start_with_host_keys(&root.path().join("sshd"), &["ecdsa"]);
    let (package, inbox) = package_and_inbox(root.path());
    let known_hosts = root.path().join("known_hosts");
    fs::write(
        &known_hosts,
        format!(
            "[127.0.0.1]:{} {}\n",
            sshd.port,
            sshd.extra_host_public_key("ecdsa")
        ),
    )
    .unwrap();
    let receipt = upload(&package, &target(&sshd, &inbox, &known_hosts))
        .unwrap_or_else(|e| panic!("{e:#}\nsshd log:\n{}", sshd.log()));
    assert_eq!(
        sha256_hex(&fs::read(inbox.join("cohort-42.tar.age")).unwrap()),
        receipt.sha256
    );
}

#[test]
fn sftp_upload_authenticates_with_a_pem_rsa_key() {
    let root = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(&root.path().join("sshd"));
    let (package, inbox) = package_and_inbox(root.path());
    let known_hosts = root.path().join("known_hosts");
    sshd.write_known_hosts(&known_hosts);
    let key = root.path().join("rsa_key");
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "3072", "-m", "PEM", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", combined_output(&output));
    assert!(
        fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    sshd.authorize(&key.with_extension("pub"));
    let mut target = target(&sshd, &inbox, &known_hosts);
    target.private_key = key;
    upload(&package, &target).unwrap_or_else(|e| panic!("{e:#}\nsshd log:\n{}", sshd.log()));
    assert!(inbox.join("cohort-42.tar.age").exists());
}
