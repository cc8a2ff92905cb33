//! `chestnode research …`: the hospital's research commands (cohorts,
//! de-identified export and delivery, the pseudonym vault, the audit log).
//! Parsing and printing only; the work is `chestnode::research`'s, and the
//! commands that need the index go through the running server
//! (`chestnode::status::research`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use chestnode::research::{
    self, AuditLog, ResearchReply, ResearchRequest, VaultKey,
    cohort::{CategorySource, CohortCriteria, CohortVersion, category_name, parse_category},
};

use chestnode::research::annotations::ImportFormat;

use super::ConfigArgs;

// `research clinical …`: clinical records import and show.
#[path = "research_clinical.rs"]
mod clinical;
// `research export` and `research dataset`.
#[path = "research_export.rs"]
mod export;
use export::{DatasetArgs, ExportArgs, run_dataset, run_export};

#[derive(Args)]
pub struct ResearchArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Who acts, for the audit log [default: the OS user]
    #[arg(long, global = true, value_name = "NAME")]
    operator: Option<String>,
    /// File holding the vault passphrase (or set CHESTNODE_VAULT_PASSPHRASE)
    #[arg(long, global = true, value_name = "FILE")]
    vault_passphrase_file: Option<PathBuf>,
    /// File holding the vault key (32 bytes, or 64 hex digits)
    #[arg(long, global = true, value_name = "FILE")]
    vault_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: ResearchCommand,
}

