use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;

fn key_file(dir: &Path) -> KeySource {
    let path = dir.join("vault.key");
    generate_key_file(&path).unwrap();
    KeySource::KeyFile(path)
}

fn passphrase(text: &str) -> KeySource {
    KeySource::Passphrase(Zeroizing::new(text.to_owned()))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn round_trip_with_a_key_file() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    assert!(!Vault::exists(data.path()));
    assert!(matches!(
        Vault::open(data.path(), &key),
        Err(VaultError::NotInitialised(_))
    ));
    let mut vault = Vault::create(data.path(), &key, ResearchIdFormat::default()).unwrap();
    assert!(Vault::exists(data.path()));
    assert_eq!(mode(&Vault::path_in(data.path())), 0o600);
    assert_eq!(mode(&data.path().join("research")), 0o700);
    let p = vault.pseudonym("PID-1", "Doe^Jane").unwrap();
    assert!(vault.is_dirty());
    vault.save().unwrap();
    assert!(!vault.is_dirty());
    drop(vault);

    let vault = Vault::open(data.path(), &key).unwrap();
    assert_eq!(vault.patients(), 1);
    assert_eq!(vault.find_pseudonym("PID-1"), Some(p.clone()));
    let who = vault.lookup(&p.research_id).unwrap();
    assert_eq!(
        (who.patient_id.as_str(), who.patient_name.as_str()),
        ("PID-1", "Doe^Jane")
    );
    let shown = format!("{who:?} {vault:?}");
    assert!(
        !shown.contains("PID-1") && !shown.contains("Doe"),
        "{shown}"
    );
    drop(vault);
    assert!(matches!(
        Vault::create(data.path(), &key, ResearchIdFormat::default()),
        Err(VaultError::AlreadyExists(_))
    ));
}

#[test]
fn passphrase_round_trip_wrong_key_and_change_key() {
    let data = tempfile::tempdir().unwrap();
    let mut vault = Vault::create(
        data.path(),
        &passphrase("correct horse"),
        ResearchIdFormat::default(),
    )
    .unwrap();
    let p = vault.pseudonym("PID-1", "Doe^Jane").unwrap();
    vault.save().unwrap();
    drop(vault);
    assert!(matches!(
        Vault::open(data.path(), &passphrase("wrong horse")),
        Err(VaultError::WrongKey)
    ));
    let error = Vault::open(data.path(), &key_file(data.path())).unwrap_err();
    assert!(error.to_string().contains("passphrase"), "{error}");

    let mut vault = Vault::open(data.path(), &passphrase("correct horse")).unwrap();
    assert_eq!(vault.find_pseudonym("PID-1"), Some(p.clone()));
    let new_key = KeySource::KeyFile(data.path().join("new.key"));
    generate_key_file(&data.path().join("new.key")).unwrap();
    vault.change_key(&new_key).unwrap();
    drop(vault);
    assert!(Vault::open(data.path(), &passphrase("correct horse")).is_err());
    let vault = Vault::open(data.path(), &new_key).unwrap();
    assert_eq!(vault.find_pseudonym("PID-1"), Some(p));
}

