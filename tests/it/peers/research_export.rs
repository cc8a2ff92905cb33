//! The research wing end to end, while `serve` runs: a chest radiograph
//! and the same patient's chest CT a month later, plus a patient who opted
//! out, go through vault creation, cohort selection with CT pairing,
//! de-identified export to a directory and to an `age` file, lookup, the
//! refusals, destruction and the audit chain. The outputs are read by the
//! tools a partner would use: `dcmdump`, `dciodvfy`, `sha256sum`, `age`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::cli::dciodvfy_errors;
use crate::common::config::{destination, write_config};
use crate::common::research::{ResearchCli, day_number, dcmodify_copy};
use crate::common::sshd::Sshd;
use crate::common::storescp::StoreScp;
use crate::common::{Node, combined_output, dicom_file, files_below, wait_until};

const PHI: [&str; 6] = [
    "SMITH",
    "PAT-SMITH-001",
    "General Hospital",
    "WELBY",
    "ACC778899",
    "19500505",
];

fn patient(id: &str, name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("(0010,0020)", id.to_owned()),
        ("(0010,0010)", name.to_owned()),
        ("(0010,0030)", "19500505".into()),
        ("(0010,0040)", "M".into()),
        ("(0010,1010)", "074Y".into()),
        ("(0008,0080)", "General Hospital".into()),
        ("(0008,0090)", "WELBY^MARCUS".into()),
        ("(0008,0050)", "ACC778899".into()),
    ]
}

fn as_refs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(t, v)| (*t, v.as_str())).collect()
}

/// The inputs: SMITH's DX on 2024-03-01, three CT slices of SMITH's chest
/// on 2024-03-31, and a DX of a patient who opted out.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = Vec::new();
    let mut cr = patient("PAT-SMITH-001", "SMITH^JOHN");
    cr.extend([
        ("(0020,000D)", "1.2.826.0.1.3680043.10.1001.1".into()),
        ("(0020,000E)", "1.2.826.0.1.3680043.10.1001.1.1".into()),
        ("(0008,0018)", "1.2.826.0.1.3680043.10.1001.1.1.1".into()),
        ("(0008,0020)", "20240301".into()),
        ("(0008,0022)", "20240301".into()),
        ("(0008,1030)", "CHEST PA for SMITH".into()),
    ]);
    files.push(dcmodify_copy(
        &dicom_file("misc/dx_thorax_small.dcm"),
        &dir.join("cr.dcm"),
        &as_refs(&cr),
    ));
    for slice in 1..=3 {
        let mut ct = patient("PAT-SMITH-001", "SMITH^JOHN");
        ct.extend([
            ("(0020,000D)", "1.2.826.0.1.3680043.10.1001.2".into()),
            ("(0020,000E)", "1.2.826.0.1.3680043.10.1001.2.1".into()),
            (
                "(0008,0018)",
                format!("1.2.826.0.1.3680043.10.1001.2.1.{slice}"),
            ),
            ("(0008,0020)", "20240331".into()),
            ("(0008,0022)", "20240331".into()),
            ("(0018,0015)", "CHEST".into()),
        ]);
        files.push(dcmodify_copy(
            &dicom_file("misc/CT_small.dcm"),
            &dir.join(format!("ct{slice}.dcm")),
            &as_refs(&ct),
        ));
    }
    let mut other = patient("PAT-OPTOUT-9", "DOE^JANE");
    other.extend([
        ("(0020,000D)", "1.2.826.0.1.3680043.10.1001.3".into()),
        ("(0020,000E)", "1.2.826.0.1.3680043.10.1001.3.1".into()),
        ("(0008,0018)", "1.2.826.0.1.3680043.10.1001.3.1.1".into()),
        ("(0008,0020)", "20240305".into()),
        ("(0008,0022)", "20240305".into()),
    ]);
    files.push(dcmodify_copy(
        &dicom_file("misc/dx_thorax_small.dcm"),
        &dir.join("optout.dcm"),
        &as_refs(&other),
    ));
    files
}

/// The same with another passphrase file.
fn research_with(data: &Path, passphrase: &Path, args: &[&str]) -> std::process::Output {
    ResearchCli::new(data, passphrase).run(args)
}

fn research_ok(data: &Path, secrets: &Path, args: &[&str]) -> String {
    ResearchCli::new(data, &secrets.join("vault-pass")).ok(args)
}

