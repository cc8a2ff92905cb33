//! The input of a hand-written CPU operation (a candle `CustomOp1`): the
//! f32 values of a contiguous tensor, or a clear error naming the
//! operation.

use candle_core::{CpuStorage, Layout, Result};

/// The values `layout` covers in `storage`, which must be f32 and
/// contiguous.
pub(crate) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &'static str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        candle_core::bail!("{op} supports f32 only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op} needs a contiguous input");
    };
    Ok(&values[start..end])
}
