//! The Clean Pixel Data option: blanking the rectangles of an image where
//! the modality burns in text (name, ID, date labels), for native
//! (uncompressed) pixel data.
//!
//! Decoding and re-encoding compressed pixel data is out of scope: such an
//! image cannot be cleaned, so the caller excludes it.

use dicom_core::{PrimitiveValue, Tag, value::Value};
use dicom_object::InMemDicomObject;

use super::{Exclusion, PixelRegion};

const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

/// Whether the object has pixel data at its top level.
pub(super) fn has_pixel_data(object: &InMemDicomObject) -> bool {
    object.get(PIXEL_DATA).is_some()
}

/// Sets every sample inside `regions` (on every frame) to the lowest
/// value. Returns whether pixel data was present.
pub(super) fn blank_regions(
    object: &mut InMemDicomObject,
    regions: &[PixelRegion],
) -> Result<bool, Exclusion> {
    let Some(element) = object.get(PIXEL_DATA) else {
        return Ok(false);
    };
    let unsupported = |why: &str| Exclusion::PixelsNotCleanable(why.to_owned());
    let Value::Primitive(value) = element.value() else {
        return Err(Exclusion::PixelsNotCleanable(
            "pixel data is encapsulated (compressed); decoding is out of scope".into(),
        ));
    };
    let number = |tag: Tag| -> Option<u32> { object.get(tag).and_then(|e| e.to_int::<u32>().ok()) };
    let rows = number(Tag(0x0028, 0x0010)).ok_or_else(|| unsupported("no Rows"))?;
    let columns = number(Tag(0x0028, 0x0011)).ok_or_else(|| unsupported("no Columns"))?;
    let samples = number(Tag(0x0028, 0x0002)).unwrap_or(1);
    let bits = number(Tag(0x0028, 0x0100)).ok_or_else(|| unsupported("no Bits Allocated"))?;
    let frames = object
        .get(Tag(0x0028, 0x0008))
        .and_then(|e| e.to_str().ok())
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1);
    let planar = number(Tag(0x0028, 0x0006)).unwrap_or(0) == 1;
    let signed = number(Tag(0x0028, 0x0103)).unwrap_or(0) == 1;
    let stored = number(Tag(0x0028, 0x0101)).unwrap_or(bits);
    if bits != 8 && bits != 16 {
        return Err(unsupported("only 8 or 16 bits allocated can be cleaned"));
    }
    let low: u16 = if signed && stored >= 1 && stored <= bits {
        // the most negative value, in two's complement over `bits`
        let value = (1u32 << (stored - 1)).wrapping_neg();
        (value & ((1u32 << bits) - 1)) as u16
    } else {
        0
    };
    let geometry = Geometry {
        rows: rows as usize,
        columns: columns as usize,
        samples: samples as usize,
        frames: frames as usize,
        planar,
    };
    let samples_total = geometry.rows * geometry.columns * geometry.samples * geometry.frames;
    let mut new_value = value.clone();
    match (&mut new_value, bits) {
        (PrimitiveValue::U8(data), 8) => {
            check_len(data.len(), samples_total)?;
            geometry.for_each(regions, |i| data[i] = low as u8);
        }
        (PrimitiveValue::U8(data), 16) => {
            check_len(data.len(), samples_total * 2)?;
            let [lo, hi] = low.to_le_bytes();
            geometry.for_each(regions, |i| {
                data[2 * i] = lo;
                data[2 * i + 1] = hi;
            });
        }
        (PrimitiveValue::U16(data), 16) => {
            check_len(data.len(), samples_total)?;
            geometry.for_each(regions, |i| data[i] = low);
        }
        (PrimitiveValue::I16(data), 16) => {
            check_len(data.len(), samples_total)?;
            geometry.for_each(regions, |i| data[i] = low as i16);
        }
        _ => return Err(unsupported("pixel data has an unexpected value type")),
    }
    let vr = element.vr();
    object.put(dicom_core::DataElement::new(PIXEL_DATA, vr, new_value));
    Ok(true)
}

fn check_len(have: usize, need: usize) -> Result<(), Exclusion> {
    if have < need {
        return Err(Exclusion::PixelsNotCleanable(format!(
            "pixel data holds {have} units, the image needs {need}"
        )));
    }
    Ok(())
}

struct Geometry {
    rows: usize,
    columns: usize,
    samples: usize,
    frames: usize,
    planar: bool,
}

impl Geometry {
    /// Calls `blank` with the sample index of every sample inside a region.
    fn for_each(&self, regions: &[PixelRegion], mut blank: impl FnMut(usize)) {
        let frame_len = self.rows * self.columns * self.samples;
        for frame in 0..self.frames {
            for region in regions {
                let x0 = (region.x as usize).min(self.columns);
                let y0 = (region.y as usize).min(self.rows);
                let x1 = (region.x as usize + region.width as usize).min(self.columns);
                let y1 = (region.y as usize + region.height as usize).min(self.rows);
                for y in y0..y1 {
                    for x in x0..x1 {
                        for s in 0..self.samples {
                            let index = if self.planar {
                                s * self.rows * self.columns + y * self.columns + x
                            } else {
                                (y * self.columns + x) * self.samples + s
                            };
                            blank(frame * frame_len + index);
                        }
                    }
                }
            }
        }
    }
}
