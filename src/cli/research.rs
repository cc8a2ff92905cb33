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
    self, AuditLog, DeidOptions, Destination, ExportRequest, PixelRegion, Recipients,
    ResearchReply, ResearchRequest, SftpTarget, VaultKey,
    cohort::{CategorySource, CohortCriteria, CohortVersion, category_name, parse_category},
};

use chestnode::research::annotations::ImportFormat;

use super::ConfigArgs;

// `research clinical …`: clinical records import and show.
#[path = "research_clinical.rs"]
mod clinical;

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

#[derive(Args)]
struct ExportArgs {
    cohort: String,
    /// Cohort version [default: the newest]
    #[arg(long)]
    version: Option<u32>,
    /// A directory (absent or empty), or a FILE.age for an encrypted package
    #[arg(long, value_name = "DIR|FILE.age")]
    out: PathBuf,
    /// age X25519 recipient (age1…); repeatable
    #[arg(long, value_name = "AGE1…")]
    recipient: Vec<String>,
    /// File with one age recipient per line (# comments allowed)
    #[arg(long, value_name = "FILE")]
    recipients_file: Option<PathBuf>,
    /// File holding the passphrase the package is encrypted to
    #[arg(long, value_name = "FILE")]
    export_passphrase_file: Option<PathBuf>,
    /// Upload the package to sftp://user@host[:port]/dir
    #[arg(long, value_name = "URL")]
    sftp: Option<String>,
    /// SSH private key for --sftp
    #[arg(long, value_name = "FILE", requires = "sftp")]
    ssh_key: Option<PathBuf>,
    /// known_hosts file holding the server's host key, for --sftp
    #[arg(long, value_name = "FILE", requires = "sftp")]
    known_hosts: Option<PathBuf>,
    /// Keep at least until this date, YYYY-MM-DD [default: research.keep_years from now]
    #[arg(long, value_name = "DATE")]
    keep_until: Option<String>,
    /// Leave out the node's SR and GSPS of each radiograph.
    #[arg(long)]
    no_results: bool,
    /// Doctors' annotations go out as what the readers settle on (union,
    /// intersection or majority) [default: each reader's, pseudonymised]
    #[arg(long, value_name = "RULE")]
    consensus: Option<String>,
    /// Blank this region (x,y,width,height in pixels) of every image
    /// ("clean pixel"); repeatable
    #[arg(long, value_name = "X,Y,W,H")]
    clean_pixel: Vec<String>,
    /// Dates get the basic profile's action instead of a per-patient shift.
    #[arg(long)]
    no_date_shift: bool,
    /// Age, sex, size and weight get the basic profile's action.
    #[arg(long)]
    no_patient_characteristics: bool,
    /// Descriptions get the basic profile's action instead of being cleaned.
    #[arg(long)]
    no_clean_descriptors: bool,
}

