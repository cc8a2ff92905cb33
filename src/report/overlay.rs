//! The secondary-capture overlay: the source image, windowed, with each
//! finding's outline, box and label burned in, a legend and a banner
//! naming the model and its intended use.

use super::header::{ResultContext, ResultObject};
use crate::analysis::AnalysisResult;
use crate::imaging::Radiograph;

/// Builds the RGB Secondary Capture for one analysed image.
pub fn secondary_capture(
    _context: &ResultContext,
    _result: &AnalysisResult,
    _radiograph: &Radiograph,
) -> anyhow::Result<ResultObject> {
    anyhow::bail!("the secondary-capture overlay is not built yet")
}
