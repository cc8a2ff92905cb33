//! Decoding the first frame of an image into its stored pixel values.
//!
//! `dicom-pixeldata` turns any transfer syntax we accept (native, deflated,
//! RLE, JPEG baseline/lossless, JPEG-LS, JPEG 2000) into native
//! little-endian samples of Bits Allocated each; JPEG Extended, which it
//! cannot read at 12 bits, goes through `jpeg_extended` instead. What a sample *means* is
//! then ours to read: the stored value occupies Bits Stored bits ending at
//! High Bit, the bits around it may hold anything (old overlays, garbage),
//! and with Pixel Representation 1 it is two's complement at Bits Stored
//! width (PS3.5 §8.1.1). Getting this wrong shows up as speckle in a 12-bit
//! image or as a black CT, so it is done once, here, and tested with
//! synthetic bit patterns.
//!
//! Only greyscale images are decoded (Samples per Pixel 1, MONOCHROME1 or
//! MONOCHROME2): the model is trained on radiographs, and a colour image
//! reaching this point is a secondary capture we should refuse by name.
//! Only the first frame is decoded; radiographs have one.

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;

use super::ImagingError;
use super::attributes::{first_int, text};
use super::jpeg_extended;

/// The most pixels a frame may have: 2^25, a 5792-pixel square, well above
/// the largest radiograph detectors (about 4300 x 4300) and mammography
/// plates. Rows and Columns are 16-bit, so a few bytes of header can claim
/// four billion pixels; decoding and the grey levels would need tens of
/// gigabytes for them, so such an image is refused before any buffer is
/// allocated.
pub const MAX_FRAME_PIXELS: u64 = 1 << 25;

/// How a greyscale image is meant to be displayed (PS3.3 C.7.6.3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Photometric {
    /// The lowest value is displayed white (most CR and DX plates).
    Monochrome1,
    /// The lowest value is displayed black.
    Monochrome2,
}

/// Where a stored value sits inside an allocated sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleLayout {
    /// 8, 16 or 32.
    pub bits_allocated: u16,
    /// 1 ..= Bits Allocated.
    pub bits_stored: u16,
    /// The most significant bit of the stored value, Bits Stored - 1 ..
    /// Bits Allocated - 1.
    pub high_bit: u16,
    /// Pixel Representation 1: two's complement at Bits Stored width.
    pub signed: bool,
}

/// The first frame's stored values, before any LUT.
#[derive(Debug, Clone)]
pub struct StoredFrame {
    pub rows: u32,
    pub columns: u32,
    pub layout: SampleLayout,
    pub photometric: Photometric,
    /// One stored value per pixel, row-major.
    pub values: Vec<i32>,
}

impl SampleLayout {
    /// Checks that the layout describes something we can extract into an
    /// `i32`.
    pub fn validated(self) -> Result<SampleLayout, ImagingError> {
        let invalid = |reason: String| ImagingError::InvalidAttribute {
            name: "Bits Allocated/Bits Stored/High Bit",
            reason,
        };
        let SampleLayout {
            bits_allocated,
            bits_stored,
            high_bit,
            signed,
        } = self;
        if !matches!(bits_allocated, 8 | 16 | 32) {
            return Err(invalid(format!(
                "Bits Allocated {bits_allocated} (only 8, 16 and 32 are supported)"
            )));
        }
        if bits_stored == 0 || bits_stored > bits_allocated {
            return Err(invalid(format!(
                "Bits Stored {bits_stored} with Bits Allocated {bits_allocated}"
            )));
        }
        if high_bit >= bits_allocated || high_bit + 1 < bits_stored {
            return Err(invalid(format!(
                "High Bit {high_bit} with Bits Stored {bits_stored} \
                 and Bits Allocated {bits_allocated}"
            )));
        }
        if bits_stored == 32 && !signed {
            return Err(invalid(
                "unsigned 32-bit stored values do not fit in i32".into(),
            ));
        }
        Ok(self)
    }

