//! The TID 1500 Imaging Measurement Report, as IHE AI Results profiles it.

use super::header::{ResultContext, ResultObject};
use crate::analysis::AnalysisResult;

/// Builds the Comprehensive 3D SR for one analysed image.
pub fn structured_report(
    _context: &ResultContext,
    _result: &AnalysisResult,
) -> anyhow::Result<ResultObject> {
    anyhow::bail!("the structured report is not built yet")
}
