//! Building the greyscale pipeline from a data set's attributes: which
//! Modality LUT, which VOI, whether to invert, what is padding.
//!
//! The choices, in the order PS3.3 C.11 gives them precedence:
//!
//! - Modality: the first item of the Modality LUT Sequence if present, else
//!   Rescale Slope and Intercept (1 and 0 when absent, as for most CR/DX).
//! - VOI: the first item of the VOI LUT Sequence if present, else the first
//!   Window Center/Width pair with VOI LUT Function (LINEAR when absent),
//!   else the full range of the image. The first of several is the one the
//!   modality recommends by default (PS3.3 C.11.2.1.2).
//! - Padding: Pixel Padding Value, with Pixel Padding Range Limit if present.
//!
//! LUT Descriptors and padding values are US or SS depending on the pixel
//! data; a parser that had no explicit VR to go by hands us the unsigned bit
//! pattern, which is turned back into the signed value here. Anything that
//! cannot be applied safely — a malformed LUT, a zero slope — is an error
//! rather than a guess; an unusable window falls back to the full range,
//! with a warning, because a reading workstation would do the same.

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::ImagingError;
use super::attributes::{first_f64, first_int, first_item, text, words};
use super::decode::{Photometric, SampleLayout};
use super::lut::{
    GreyscalePipeline, LookupTable, ModalityLut, PixelPadding, Voi, VoiFunction, Window,
};

/// The pipeline for an image whose stored values have `layout`.
pub fn greyscale_pipeline(
    object: &InMemDicomObject,
    layout: SampleLayout,
    photometric: Photometric,
) -> Result<GreyscalePipeline, ImagingError> {
    Ok(GreyscalePipeline {
        modality: modality_lut(object, layout.signed)?,
        voi: voi(object, layout.signed)?,
        invert: photometric == Photometric::Monochrome1,
        padding: pixel_padding(object, layout.signed),
    })
}

fn modality_lut(object: &InMemDicomObject, signed: bool) -> Result<ModalityLut, ImagingError> {
    if let Some(item) = first_item(object, tags::MODALITY_LUT_SEQUENCE) {
        return lookup_table(item, signed, "Modality").map(ModalityLut::Table);
    }
    let slope = first_f64(object, tags::RESCALE_SLOPE).unwrap_or(1.0);
    let intercept = first_f64(object, tags::RESCALE_INTERCEPT).unwrap_or(0.0);
    if slope == 0.0 {
        return Err(ImagingError::InvalidAttribute {
            name: "Rescale Slope",
            reason: "0 maps every pixel to the same value".into(),
        });
    }
    Ok(ModalityLut::Rescale { slope, intercept })
}

fn voi(object: &InMemDicomObject, signed: bool) -> Result<Voi, ImagingError> {
    if let Some(item) = first_item(object, tags::VOILUT_SEQUENCE) {
        return lookup_table(item, signed, "VOI").map(Voi::Table);
    }
    let (Some(center), Some(width)) = (
        first_f64(object, tags::WINDOW_CENTER),
        first_f64(object, tags::WINDOW_WIDTH),
    ) else {
        return Ok(Voi::FullRange);
    };
    let function = match text(object, tags::VOILUT_FUNCTION).as_deref() {
        None | Some("LINEAR") => VoiFunction::Linear,
        Some("LINEAR_EXACT") => VoiFunction::LinearExact,
        Some("SIGMOID") => VoiFunction::Sigmoid,
        Some(other) => {
            tracing::warn!(function = other, "unknown VOI LUT Function, using LINEAR");
            VoiFunction::Linear
        }
    };
    Ok(match Window::new(center, width, function) {
        Some(window) => Voi::Window(window),
        None => {
            tracing::warn!(center, width, "unusable window, using the full range");
            Voi::FullRange
        }
    })
}

/// A LUT from an item holding LUT Descriptor and LUT Data.
fn lookup_table(
    item: &InMemDicomObject,
    signed: bool,
    which: &'static str,
) -> Result<LookupTable, ImagingError> {
    let invalid = |reason: String| ImagingError::InvalidLut { which, reason };
    let descriptor_element = item
        .get(tags::LUT_DESCRIPTOR)
        .ok_or_else(|| invalid("no LUT Descriptor".into()))?;
    let descriptor = descriptor_element
        .to_multi_int::<i64>()
        .ok()
        .filter(|values| values.len() == 3)
        .ok_or_else(|| invalid("LUT Descriptor does not have 3 values".into()))?;
    // 0 entries means 2^16 (C.11.1.1.1); an SS descriptor cannot say 65536
    // at all, and wraps larger counts to negative numbers.
    let count = match descriptor[0] {
        0 => 65536,
        negative if negative < 0 => negative + 65536,
        count => count,
    } as usize;
    let first_input = as_stored_16_bit(descriptor[1], descriptor_element.vr(), signed);
    let bits_per_entry = u8::try_from(descriptor[2])
        .ok()
        .filter(|bits| (1..=16).contains(bits))
        .ok_or_else(|| invalid(format!("{} bits per entry", descriptor[2])))?;

    let data = words(item, tags::LUT_DATA).ok_or_else(|| invalid("no LUT Data".into()))?;
    let mask = ((1u32 << bits_per_entry) - 1) as u16;
    let entries: Vec<u16> = if data.len() >= count {
        data[..count].iter().map(|&w| w & mask).collect()
    } else if bits_per_entry == 8 && data.len() * 2 >= count {
        // 8-bit entries packed two to a word, low byte first.
        data.iter()
            .flat_map(|w| w.to_le_bytes())
            .take(count)
            .map(u16::from)
            .collect()
    } else {
        return Err(invalid(format!(
            "LUT Data has {} words for {count} entries",
            data.len()
        )));
    };
    Ok(LookupTable {
        first_input,
        entries,
        bits_per_entry,
    })
}

fn pixel_padding(object: &InMemDicomObject, signed: bool) -> Option<PixelPadding> {
    let stored = |tag: Tag| {
        let value = first_int(object, tag)?;
        let vr = object.get(tag)?.vr();
        i32::try_from(as_stored_16_bit(value, vr, signed)).ok()
    };
    let value = stored(tags::PIXEL_PADDING_VALUE)?;
    let limit = stored(tags::PIXEL_PADDING_RANGE_LIMIT).unwrap_or(value);
    Some(PixelPadding::between(value, limit))
}

/// A US-or-SS value as the signed or unsigned number it stands for: an
/// unsigned bit pattern of a signed image is two's complement.
fn as_stored_16_bit(value: i64, vr: VR, signed: bool) -> i64 {
    if signed && vr != VR::SS && (32768..65536).contains(&value) {
        value - 65536
    } else {
        value
    }
}

#[cfg(test)]
mod tests;
