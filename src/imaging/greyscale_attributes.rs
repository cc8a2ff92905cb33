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
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, dicom_value};

    const UNSIGNED_16: SampleLayout = SampleLayout {
        bits_allocated: 16,
        bits_stored: 16,
        high_bit: 15,
        signed: false,
    };
    const SIGNED_16: SampleLayout = SampleLayout {
        signed: true,
        ..UNSIGNED_16
    };

    fn object(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
        InMemDicomObject::from_element_iter(elements)
    }

    fn lut_item(descriptor: [u16; 3], data: Vec<u16>) -> InMemDicomObject {
        object(vec![
            DataElement::new(
                tags::LUT_DESCRIPTOR,
                VR::US,
                PrimitiveValue::U16(descriptor.to_vec().into()),
            ),
            DataElement::new(tags::LUT_DATA, VR::OW, PrimitiveValue::U16(data.into())),
        ])
    }

    fn sequence(tag: Tag, item: InMemDicomObject) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::SQ, DataSetSequence::from(vec![item]))
    }

    fn ds(tag: Tag, value: &str) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::DS, dicom_value!(Str, value))
    }

    #[test]
    fn defaults_are_identity_full_range_and_no_padding() {
        let pipeline =
            greyscale_pipeline(&object(vec![]), UNSIGNED_16, Photometric::Monochrome2).unwrap();
        assert_eq!(pipeline.modality, ModalityLut::IDENTITY);
        assert_eq!(pipeline.voi, Voi::FullRange);
        assert!(!pipeline.invert);
        assert_eq!(pipeline.padding, None);
    }

    #[test]
    fn rescale_and_the_first_window_with_its_function() {
        let object = object(vec![
            ds(tags::RESCALE_SLOPE, "2"),
            ds(tags::RESCALE_INTERCEPT, "-1024"),
            DataElement::new(
                tags::WINDOW_CENTER,
                VR::DS,
                dicom_value!(Strs, ["40", "-600"]),
            ),
            DataElement::new(
                tags::WINDOW_WIDTH,
                VR::DS,
                dicom_value!(Strs, ["400", "1500"]),
            ),
            DataElement::new(tags::VOILUT_FUNCTION, VR::CS, dicom_value!(Str, "SIGMOID")),
        ]);
        let pipeline = greyscale_pipeline(&object, SIGNED_16, Photometric::Monochrome1).unwrap();
        assert_eq!(
            pipeline.modality,
            ModalityLut::Rescale {
                slope: 2.0,
                intercept: -1024.0
            }
        );
        let expected = Window::new(40.0, 400.0, VoiFunction::Sigmoid).unwrap();
        assert_eq!(pipeline.voi, Voi::Window(expected));
        assert!(pipeline.invert);
    }

    #[test]
    fn an_unusable_window_falls_back_to_the_full_range() {
        let object = object(vec![
            ds(tags::WINDOW_CENTER, "100"),
            ds(tags::WINDOW_WIDTH, "0"),
        ]);
        let pipeline = greyscale_pipeline(&object, UNSIGNED_16, Photometric::Monochrome2).unwrap();
        assert_eq!(pipeline.voi, Voi::FullRange);
    }

    #[test]
    fn voi_lut_sequence_wins_over_the_window() {
        let object = object(vec![
            sequence(
                tags::VOILUT_SEQUENCE,
                lut_item([3, 100, 8], vec![0, 128, 255]),
            ),
            ds(tags::WINDOW_CENTER, "100"),
            ds(tags::WINDOW_WIDTH, "10"),
        ]);
        let pipeline = greyscale_pipeline(&object, UNSIGNED_16, Photometric::Monochrome2).unwrap();
        let expected = LookupTable {
            first_input: 100,
            entries: vec![0, 128, 255],
            bits_per_entry: 8,
        };
        assert_eq!(pipeline.voi, Voi::Table(expected));
        // 99 and 100 map to the first entry, 102 and beyond to the last.
        let grey = pipeline.apply(&[99, 100, 101, 102, 500]);
        assert_eq!(grey, vec![0.0, 0.0, 128.0 / 255.0, 1.0, 1.0]);
    }

    #[test]
    fn modality_lut_with_a_negative_first_value_and_65536_entries() {
        // Signed image, descriptor read as US: 0xFC18 is -1000; 0 entries
        // means 65536.
        let data: Vec<u16> = (0..=u16::MAX).collect();
        let item = lut_item([0, 0xFC18, 16], data);
        let object = object(vec![sequence(tags::MODALITY_LUT_SEQUENCE, item)]);
        let pipeline = greyscale_pipeline(&object, SIGNED_16, Photometric::Monochrome2).unwrap();
        let ModalityLut::Table(table) = &pipeline.modality else {
            panic!("expected a table, got {:?}", pipeline.modality);
        };
        assert_eq!(table.first_input, -1000);
        assert_eq!(table.entries.len(), 65536);
        assert_eq!(pipeline.modality.apply(-1000), 0.0);
        assert_eq!(pipeline.modality.apply(-998), 2.0);
    }

    #[test]
    fn eight_bit_entries_may_be_packed_two_to_a_word() {
        let item = lut_item([4, 0, 8], vec![0x1000, 0xFF80]);
        let object = object(vec![sequence(tags::VOILUT_SEQUENCE, item)]);
        let pipeline = greyscale_pipeline(&object, UNSIGNED_16, Photometric::Monochrome2).unwrap();
        let Voi::Table(table) = &pipeline.voi else {
            panic!("expected a table, got {:?}", pipeline.voi);
        };
        assert_eq!(table.entries, vec![0x00, 0x10, 0x80, 0xFF]);
    }

    #[test]
    fn a_lut_too_short_for_its_descriptor_is_an_error() {
        let item = lut_item([10, 0, 16], vec![1, 2, 3]);
        let object = object(vec![sequence(tags::MODALITY_LUT_SEQUENCE, item)]);
        let error = greyscale_pipeline(&object, UNSIGNED_16, Photometric::Monochrome2).unwrap_err();
        assert!(
            error.to_string().contains("3 words for 10 entries"),
            "{error}"
        );
    }

    #[test]
    fn padding_value_of_a_signed_image_read_as_us() {
        // -2000 as the bit pattern 0xF830, the way an implicit VR parser
        // may deliver it.
        let object = object(vec![DataElement::new(
            tags::PIXEL_PADDING_VALUE,
            VR::US,
            PrimitiveValue::from(0xF830u16),
        )]);
        let pipeline = greyscale_pipeline(&object, SIGNED_16, Photometric::Monochrome2).unwrap();
        assert_eq!(pipeline.padding, Some(PixelPadding::between(-2000, -2000)));
    }

    #[test]
    fn padding_range_limit_extends_the_padding() {
        let object = object(vec![
            DataElement::new(
                tags::PIXEL_PADDING_VALUE,
                VR::US,
                PrimitiveValue::from(0u16),
            ),
            DataElement::new(
                tags::PIXEL_PADDING_RANGE_LIMIT,
                VR::US,
                PrimitiveValue::from(15u16),
            ),
        ]);
        let pipeline = greyscale_pipeline(&object, UNSIGNED_16, Photometric::Monochrome2).unwrap();
        assert_eq!(pipeline.padding, Some(PixelPadding::between(0, 15)));
    }

    #[test]
    fn zero_rescale_slope_is_an_error() {
        let object = object(vec![ds(tags::RESCALE_SLOPE, "0")]);
        assert!(greyscale_pipeline(&object, UNSIGNED_16, Photometric::Monochrome2).is_err());
    }
}
