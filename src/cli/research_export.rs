//! `chestnode research export` and `research dataset`: the two commands
//! that take a cohort out of the node. They are built where the index is
//! (the running server, over the control socket) into the data directory's
//! staging, then delivered from here to where the operator says: this
//! process, not the server, writes outside the data directory.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use chestnode::research::{
    self, AuditLog, DeidOptions, Destination, ExportRequest, PixelRegion, Recipients,
    ResearchReply, ResearchRequest, SftpTarget,
};

use super::{ResearchArgs, read_secret, vault_key};

#[derive(Args)]
pub struct ExportArgs {
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
pub struct DatasetArgs {
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

pub fn run_export(
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
    destination.check_free()?;
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

pub fn run_dataset(
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
