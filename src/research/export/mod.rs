//! Building an export: every image of a cohort version de-identified under
//! its patient's research ID, with the node's own result objects, a report
//! and a manifest, sealed into the node-side staging area.
//!
//! The build runs where the ledger is (in the server, over the control
//! socket, when one runs) and writes only inside the data directory. What
//! it leaves is one `age` file in `research/staging/COHORT/`, encrypted to
//! the cohort's own staging key in the vault: the plain de-identified tree
//! exists only while the build runs. Delivery to the partner
//! ([`super::deliver`]) opens that file with the cohort key; destroying the
//! cohort deletes the file and the key, so even a copy of the disk cannot
//! bring it back.
//!
//! Layout of the tree (and of every delivery):
//! `COHORT-vN/RESEARCH_ID/STUDY_UID/SERIES_UID/SOP_UID.dcm`, with
//! `export-report.json`, `export-report.md`, `manifest.json` and
//! `SHA256SUMS` at the top, and `clinical.csv` when the exported patients
//! have clinical records (`super::clinical`). All UIDs are the
//! de-identified ones. An annotated radiograph's doctors' annotations come
//! as one TID 1500 SR in its study (`annotations::write_sr_for_image`).

mod report;

pub use report::{DeidActions, ExportReport, ModalityCounts, Pairing};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::clinical::{Schema, write_clinical_csv};
use super::cohort::{self, CohortVersion, category_name, header::SeriesHeader};
use super::deid::{DeidError, DeidOptions, PatientKey, UidRemapper, deidentify};
use super::package::{self, Recipients};
use super::private_dir::{self, staging_dir};
use super::vault::Vault;
use super::{AuditLog, AuditRecord};
use crate::ledger::Ledger;

/// What to export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    pub cohort: String,
    /// The cohort version; the newest when `None`.
    pub version: Option<u32>,
    pub options: DeidOptions,
    /// Include the node's SR and GSPS of each radiograph.
    pub include_results: bool,
    /// Keep the export at least until this date (`YYYY-MM-DD`); at least
    /// `research.keep_years` from now either way.
    pub keep_until: Option<String>,
    /// Doctors' annotations go out as each reader's (`None`), or as what
    /// the readers settle on under this rule.
    #[serde(default)]
    pub annotation_consensus: Option<crate::research::annotations::Consensus>,
}

/// What the build left in staging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportBuilt {
    pub cohort: String,
    pub version: u32,
    /// The top folder name inside the package (`COHORT-vN`).
    pub top: String,
    /// The staging package, relative to the data directory.
    pub staging: PathBuf,
    pub staging_sha256: String,
    pub files: usize,
    pub report: ExportReport,
}

/// Counts while building.
#[derive(Default)]
struct Tally {
    patients: HashSet<String>,
    studies: HashSet<String>,
    by_modality: BTreeMap<String, ModalityCounts>,
    series_by_modality: BTreeMap<String, HashSet<String>>,
    /// Original Series Instance UID to (de-identified UID, research ID).
    renamed_series: HashMap<String, (String, String)>,
    result_objects: usize,
    excluded: BTreeMap<String, usize>,
    opted_out_now: HashSet<String>,
    missing: usize,
    files: usize,
    actions: DeidActions,
}

