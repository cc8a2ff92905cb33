//! Who may see what: the cohorts a reader sees (assigned ones for an
//! annotator, every live cohort for coordinators and admins), the images of
//! a cohort (the radiograph series of its newest version), and the cohort
//! through which a reader may open one image.
//!
//! Every page and API call that touches an image asks [`image_cohort`]
//! first, with a SOP Instance UID already validated by the store's UID
//! rules, so nothing is looked up or read for an image the reader may not
//! see.

use crate::ledger::{InstanceRecord, Ledger};
use crate::research::cohort::{self, CohortVersion};
use crate::store::ValidUid;

use super::accounts::Role;
use super::auth::Reader;

/// One image of a cohort, by UIDs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortImage {
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
    pub study_instance_uid: String,
}

/// The newest version of a cohort unless it has been destroyed.
fn live(ledger: &Ledger, name: &str) -> Option<CohortVersion> {
    let version = cohort::load(ledger, name, None).ok()?;
    version.destroyed_at.is_none().then_some(version)
}

/// The names of the live cohorts the reader sees, sorted.
pub fn visible_cohorts(ledger: &Ledger, reader: &Reader) -> anyhow::Result<Vec<String>> {
    let names = if reader.role.sees_all_cohorts() {
        ledger.cohorts().names()?
    } else {
        reader.cohorts.clone()
    };
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|name| live(ledger, name).is_some())
        .collect();
    names.sort();
    Ok(names)
}

/// Whether the reader may open a cohort.
pub fn may_open(reader: &Reader, name: &str) -> bool {
    reader.role != Role::Annotator || reader.cohorts.iter().any(|c| c == name)
}

/// The images of a live cohort's newest version; `None` if there is no such
/// live cohort.
pub fn cohort_images(ledger: &Ledger, name: &str) -> anyhow::Result<Option<Vec<CohortImage>>> {
    let Some(version) = live(ledger, name) else {
        return Ok(None);
    };
    let mut images = Vec::new();
    for member in &version.radiographs {
        for sop in ledger.series().members(&member.series_instance_uid)? {
            images.push(CohortImage {
                sop_instance_uid: sop,
                series_instance_uid: member.series_instance_uid.clone(),
                study_instance_uid: member.study_instance_uid.clone(),
            });
        }
    }
    Ok(Some(images))
}

/// The stored instance and the first visible cohort that holds it, or
/// `None` when the reader may not see it (or it does not exist).
pub fn image_cohort(
    ledger: &Ledger,
    reader: &Reader,
    sop: &ValidUid,
) -> anyhow::Result<Option<(InstanceRecord, String)>> {
    let Some(instance) = ledger.find_instance(sop.as_str())? else {
        return Ok(None);
    };
    for name in visible_cohorts(ledger, reader)? {
        if let Some(version) = live(ledger, &name)
            && version
                .radiographs
                .iter()
                .any(|m| m.series_instance_uid == instance.series_instance_uid)
        {
            return Ok(Some((instance, name)));
        }
    }
    Ok(None)
}