    /// The stored value held in one allocated sample: shifted down from
    /// High Bit, masked to Bits Stored and sign-extended if signed.
    #[inline]
    pub fn stored_value(self, sample: u32) -> i32 {
        let bits = u32::from(self.bits_stored);
        let shift = u32::from(self.high_bit) + 1 - bits;
        let unused_high_bits = 32 - bits;
        // Moving the value to the top of the word and back drops the bits
        // above it, and with an arithmetic shift also extends its sign.
        let at_top = (sample >> shift) << unused_high_bits;
        if self.signed {
            (at_top as i32) >> unused_high_bits
        } else {
            (at_top >> unused_high_bits) as i32
        }
    }

    /// The stored value for a sample from a lossy codec that works at a
    /// higher precision than Bits Stored (10-bit data in 12-bit JPEG):
    /// overshoot past the largest value is clipped, where masking would
    /// wrap a white pixel to black. Signed data keeps its bit pattern.
    #[inline]
    pub fn decoded_lossy_value(self, sample: u16) -> i32 {
        if self.signed {
            self.stored_value(u32::from(sample))
        } else {
            let (_, max) = self.value_range();
            i64::from(sample).min(max) as i32
        }
    }

    /// The smallest and largest stored values this layout can hold.
    pub fn value_range(self) -> (i64, i64) {
        let bits = u32::from(self.bits_stored);
        if self.signed {
            (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
        } else {
            (0, (1i64 << bits) - 1)
        }
    }
}

/// Stored values of `count` pixels from native little-endian samples.
pub fn stored_values(
    bytes: &[u8],
    layout: SampleLayout,
    count: usize,
) -> Result<Vec<i32>, ImagingError> {
    let bytes_per_sample = usize::from(layout.bits_allocated / 8);
    let expected = count * bytes_per_sample;
    let bytes = bytes.get(..expected).ok_or(ImagingError::ShortFrame {
        expected,
        actual: bytes.len(),
    })?;
    let values = match layout.bits_allocated {
        8 => bytes
            .iter()
            .map(|&b| layout.stored_value(u32::from(b)))
            .collect(),
        16 => bytes
            .chunks_exact(2)
            .map(|b| layout.stored_value(u32::from(u16::from_le_bytes([b[0], b[1]]))))
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|b| layout.stored_value(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
    };
    Ok(values)
}

/// RLE Lossless.
const RLE_LOSSLESS_UID: &str = "1.2.840.10008.1.2.5";

/// Refuses an RLE frame the decoder would choke on (see `rle_check`).
fn check_rle(
    object: &DefaultDicomObject,
    rows: u32,
    columns: u32,
    layout: SampleLayout,
) -> Result<(), ImagingError> {
    let invalid = |reason: String| ImagingError::InvalidAttribute {
        name: "Pixel Data (RLE)",
        reason,
    };
    let fragment = object
        .get(tags::PIXEL_DATA)
        .and_then(|element| element.value().fragments())
        .and_then(|fragments| fragments.first())
        .ok_or_else(|| invalid("no encapsulated fragment".into()))?;
    let samples = first_int(object, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let samples = usize::try_from(samples).map_err(|_| invalid(format!("{samples} samples")))?;
    super::rle_check::check_rle_frame(
        fragment,
        rows as usize,
        columns as usize,
        samples,
        layout.bits_allocated,
    )
    .map_err(invalid)
}

/// Decodes the first frame of a greyscale image into stored values.
pub fn decode_first_frame(object: &DefaultDicomObject) -> Result<StoredFrame, ImagingError> {
    if object.get(tags::PIXEL_DATA).is_none() {
        return Err(ImagingError::NoPixelData);
    }
    let photometric = check_greyscale(object)?;
    let attribute = |tag, name| {
        first_int(object, tag)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or(ImagingError::MissingAttribute(name))
    };
    let layout = SampleLayout {
        bits_allocated: attribute(tags::BITS_ALLOCATED, "Bits Allocated")?,
        bits_stored: attribute(tags::BITS_STORED, "Bits Stored")?,
        high_bit: attribute(tags::HIGH_BIT, "High Bit")?,
        signed: attribute(tags::PIXEL_REPRESENTATION, "Pixel Representation")? == 1,
    }
    .validated()?;
    let rows = u32::from(attribute(tags::ROWS, "Rows")?);
    let columns = u32::from(attribute(tags::COLUMNS, "Columns")?);
    if rows == 0 || columns == 0 {
        return Err(ImagingError::InvalidAttribute {
            name: "Rows/Columns",
            reason: format!("{rows}x{columns} has no pixels"),
        });
    }
    if u64::from(rows) * u64::from(columns) > MAX_FRAME_PIXELS {
        return Err(ImagingError::InvalidAttribute {
            name: "Rows/Columns",
            reason: format!(
                "{rows}x{columns} exceeds the {MAX_FRAME_PIXELS} pixels a frame may have"
            ),
        });
    }

    let transfer_syntax = object.meta().transfer_syntax();
    let values = if transfer_syntax == jpeg_extended::JPEG_EXTENDED_UID {
        jpeg_extended::decode_first_frame(object, rows, columns)?
            .into_iter()
            .map(|sample| layout.decoded_lossy_value(sample))
            .collect()
    } else {
        if transfer_syntax == RLE_LOSSLESS_UID {
            check_rle(object, rows, columns, layout)?;
        }
        let decoded = object
            .decode_pixel_data_frame(0)
            .map_err(|source| ImagingError::Decode {
                transfer_syntax: transfer_syntax.to_owned(),
                source,
            })?;
        stored_values(decoded.data(), layout, rows as usize * columns as usize)?
    };
    Ok(StoredFrame {
        rows,
        columns,
        layout,
        photometric,
        values,
    })
}

/// Refuses anything but one-sample MONOCHROME1/MONOCHROME2 images, before
/// any time is spent decoding them.
fn check_greyscale(object: &DefaultDicomObject) -> Result<Photometric, ImagingError> {
    let interpretation = text(object, tags::PHOTOMETRIC_INTERPRETATION)
        .ok_or(ImagingError::MissingAttribute("Photometric Interpretation"))?;
    // Samples per Pixel is Type 1; an image without it is read as one
    // sample, which the interpretation then confirms or refutes.
    let samples_per_pixel = first_int(object, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    if samples_per_pixel != 1 {
        return Err(ImagingError::NotGreyscale {
            samples_per_pixel: u16::try_from(samples_per_pixel).unwrap_or(u16::MAX),
            photometric_interpretation: interpretation,
        });
    }
    match interpretation.as_str() {
        "MONOCHROME1" => Ok(Photometric::Monochrome1),
        "MONOCHROME2" => Ok(Photometric::Monochrome2),
        _ => Err(ImagingError::UnsupportedPhotometricInterpretation(
            interpretation,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(bits_allocated: u16, bits_stored: u16, high_bit: u16, signed: bool) -> SampleLayout {
        SampleLayout {
            bits_allocated,
            bits_stored,
            high_bit,
            signed,
        }
        .validated()
        .unwrap()
    }

    #[test]
    fn twelve_bits_in_sixteen_ignore_the_upper_nibble() {
        let twelve = layout(16, 12, 11, false);
        // An overlay or garbage in bits 12..15 must not change the value.
        assert_eq!(twelve.stored_value(0xF123), 0x123);
        assert_eq!(twelve.stored_value(0x0FFF), 4095);
        assert_eq!(twelve.value_range(), (0, 4095));
    }

    #[test]
    fn high_bit_above_bits_stored_shifts_the_value_down() {
        // Bits Stored 12, High Bit 15: the value sits in bits 4..15.
        let shifted = layout(16, 12, 15, false);
        assert_eq!(shifted.stored_value(0xABC5), 0xABC);
    }

    #[test]
    fn signed_values_are_sign_extended_at_bits_stored() {
        let signed12 = layout(16, 12, 11, true);
        assert_eq!(signed12.stored_value(0x0800), -2048);
        assert_eq!(signed12.stored_value(0x0FFF), -1);
        assert_eq!(signed12.stored_value(0xF7FF), 2047);
        assert_eq!(signed12.value_range(), (-2048, 2047));
        let signed16 = layout(16, 16, 15, true);
        assert_eq!(signed16.stored_value(0xF830), -2000);
        let signed8 = layout(8, 8, 7, true);
        assert_eq!(signed8.stored_value(0x80), -128);
        let signed32 = layout(32, 32, 31, true);
        assert_eq!(signed32.stored_value(0xFFFF_FFFE), -2);
    }

    #[test]
    fn lossy_overshoot_is_clipped_not_wrapped() {
        let ten = layout(16, 10, 9, false);
        assert_eq!(ten.decoded_lossy_value(1020), 1020);
        assert_eq!(ten.decoded_lossy_value(1024), 1023);
        assert_eq!(ten.decoded_lossy_value(4095), 1023);
        let signed12 = layout(16, 12, 11, true);
        assert_eq!(signed12.decoded_lossy_value(0xFFF), -1);
    }

    #[test]
    fn samples_are_read_little_endian() {
        let values = stored_values(&[0x34, 0x12, 0xFF, 0xFF], layout(16, 16, 15, true), 2).unwrap();
        assert_eq!(values, vec![0x1234, -1]);
        let values = stored_values(&[0xFF, 0x01], layout(8, 8, 7, false), 2).unwrap();
        assert_eq!(values, vec![255, 1]);
    }

    #[test]
    fn a_short_frame_is_an_error() {
        let error = stored_values(&[0, 0, 0], layout(16, 16, 15, false), 2).unwrap_err();
        assert!(matches!(
            error,
            ImagingError::ShortFrame {
                expected: 4,
                actual: 3
            }
        ));
    }

    #[test]
    fn a_frame_larger_than_the_cap_is_refused_before_decoding() {
        use dicom_core::value::PixelFragmentSequence;
        use dicom_core::{DataElement, PrimitiveValue, VR};
        use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

        let us = |tag, value: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(value));
        // A few hundred bytes claiming 65535 x 65535 pixels of RLE.
        let object = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                PrimitiveValue::from("MONOCHROME2"),
            ),
            us(tags::SAMPLES_PER_PIXEL, 1),
            us(tags::ROWS, u16::MAX),
            us(tags::COLUMNS, u16::MAX),
            us(tags::BITS_ALLOCATED, 16),
            us(tags::BITS_STORED, 16),
            us(tags::HIGH_BIT, 15),
            us(tags::PIXEL_REPRESENTATION, 0),
            DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                PixelFragmentSequence::new(vec![], vec![vec![0u8; 64]]),
            ),
        ])
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.5")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.1.1")
                .media_storage_sop_instance_uid("1.2.3.4"),
        )
        .unwrap();
        let error = decode_first_frame(&object).unwrap_err();
        assert!(
            matches!(
                error,
                ImagingError::InvalidAttribute {
                    name: "Rows/Columns",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn impossible_layouts_are_refused() {
        let bad = |a, s, h, signed| {
            SampleLayout {
                bits_allocated: a,
                bits_stored: s,
                high_bit: h,
                signed,
            }
            .validated()
            .is_err()
        };
        assert!(bad(12, 12, 11, false));
        assert!(bad(16, 17, 16, false));
        assert!(bad(16, 12, 10, false));
        assert!(bad(16, 12, 16, false));
        assert!(bad(32, 32, 31, false));
        assert!(!bad(1 << 3, 8, 7, false));
    }
}
