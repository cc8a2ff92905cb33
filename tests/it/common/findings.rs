//! Pieces of hand-made analysis results, for the tests that build result
//! objects (SR, GSPS, overlay) from findings whose content they know.

use chestnode::findings::{Category, CategoryCall};

/// An assessed category call.
pub fn call(category: Category, probability: f32, positive: bool) -> CategoryCall {
    CategoryCall {
        category,
        assessed: true,
        probability,
        positive,
        label_index: Some(0),
    }
}