#[test]
fn key_files_must_be_private_and_well_formed() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("k");
    fs::write(&path, "ab".repeat(32)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let error = Vault::create(
        data.path(),
        &KeySource::KeyFile(path.clone()),
        Default::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("chmod 600"), "{error}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&path, "not a key").unwrap();
    assert!(
        Vault::create(
            data.path(),
            &KeySource::KeyFile(path.clone()),
            Default::default()
        )
        .is_err()
    );
    // 32 raw bytes serve too.
    fs::write(&path, [9u8; 32]).unwrap();
    Vault::create(data.path(), &KeySource::KeyFile(path), Default::default()).unwrap();
}

#[test]
fn a_tampered_file_is_an_error_not_garbage() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    let mut vault = Vault::create(data.path(), &key, ResearchIdFormat::default()).unwrap();
    vault.pseudonym("PID-1", "Doe^Jane").unwrap();
    vault.save().unwrap();
    drop(vault);
    let path = Vault::path_in(data.path());
    let original = fs::read(&path).unwrap();
    let magic_end = original.iter().position(|&b| b == b'\n').unwrap();
    let header_end = magic_end
        + 1
        + original[magic_end + 1..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap();
    // A byte of the header's key check, of the nonce, of the ciphertext,
    // and the last byte (the tag).
    for at in [
        header_end - 3,
        header_end + 5,
        header_end + 40,
        original.len() - 1,
    ] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        assert!(
            Vault::open(data.path(), &key).is_err(),
            "flipped byte {at} went unnoticed"
        );
    }
    // A header that parses the same but differs in its bytes: the header
    // is authenticated as it was written.
    let mut bytes = original[..magic_end + 2].to_vec();
    bytes.push(b' ');
    bytes.extend_from_slice(&original[magic_end + 2..]);
    fs::write(&path, &bytes).unwrap();
    let error = Vault::open(data.path(), &key).unwrap_err().to_string();
    assert!(error.contains("damaged or was altered"), "{error}");
    fs::write(&path, &original[..original.len() - 20]).unwrap();
    assert!(Vault::open(data.path(), &key).is_err());
    fs::write(&path, &original).unwrap();
    Vault::open(data.path(), &key).unwrap();
}

#[test]
fn research_ids_follow_the_pattern_and_are_unique() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    let format = ResearchIdFormat::parse("YCU-######").unwrap();
    let mut vault = Vault::create(data.path(), &key, format.clone()).unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..10_000 {
        let p = vault.pseudonym(&format!("P{i}"), "X^Y").unwrap();
        assert!(format.matches(&p.research_id), "{}", p.research_id);
        assert!(seen.insert(p.research_id));
    }
    assert_eq!(vault.patients(), 10_000);
    vault.save().unwrap();
}

#[test]
fn research_ids_are_not_a_function_of_the_patient_id() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let mut a = Vault::create(one.path(), &key_file(one.path()), Default::default()).unwrap();
    let mut b = Vault::create(two.path(), &key_file(two.path()), Default::default()).unwrap();
    let same = (0..5)
        .filter(|i| {
            let id = format!("PID-{i}");
            a.pseudonym(&id, "A^B").unwrap() == b.pseudonym(&id, "A^B").unwrap()
        })
        .count();
    assert!(same < 5, "two vaults gave the same pseudonyms");
    // Padding is not part of the ID.
    assert_eq!(a.find_pseudonym("PID-1 "), a.find_pseudonym("PID-1"));
    assert!(a.pseudonym("  ", "A^B").is_err());
}

#[test]
fn a_full_pattern_errors_clearly() {
    let data = tempfile::tempdir().unwrap();
    let mut vault = Vault::create(
        data.path(),
        &key_file(data.path()),
        ResearchIdFormat::parse("T-#").unwrap(),
    )
    .unwrap();
    let ids: std::collections::HashSet<String> = (0..10)
        .map(|i| {
            vault
                .pseudonym(&format!("P{i}"), "A^B")
                .unwrap()
                .research_id
        })
        .collect();
    assert_eq!(ids.len(), 10);
    let error = vault.pseudonym("P10", "A^B").unwrap_err().to_string();
    assert!(
        error.contains("T-#") && error.contains("all are taken"),
        "{error}"
    );
    assert!(!error.contains("P10"), "{error}");
}

#[test]
fn date_offsets_are_in_range_never_zero_and_stable() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    let mut vault = Vault::create(data.path(), &key, Default::default()).unwrap();
    let mut offsets = Vec::new();
    for i in 0..500 {
        let p = vault.pseudonym(&format!("P{i}"), "A^B").unwrap();
        assert!((-3650..=-365).contains(&p.date_offset_days));
        offsets.push(p.date_offset_days);
    }
    offsets.sort();
    offsets.dedup();
    assert!(offsets.len() > 100, "offsets hardly vary");
    let first = vault.pseudonym("P0", "Other^Name").unwrap();
    vault.set_date_offset_range(-1..=1).unwrap();
    for i in 0..100 {
        let p = vault.pseudonym(&format!("Q{i}"), "A^B").unwrap();
        assert!(p.date_offset_days == -1 || p.date_offset_days == 1);
    }
    assert!(vault.set_date_offset_range(0..=0).is_err());
    vault.save().unwrap();
    drop(vault);
    let mut vault = Vault::open(data.path(), &key).unwrap();
    assert_eq!(vault.pseudonym("P0", "A^B").unwrap(), first);
    assert_eq!(vault.date_offset_range(), -1..=1);
    assert_eq!(
        vault.lookup(&first.research_id).unwrap().patient_name,
        "A^B"
    );
}

