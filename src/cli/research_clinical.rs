//! `chestnode research clinical …`: importing clinical records from a CSV
//! file and showing a patient's records (docs/clinical-data.md). Parsing
//! and printing only: the import goes to the running server, which checks
//! the file against the schema and the stored images.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use chestnode::research::clinical::{ClinicalCsv, ClinicalSubject, Schema, show};
use chestnode::research::{ResearchReply, ResearchRequest, VaultKey};

/// The largest clinical CSV file sent to the server.
const MAX_CSV: u64 = 8 * 1024 * 1024;

#[derive(Subcommand)]
pub enum ClinicalCommand {
    /// Import clinical records keyed by Patient ID; a file with any bad row
    /// is refused whole, and a patient's earlier records are replaced.
    Import {
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
        /// Accept rows of patients with no stored images.
        #[arg(long)]
        allow_unknown_patients: bool,
    },
    /// Print a patient's clinical records (patient data; audited).
    Show {
        #[arg(value_name = "RESEARCH_ID", required_unless_present = "patient")]
        research_id: Option<String>,
        /// Find the patient by Patient ID instead.
        #[arg(long, value_name = "PATIENT_ID", conflicts_with = "research_id")]
        patient: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a clinical command; `ask` sends a request to the server.
pub fn run(
    command: &ClinicalCommand,
    data_dir: &Path,
    config: &chestnode::config::ResearchConfig,
    key: VaultKey,
    operator: &str,
    ask: &dyn Fn(ResearchRequest) -> anyhow::Result<ResearchReply>,
) -> anyhow::Result<()> {
    match command {
        ClinicalCommand::Import {
            file,
            allow_unknown_patients,
        } => {
            let size = std::fs::metadata(file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            anyhow::ensure!(
                size <= MAX_CSV,
                "{} is larger than {} MiB; split it into several files",
                file.display(),
                MAX_CSV / 1024 / 1024
            );
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let csv = String::from_utf8(bytes).map_err(|_| {
                anyhow::anyhow!(
                    "{} is not UTF-8 text; save it as \"CSV UTF-8\"",
                    file.display()
                )
            })?;
            let reply = ask(ResearchRequest::ClinicalImport {
                csv: ClinicalCsv(csv),
                allow_unknown: *allow_unknown_patients,
                key,
                operator: operator.to_owned(),
            })?;
            let ResearchReply::ClinicalImported { summary } = reply else {
                anyhow::bail!("unexpected reply");
            };
            println!(
                "imported {} clinical record(s) of {} patient(s)",
                summary.rows, summary.patients
            );
            if summary.replaced_patients > 0 {
                println!(
                    "  replaced the earlier records of {} patient(s) ({} record(s))",
                    summary.replaced_patients, summary.replaced_records
                );
            }
            if summary.unknown_patients > 0 {
                println!(
                    "  {} patient(s) have no stored images (accepted: --allow-unknown-patients)",
                    summary.unknown_patients
                );
            }
            println!("sha256 {}", summary.sha256);
        }
        ClinicalCommand::Show {
            research_id,
            patient,
            json,
        } => {
            let subject = match (research_id, patient) {
                (_, Some(patient)) => ClinicalSubject::PatientId(patient.clone()),
                (Some(research_id), None) => ClinicalSubject::ResearchId(research_id.clone()),
                (None, None) => anyhow::bail!("give a research ID or --patient PATIENT_ID"),
            };
            let shown = show(data_dir, &key.source(), &subject, operator)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(());
            }
            println!(
                "research ID: {}",
                shown.research_id.as_deref().unwrap_or("(none yet)")
            );
            if shown.records.is_empty() {
                println!("no clinical records");
            }
            // The schema's order first, then anything stored under a column
            // no longer configured.
            let schema = Schema::new(&config.clinical.extra_columns)?;
            for (n, record) in shown.records.iter().enumerate() {
                println!("record {}:", n + 1);
                let known = schema.columns().iter().map(|c| c.name.as_str());
                let others = record
                    .keys()
                    .map(String::as_str)
                    .filter(|k| schema.column(k).is_none());
                for name in known.chain(others) {
                    if let Some(value) = record.get(name) {
                        println!("  {name:<18} {value}");
                    }
                }
            }
        }
    }
    Ok(())
}