fn research_err(data: &Path, secrets: &Path, args: &[&str]) -> String {
    ResearchCli::new(data, &secrets.join("vault-pass")).err(args)
}

/// dcmdump of a file, as text.
fn dump(file: &Path) -> String {
    let output = Command::new("dcmdump")
        .arg("+L")
        .arg(file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", combined_output(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of the first `(gggg,eeee)` line in a dcmdump.
fn value_of(dump: &str, tag: &str) -> String {
    let line = dump
        .lines()
        .find(|l| l.trim_start().starts_with(tag))
        .unwrap_or_else(|| panic!("{tag} not in dump"));
    let start = line.find('[').map(|i| i + 1).unwrap_or(0);
    let end = line[start..]
        .find(']')
        .map(|i| start + i)
        .unwrap_or(line.len());
    line[start..end].to_owned()
}

#[test]
fn a_radiograph_and_its_ct_are_exported_de_identified_while_the_node_runs() {
    let root = tempfile::tempdir().unwrap();
    let secrets = root.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("vault-pass"), "correct horse battery staple\n").unwrap();
    std::fs::write(secrets.join("wrong-pass"), "not the passphrase\n").unwrap();

    // A PACS that takes GSPS, so the node makes SR, SC and GSPS.
    let pacs_dir = root.path().join("pacs");
    std::fs::create_dir_all(&pacs_dir).unwrap();
    let pacs = StoreScp::start(&pacs_dir, &[]);
    let config = write_config(
        root.path(),
        &format!(
            "[research]\nseries_stable_secs = 1\nresearch_id_pattern = \"YCU-######\"\n{}",
            destination("pacs", "STORESCP", pacs.port, "\"sr\", \"sc\", \"gsps\"")
        ),
    );
    let config = config.display().to_string();
    let mut node = Node::start(root.path(), &["--config", &config, "--workers", "1"]);
    let data = node.data_dir.clone();

    let files = inputs(&root.path().join("in"));
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    node.storescu_ok(&[], &refs);
    assert!(
        wait_until(Duration::from_secs(120), || {
            let status = node.status();
            status["jobs_by_state"]["analysed"].as_u64().unwrap_or(0)
                + status["jobs_by_state"]["delivered"].as_u64().unwrap_or(0)
                + status["jobs_by_state"]["not-analysed"]
                    .as_u64()
                    .unwrap_or(0)
                >= 5
        }),
        "analysis did not finish: {}",
        node.status()
    );
    std::thread::sleep(Duration::from_secs(3)); // series become stable

    // The vault, and one patient who declined.
    research_ok(&data, &secrets, &["init"]);
    research_ok(&data, &secrets, &["opt-out", "add", "PAT-OPTOUT-9"]);
    let wrong = research_with(&data, &secrets.join("wrong-pass"), &["opt-out", "add", "X"]);
    assert!(!wrong.status.success());
    assert!(
        combined_output(&wrong).contains("wrong passphrase"),
        "{}",
        combined_output(&wrong)
    );

    // The cohort: SMITH's radiograph with the CT 30 days later; the
    // opted-out patient counted, not included.
    let json = research_ok(
        &data,
        &secrets,
        &[
            "cohort",
            "create",
            "lung-2024",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--json",
        ],
    );
    let cohort: serde_json::Value = serde_json::from_str(&json[json.find('{').unwrap()..]).unwrap();
    assert_eq!(cohort["version"], 1);
    assert_eq!(
        cohort["radiographs"].as_array().unwrap().len(),
        1,
        "{cohort:#}"
    );
    assert_eq!(cohort["patients"], 1);
    assert_eq!(cohort["paired_ct"][0]["days_from_radiograph"], 30);
    assert_eq!(cohort["exclusions"]["opted_out_series"], 1);
    assert_eq!(cohort["exclusions"]["opted_out_patients"], 1);
    let shown = research_ok(&data, &secrets, &["cohort", "show", "lung-2024"]);
    assert!(shown.contains("radiographs by category"), "{shown}");
    assert!(shown.contains("1 paired chest CT series"), "{shown}");
    for secret in PHI {
        assert!(!shown.contains(secret), "cohort show printed {secret}");
    }
    // A cohort with zero studies is kept, but refused for export.
    research_ok(
        &data,
        &secrets,
        &["cohort", "create", "empty", "--from", "2030-01-01"],
    );

    // Export to a directory.
    let out = root.path().join("export-dir");
    let text = research_ok(
        &data,
        &secrets,
        &["export", "lung-2024", "--out", out.to_str().unwrap()],
    );
    println!("{text}");
    check_export_tree(&out, &root.path().join("in"));
    // Refusals: a directory that is not empty, an empty cohort.
    let busy = research_err(
        &data,
        &secrets,
        &["export", "lung-2024", "--out", out.to_str().unwrap()],
    );
    assert!(busy.contains("not empty"), "{busy}");
    let empty = research_err(
        &data,
        &secrets,
        &[
            "export",
            "empty",
            "--out",
            root.path().join("e").to_str().unwrap(),
        ],
    );
    assert!(empty.contains("zero studies"), "{empty}");

    // Export as an age file to an X25519 recipient; the age CLI opens it.
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(secrets.join("partner.key"))
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let key_text = std::fs::read_to_string(secrets.join("partner.key")).unwrap();
    let recipient = key_text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    let package = root.path().join("lung-2024.tar.age");
    research_ok(
        &data,
        &secrets,
        &[
            "export",
            "lung-2024",
            "--out",
            package.to_str().unwrap(),
            "--recipient",
            &recipient,
        ],
    );
    let opened = root.path().join("opened");
    std::fs::create_dir_all(&opened).unwrap();
    let script = format!(
        "age -d -i {} {} | tar -x -C {}",
        secrets.join("partner.key").display(),
        package.display(),
        opened.display()
    );
    let decrypt = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(decrypt.status.success(), "{}", combined_output(&decrypt));
    check_export_tree(&opened.join("lung-2024-v1"), &root.path().join("in"));

    // The same, uploaded over SFTP to an OpenSSH server that checks the
    // node's key; the node checks the server's host key.
    let sshd = Sshd::start(&root.path().join("sshd"));
    let known_hosts = root.path().join("known_hosts");
    sshd.write_known_hosts(&known_hosts);
    let remote = root.path().join("partner-inbox");
    std::fs::create_dir_all(&remote).unwrap();
    let url = format!(
        "sftp://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        remote.display()
    );
    let uploaded = root.path().join("upload.tar.age");
    let text = research_ok(
        &data,
        &secrets,
        &[
            "export",
            "lung-2024",
            "--out",
            uploaded.to_str().unwrap(),
            "--recipient",
            &recipient,
            "--sftp",
            &url,
            "--ssh-key",
            sshd.client_key().to_str().unwrap(),
            "--known-hosts",
            known_hosts.to_str().unwrap(),
        ],
    );
    assert!(text.contains("uploaded"), "{text}");
    assert_eq!(
        std::fs::read(remote.join("upload.tar.age")).unwrap(),
        std::fs::read(&uploaded).unwrap()
    );

    // Re-identification: the research ID leads back to the patient, and is
    // audited; an unknown one is refused.
    let research_id = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("YCU-"))
        .unwrap();
    let found = research_ok(&data, &secrets, &["lookup", &research_id]);
    assert!(found.contains("PAT-SMITH-001"), "{found}");
    let unknown = research_err(&data, &secrets, &["lookup", "YCU-000000"]);
    assert!(unknown.contains("unknown research ID"), "{unknown}");

    // Doctors' annotations from a file: two readers of the radiograph, then
    // their agreement. A file with a bad row stores nothing.
    let dx = "1.2.826.0.1.3680043.10.1001.1.1.1";
    let header = "sop_instance_uid,reader,finding,certainty,x,y,width,height\n";
    let bad = root.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!("{header}{dx},dr-a,nodule-mass,definite,10,10,20,20\n{dx},dr-b,nodule-mass,definite,10,10,5000,20\n"),
    )
    .unwrap();
    let refused = research_err(
        &data,
        &secrets,
        &["annotations", "import", bad.to_str().unwrap()],
    );
    assert!(
        refused.contains("line 3") && refused.contains("outside the image"),
        "{refused}"
    );
    let good = root.path().join("readers.csv");
    std::fs::write(
        &good,
        format!(
            "{header}{dx},dr-a,nodule-mass,definite,10,10,20,20\n{dx},dr-b,nodule-mass,probable,12,10,20,20\n{dx},dr-a,copd,possible,,,,\n"
        ),
    )
    .unwrap();
    let imported = research_ok(
        &data,
        &secrets,
        &["annotations", "import", good.to_str().unwrap()],
    );
    assert!(
        imported.contains("imported 3 annotation(s) of 1 image(s)"),
        "{imported}"
    );
    let json = research_ok(
        &data,
        &secrets,
        &["annotations", "agreement", "lung-2024", "--json"],
    );
    let pairs: serde_json::Value = serde_json::from_str(&json[json.find('[').unwrap()..]).unwrap();
    assert_eq!(pairs[0]["images"], 1, "{pairs:#}");
    assert_eq!(pairs[0]["matched_regions"], 1, "{pairs:#}");
    assert_eq!(pairs[0]["kappa"]["nodule-mass"], 1.0, "{pairs:#}");

    // The annotations go out as DICOM SR in research-ID space: each
    // reader's under a pseudonym, or the readers' consensus.
    for (dir, consensus) in [("with-readers", None), ("with-consensus", Some("majority"))] {
        let out = root.path().join(dir);
        let mut args = vec!["export", "lung-2024", "--out", out.to_str().unwrap()];
        if let Some(rule) = consensus {
            args.extend(["--consensus", rule]);
        }
        research_ok(&data, &secrets, &args);
        let srs: Vec<String> = files_below(&out)
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "dcm"))
            .map(|f| {
                let output = Command::new("dsrdump").arg(&f).output().unwrap();
                String::from_utf8_lossy(&output.stdout).into_owned()
            })
            .filter(|text| text.contains("Person Observer Name"))
            .collect();
        assert_eq!(
            srs.len(),
            1,
            "one annotation SR for the one annotated image"
        );
        assert!(
            !srs[0].contains("dr-a") && !srs[0].contains("dr-b"),
            "{}",
            srs[0]
        );
        match consensus {
            None => assert!(srs[0].matches("reader-").count() >= 2, "{}", srs[0]),
            // The two readers' nodule, not one reader's COPD.
            Some(_) => {
                assert!(srs[0].contains("\"consensus\""), "{}", srs[0]);
                assert_eq!(srs[0].matches("Measurement Group").count(), 1, "{}", srs[0]);
            }
        }
    }

    // A cohort by the doctors' labels: the majority of the two readers
    // says nodule, not COPD.
    let json = research_ok(
        &data,
        &secrets,
        &[
            "cohort",
            "create",
            "by-doctors",
            "--source",
            "labels",
            "--json",
        ],
    );
    let by_doctors: serde_json::Value =
        serde_json::from_str(&json[json.find('{').unwrap()..]).unwrap();
    assert_eq!(
        by_doctors["radiographs"][0]["categories"],
        serde_json::json!(["nodule-mass"]),
        "{by_doctors:#}"
    );

    // Destruction: refused before keep-until, done with --force; the
    // staging is gone and the cohort cannot be exported again.
    let early = research_err(&data, &secrets, &["destroy", "lung-2024"]);
    assert!(early.contains("must be kept until"), "{early}");
    let staging = data.join("research/staging/lung-2024");
    assert!(!files_below(&staging).is_empty());
    let destroyed = research_ok(&data, &secrets, &["destroy", "lung-2024", "--force"]);
    assert!(destroyed.contains("keys shredded"), "{destroyed}");
    assert!(!staging.exists());
    let again = research_err(
        &data,
        &secrets,
        &[
            "export",
            "lung-2024",
            "--out",
            root.path().join("again").to_str().unwrap(),
        ],
    );
    assert!(again.contains("destroyed"), "{again}");

    // The node kept running and never logged patient data at info.
    assert!(node.status()["instances_received"].as_u64().unwrap() >= 5);
    let log = node.log();
    for secret in PHI {
        assert!(!log.contains(secret), "the node's log holds {secret}");
    }
    node.stop();

    // Without a server, the commands open the index themselves.
    let listed = research_ok(&data, &secrets, &["cohort", "list"]);
    assert!(
        listed.contains("lung-2024 v1") && listed.contains("destroyed"),
        "{listed}"
    );

    // The audit log: every act recorded, the chain intact; one edited byte
    // breaks it.
    let verified = research_ok(&data, &secrets, &["audit", "verify"]);
    assert!(verified.contains("audit log intact"), "{verified}");
    let audit_path = data.join("research/audit.jsonl");
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    let actions: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for action in [
        "annotations.import",
        "deliver",
        "vault.create",
        "opt-out.add",
        "cohort.create",
        "export.build",
        "export",
        "lookup",
        "destroy",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "no {action} in {actions:?}"
        );
    }
    for secret in PHI {
        assert!(!audit.contains(secret), "the audit log holds {secret}");
    }
    std::fs::write(&audit_path, audit.replacen("lung-2024", "lung-2025", 1)).unwrap();
    let broken = research_err(&data, &secrets, &["audit", "verify"]);
    assert!(broken.contains("broken at line"), "{broken}");
}

