//! Result objects: what the node sends back to PACS for each analysed
//! image. Pure: a source data set and findings go in, DICOM objects come
//! out, so every object can be validated without a network.
//!
//! - `uids`: deterministic UIDs, so re-processing yields the same objects
//! - `identity`: patient and study copied from the source image
//! - `header`: the modules every result object shares (patient, study,
//!   series, equipment, SOP common)
//! - `sr/`: the TID 1500 measurement report (IHE AI Results), with its
//!   content items, codes and the structures a finding overlaps
//! - `overlay/`: the secondary-capture picture with findings burned in
//!   (layout, banner, legend, drawing, lettering)
//! - `gsps`: the same outlines as a presentation state on the original
//!
//! Writing the objects and routing them to destinations is not done here:
//! the worker's publisher writes them through the store and hands them to
//! the outbox, which owns the destinations.

mod gsps;
pub(crate) mod header;
pub(crate) mod identity;
pub(crate) mod overlay;
pub(crate) mod sr;
mod uids;

pub use gsps::presentation_state;
pub use header::{RESEARCH_USE_ONLY, ResultContext, ResultObject};
pub use identity::copy_identity;
pub use overlay::{Banner, Rgb, category_colour, render_picture, secondary_capture};
pub use sr::structured_report;
pub use uids::{ResultUids, UidRole};

use crate::analysis::AnalysisResult;
use crate::config::ResultKind;
use crate::imaging::Radiograph;

/// Builds the result objects of `kinds` for one analysed image.
pub fn build_results(
    context: &ResultContext,
    result: &AnalysisResult,
    radiograph: &Radiograph,
    kinds: &[ResultKind],
) -> anyhow::Result<Vec<ResultObject>> {
    kinds
        .iter()
        .map(|&kind| match kind {
            ResultKind::Sr => sr::structured_report(context, result),
            ResultKind::Sc => overlay::secondary_capture(context, result, radiograph),
            ResultKind::Gsps => gsps::presentation_state(context, result),
        })
        .collect()
}