#[derive(Args)]
struct DatasetArgs {
    cohort: String,
    /// Cohort version [default: the newest]
    #[arg(long)]
    version: Option<u32>,
    /// The dataset directory (absent or empty)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How readers' differences are settled: union, intersection or majority
    #[arg(long, value_name = "RULE", default_value = "majority")]
    consensus: String,
    /// Keep the original, identified images (PHI; audited as such)
    #[arg(long)]
    identified: bool,
    /// Share of patients held out for validation
    #[arg(long, value_name = "F", default_value_t = 0.15)]
    validation_fraction: f64,
    /// Share of patients held out for testing
    #[arg(long, value_name = "F", default_value_t = 0.15)]
    test_fraction: f64,
    /// Seed of the per-patient split
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
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

fn run_export(
    export: &ExportArgs,
    args: &ResearchArgs,
    data_dir: &Path,
    operator: &str,
    ask: &dyn Fn(ResearchRequest) -> anyhow::Result<ResearchReply>,
) -> anyhow::Result<()> {
    let out = std::path::absolute(&export.out)?;
    let sealed = out.extension().is_some_and(|e| e == "age");
    let mut recipients = export.recipient.clone();
    if let Some(file) = &export.recipients_file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        recipients.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    let destination = match (
        sealed,
        &export.export_passphrase_file,
        recipients.is_empty(),
    ) {
        (false, None, true) => Destination::Directory(out.clone()),
        (false, _, _) => anyhow::bail!(
            "recipients or an export passphrase encrypt the export: give --out a FILE.age"
        ),
        (true, Some(file), true) => Destination::Sealed {
            file: out.clone(),
            recipients: Recipients::Passphrase(read_secret(file)?),
        },
        (true, None, false) => Destination::Sealed {
            file: out.clone(),
            recipients: Recipients::X25519(recipients),
        },
        (true, None, true) => anyhow::bail!(
            "an age package needs --recipient, --recipients-file or --export-passphrase-file"
        ),
        (true, Some(_), false) => {
            anyhow::bail!("give either recipients or an export passphrase, not both")
        }
    };
    let sftp = match &export.sftp {
        Some(url) => Some(SftpTarget::parse(
            url,
            export.ssh_key.clone().context("--sftp needs --ssh-key")?,
            export
                .known_hosts
                .clone()
                .context("--sftp needs --known-hosts (the server's host key is checked)")?,
        )?),
        None => None,
    };
    // Refuse a busy destination before any work.
    match &destination {
        Destination::Directory(dir) => anyhow::ensure!(
            !dir.exists() || std::fs::read_dir(dir)?.next().is_none(),
            "the export directory {} is not empty",
            dir.display()
        ),
        Destination::Sealed { file, .. } => {
            anyhow::ensure!(!file.exists(), "{} already exists", file.display())
        }
    }
    let regions = export
        .clean_pixel
        .iter()
        .map(|r| parse_region(r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = DeidOptions {
        retain_longitudinal_modified_dates: !export.no_date_shift,
        retain_patient_characteristics: !export.no_patient_characteristics,
        clean_descriptors: !export.no_clean_descriptors,
        retain_device_identity: false,
        clean_pixel_regions: regions,
    };
    let key = vault_key(args)?;
    let reply = ask(ResearchRequest::ExportBuild {
        export: ExportRequest {
            cohort: export.cohort.clone(),
            version: export.version,
            options,
            include_results: !export.no_results,
            keep_until: export.keep_until.clone(),
            annotation_consensus: export
                .consensus
                .as_deref()
                .map(chestnode::research::annotations::Consensus::parse)
                .transpose()?,
        },
        key: key.clone(),
        operator: operator.to_owned(),
    })?;
    let ResearchReply::Exported { built } = reply else {
        anyhow::bail!("unexpected reply");
    };
    let mut vault = research::open_vault(data_dir, &key.source())?;
    let audit = AuditLog::open(data_dir)?;
    let delivered = research::deliver(
        data_dir,
        &mut vault,
        &audit,
        &built,
        destination,
        sftp.as_ref(),
        operator,
    )?;
    let report = &built.report;
    println!(
        "exported cohort {} version {}: {} patients, {} files to {}",
        built.cohort,
        built.version,
        report.patients,
        built.files,
        delivered.path.display()
    );
    for (reason, n) in &report.excluded {
        println!("  left out: {n} ({reason})");
    }
    if report.opted_out_patients_at_export > 0 {
        println!(
            "  left out: {} patient(s) who opted out since the cohort was chosen",
            report.opted_out_patients_at_export
        );
    }
    if report.clinical_rows > 0 {
        println!("  clinical.csv: {} record(s)", report.clinical_rows);
    }
    println!("sha256 {}", delivered.sha256);
    if let Some(upload) = delivered.upload {
        println!(
            "uploaded {} bytes to {} (sha256 {})",
            upload.bytes, upload.remote_path, upload.sha256
        );
    }
    Ok(())
}

fn run_dataset(
    dataset: &DatasetArgs,
    args: &ResearchArgs,
    data_dir: &Path,
    operator: &str,
    ask: &dyn Fn(ResearchRequest) -> anyhow::Result<ResearchReply>,
) -> anyhow::Result<()> {
    let out = std::path::absolute(&dataset.out)?;
    anyhow::ensure!(
        !out.exists() || std::fs::read_dir(&out)?.next().is_none(),
        "the dataset directory {} is not empty",
        out.display()
    );
    let fractions = chestnode::lab::dataset::SplitFractions {
        validation: dataset.validation_fraction,
        test: dataset.test_fraction,
    };
    anyhow::ensure!(
        fractions.validation >= 0.0
            && fractions.test >= 0.0
            && fractions.validation + fractions.test < 1.0,
        "the validation and test fractions must leave some training data"
    );
    let reply = ask(ResearchRequest::Dataset {
        dataset: research::DatasetRequest {
            cohort: dataset.cohort.clone(),
            version: dataset.version,
            consensus: chestnode::research::annotations::Consensus::parse(&dataset.consensus)?,
            identified: dataset.identified,
            fractions,
            seed: dataset.seed,
        },
        key: vault_key(args)?,
        operator: operator.to_owned(),
    })?;
    let ResearchReply::Dataset { built } = reply else {
        anyhow::bail!("unexpected reply");
    };
    let audit = AuditLog::open(data_dir)?;
    let path = research::collect_dataset(data_dir, &audit, &built, &out, operator)?;
    let splits: Vec<String> = built
        .splits
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!(
        "wrote {} annotated image(s) of {} patient(s) of cohort {} version {} to {} ({}{})",
        built.images,
        built.patients,
        built.cohort,
        built.version,
        path.display(),
        splits.join(", "),
        if built.identified {
            "; IDENTIFIED: holds patient data"
        } else {
            "; de-identified"
        }
    );
    println!(
        "  left out: {} without annotations, {} without consensus, {} excluded",
        built.unannotated, built.no_consensus, built.excluded
    );
    Ok(())
}

fn parse_region(text: &str) -> anyhow::Result<PixelRegion> {
    let numbers: Vec<u32> = text
        .split(',')
        .map(|n| n.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("--clean-pixel is X,Y,WIDTH,HEIGHT: {text:?}"))?;
    let [x, y, width, height] = numbers[..] else {
        anyhow::bail!("--clean-pixel is X,Y,WIDTH,HEIGHT: {text:?}");
    };
    Ok(PixelRegion {
        x,
        y,
        width,
        height,
    })
}
