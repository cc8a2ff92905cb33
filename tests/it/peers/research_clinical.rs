//! Clinical data end to end, while `serve` runs: a patient's radiograph is
//! received and analysed, a clinical CSV for the patient is checked and
//! imported through the CLI (bad files refused with their line numbers
//! and nothing stored), the cohort is exported, and the export's
//! `clinical.csv` is read back: research ID instead of the patient, the
//! record date shifted exactly as the radiograph's Study Date, no name or
//! Patient ID, and listed in `SHA256SUMS` (checked by `sha256sum`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::config::write_config;
use crate::common::research::{ResearchCli, day_number, dcmodify_copy};
use crate::common::{Node, combined_output, dicom_file, files_below, wait_until};

const PHI: [&str; 4] = ["SMITH", "Smith", "PAT-SMITH-001", "JOHN"];

/// SMITH's DX on 2024-03-01, made with DCMTK's dcmodify.
fn radiograph(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    dcmodify_copy(
        &dicom_file("misc/dx_thorax_small.dcm"),
        &dir.join("dx.dcm"),
        &[
            ("(0010,0020)", "PAT-SMITH-001"),
            ("(0010,0010)", "SMITH^JOHN"),
            ("(0010,0040)", "M"),
            ("(0020,000D)", "1.2.826.0.1.3680043.10.1401.1"),
            ("(0020,000E)", "1.2.826.0.1.3680043.10.1401.1.1"),
            ("(0008,0018)", "1.2.826.0.1.3680043.10.1401.1.1.1"),
            ("(0008,0020)", "20240301"),
            ("(0008,0022)", "20240301"),
        ],
    )
}

/// `chestnode research ARGS` against `data`, with the vault passphrase and
/// the node's configuration.
fn research_cli(data: &Path) -> ResearchCli {
    ResearchCli::new(data, &data.parent().unwrap().join("vault-pass"))
}

fn research_ok(data: &Path, args: &[&str]) -> String {
    research_cli(data).ok(args)
}

fn research_err(data: &Path, args: &[&str]) -> String {
    research_cli(data).err(args)
}