#[test]
fn the_file_holds_no_plaintext_identity() {
    let data = tempfile::tempdir().unwrap();
    let mut vault = Vault::create(data.path(), &key_file(data.path()), Default::default()).unwrap();
    let p = vault
        .pseudonym("SECRETPID4711", "Mustermann^Erika")
        .unwrap();
    vault.opt_out_add("OPTOUTPID0815");
    vault.cohort_keys("pneumo-2026").unwrap();
    vault.save().unwrap();
    let bytes = fs::read(Vault::path_in(data.path())).unwrap();
    for needle in [
        "SECRETPID4711",
        "Mustermann",
        "Erika",
        "OPTOUTPID0815",
        "pneumo-2026",
        &p.research_id,
        "AGE-SECRET-KEY",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} in the file"
        );
    }
}

#[test]
fn opt_out_list() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    let mut vault = Vault::create(data.path(), &key, Default::default()).unwrap();
    assert!(vault.opt_out_add("P1"));
    assert!(!vault.opt_out_add("P1 "));
    assert!(vault.opt_out_add("P2"));
    assert!(vault.is_opted_out("P1") && !vault.is_opted_out("P3"));
    assert!(vault.opt_out_remove("P2"));
    assert!(!vault.opt_out_remove("P2"));
    vault.save().unwrap();
    drop(vault);
    let vault = Vault::open(data.path(), &key).unwrap();
    assert_eq!(vault.opt_out_count(), 1);
    assert_eq!(vault.opted_out().collect::<Vec<_>>(), ["P1"]);
    assert!(vault.is_opted_out("P1"));
}

#[test]
fn cohort_keys_persist_until_shredded() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    let mut vault = Vault::create(data.path(), &key, Default::default()).unwrap();
    assert!(!vault.has_cohort_keys("c1"));
    let keys = vault.cohort_keys("c1").unwrap();
    assert!(keys.staging_identity.starts_with("AGE-SECRET-KEY-1"));
    assert!(keys.staging_recipient.starts_with("age1"));
    let identity: age::x25519::Identity = keys.staging_identity.parse().unwrap();
    assert_eq!(identity.to_public().to_string(), keys.staging_recipient);
    let other = vault.cohort_keys("c2").unwrap();
    assert_ne!(keys.uid_secret, other.uid_secret);
    let shown = format!("{keys:?}");
    assert!(!shown.contains("AGE-SECRET"), "{shown}");
    vault.save().unwrap();
    drop(vault);

    let mut vault = Vault::open(data.path(), &key).unwrap();
    let again = vault.cohort_keys("c1").unwrap();
    assert!(!vault.is_dirty());
    assert_eq!(again.uid_secret, keys.uid_secret);
    assert_eq!(again.staging_identity, keys.staging_identity);
    assert!(vault.shred_cohort_keys("c1"));
    assert!(!vault.shred_cohort_keys("c1"));
    vault.save().unwrap();
    drop(vault);

    let mut vault = Vault::open(data.path(), &key).unwrap();
    assert!(!vault.has_cohort_keys("c1"));
    assert!(vault.has_cohort_keys("c2"));
    assert_ne!(vault.cohort_keys("c1").unwrap().uid_secret, keys.uid_secret);
}

