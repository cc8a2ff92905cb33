//! Doctors' annotations: the disease type and location of each finding, by
//! reader, stored in the ledger as versions (`annotations` tree) and used
//! to choose cohorts, measure agreement between readers, and build the
//! hospital's own training and test data.
//!
//! They come in from files ([`import`]), from the browser annotator, and
//! from DICOM SR and GSPS objects sent by any viewer; every way in goes
//! through the same checks ([`store::Preparer`]): the image must be stored
//! and a location must lie inside it.

mod agreement;
mod dicom;
mod import;
mod record;
mod sr_export;
mod store;

pub use agreement::{
    Consensus, ImageConsensus, PairAgreement, agreement, cohen_kappa, consensus, iou,
};
pub use dicom::{NotAnAnnotation, annotations_of, is_annotation_class};
pub use import::{CSV_COLUMNS, ImportFormat, Imported, import};
pub use record::{
    Annotation, Certainty, Confirmation, CtConfirmation, FindingType, Location, NewAnnotation,
    Source,
};
pub use sr_export::{reader_pseudonym, write_for_image as write_sr_for_image};
pub use store::{Preparer, current_all, current_for_image, image_size, save_all};

use crate::ledger::Ledger;

/// The current annotations of a cohort's radiographs (its newest version
/// unless one is given).
pub fn for_cohort(
    ledger: &Ledger,
    cohort: &str,
    version: Option<u32>,
) -> anyhow::Result<Vec<Annotation>> {
    let cohort = super::cohort::load(ledger, cohort, version)?;
    let mut found = Vec::new();
    for member in &cohort.radiographs {
        for sop in ledger.series().members(&member.series_instance_uid)? {
            found.extend(current_for_image(ledger, &sop)?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