/// Checks a delivered tree: the manifest holds, no PHI survives, research
/// IDs replace the patient, the CT–CR interval is kept with shifted dates,
/// the SR and GSPS point at the de-identified radiograph, SC overlays are
/// left out, and dciodvfy finds no new errors.
fn check_export_tree(tree: &Path, inputs: &Path) {
    let sums = Command::new("sha256sum")
        .arg("-c")
        .arg("--quiet")
        .arg("SHA256SUMS")
        .current_dir(tree)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{}", combined_output(&sums));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join("export-report.json")).unwrap()).unwrap();
    assert_eq!(report["patients"], 1, "{report:#}");
    assert_eq!(report["by_modality"]["DX"]["instances"], 1, "{report:#}");
    assert_eq!(report["by_modality"]["CT"]["instances"], 3, "{report:#}");
    assert_eq!(report["pairings"][0]["days_from_radiograph"], 30);
    assert!(
        report["actions"]["remapped_uids"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert!(
        report["actions"]["shifted_dates"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    assert!(
        report["result_objects"].as_u64().unwrap() >= 2,
        "SR and GSPS: {report:#}"
    );
    let excluded: BTreeMap<String, u64> =
        serde_json::from_value(report["excluded"].clone()).unwrap();
    assert!(
        excluded
            .keys()
            .any(|k| k.to_lowercase().contains("secondary capture")),
        "the overlay SC is left out: {excluded:?}"
    );
    assert!(
        std::fs::read_to_string(tree.join("export-report.md"))
            .unwrap()
            .contains("Research use only")
    );

    let mut by_modality: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    for file in files_below(tree) {
        if file.extension().is_some_and(|e| e == "dcm") {
            let text = dump(&file);
            for secret in PHI {
                assert!(
                    !text.contains(secret),
                    "{} holds {secret}:\n{text}",
                    file.display()
                );
            }
            assert!(
                !text.contains("1.2.826.0.1.3680043.10.1001"),
                "an original UID survived in {}",
                file.display()
            );
            let research_id = value_of(&text, "(0010,0020)");
            assert!(
                research_id.starts_with("YCU-") && research_id.len() == 10,
                "{research_id}"
            );
            assert_eq!(value_of(&text, "(0010,0010)"), research_id);
            assert_eq!(value_of(&text, "(0012,0062)"), "YES");
            by_modality
                .entry(value_of(&text, "(0008,0060)"))
                .or_default()
                .push((file.clone(), text));
        }
    }
    let cr = &by_modality["DX"][0];
    let ct = &by_modality["CT"][0];
    let cr_date = value_of(&cr.1, "(0008,0020)");
    let ct_date = value_of(&ct.1, "(0008,0020)");
    assert_ne!(cr_date, "20240301", "dates are shifted");
    assert_eq!(
        day_number(&ct_date) - day_number(&cr_date),
        30,
        "the interval survives"
    );
    assert_eq!(
        value_of(&cr.1, "(0010,1010)"),
        "074Y",
        "patient characteristics kept"
    );

    // The node's SR and GSPS refer to the de-identified radiograph.
    let cr_sop = value_of(&cr.1, "(0008,0018)");
    for modality in ["SR", "PR"] {
        let objects = by_modality
            .get(modality)
            .unwrap_or_else(|| panic!("no {modality} exported"));
        assert!(
            objects.iter().all(|(_, text)| text.contains(&cr_sop)),
            "{modality} does not reference the radiograph's new UID {cr_sop}"
        );
    }

    // No new dciodvfy errors on the images.
    for (modality, source) in [("DX", "cr.dcm"), ("CT", "ct1.dcm")] {
        let (before, _) = dciodvfy_errors(&inputs.join(source));
        let (after, _) = dciodvfy_errors(&by_modality[modality][0].0);
        let new: Vec<_> = after.iter().filter(|e| !before.contains(e)).collect();
        assert!(new.is_empty(), "{modality}: new dciodvfy errors {new:?}");
    }
}