#[test]
fn saves_are_atomic_and_leave_no_temporary_file() {
    let data = tempfile::tempdir().unwrap();
    let mut vault = Vault::create(data.path(), &key_file(data.path()), Default::default()).unwrap();
    let path = Vault::path_in(data.path());
    let before = fs::read(&path).unwrap();
    vault.opt_out_add("P1");
    vault.save().unwrap();
    let after = fs::read(&path).unwrap();
    assert_ne!(before, after);
    let names: Vec<String> = fs::read_dir(data.path().join("research"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    // Saving again with nothing changed still uses a fresh nonce.
    vault.save().unwrap();
    assert_ne!(fs::read(&path).unwrap(), after);
}

#[test]
fn the_lock_keeps_a_second_opener_out() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    let vault = Vault::create(data.path(), &key, Default::default()).unwrap();
    let short = Duration::from_millis(200);
    assert!(matches!(
        Vault::open_waiting(data.path(), &key, short),
        Err(VaultError::Locked)
    ));
    // The second opener waits and gets in once the first lets go.
    let waiting = {
        let data = data.path().to_owned();
        let key = KeySource::KeyFile(data.join("vault.key"));
        std::thread::spawn(move || {
            Vault::open_waiting(&data, &key, Duration::from_secs(10)).map(|_| ())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    drop(vault);
    waiting.join().unwrap().unwrap();
    Vault::open_waiting(data.path(), &key, short).unwrap();
}

#[test]
fn a_vault_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Vault>();
    send::<std::sync::Mutex<Vault>>();
}

#[test]
fn clinical_records_are_kept_replaced_and_removed() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    let mut vault = Vault::create(data.path(), &key, ResearchIdFormat::default()).unwrap();
    let record = |age: &str| ClinicalRecord::from([("age_years".to_owned(), age.to_owned())]);
    assert!(vault.clinical("PID-1").is_empty());
    assert_eq!(vault.set_clinical("PID-1", vec![record("61")]).unwrap(), 0);
    assert_eq!(
        vault
            .set_clinical(" PID-1 ", vec![record("62"), record("63")])
            .unwrap(),
        1
    );
    assert!(vault.is_dirty());
    vault.save().unwrap();
    drop(vault);
    let mut vault = Vault::open(data.path(), &key).unwrap();
    assert_eq!(vault.clinical("PID-1"), &[record("62"), record("63")]);
    assert_eq!(vault.clinical_patients(), 1);
    let plain = fs::read(Vault::path_in(data.path())).unwrap();
    assert!(!plain.windows(9).any(|w| w == b"age_years"));
    assert_eq!(vault.set_clinical("PID-1", Vec::new()).unwrap(), 2);
    assert_eq!(vault.clinical_patients(), 0);
    assert!(vault.set_clinical("  ", vec![record("1")]).is_err());
    vault.save().unwrap();
}

#[test]
fn a_format_1_vault_opens_and_is_saved_as_format_2() {
    let data = tempfile::tempdir().unwrap();
    let key = key_file(data.path());
    let vault = Vault::create(data.path(), &key, ResearchIdFormat::default()).unwrap();
    // The body as format 1 wrote it: no clinical section.
    let old_body = serde_json::json!({
        "ids": vault.body.ids,
        "date_offset_min": -3650,
        "date_offset_max": -365,
        "patients": {"PID-1": {"research_id": "RID-000001", "patient_name": "Doe^Jane", "date_offset_days": -400}},
        "opt_out": [],
        "cohorts": {},
    });
    let bytes = file::seal_as(
        1,
        &vault.header,
        &vault.key,
        &serde_json::to_vec(&old_body).unwrap(),
    )
    .unwrap();
    let path = vault.path().to_owned();
    drop(vault);
    fs::write(&path, &bytes).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("\"version\":1"));

    let mut vault = Vault::open(data.path(), &key).unwrap();
    assert_eq!(vault.patients(), 1);
    assert!(vault.clinical("PID-1").is_empty());
    vault
        .set_clinical(
            "PID-1",
            vec![ClinicalRecord::from([("sex".into(), "F".into())])],
        )
        .unwrap();
    vault.save().unwrap();
    drop(vault);
    let saved = fs::read(&path).unwrap();
    assert!(String::from_utf8_lossy(&saved).contains("\"version\":2"));
    let vault = Vault::open(data.path(), &key).unwrap();
    assert_eq!(vault.clinical("PID-1")[0]["sex"], "F");
}