/// Builds the export of a cohort version into staging; see the module
/// docs. `keep_years` is the minimum retention (`research.keep_years`);
/// `clinical` the clinical data schema, whose columns `clinical.csv` has.
#[allow(clippy::too_many_arguments)]
pub fn build(
    ledger: &Ledger,
    data_dir: &Path,
    vault: &mut Vault,
    audit: &AuditLog,
    request: &ExportRequest,
    keep_years: u32,
    clinical: &Schema,
    operator: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<ExportBuilt> {
    let mut cohort = cohort::load(ledger, &request.cohort, request.version)?;
    if cohort.destroyed_at.is_some() {
        anyhow::bail!(
            "cohort {} was destroyed; it cannot be exported",
            cohort.name
        );
    }
    if cohort.is_empty() {
        anyhow::bail!(
            "cohort {} version {} has zero studies; nothing to export",
            cohort.name,
            cohort.version
        );
    }
    let keep_until = keep_until(now, keep_years, request.keep_until.as_deref(), &cohort)?;
    let keys = vault.cohort_keys(&cohort.name)?;
    let uids = UidRemapper::new(keys.uid_secret);
    let top = format!("{}-v{}", cohort.name, cohort.version);

    let staging = staging_dir(data_dir, &cohort.name)?;
    private_dir::ensure_research_dir(data_dir)?;
    std::fs::create_dir_all(&staging)?;
    let work = staging.join(format!("v{}.building", cohort.version));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let tree = work.join(&top);
    std::fs::create_dir_all(&tree)?;

    let built = (|| {
        let mut tally = Tally::default();
        let series: Vec<(&str, bool)> = cohort
            .radiographs
            .iter()
            .map(|m| (m.series_instance_uid.as_str(), true))
            .chain(
                cohort
                    .paired_ct
                    .iter()
                    .map(|m| (m.series_instance_uid.as_str(), false)),
            )
            .collect();
        for (series_uid, is_radiograph) in series {
            let mut objects = Vec::new();
            for sop in ledger.series().members(series_uid)? {
                let Some(instance) = ledger.find_instance(&sop)? else {
                    tally.missing += 1;
                    continue;
                };
                objects.push(data_dir.join(&instance.path));
                if is_radiograph && request.include_results {
                    let queue = ledger.queue();
                    if let Some(job) = queue.get(instance.job_id)? {
                        for object in queue.published(&job)? {
                            objects.push(data_dir.join(&object.path));
                        }
                    }
                }
            }
            if objects.is_empty() {
                continue;
            }
            for path in objects {
                let object = match dicom_object::open_file(&path) {
                    Ok(object) => object,
                    Err(error) => {
                        tracing::warn!("export: an object could not be read: {error}");
                        *tally.excluded.entry("unreadable".into()).or_default() += 1;
                        continue;
                    }
                };
                let header = SeriesHeader::of(&object);
                if vault.is_opted_out(&header.patient_id) {
                    tally.opted_out_now.insert(header.patient_id.clone());
                    continue;
                }
                let pseudonym = vault.pseudonym(&header.patient_id, &header.patient_name)?;
                let patient = PatientKey {
                    research_id: pseudonym.research_id.clone(),
                    date_offset_days: pseudonym.date_offset_days,
                };
                let done = match deidentify(&object, &patient, &uids, &request.options) {
                    Ok(done) => done,
                    Err(DeidError::Excluded(why)) => {
                        *tally.excluded.entry(why.to_string()).or_default() += 1;
                        continue;
                    }
                    Err(DeidError::Failed(error)) => {
                        return Err(error.context("de-identifying an object"));
                    }
                };
                tally.actions.removed += done.removed;
                tally.actions.replaced += done.replaced;
                tally.actions.remapped_uids += done.remapped_uids;
                tally.actions.shifted_dates += done.shifted_dates;
                let out = &done.object;
                let uid = |tag| -> anyhow::Result<String> {
                    Ok(out
                        .element(tag)?
                        .to_str()?
                        .trim_end_matches(['\0', ' '])
                        .to_owned())
                };
                use dicom_dictionary_std::tags;
                let study = uid(tags::STUDY_INSTANCE_UID)?;
                let series = uid(tags::SERIES_INSTANCE_UID)?;
                let sop = uid(tags::SOP_INSTANCE_UID)?;
                let dir = tree.join(&pseudonym.research_id).join(&study).join(&series);
                std::fs::create_dir_all(&dir)?;
                out.write_to_file(dir.join(format!("{sop}.dcm")))?;
                tally.files += 1;
                // Doctors' annotations of a radiograph: one TID 1500 SR beside it.
                if header.modality != "SR" && header.modality != "PR" {
                    let original =
                        crate::imaging::attributes::text(&object, tags::SOP_INSTANCE_UID);
                    tally.files += super::annotations::write_sr_for_image(
                        ledger,
                        &original.unwrap_or_default(),
                        out,
                        &uids,
                        pseudonym.date_offset_days,
                        &tree.join(&pseudonym.research_id).join(&study),
                        request.annotation_consensus,
                    )?;
                }
                tally.patients.insert(pseudonym.research_id.clone());
                tally.studies.insert(study);
                if header.modality == "SR" || header.modality == "PR" {
                    tally.result_objects += 1;
                } else {
                    tally.renamed_series.insert(
                        series_uid.to_owned(),
                        (series.clone(), pseudonym.research_id),
                    );
                    tally
                        .series_by_modality
                        .entry(header.modality.clone())
                        .or_default()
                        .insert(series);
                    tally
                        .by_modality
                        .entry(header.modality)
                        .or_default()
                        .instances += 1;
                }
            }
        }
        // Pseudonyms made for new patients must outlive this export.
        vault.save()?;

        let research_ids = tally.patients.iter().cloned().collect();
        let clinical_rows =
            write_clinical_csv(&tree, vault, &research_ids, clinical, &request.options)?;
        let mut report = report_of(&cohort, &tally, &request.options, now);
        report.clinical_rows = clinical_rows;
        write_report(&tree, &report)?;
        package::write_manifest(&tree)?;
        Ok((tally.files + 4 + usize::from(clinical_rows > 0), report))
    })();
    let (files, report) = match built {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&work);
            return Err(error);
        }
    };

    let number = cohort.exports.len() + 1;
    let sealed_path = staging.join(format!("v{}-export{number}.tar.age", cohort.version));
    let recipients = Recipients::X25519(vec![keys.staging_recipient.clone()]);
    let sealed = package::seal(&tree, &top, &sealed_path, &recipients);
    std::fs::remove_dir_all(&work)?;
    let sealed = sealed?;

    cohort.exports.push(cohort::ExportRecord {
        at: now.timestamp().max(0) as u64,
        operator: operator.to_owned(),
        staging_sha256: sealed.sha256.clone(),
        files,
        patients: report.patients,
    });
    cohort.keep_until = Some(keep_until);
    cohort::save(ledger, &cohort)?;
    audit.append(AuditRecord {
        operator: operator.to_owned(),
        action: "export.build".into(),
        subject: cohort.name.clone(),
        details: serde_json::json!({
            "version": cohort.version,
            "files": files,
            "patients": report.patients,
            "excluded": report.excluded,
            "keep_until": cohort.keep_until,
            "profile": report.profile,
        }),
        sha256: Some(sealed.sha256.clone()),
        destination: Some(format!("staging {}", relative(data_dir, &sealed.path))),
    })?;
    Ok(ExportBuilt {
        cohort: cohort.name.clone(),
        version: cohort.version,
        top,
        staging: PathBuf::from(relative(data_dir, &sealed.path)),
        staging_sha256: sealed.sha256,
        files,
        report,
    })
}