/// The Study Date of a DICOM file, by dcmdump.
fn study_date(file: &Path) -> String {
    let output = Command::new("dcmdump")
        .arg("+P")
        .arg("0008,0020")
        .arg(file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", combined_output(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text.find('[').unwrap() + 1;
    text[start..start + 8].to_owned()
}

#[test]
fn clinical_records_are_imported_checked_and_exported_under_the_research_id() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("vault-pass"),
        "correct horse battery staple\n",
    )
    .unwrap();
    let config = write_config(
        root.path(),
        "[research]\nseries_stable_secs = 1\nresearch_id_pattern = \"YCU-######\"\n\
         [research.clinical]\nextra_columns = [{ name = \"egfr_mutation\", kind = \"enum\", \
         values = [\"positive\", \"negative\"] }]\n",
    );
    let config = config.display().to_string();
    let mut node = Node::start(root.path(), &["--config", &config, "--workers", "1"]);
    let data = node.data_dir.clone();
    let dx = radiograph(&root.path().join("in"));
    node.storescu_ok(&[], &[dx.as_path()]);
    assert!(
        wait_until(Duration::from_secs(120), || {
            let status = node.status();
            ["analysed", "delivered", "not-analysed"]
                .iter()
                .map(|s| status["jobs_by_state"][s].as_u64().unwrap_or(0))
                .sum::<u64>()
                >= 1
        }),
        "analysis did not finish: {}",
        node.status()
    );
    std::thread::sleep(Duration::from_secs(3)); // the series becomes stable
    research_ok(&data, &["init"]);

    let csv = |name: &str, text: &str| {
        let path = root.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let header = "patient_id,record_date,age_years,sex,smoking,pack_years,history,crp_mg_l,\
                  pathology,pathology_date,egfr_mutation";
    let shown =
        |data: &Path| research_ok(data, &["clinical", "show", "--patient", "PAT-SMITH-001"]);

    // Refused: a column neither built in nor declared, named.
    let unknown = research_err(
        &data,
        &[
            "clinical",
            "import",
            &csv("unknown.csv", "patient_id,shoe_size\nPAT-SMITH-001,44\n"),
        ],
    );
    assert!(unknown.contains("unknown column(s) shoe_size"), "{unknown}");
    // Refused whole: one bad row, with its line; the good row before it is
    // not stored either.
    let bad = csv(
        "bad.csv",
        &format!(
            "{header}\nPAT-SMITH-001,2024-03-01,74,M,former,40,,,,,\n\
             PAT-SMITH-001,2024-03-02,130,M,former,40,,,,,\n"
        ),
    );
    let refused = research_err(&data, &["clinical", "import", &bad]);
    assert!(refused.contains("nothing was stored"), "{refused}");
    assert!(
        refused.contains("line 3, column age_years: 130 is above the maximum 120"),
        "{refused}"
    );
    assert!(shown(&data).contains("no clinical records"));
    // Refused: a patient with no stored images; accepted when allowed.
    let stranger = csv(
        "stranger.csv",
        "patient_id,sex\nPAT-SMITH-001,M\nPAT-NOBODY-7,F\n",
    );
    let refused = research_err(&data, &["clinical", "import", &stranger]);
    assert!(
        refused.contains("line 3, column patient_id: no images of this patient"),
        "{refused}"
    );
    assert!(shown(&data).contains("no clinical records"));
    let accepted = research_ok(
        &data,
        &["clinical", "import", &stranger, "--allow-unknown-patients"],
    );
    assert!(
        accepted.contains("1 patient(s) have no stored images"),
        "{accepted}"
    );

    // The real records; they replace the earlier import's for SMITH.
    let good = csv(
        "good.csv",
        &format!(
            "{header}\nPAT-SMITH-001,2024-03-01,74,M,former,40,\"Smith, ex-smoker; seen 2024-02-02 (PAT-SMITH-001)\",12.5,\
             adenocarcinoma,2024-03-20,Positive\n\
             PAT-SMITH-001,2024-06-01,,,,,,3.1,,,\n"
        ),
    );
    let imported = research_ok(&data, &["clinical", "import", &good]);
    assert!(
        imported.contains("imported 2 clinical record(s) of 1 patient(s)"),
        "{imported}"
    );
    assert!(
        imported.contains("replaced the earlier records of 1 patient(s)"),
        "{imported}"
    );
    let text = shown(&data);
    assert!(
        text.contains("adenocarcinoma") && text.contains("positive"),
        "{text}"
    );

    // Export the cohort.
    research_ok(&data, &["cohort", "create", "clinical-2024"]);
    let out = root.path().join("export");
    let exported = research_ok(
        &data,
        &["export", "clinical-2024", "--out", out.to_str().unwrap()],
    );
    assert!(exported.contains("clinical.csv: 2 record(s)"), "{exported}");

    // clinical.csv: under the research ID, shifted like the images.
    let research_id = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("YCU-"))
        .expect("a research ID folder");
    let dx_out = files_below(&out.join(&research_id))
        .into_iter()
        .find(|f| {
            f.extension().is_some_and(|e| e == "dcm")
                && Command::new("dcmdump")
                    .arg("+P")
                    .arg("0008,0060")
                    .arg(f)
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("[DX]"))
        })
        .expect("the exported radiograph");
    let offset = day_number(&study_date(&dx_out)) - day_number("20240301");
    assert_ne!(offset, 0);

    let clinical = std::fs::read_to_string(out.join("clinical.csv")).unwrap();
    println!("{clinical}");
    let mut reader = csv::Reader::from_reader(clinical.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(columns[0], "research_id");
    assert!(!columns.iter().any(|c| c == "patient_id"));
    assert_eq!(columns.last().unwrap(), "egfr_mutation");
    let col = |name: &str| columns.iter().position(|c| c == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "the stranger is not in the cohort");
    assert!(rows.iter().all(|r| r[0] == research_id));
    assert_eq!(
        day_number(&rows[0][col("record_date")]) - day_number("2024-03-01"),
        offset,
        "the record date is shifted like the Study Date"
    );
    assert_eq!(
        day_number(&rows[0][col("pathology_date")]) - day_number("2024-03-20"),
        offset
    );
    assert_eq!(&rows[0][col("egfr_mutation")], "positive");
    assert_eq!(&rows[1][col("crp_mg_l")], "3.1");
    let history = &rows[0][col("history")];
    assert!(history.contains("ex-smoker"), "{history}");
    for secret in PHI
        .iter()
        .chain(&["2024-02-02", "2024-03-01", "PAT-NOBODY-7"])
    {
        assert!(!clinical.contains(secret), "clinical.csv holds {secret}");
    }

    // Listed in the manifest and SHA256SUMS, which sha256sum accepts.
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(sums.contains("clinical.csv"), "{sums}");
    assert!(
        std::fs::read_to_string(out.join("manifest.json"))
            .unwrap()
            .contains("clinical.csv")
    );
    let check = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", combined_output(&check));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("export-report.json")).unwrap()).unwrap();
    assert_eq!(report["clinical_rows"], 2, "{report:#}");

    // Shown by research ID too; every act audited, without patient data.
    let by_rid = research_ok(&data, &["clinical", "show", &research_id]);
    assert!(by_rid.contains("adenocarcinoma"), "{by_rid}");
    let audit = std::fs::read_to_string(data.join("research/audit.jsonl")).unwrap();
    assert_eq!(audit.matches("\"clinical.import\"").count(), 2, "{audit}");
    assert!(audit.contains("\"clinical.show\""));
    for secret in PHI {
        assert!(!audit.contains(secret), "the audit log holds {secret}");
    }
    let log = node.log();
    for secret in PHI {
        assert!(!log.contains(secret), "the node's log holds {secret}");
    }
    node.stop();
}
