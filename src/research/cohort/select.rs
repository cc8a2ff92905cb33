//! Choosing a cohort: the walk over the ledger's series that applies the
//! criteria, the opt-out list and the CT pairing.
//!
//! It reads one header per series (not per instance) and one analysis
//! result per radiograph instance, so it costs the number of series plus
//! the radiographs, whatever the size of the CTs.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::header::{SeriesHeader, parse_iso_day};
use super::{
    CategorySource, CohortCriteria, CohortExclusions, CohortVersion, CtMember, RadiographMember,
    validate_name,
};
use crate::analysis::AnalysisResult;
use crate::findings::Category;
use crate::ledger::{Ledger, SeriesRecord};
use crate::research::Vault;

/// A series with the header fields the criteria need.
struct Candidate {
    record: SeriesRecord,
    header: SeriesHeader,
}

/// Whether a CT's body part is the chest (an empty one is taken: many
/// scanners leave it out).
fn is_chest(body_part: &str) -> bool {
    body_part.is_empty()
        || ["CHEST", "THORAX", "LUNG"]
            .iter()
            .any(|p| body_part.contains(p))
}

/// Applies `criteria` to every stored series and returns the new cohort
/// version (not yet stored; see [`super::store`]).
pub fn select(
    ledger: &Ledger,
    data_dir: &Path,
    vault: &Vault,
    criteria: CohortCriteria,
    operator: &str,
    now: u64,
) -> anyhow::Result<CohortVersion> {
    validate_name(&criteria.name)?;
    anyhow::ensure!(
        !criteria.modalities.is_empty(),
        "no radiograph modality chosen"
    );
    let from = criteria.from.as_deref().map(parse_iso_day).transpose()?;
    let to = criteria.to.as_deref().map(parse_iso_day).transpose()?;
    let modalities: Vec<String> = criteria
        .modalities
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();

    let mut exclusions = CohortExclusions::default();
    let mut opted_out_patients = HashSet::new();
    let mut radiographs = Vec::new();
    let mut cts: Vec<Candidate> = Vec::new();
    let index = ledger.series();
    for record in index.all()? {
        let Some(header) = SeriesHeader::of_series(ledger, data_dir, &record)? else {
            exclusions.unreadable += 1;
            continue;
        };
        let is_radiograph = modalities.contains(&header.modality);
        let is_ct = header.modality == "CT" && is_chest(&header.body_part);
        if !is_radiograph && !is_ct {
            continue;
        }
        if is_radiograph {
            let in_range = match header.day {
                Some(day) => from.is_none_or(|f| day >= f) && to.is_none_or(|t| day <= t),
                None => from.is_none() && to.is_none(),
            };
            if !in_range {
                continue;
            }
        }
        if vault.is_opted_out(&header.patient_id) {
            exclusions.opted_out_series += 1;
            opted_out_patients.insert(header.patient_id.clone());
            continue;
        }
        if !record.is_stable() {
            exclusions.incomplete_series += 1;
            continue;
        }
        let candidate = Candidate { record, header };
        if is_ct {
            cts.push(candidate);
        } else {
            radiographs.push(candidate);
        }
    }
    exclusions.opted_out_patients = opted_out_patients.len();

    // Radiographs by category.
    let mut chosen = Vec::new();
    for candidate in radiographs {
        let categories = match criteria.source {
            CategorySource::Findings => categories_of(ledger, &candidate.record)?,
            CategorySource::Labels => labels_of(ledger, &candidate.record)?,
        };
        let Some(categories) = categories else {
            exclusions.not_analysed += 1;
            continue;
        };
        if categories.iter().any(|c| criteria.categories.contains(c)) {
            chosen.push((candidate, categories));
        }
    }

    // Each chest CT of a chosen patient, paired with the nearest radiograph
    // in time, when within the window.
    let mut paired_ct = Vec::new();
    let window = i64::from(criteria.ct_window_days);
    for ct in &cts {
        let Some(ct_day) = ct.header.day else {
            continue;
        };
        let nearest = chosen
            .iter()
            .filter(|(r, _)| r.header.patient_id == ct.header.patient_id)
            .filter_map(|(r, _)| Some((r, ct_day - r.header.day?)))
            .filter(|(_, days)| days.abs() <= window)
            .min_by_key(|(_, days)| days.abs());
        if let Some((radiograph, days)) = nearest {
            paired_ct.push(CtMember {
                study_instance_uid: ct.record.study_instance_uid.clone(),
                series_instance_uid: ct.record.series_instance_uid.clone(),
                paired_with: radiograph.record.series_instance_uid.clone(),
                days_from_radiograph: days,
            });
        }
    }

    let patients: HashSet<&str> = chosen
        .iter()
        .map(|(c, _)| c.header.patient_id.as_str())
        .collect();
    let patients = patients.len();
    let radiographs = chosen
        .into_iter()
        .map(|(candidate, categories)| RadiographMember {
            study_instance_uid: candidate.record.study_instance_uid,
            series_instance_uid: candidate.record.series_instance_uid,
            categories,
        })
        .collect();
    Ok(CohortVersion {
        name: criteria.name.clone(),
        version: 0,
        created_at: now,
        operator: operator.to_owned(),
        criteria,
        radiographs,
        paired_ct,
        patients,
        exclusions,
        exports: Vec::new(),
        keep_until: None,
        destroyed_at: None,
    })
}

/// The categories doctors gave a radiograph series: the majority of its
/// readers' current annotations, over its instances; `None` when none is
/// annotated. Findings of type "other" have no category.
fn labels_of(ledger: &Ledger, record: &SeriesRecord) -> anyhow::Result<Option<Vec<Category>>> {
    use crate::research::annotations::{Consensus, consensus, current_for_image};
    let mut found = std::collections::BTreeSet::new();
    let mut annotated = false;
    for uid in ledger.series().members(&record.series_instance_uid)? {
        let current = current_for_image(ledger, &uid)?;
        if current.is_empty() {
            continue;
        }
        annotated = true;
        let refs: Vec<_> = current.iter().collect();
        for finding in consensus(&refs, Consensus::Majority).findings {
            if let Some(category) = finding.category() {
                found.insert(Category::ALL.iter().position(|&c| c == category));
            }
        }
    }
    if !annotated {
        return Ok(None);
    }
    let categories: Vec<Category> = found
        .into_iter()
        .flatten()
        .map(|i| Category::ALL[i])
        .collect();
    Ok(Some(categories))
}

/// The positive categories over a radiograph series' analysed instances
/// (`normal` when analysed with none positive); `None` when none was
/// analysed.
fn categories_of(ledger: &Ledger, record: &SeriesRecord) -> anyhow::Result<Option<Vec<Category>>> {
    let queue = ledger.queue();
    let mut found: BTreeMap<usize, Category> = BTreeMap::new();
    let mut analysed = false;
    for uid in ledger.series().members(&record.series_instance_uid)? {
        let Some(instance) = ledger.find_instance(&uid)? else {
            continue;
        };
        let Some(bytes) = queue.result(instance.job_id)? else {
            continue;
        };
        let result: AnalysisResult = match serde_json::from_slice(&bytes) {
            Ok(result) => result,
            Err(_) => continue,
        };
        analysed = true;
        for call in result.findings.categories.iter().filter(|c| c.positive) {
            let order = Category::ALL.iter().position(|&c| c == call.category);
            found.insert(order.unwrap_or(usize::MAX), call.category);
        }
    }
    if !analysed {
        return Ok(None);
    }
    let mut categories: Vec<Category> = found.into_values().collect();
    if categories.is_empty() {
        categories.push(Category::Normal);
    }
    Ok(Some(categories))
}
