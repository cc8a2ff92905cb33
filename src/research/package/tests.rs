use std::fs;
use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

use super::*;

const MARKER: &str = "PLAINTEXT-MARKER-7f3a9c";

/// A small export: two series, a report, and a marker string in a file.
fn export(root: &Path) -> std::path::PathBuf {
    let dir = root.join("export");
    for (path, body) in [
        (
            "RID001/1.2.3/1.2.3.4/1.2.3.4.5.dcm",
            "first object".to_owned(),
        ),
        (
            "RID001/1.2.3/1.2.3.4/1.2.3.4.6.dcm",
            format!("second {MARKER} object"),
        ),
        ("RID001/1.2.3/1.2.3.9/1.2.3.9.1.dcm", "third".repeat(5000)),
        ("RID001.txt", "report".to_owned()),
        (
            "a-very-long-folder-name-that-makes-the-path-longer-than-one-hundred-bytes-in-the-tar-header/x.dcm",
            "long".to_owned(),
        ),
    ] {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    dir
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    fn walk(base: &Path, dir: &Path, found: &mut Vec<(String, Vec<u8>)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, found);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                found.push((rel, fs::read(&path).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut found);
    found.sort();
    found
}

#[test]
fn manifest_round_trip_and_verify_detects_a_changed_byte() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path());
    let manifest = write_manifest(&dir).unwrap();
    assert_eq!(manifest.files.len(), 5);
    let paths: Vec<_> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(!paths.contains(&"SHA256SUMS") && !paths.contains(&"manifest.json"));
    let json: Manifest =
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(json, manifest);
    let sums = fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 5);
    let report = manifest
        .files
        .iter()
        .find(|f| f.path == "RID001.txt")
        .unwrap();
    assert!(sums.contains(&format!("{}  RID001.txt\n", report.sha256)));
    verify_manifest(&dir).unwrap();
    // Writing again is idempotent (its own files are not listed).
    assert_eq!(write_manifest(&dir).unwrap(), manifest);

    let victim = dir.join("RID001/1.2.3/1.2.3.4/1.2.3.4.5.dcm");
    let mut bytes = fs::read(&victim).unwrap();
    bytes[3] ^= 1;
    fs::write(&victim, &bytes).unwrap();
    let error = format!("{:#}", verify_manifest(&dir).unwrap_err());
    assert!(
        error.contains("1.2.3.4.5.dcm: the sha256 differs"),
        "{error}"
    );
    bytes[3] ^= 1;
    fs::write(&victim, &bytes).unwrap();
    verify_manifest(&dir).unwrap();

    fs::write(dir.join("RID001/extra.dcm"), "x").unwrap();
    let error = format!("{:#}", verify_manifest(&dir).unwrap_err());
    assert!(
        error.contains("extra.dcm: present but not in the manifest"),
        "{error}"
    );
    fs::remove_file(dir.join("RID001/extra.dcm")).unwrap();
    fs::remove_file(dir.join("RID001.txt")).unwrap();
    let error = format!("{:#}", verify_manifest(&dir).unwrap_err());
    assert!(
        error.contains("RID001.txt: listed in the manifest but missing"),
        "{error}"
    );
}

#[test]
fn manifest_refuses_symlinks() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path());
    std::os::unix::fs::symlink("/etc/passwd", dir.join("RID001/link.dcm")).unwrap();
    let error = format!("{:#}", write_manifest(&dir).unwrap_err());
    assert!(error.contains("symbolic link"), "{error}");
    let out = root.path().join("p.age");
    let (_, recipient) = generate_age_identity();
    assert!(seal(&dir, "top", &out, &Recipients::X25519(vec![recipient])).is_err());
    assert!(!out.exists());
}

#[test]
fn seal_and_unseal_with_an_identity() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path());
    write_manifest(&dir).unwrap();
    let (secret, recipient) = generate_age_identity();
    assert!(secret.starts_with("AGE-SECRET-KEY-1") && recipient.starts_with("age1"));
    let out = root.path().join("cohort.tar.age");
    let sealed = seal(&dir, "cohort-7", &out, &Recipients::X25519(vec![recipient])).unwrap();
    assert_eq!(sealed.path, out);
    let bytes = fs::read(&out).unwrap();
    assert_eq!(sealed.bytes, bytes.len() as u64);
    assert_eq!(
        sealed.sha256,
        super::manifest::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
    // No temporary file is left beside it.
    assert_eq!(fs::read_dir(root.path()).unwrap().count(), 2);

    let into = root.path().join("opened");
    unseal(&out, &UnsealKey::Identity(secret.clone()), &into).unwrap();
    assert_eq!(files(&into.join("cohort-7")), files(&dir));
    verify_manifest(&into.join("cohort-7")).unwrap();

    // The wrong key opens nothing and leaves nothing.
    let (other, _) = generate_age_identity();
    let into = root.path().join("wrong");
    assert!(unseal(&out, &UnsealKey::Identity(other), &into).is_err());
    assert_eq!(fs::read_dir(&into).unwrap().count(), 0);
    // A non-empty target is refused.
    let into = root.path().join("opened");
    assert!(unseal(&out, &UnsealKey::Identity(secret), &into).is_err());
}