fn relative(data_dir: &Path, path: &Path) -> String {
    path.strip_prefix(data_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The keep-until date: the latest of the minimum retention, the date
/// asked for, and what the cohort already had.
fn keep_until(
    now: chrono::DateTime<chrono::Utc>,
    keep_years: u32,
    asked: Option<&str>,
    cohort: &CohortVersion,
) -> anyhow::Result<String> {
    let minimum = now
        .date_naive()
        .checked_add_months(chrono::Months::new(keep_years * 12))
        .ok_or_else(|| anyhow::anyhow!("keep-until date out of range"))?;
    let mut until = minimum;
    for date in asked.into_iter().chain(cohort.keep_until.as_deref()) {
        let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|_| anyhow::anyhow!("not a date (YYYY-MM-DD): {date:?}"))?;
        until = until.max(date);
    }
    Ok(until.format("%Y-%m-%d").to_string())
}

fn report_of(
    cohort: &CohortVersion,
    tally: &Tally,
    options: &DeidOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> ExportReport {
    let mut by_modality = tally.by_modality.clone();
    for (modality, counts) in by_modality.iter_mut() {
        counts.series = tally
            .series_by_modality
            .get(modality)
            .map_or(0, HashSet::len);
    }
    let pairings = cohort
        .paired_ct
        .iter()
        .filter_map(|ct| {
            let (radiograph, research_id) = tally.renamed_series.get(&ct.paired_with)?;
            let (ct_series, _) = tally.renamed_series.get(&ct.series_instance_uid)?;
            Some(Pairing {
                research_id: research_id.clone(),
                radiograph_series: radiograph.clone(),
                ct_series: ct_series.clone(),
                days_from_radiograph: ct.days_from_radiograph,
            })
        })
        .collect();
    ExportReport {
        cohort: cohort.name.clone(),
        version: cohort.version,
        exported_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        chestnode_version: env!("CARGO_PKG_VERSION").into(),
        profile: options.describe(),
        patients: tally.patients.len(),
        studies: tally.studies.len(),
        by_modality,
        result_objects: tally.result_objects,
        categories: cohort
            .counts_by_category()
            .into_iter()
            .map(|(c, n)| (category_name(c).to_owned(), n))
            .collect(),
        pairings,
        excluded: tally.excluded.clone(),
        opted_out_patients_at_selection: cohort.exclusions.opted_out_patients,
        opted_out_patients_at_export: tally.opted_out_now.len(),
        incomplete_series_at_selection: cohort.exclusions.incomplete_series,
        missing_instances: tally.missing,
        actions: tally.actions.clone(),
        clinical_rows: 0,
    }
}

fn write_report(tree: &Path, report: &ExportReport) -> anyhow::Result<()> {
    std::fs::write(
        tree.join("export-report.json"),
        serde_json::to_vec_pretty(report)?,
    )?;
    std::fs::write(tree.join("export-report.md"), report.to_markdown())?;
    Ok(())
}
