//! `research dataset`: a cohort's annotated radiographs in the lab's
//! dataset format (`docs/dataset-format.md`), so that `chestnode train`
//! and `evaluate` learn from and measure against the hospital's own
//! doctors.
//!
//! The build runs where the ledger is (the server, over the control
//! socket) and writes only inside the data directory: a plain dataset
//! folder `research/staging/COHORT/dataset-vN-TIME/` (the research folder
//! is mode 0700). The operator's own command then copies it to `--out`
//! and deletes the staging copy ([`collect`]), so nothing is left behind.
//! Unlike an export it is not sealed: it exists in staging only between
//! the two steps of one command.
//!
//! De-identified by default, exactly as an export (`deid::deidentify` with
//! the cohort's UID key, under research IDs, dates shifted); with
//! `identified` the stored originals are copied unchanged and the audit
//! entry says the dataset bears PHI. Labels come from the annotations'
//! consensus ([`labels`]); images without any annotation, or whose readers
//! settle on nothing, are left out and counted. Every label's `source` is
//! `hospital:COHORT-vN`, and its split is by research ID.

mod labels;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use dicom_dictionary_std::tags;
use serde::{Deserialize, Serialize};

use super::annotations::{self, Annotation, Consensus};
use super::cohort::{self, header::SeriesHeader};
use super::deid::{DeidError, DeidOptions, PatientKey, UidRemapper, deidentify};
use super::private_dir::{self, staging_dir};
use super::vault::Vault;
use super::{AuditLog, AuditRecord};
use crate::lab::dataset::{DATASET_SCHEMA, DatasetWriter, SplitFractions};
use crate::ledger::Ledger;
use labels::{ImageFacts, assign_splits, label};

/// What to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRequest {
    pub cohort: String,
    /// The cohort version; the newest when `None`.
    pub version: Option<u32>,
    pub consensus: Consensus,
    /// Keep the original, identified images (PHI).
    pub identified: bool,
    pub fractions: SplitFractions,
    /// Seed of the per-patient split.
    pub seed: u64,
}

/// What the build left in staging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetBuilt {
    pub cohort: String,
    pub version: u32,
    /// The dataset folder, relative to the data directory.
    pub staging: PathBuf,
    pub identified: bool,
    pub images: usize,
    pub patients: usize,
    /// Images per split.
    pub splits: BTreeMap<String, usize>,
    /// Images without any current annotation (left out).
    pub unannotated: usize,
    /// Annotated images whose readers settled on nothing (left out).
    pub no_consensus: usize,
    /// Images of patients who opted out since the cohort was chosen, or
    /// that de-identification excluded or could not read (left out).
    pub excluded: usize,
}

/// An image that goes in.
struct Planned {
    path: PathBuf,
    research_id: String,
    date_offset_days: i32,
    annotations: Vec<Annotation>,
    consensus: annotations::ImageConsensus,
}

