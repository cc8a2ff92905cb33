//! The research commands that need the ledger, as requests a running
//! server answers over its control socket (or the command runs itself
//! when no server holds the index), so that research never stops ingest.
//!
//! The vault key travels in the request: over the data directory's Unix
//! socket, to the process that owns the data, and it is never logged.
//! Errors come back as [`ResearchReply::Failed`], so the operator sees the
//! real reason and not a timeout.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::annotations::{self, Annotation, ImportFormat, Imported, PairAgreement};
use super::clinical::{self, ClinicalCsv, ImportSummary};
use super::cohort::{self, CohortCriteria, CohortVersion};
use super::dataset::{DatasetBuilt, DatasetRequest};
use super::destroy::{Destroyed, destroy};
use super::export::{ExportBuilt, ExportRequest, build};
use super::vault::{KeySource, Vault};
use super::{AuditLog, AuditRecord};
use crate::config::ResearchConfig;
use crate::ledger::Ledger;

/// How the vault is opened: a passphrase, or a key file on the server's
/// file system.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VaultKey {
    Passphrase(String),
    KeyFile(PathBuf),
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultKey::Passphrase(_) => f.write_str("Passphrase(..)"),
            VaultKey::KeyFile(path) => write!(f, "KeyFile({})", path.display()),
        }
    }
}

impl VaultKey {
    /// The vault's own key type.
    pub fn source(&self) -> KeySource {
        match self {
            VaultKey::Passphrase(p) => KeySource::Passphrase(Zeroizing::new(p.clone())),
            VaultKey::KeyFile(path) => KeySource::KeyFile(path.clone()),
        }
    }
}

/// A research request that needs the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "research", rename_all = "kebab-case")]
pub enum ResearchRequest {
    CohortCreate {
        criteria: CohortCriteria,
        key: VaultKey,
        operator: String,
    },
    CohortShow {
        name: String,
        version: Option<u32>,
    },
    CohortList,
    ExportBuild {
        /// (Not `request`: the control socket's own tag has that name.)
        export: ExportRequest,
        key: VaultKey,
        operator: String,
    },
    Destroy {
        cohort: String,
        force: bool,
        key: VaultKey,
        operator: String,
    },
    /// Annotations from a file's content (the server reads no client
    /// paths).
    AnnotationsImport {
        format: ImportFormat,
        content: String,
        reader: String,
        operator: String,
    },
    /// The current annotations of a cohort, or of one image.
    AnnotationsList {
        cohort: Option<String>,
        image: Option<String>,
    },
    /// Agreement between the readers of a cohort's images.
    AnnotationsAgreement {
        cohort: String,
    },
    /// A clinical CSV file, sent as its content: the server reads no path
    /// on the client's behalf.
    ClinicalImport {
        csv: ClinicalCsv,
        allow_unknown: bool,
        key: VaultKey,
        operator: String,
    },
    /// A cohort's annotated radiographs as a lab dataset, built into
    /// staging (`research dataset`).
    Dataset {
        dataset: DatasetRequest,
        key: VaultKey,
        operator: String,
    },
}

/// A cohort's newest version in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortSummary {
    pub name: String,
    pub version: u32,
    pub radiographs: usize,
    pub paired_ct: usize,
    pub patients: usize,
    pub keep_until: Option<String>,
    pub destroyed: bool,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum ResearchReply {
    Cohort { cohort: Box<CohortVersion> },
    Cohorts { cohorts: Vec<CohortSummary> },
    Exported { built: Box<ExportBuilt> },
    Destroyed { destroyed: Destroyed },
    AnnotationsImported { imported: Imported },
    Annotations { annotations: Vec<Annotation> },
    Agreement { pairs: Vec<PairAgreement> },
    ClinicalImported { summary: ImportSummary },
    Dataset { built: Box<DatasetBuilt> },
    Failed { error: String },
}

/// Runs a request against the ledger (in the server, on a blocking
/// thread; or in the command itself when no server runs).
pub fn execute(
    ledger: &Ledger,
    data_dir: &Path,
    config: &ResearchConfig,
    request: ResearchRequest,
) -> ResearchReply {
    match run(ledger, data_dir, config, request) {
        Ok(reply) => reply,
        Err(error) => ResearchReply::Failed {
            error: format!("{error:#}"),
        },
    }
}

