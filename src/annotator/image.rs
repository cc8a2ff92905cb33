//! An image for the browser: the stored instance decoded by the node's
//! own imaging pipeline (every transfer syntax the node accepts, the
//! image's VOI window or full range, MONOCHROME1 inverted) and written as
//! an 8-bit greyscale PNG. Window/level beyond that happens in the page.
//!
//! The PNG carries pixels only: no DICOM attributes, so no names travel
//! with it.

use std::io::Cursor;
use std::path::Path;

use anyhow::Context;

use crate::ledger::InstanceRecord;

/// The instance as PNG bytes, with its (columns, rows).
pub fn png(data_dir: &Path, instance: &InstanceRecord) -> anyhow::Result<(Vec<u8>, [u32; 2])> {
    let path = data_dir.join(&instance.path);
    let file = std::fs::File::open(&path).context("the image file is no longer stored")?;
    let object = crate::store::open_checked(std::io::BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("reading the image: {e}"))?;
    let radiograph = crate::imaging::load_radiograph(&object)
        .map_err(|e| anyhow::anyhow!("decoding the image: {e}"))?;
    let grey: Vec<u8> = radiograph
        .grey
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let image = image::GrayImage::from_raw(radiograph.columns, radiograph.rows, grey)
        .context("decoded pixels do not fill the image")?;
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .context("encoding the PNG")?;
    Ok((bytes, [radiograph.columns, radiograph.rows]))
}