/// Builds the dataset of a cohort version into staging; see the module
/// docs.
pub fn build(
    ledger: &Ledger,
    data_dir: &Path,
    vault: &mut Vault,
    audit: &AuditLog,
    request: &DatasetRequest,
    operator: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<DatasetBuilt> {
    let cohort = cohort::load(ledger, &request.cohort, request.version)?;
    anyhow::ensure!(
        cohort.destroyed_at.is_none(),
        "cohort {} was destroyed; it cannot be made a dataset",
        cohort.name
    );
    let keys = vault.cohort_keys(&cohort.name)?;
    let uids = UidRemapper::new(keys.uid_secret);
    let source = format!("hospital:{}-v{}", cohort.name, cohort.version);

    let mut planned = Vec::new();
    let (mut unannotated, mut no_consensus, mut excluded) = (0, 0, 0);
    for member in &cohort.radiographs {
        for sop in ledger.series().members(&member.series_instance_uid)? {
            let current = annotations::current_for_image(ledger, &sop)?;
            if current.is_empty() {
                unannotated += 1;
                continue;
            }
            let refs: Vec<&Annotation> = current.iter().collect();
            let settled = annotations::consensus(&refs, request.consensus);
            if settled.findings.is_empty() && settled.regions.is_empty() {
                no_consensus += 1;
                continue;
            }
            let Some(instance) = ledger.find_instance(&sop)? else {
                excluded += 1;
                continue;
            };
            let path = data_dir.join(&instance.path);
            let header = SeriesHeader::read(&path)?;
            if vault.is_opted_out(&header.patient_id) {
                excluded += 1;
                continue;
            }
            let pseudonym = vault.pseudonym(&header.patient_id, &header.patient_name)?;
            planned.push(Planned {
                path,
                research_id: pseudonym.research_id,
                date_offset_days: pseudonym.date_offset_days,
                annotations: current,
                consensus: settled,
            });
        }
    }
    vault.save()?;
    anyhow::ensure!(
        !planned.is_empty(),
        "cohort {} version {} has no annotated radiograph ({unannotated} without annotations, \
         {no_consensus} without consensus); nothing to build",
        cohort.name,
        cohort.version
    );
    planned.sort_by(|a, b| a.research_id.cmp(&b.research_id));
    let patients: Vec<String> = planned.iter().map(|p| p.research_id.clone()).collect();
    let splits = assign_splits(&patients, request.fractions, request.seed);

    let staging = staging_dir(data_dir, &cohort.name)?;
    private_dir::ensure_research_dir(data_dir)?;
    let name = format!(
        "dataset-v{}-{}",
        cohort.version,
        now.format("%Y%m%dT%H%M%S")
    );
    let work = staging.join(format!("{name}.building"));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let written = write_all(
        &work,
        &planned,
        &splits,
        &uids,
        &source,
        request,
        &mut excluded,
    );
    let (images, by_split) = match written {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&work);
            return Err(error);
        }
    };
    let done = staging.join(&name);
    std::fs::rename(&work, &done)?;
    private_dir::sync_dir(&staging)?;
    let staging_rel = done.strip_prefix(data_dir).unwrap_or(&done).to_path_buf();
    let built = DatasetBuilt {
        cohort: cohort.name.clone(),
        version: cohort.version,
        staging: staging_rel,
        identified: request.identified,
        images,
        patients: splits.len(),
        splits: by_split,
        unannotated,
        no_consensus,
        excluded,
    };
    audit.append(AuditRecord {
        operator: operator.to_owned(),
        action: "dataset".into(),
        subject: cohort.name.clone(),
        details: serde_json::json!({
            "version": cohort.version,
            "identified": request.identified,
            "phi": request.identified,
            "consensus": request.consensus,
            "images": built.images,
            "patients": built.patients,
            "splits": built.splits,
            "unannotated": unannotated,
            "no_consensus": no_consensus,
            "excluded": built.excluded,
        }),
        sha256: None,
        destination: Some(format!("staging {}", built.staging.display())),
    })?;
    Ok(built)
}