#[test]
fn seal_and_unseal_with_a_passphrase() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path());
    let out = root.path().join("p.age");
    let passphrase = Zeroizing::new("correct horse battery staple".to_owned());
    seal(
        &dir,
        "top",
        &out,
        &Recipients::Passphrase(passphrase.clone()),
    )
    .unwrap();
    let into = root.path().join("opened");
    unseal(&out, &UnsealKey::Passphrase(passphrase), &into).unwrap();
    assert_eq!(files(&into.join("top")), files(&dir));
    let wrong = root.path().join("wrong");
    let error = unseal(
        &out,
        &UnsealKey::Passphrase(Zeroizing::new("incorrect".to_owned())),
        &wrong,
    )
    .unwrap_err();
    assert!(!format!("{error:#}").contains("incorrect"));
}

#[test]
fn seal_refuses_an_existing_output_and_bad_top_names() {
    let root = tempfile::tempdir().unwrap();
    let dir = export(root.path());
    let out = root.path().join("p.age");
    fs::write(&out, "already here").unwrap();
    let (_, recipient) = generate_age_identity();
    let recipients = Recipients::X25519(vec![recipient]);
    let error = format!("{:#}", seal(&dir, "top", &out, &recipients).unwrap_err());
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(fs::read(&out).unwrap(), b"already here");
    for top in ["", ".", "..", "a/b"] {
        assert!(
            seal(&dir, top, &root.path().join("q.age"), &recipients).is_err(),
            "{top}"
        );
    }
    assert!(
        seal(
            &dir,
            "t",
            &root.path().join("r.age"),
            &Recipients::X25519(vec!["age1nope".into()])
        )
        .is_err()
    );
    assert!(
        seal(
            &dir,
            "t",
            &root.path().join("r.age"),
            &Recipients::X25519(vec![])
        )
        .is_err()
    );
}

/// An age file (to `recipient`) holding a tar with one entry whose name is
/// written raw into the header, as a hostile package would.
fn hostile_package(path: &Path, recipient: &str, entry_name: &str) {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..entry_name.len()].copy_from_slice(entry_name.as_bytes());
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(4);
    header.set_cksum();
    let mut tar = Vec::new();
    tar.extend_from_slice(header.as_bytes());
    let mut block = [0u8; 512];
    block[..4].copy_from_slice(b"evil");
    tar.extend_from_slice(&block);
    tar.extend_from_slice(&[0u8; 1024]);
    let recipient: age::x25519::Recipient = recipient.parse().unwrap();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut writer = encryptor
        .wrap_output(fs::File::create(path).unwrap())
        .unwrap();
    writer.write_all(&tar).unwrap();
    writer.finish().unwrap();
}

#[test]
fn unseal_refuses_paths_that_escape() {
    let root = tempfile::tempdir().unwrap();
    let (secret, recipient) = generate_age_identity();
    for (i, name) in [
        "../escaped.txt",
        "top/../../escaped.txt",
        "/tmp/absolute-escape.txt",
    ]
    .iter()
    .enumerate()
    {
        let package = root.path().join(format!("evil{i}.age"));
        hostile_package(&package, &recipient, name);
        let into = root.path().join(format!("into{i}"));
        let error = format!(
            "{:#}",
            unseal(&package, &UnsealKey::Identity(secret.clone()), &into).unwrap_err()
        );
        assert!(
            error.contains("leaves the target folder"),
            "{name}: {error}"
        );
        assert!(!root.path().join("escaped.txt").exists());
        assert_eq!(fs::read_dir(&into).unwrap().count(), 0);
    }
    // The same builder with a harmless name unpacks (the test is sound).
    let package = root.path().join("fine.age");
    hostile_package(&package, &recipient, "top/fine.txt");
    let into = root.path().join("fine");
    unseal(&package, &UnsealKey::Identity(secret), &into).unwrap();
    assert_eq!(fs::read(into.join("top/fine.txt")).unwrap(), b"evil");
}
