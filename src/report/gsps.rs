//! The Grayscale Softcopy Presentation State: each finding's outline and
//! label as graphic annotations on the source image, for viewers that
//! show presentation states.

use super::header::{ResultContext, ResultObject};
use crate::analysis::AnalysisResult;

/// Builds the GSPS for one analysed image.
pub fn presentation_state(
    _context: &ResultContext,
    _result: &AnalysisResult,
) -> anyhow::Result<ResultObject> {
    anyhow::bail!("the presentation state is not built yet")
}
