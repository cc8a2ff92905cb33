use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use serde_json::json;

use super::*;

fn record(action: &str, subject: &str) -> AuditRecord {
    AuditRecord {
        operator: "tester (uid 1)".into(),
        action: action.into(),
        subject: subject.into(),
        details: json!({"zeta": 1, "alpha": {"b": [1, 2], "a": null}}),
        ..Default::default()
    }
}

/// A log of five entries; returns it and its lines.
fn five() -> (tempfile::TempDir, AuditLog, Vec<String>) {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    for i in 0..5 {
        log.append(record("export", &format!("cohort-{i}")))
            .unwrap();
    }
    let lines = fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    (data, log, lines)
}

fn rewrite(log: &AuditLog, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(log.path(), text).unwrap();
}

#[test]
fn appends_chain_and_verify() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    assert_eq!(
        fs::metadata(log.path()).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let empty = log.verify().unwrap();
    assert_eq!((empty.entries, empty.head.as_str()), (0, GENESIS));

    let first = log.append(record("vault.create", "")).unwrap();
    assert_eq!((first.seq, first.prev.as_str()), (1, GENESIS));
    let mut delivered = record("deliver", "cohort-a");
    delivered.sha256 = Some("ab".repeat(32));
    delivered.destination = Some("sftp://partner.example/in".into());
    let second = log.append(delivered).unwrap();
    assert_eq!((second.seq, &second.prev), (2, &first.hash));
    assert!(chrono::DateTime::parse_from_rfc3339(&second.time).is_ok());
    assert!(second.time.ends_with('Z'));

    let verified = log.verify().unwrap();
    assert_eq!((verified.entries, &verified.head), (2, &second.hash));
    // A log opened again (another process) carries on the chain.
    let again = AuditLog::open(data.path()).unwrap();
    let third = again.append(record("lookup", "RID-000001")).unwrap();
    assert_eq!((third.seq, &third.prev), (3, &second.hash));
    assert_eq!(again.entries().unwrap(), vec![first, second, third]);
    assert!(log.append(record(" ", "x")).is_err());
}

#[test]
fn the_first_line_of_the_file_reads_as_documented() {
    let (_data, _log, lines) = five();
    let entry: Value = serde_json::from_str(&lines[0]).unwrap();
    let keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "seq",
        "time",
        "operator",
        "action",
        "subject",
        "details",
        "sha256",
        "destination",
        "prev",
        "hash",
    ] {
        assert!(keys.contains(&key), "{key} missing from {}", lines[0]);
    }
    assert!(lines[0].starts_with("{\"seq\":1,\"time\":"), "{}", lines[0]);
    assert!(lines[0].contains("\"sha256\":null"));
}

#[test]
fn an_edited_middle_line_breaks_the_chain_there() {
    let (_data, log, mut lines) = five();
    lines[2] = lines[2].replace("cohort-2", "cohort-X");
    rewrite(&log, &lines);
    let broken = log.verify().unwrap_err();
    assert_eq!(broken.line, 3);
    assert!(
        broken
            .to_string()
            .starts_with("audit log broken at line 3: "),
        "{broken}"
    );
    assert!(broken.reason.contains("edited"), "{broken}");
}

#[test]
fn a_deleted_middle_line_breaks_the_chain() {
    let (_data, log, mut lines) = five();
    lines.remove(2);
    rewrite(&log, &lines);
    assert_eq!(log.verify().unwrap_err().line, 3);
}

#[test]
fn reordered_lines_break_the_chain() {
    let (_data, log, mut lines) = five();
    lines.swap(1, 2);
    rewrite(&log, &lines);
    assert_eq!(log.verify().unwrap_err().line, 2);
}

#[test]
fn a_forged_line_with_a_recomputed_hash_still_breaks_the_next_link() {
    let (_data, log, mut lines) = five();
    let mut entry: AuditEntry = serde_json::from_str(&lines[1]).unwrap();
    entry.operator = "someone else".into();
    entry.hash = entry.compute_hash();
    lines[1] = serde_json::to_string(&entry).unwrap();
    rewrite(&log, &lines);
    let broken = log.verify().unwrap_err();
    assert_eq!(broken.line, 3);
    assert!(broken.reason.contains("chain"), "{broken}");
}

#[test]
fn an_incomplete_last_line_is_reported_and_not_chained_onto() {
    let (_data, log, lines) = five();
    let mut text = lines.join("\n");
    text.push('\n');
    text.push_str(&lines[4][..40]);
    fs::write(log.path(), text).unwrap();
    let broken = log.verify().unwrap_err();
    assert_eq!(broken.line, 6);
    assert!(broken.reason.contains("incomplete last line"), "{broken}");
    let error = format!("{:#}", log.append(record("export", "c")).unwrap_err());
    assert!(error.contains("incomplete line"), "{error}");
}

#[test]
fn long_entries_are_found_from_the_end() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    let mut big = record("export", "cohort-big");
    big.details = json!({"files": vec!["x".repeat(100); 200]});
    log.append(big.clone()).unwrap();
    log.append(big).unwrap();
    let last = log.append(record("export", "small")).unwrap();
    assert_eq!(last.seq, 3);
    assert_eq!(log.verify().unwrap().entries, 3);
}

#[test]
fn concurrent_appends_keep_the_chain() {
    let data = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(data.path()).unwrap());
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..20 {
                    log.append(record("export", &format!("c{t}-{i}"))).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let verified = log.verify().unwrap();
    assert_eq!(verified.entries, 120);
}

#[test]
fn details_hash_the_same_whatever_the_key_order() {
    let mut a = AuditEntry {
        seq: 1,
        time: "t".into(),
        operator: "o".into(),
        action: "a".into(),
        subject: "s".into(),
        details: json!({"b": 1, "a": {"y": 2, "x": 3}}),
        sha256: None,
        destination: None,
        prev: GENESIS.into(),
        hash: String::new(),
    };
    let first = a.compute_hash();
    a.details = serde_json::from_str(r#"{"a": {"x": 3, "y": 2}, "b": 1}"#).unwrap();
    assert_eq!(a.compute_hash(), first);
    a.details = json!({"b": 2, "a": {"y": 2, "x": 3}});
    assert_ne!(a.compute_hash(), first);
}

#[test]
fn operator_names_who_acts() {
    assert_eq!(operator(Some("  dr.who ")), "dr.who");
    let me = operator(None);
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    let uid = unsafe { libc::geteuid() };
    assert!(
        me.ends_with(&format!("uid {uid})")) || me == format!("uid {uid}"),
        "{me}"
    );
    assert_eq!(operator(Some("")), me);
}

#[test]
fn a_log_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<AuditLog>();
}
