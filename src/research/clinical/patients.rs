//! Which patients have images on this node: the Patient IDs a clinical
//! import may name. The ledger holds no patient data, so this reads one
//! header per stored series (as cohort selection does), never pixel data.

use std::collections::HashSet;
use std::path::Path;

use crate::ledger::Ledger;
use crate::research::cohort::header::SeriesHeader;

/// The Patient IDs of every stored series whose header can be read.
pub fn known_patient_ids(ledger: &Ledger, data_dir: &Path) -> anyhow::Result<HashSet<String>> {
    let index = ledger.series();
    let mut known = HashSet::new();
    for record in index.all()? {
        // The first instance, or another one if retention took it.
        let mut uids = vec![record.first_sop_instance_uid.clone()];
        uids.extend(index.members(&record.series_instance_uid)?);
        for uid in uids {
            let Some(instance) = ledger.find_instance(&uid)? else {
                continue;
            };
            match SeriesHeader::read(&data_dir.join(&instance.path)) {
                Ok(header) => {
                    if !header.patient_id.is_empty() {
                        known.insert(header.patient_id);
                    }
                    break;
                }
                Err(error) => {
                    tracing::debug!("clinical import: an unreadable instance header: {error:#}")
                }
            }
        }
    }
    Ok(known)
}
