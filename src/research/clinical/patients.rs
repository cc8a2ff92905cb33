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
        if let Some(header) = SeriesHeader::of_series(ledger, data_dir, &record)?
            && !header.patient_id.is_empty()
        {
            known.insert(header.patient_id);
        }
    }
    Ok(known)
}