/// Writes every planned image and its label; returns the count and the
/// images per split.
fn write_all(
    work: &Path,
    planned: &[Planned],
    splits: &BTreeMap<String, crate::lab::dataset::Split>,
    uids: &UidRemapper,
    source: &str,
    request: &DatasetRequest,
    excluded: &mut usize,
) -> anyhow::Result<(usize, BTreeMap<String, usize>)> {
    let writer = DatasetWriter::create(work)?;
    let mut listed = Vec::new();
    let mut by_split: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_patient: BTreeMap<&str, usize> = BTreeMap::new();
    for item in planned {
        let object = dicom_object::open_file(&item.path)
            .with_context(|| format!("reading {}", item.path.display()))?;
        let object = if request.identified {
            object
        } else {
            let patient = PatientKey {
                research_id: item.research_id.clone(),
                date_offset_days: item.date_offset_days,
            };
            match deidentify(&object, &patient, uids, &DeidOptions::default()) {
                Ok(done) => done.object,
                Err(DeidError::Excluded(why)) => {
                    tracing::info!("dataset: an image was excluded: {why}");
                    *excluded += 1;
                    continue;
                }
                Err(DeidError::Failed(error)) => {
                    return Err(error.context("de-identifying an image"));
                }
            }
        };
        let number = per_patient.entry(&item.research_id).or_default();
        *number += 1;
        let name = format!("{}-{:03}", item.research_id, number);
        object.write_to_file(writer.image_path(&name))?;
        let split = splits[&item.research_id];
        let read = |tag| crate::imaging::attributes::text(&object, tag).unwrap_or_default();
        let number_of = |tag| -> anyhow::Result<u32> { Ok(object.element(tag)?.to_int()?) };
        let spacing = object
            .element(tags::IMAGER_PIXEL_SPACING)
            .or_else(|_| object.element(tags::PIXEL_SPACING))
            .ok()
            .and_then(|e| e.to_multi_float32().ok())
            .and_then(|v| (v.len() == 2).then(|| [v[0], v[1]]));
        let facts = ImageFacts {
            image: &DatasetWriter::image(&name),
            source,
            patient: &item.research_id,
            split,
            sop_instance_uid: &read(tags::SOP_INSTANCE_UID),
            rows: number_of(tags::ROWS)?,
            columns: number_of(tags::COLUMNS)?,
            spacing_mm: spacing,
            photometric: &read(tags::PHOTOMETRIC_INTERPRETATION),
        };
        let refs: Vec<&Annotation> = item.annotations.iter().collect();
        let value = label(&facts, &item.consensus, request.consensus, &refs);
        listed.push(writer.write_label(&name, &value)?);
        *by_split.entry(split.key().to_owned()).or_default() += 1;
    }
    writer.write_manifest(&serde_json::json!({
        "schema": DATASET_SCHEMA,
        "generator": "chestnode research dataset",
        "source": source,
        "identified": request.identified,
        "consensus": request.consensus,
        "count": listed.len(),
        "labels": listed,
    }))?;
    Ok((listed.len(), by_split))
}

/// Moves a built dataset from staging to `out` (absent or empty) in the
/// operator's own process: copied beside `out` and renamed, then the
/// staging copy is deleted. Audited with the destination.
pub fn collect(
    data_dir: &Path,
    audit: &AuditLog,
    built: &DatasetBuilt,
    out: &Path,
    operator: &str,
) -> anyhow::Result<PathBuf> {
    let from = data_dir.join(&built.staging);
    let inside = !built
        .staging
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)));
    anyhow::ensure!(
        inside && from.starts_with(private_dir::research_dir(data_dir)) && from.is_dir(),
        "the built dataset {} is not in staging",
        built.staging.display()
    );
    if out.exists() {
        anyhow::ensure!(
            std::fs::read_dir(out)?.next().is_none(),
            "the dataset directory {} is not empty",
            out.display()
        );
        std::fs::remove_dir(out)?;
    }
    let partial = out.with_extension("partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    let copied = copy_tree(&from, &partial).and_then(|_| Ok(std::fs::rename(&partial, out)?));
    if let Err(error) = copied {
        let _ = std::fs::remove_dir_all(&partial);
        let _ = std::fs::remove_dir_all(&from);
        return Err(error.context(format!("writing the dataset to {}", out.display())));
    }
    std::fs::remove_dir_all(&from)?;
    audit.append(AuditRecord {
        operator: operator.to_owned(),
        action: "dataset.deliver".into(),
        subject: built.cohort.clone(),
        details: serde_json::json!({
            "version": built.version,
            "identified": built.identified,
            "phi": built.identified,
            "images": built.images,
        }),
        sha256: None,
        destination: Some(out.display().to_string()),
    })?;
    Ok(out.to_path_buf())
}

/// Copies the regular files of a folder tree.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