#[derive(Subcommand)]
enum ResearchCommand {
    /// Create the pseudonym vault (once per data directory).
    Init {
        /// Research IDs: each run of '#' is random digits [default: the configured pattern]
        #[arg(long, value_name = "PATTERN")]
        research_id_pattern: Option<String>,
    },
    /// Write a new random vault key file (mode 0600) for --vault-key-file.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Choose, show and list cohorts.
    #[command(subcommand)]
    Cohort(CohortCommand),
    /// Doctors' annotations: import from CSV or JSON, list, agreement.
    #[command(subcommand)]
    Annotations(AnnotationsCommand),
    /// Patients who declined research use: excluded from every cohort.
    #[command(subcommand)]
    OptOut(OptOutCommand),
    /// Re-identify a research ID (audited).
    Lookup {
        #[arg(value_name = "RESEARCH_ID")]
        research_id: String,
    },
    /// De-identify a cohort and deliver it: a directory, or an age file
    /// (to a passphrase or X25519 recipients), optionally uploaded by SFTP.
    Export(ExportArgs),
    /// Write a cohort's annotated radiographs as a dataset for `chestnode
    /// train` and `evaluate` (de-identified unless --identified).
    Dataset(DatasetArgs),
    /// Delete a cohort's staging and shred its keys (refused before its
    /// keep-until date unless --force).
    Destroy {
        cohort: String,
        #[arg(long)]
        force: bool,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Clinical records by Patient ID: import a CSV file, show a patient's.
    #[command(subcommand)]
    Clinical(clinical::ClinicalCommand),
}

#[derive(Subcommand)]
enum CohortCommand {
    /// Choose a cohort (a new version if the name exists).
    Create(CohortCreateArgs),
    /// Counts per category, pairs and exclusions of a cohort version.
    Show {
        name: String,
        #[arg(long)]
        version: Option<u32>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Every cohort's newest version.
    List,
}

#[derive(Args)]
struct CohortCreateArgs {
    name: String,
    /// First acquisition date, YYYY-MM-DD
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// Last acquisition date, YYYY-MM-DD
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Radiograph modality; repeatable [default: CR and DX]
    #[arg(long, value_name = "MODALITY")]
    modality: Vec<String>,
    /// nodule-mass, tuberculosis, pneumonia, mediastinal, copd, screening-d
    /// or normal; repeatable [default: all]
    #[arg(long, value_name = "CATEGORY")]
    category: Vec<String>,
    /// findings (the node's own) or labels (doctors') [default: findings]
    #[arg(long, value_name = "SOURCE", default_value = "findings")]
    source: String,
    /// Pair chest CTs within this many days [default: the configured window]
    #[arg(long, value_name = "DAYS")]
    ct_window_days: Option<u32>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AnnotationsCommand {
    /// Import annotations from FILE.csv or FILE.json (schema:
    /// docs/research.md); all rows or none.
    Import {
        file: PathBuf,
        /// Reader of rows that name none [default: the operator]
        #[arg(long, value_name = "NAME")]
        reader: Option<String>,
    },
    /// The current annotations of a cohort's images, or of one image, as JSON.
    List {
        #[arg(required_unless_present = "image")]
        cohort: Option<String>,
        #[arg(long, value_name = "SOP_INSTANCE_UID", conflicts_with = "cohort")]
        image: Option<String>,
    },
    /// Cohen's kappa per finding type, lesion F1 and IoU between readers.
    Agreement {
        cohort: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OptOutCommand {
    /// Add a patient (by Patient ID) to the opt-out list.
    Add { patient_id: String },
    /// Take a patient off the opt-out list.
    Remove { patient_id: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; prints the head hash to note down elsewhere.
    Verify,
    /// Print the entries as JSON lines.
    Show,
}

/// Runs a research command.
pub fn research(args: ResearchArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let config = args.config.load()?;
    config.validate()?;
    let data_dir = config.node.data_dir.clone();
    let operator = research::operator(args.operator.as_deref());
    let key = || vault_key(&args);
    let ask = |request: ResearchRequest| -> anyhow::Result<ResearchReply> {
        let reply = runtime.block_on(chestnode::status::research(
            &data_dir,
            &config.research,
            request,
        ))?;
        match reply {
            ResearchReply::Failed { error } => Err(anyhow::anyhow!(error)),
            reply => Ok(reply),
        }
    };
    match args.command {
        ResearchCommand::Init {
            ref research_id_pattern,
        } => {
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let pattern = research_id_pattern
                .clone()
                .unwrap_or(config.research.research_id_pattern.clone());
            research::init_vault(&data_dir, &key()?.source(), &pattern, &operator)?;
            println!("vault created in {}", data_dir.join("research").display());
        }
        ResearchCommand::Keygen { ref out } => {
            research::generate_key_file(out)?;
            println!(
                "vault key written to {}; keep a copy somewhere safe: without it the vault \
                 cannot be opened",
                out.display()
            );
        }
        ResearchCommand::Cohort(CohortCommand::Create(ref create)) => {
            let categories = if create.category.is_empty() {
                chestnode::findings::Category::ALL.to_vec()
            } else {
                create
                    .category
                    .iter()
                    .map(|c| parse_category(c))
                    .collect::<anyhow::Result<_>>()?
            };
            let source = match create.source.as_str() {
                "findings" => CategorySource::Findings,
                "labels" => CategorySource::Labels,
                other => anyhow::bail!("--source is findings or labels, not {other:?}"),
            };
            let modalities = if create.modality.is_empty() {
                vec!["CR".into(), "DX".into()]
            } else {
                create.modality.clone()
            };
            let criteria = CohortCriteria {
                name: create.name.clone(),
                from: create.from.clone(),
                to: create.to.clone(),
                modalities,
                categories,
                source,
                ct_window_days: create
                    .ct_window_days
                    .unwrap_or(config.research.ct_window_days),
            };
            let reply = ask(ResearchRequest::CohortCreate {
                criteria,
                key: key()?,
                operator,
            })?;
            print_cohort(reply, create.json)?;
        }
        ResearchCommand::Cohort(CohortCommand::Show {
            ref name,
            version,
            json,
        }) => {
            let reply = ask(ResearchRequest::CohortShow {
                name: name.clone(),
                version,
            })?;
            print_cohort(reply, json)?;
        }
        ResearchCommand::Cohort(CohortCommand::List) => {
            if let ResearchReply::Cohorts { cohorts } = ask(ResearchRequest::CohortList)? {
                for c in cohorts {
                    println!(
                        "{} v{}: {} radiograph series, {} paired CT, {} patients{}{}",
                        c.name,
                        c.version,
                        c.radiographs,
                        c.paired_ct,
                        c.patients,
                        c.keep_until
                            .map(|d| format!(", keep until {d}"))
                            .unwrap_or_default(),
                        if c.destroyed { ", destroyed" } else { "" }
                    );
                }
            }
        }
        ResearchCommand::Annotations(ref command) => {
            annotations_command(command, &operator, &ask)?;
        }
        ResearchCommand::OptOut(ref command) => {
            let (patient_id, remove) = match command {
                OptOutCommand::Add { patient_id } => (patient_id, false),
                OptOutCommand::Remove { patient_id } => (patient_id, true),
            };
            let changed =
                research::opt_out(&data_dir, &key()?.source(), patient_id, remove, &operator)?;
            println!(
                "{}",
                match (remove, changed) {
                    (false, true) => "added to the opt-out list",
                    (false, false) => "already on the opt-out list",
                    (true, true) => "removed from the opt-out list",
                    (true, false) => "was not on the opt-out list",
                }
            );
        }
        ResearchCommand::Lookup { ref research_id } => {
            let identity = research::lookup(&data_dir, &key()?.source(), research_id, &operator)?;
            println!("research ID:  {}", identity.research_id);
            println!("patient ID:   {}", identity.patient_id);
            println!("patient name: {}", identity.patient_name);
            println!("date offset:  {} days", identity.date_offset_days);
        }
        ResearchCommand::Export(ref export) => {
            run_export(export, &args, &data_dir, &operator, &ask)?;
        }
        ResearchCommand::Dataset(ref dataset) => {
            run_dataset(dataset, &args, &data_dir, &operator, &ask)?;
        }
        ResearchCommand::Destroy { ref cohort, force } => {
            let reply = ask(ResearchRequest::Destroy {
                cohort: cohort.clone(),
                force,
                key: key()?,
                operator,
            })?;
            if let ResearchReply::Destroyed { destroyed } = reply {
                println!(
                    "cohort {} destroyed: versions {:?}, {} staging file(s) deleted, keys {}{}",
                    destroyed.cohort,
                    destroyed.versions,
                    destroyed.files_deleted,
                    if destroyed.keys_shredded {
                        "shredded"
                    } else {
                        "already gone"
                    },
                    if destroyed.forced {
                        " (forced before its keep-until date)"
                    } else {
                        ""
                    }
                );
            }
        }
        ResearchCommand::Audit(AuditCommand::Verify) => {
            let verified = AuditLog::open(&data_dir)?.verify()?;
            println!(
                "audit log intact: {} entries; head {}",
                verified.entries, verified.head
            );
        }
        ResearchCommand::Clinical(ref command) => {
            clinical::run(
                command,
                &data_dir,
                &config.research,
                key()?,
                &operator,
                &ask,
            )?;
        }
        ResearchCommand::Audit(AuditCommand::Show) => {
            for entry in AuditLog::open(&data_dir)?.entries()? {
                println!("{}", serde_json::to_string(&entry)?);
            }
        }
    }
    Ok(())
}

fn annotations_command(
    command: &AnnotationsCommand,
    operator: &str,
    ask: &dyn Fn(ResearchRequest) -> anyhow::Result<ResearchReply>,
) -> anyhow::Result<()> {
    match command {
        AnnotationsCommand::Import { file, reader } => {
            let format = ImportFormat::of(file)?;
            let content = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let reply = ask(ResearchRequest::AnnotationsImport {
                format,
                content,
                reader: reader.clone().unwrap_or_else(|| operator.to_owned()),
                operator: operator.to_owned(),
            })?;
            if let ResearchReply::AnnotationsImported { imported } = reply {
                println!(
                    "imported {} annotation(s) of {} image(s)",
                    imported.annotations, imported.images
                );
            }
        }
        AnnotationsCommand::List { cohort, image } => {
            let reply = ask(ResearchRequest::AnnotationsList {
                cohort: cohort.clone(),
                image: image.clone(),
            })?;
            if let ResearchReply::Annotations { annotations } = reply {
                println!("{}", serde_json::to_string_pretty(&annotations)?);
            }
        }
        AnnotationsCommand::Agreement { cohort, json } => {
            let reply = ask(ResearchRequest::AnnotationsAgreement {
                cohort: cohort.clone(),
            })?;
            let ResearchReply::Agreement { pairs } = reply else {
                anyhow::bail!("unexpected reply");
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&pairs)?);
            } else if pairs.is_empty() {
                println!("fewer than two readers annotated this cohort");
            }
            for pair in pairs.iter().filter(|_| !*json) {
                println!(
                    "{} vs {}: {} image(s) read by both",
                    pair.reader_a, pair.reader_b, pair.images
                );
                for (finding, kappa) in &pair.kappa {
                    println!("  kappa {finding:<14} {kappa:.3}");
                }
                let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
                println!(
                    "  regions {} / {}, matched {} (IoU >= 0.5): lesion F1 {}, mean IoU {}",
                    pair.regions_a,
                    pair.regions_b,
                    pair.matched_regions,
                    show(pair.lesion_f1),
                    show(pair.mean_iou)
                );
            }
        }
    }
    Ok(())
}

/// The vault key from the flags or the environment.
fn vault_key(args: &ResearchArgs) -> anyhow::Result<VaultKey> {
    if let Some(path) = &args.vault_key_file {
        return Ok(VaultKey::KeyFile(std::path::absolute(path)?));
    }
    if let Some(path) = &args.vault_passphrase_file {
        return Ok(VaultKey::Passphrase(read_secret(path)?.to_string()));
    }
    if let Ok(passphrase) = std::env::var("CHESTNODE_VAULT_PASSPHRASE") {
        return Ok(VaultKey::Passphrase(passphrase));
    }
    anyhow::bail!(
        "this needs the vault key: --vault-passphrase-file, --vault-key-file or \
         CHESTNODE_VAULT_PASSPHRASE"
    )
}

/// A secret from a file, without its trailing newline.
fn read_secret(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let trimmed = text.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(!trimmed.is_empty(), "{} is empty", path.display());
    Ok(Zeroizing::new(trimmed.to_owned()))
}

fn print_cohort(reply: ResearchReply, json: bool) -> anyhow::Result<()> {
    let ResearchReply::Cohort { cohort } = reply else {
        anyhow::bail!("unexpected reply");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&cohort)?);
    } else {
        print!("{}", render_cohort(&cohort));
    }
    Ok(())
}

fn render_cohort(cohort: &CohortVersion) -> String {
    let mut text = format!(
        "cohort {} version {}: {} radiograph series of {} patients, {} paired chest CT series\n",
        cohort.name,
        cohort.version,
        cohort.radiographs.len(),
        cohort.patients,
        cohort.paired_ct.len()
    );
    text.push_str("radiographs by category:\n");
    for (category, n) in cohort.counts_by_category() {
        text.push_str(&format!("  {:<22} {n}\n", category_name(category)));
    }
    let x = &cohort.exclusions;
    text.push_str(&format!(
        "left out: {} series of {} opted-out patients, {} incomplete series, {} not analysed, \
         {} unreadable\n",
        x.opted_out_series, x.opted_out_patients, x.incomplete_series, x.not_analysed, x.unreadable
    ));
    if let Some(until) = &cohort.keep_until {
        text.push_str(&format!("keep until {until}\n"));
    }
    if cohort.destroyed_at.is_some() {
        text.push_str("destroyed\n");
    }
    text
}