fn run(
    ledger: &Ledger,
    data_dir: &Path,
    config: &ResearchConfig,
    request: ResearchRequest,
) -> anyhow::Result<ResearchReply> {
    let now = chrono::Utc::now();
    Ok(match request {
        ResearchRequest::CohortCreate {
            criteria,
            key,
            operator,
        } => {
            let vault = Vault::open(data_dir, &key.source())?;
            let audit = AuditLog::open(data_dir)?;
            let chosen = cohort::select(
                ledger,
                data_dir,
                &vault,
                criteria,
                &operator,
                now.timestamp().max(0) as u64,
            )?;
            drop(vault);
            let stored = cohort::store(ledger, chosen)?;
            audit.append(AuditRecord {
                operator,
                action: "cohort.create".into(),
                subject: stored.name.clone(),
                details: serde_json::json!({
                    "version": stored.version,
                    "criteria": stored.criteria,
                    "radiographs": stored.radiographs.len(),
                    "paired_ct": stored.paired_ct.len(),
                    "patients": stored.patients,
                    "exclusions": stored.exclusions,
                }),
                sha256: None,
                destination: None,
            })?;
            ResearchReply::Cohort {
                cohort: Box::new(stored),
            }
        }
        ResearchRequest::CohortShow { name, version } => ResearchReply::Cohort {
            cohort: Box::new(cohort::load(ledger, &name, version)?),
        },
        ResearchRequest::CohortList => {
            let mut cohorts = Vec::new();
            for name in ledger.cohorts().names()? {
                let latest = cohort::load(ledger, &name, None)?;
                cohorts.push(CohortSummary {
                    name,
                    version: latest.version,
                    radiographs: latest.radiographs.len(),
                    paired_ct: latest.paired_ct.len(),
                    patients: latest.patients,
                    keep_until: latest.keep_until.clone(),
                    destroyed: latest.destroyed_at.is_some(),
                });
            }
            ResearchReply::Cohorts { cohorts }
        }
        ResearchRequest::ExportBuild {
            export,
            key,
            operator,
        } => {
            let mut vault = Vault::open(data_dir, &key.source())?;
            let audit = AuditLog::open(data_dir)?;
            let built = build(
                ledger,
                data_dir,
                &mut vault,
                &audit,
                &export,
                config.keep_years,
                &clinical::Schema::new(&config.clinical.extra_columns)?,
                &operator,
                now,
            )?;
            ResearchReply::Exported {
                built: Box::new(built),
            }
        }
        ResearchRequest::Destroy {
            cohort,
            force,
            key,
            operator,
        } => {
            let mut vault = Vault::open(data_dir, &key.source())?;
            let audit = AuditLog::open(data_dir)?;
            let destroyed = destroy(
                ledger, data_dir, &mut vault, &audit, &cohort, force, &operator, now,
            )?;
            ResearchReply::Destroyed { destroyed }
        }
        ResearchRequest::AnnotationsImport {
            format,
            content,
            reader,
            operator,
        } => {
            let imported = annotations::import(
                ledger,
                data_dir,
                format,
                &content,
                &reader,
                now.timestamp().max(0) as u64,
            )?;
            AuditLog::open(data_dir)?.append(AuditRecord {
                operator,
                action: "annotations.import".into(),
                subject: "annotations".into(),
                details: serde_json::json!({
                    "annotations": imported.annotations,
                    "images": imported.images,
                    "default_reader": reader,
                }),
                sha256: None,
                destination: None,
            })?;
            ResearchReply::AnnotationsImported { imported }
        }
        ResearchRequest::AnnotationsList { cohort, image } => {
            let found = match (cohort, image) {
                (Some(cohort), None) => annotations::for_cohort(ledger, &cohort, None)?,
                (None, Some(image)) => annotations::current_for_image(ledger, &image)?,
                _ => anyhow::bail!("list the annotations of a cohort or of one image"),
            };
            ResearchReply::Annotations { annotations: found }
        }
        ResearchRequest::AnnotationsAgreement { cohort } => ResearchReply::Agreement {
            pairs: annotations::agreement(&annotations::for_cohort(ledger, &cohort, None)?),
        },
        ResearchRequest::ClinicalImport {
            csv,
            allow_unknown,
            key,
            operator,
        } => {
            let schema = clinical::Schema::new(&config.clinical.extra_columns)?;
            let mut vault = Vault::open(data_dir, &key.source())?;
            let audit = AuditLog::open(data_dir)?;
            let summary = clinical::import(
                ledger,
                data_dir,
                &mut vault,
                &audit,
                &schema,
                &csv.0,
                allow_unknown,
                &operator,
            )?;
            ResearchReply::ClinicalImported { summary }
        }
        ResearchRequest::Dataset {
            dataset,
            key,
            operator,
        } => {
            let mut vault = Vault::open(data_dir, &key.source())?;
            let audit = AuditLog::open(data_dir)?;
            let built = super::dataset::build(
                ledger, data_dir, &mut vault, &audit, &dataset, &operator, now,
            )?;
            ResearchReply::Dataset {
                built: Box::new(built),
            }
        }
    })
}
