//! A radiograph as the rest of the node sees it: grey levels where 0 is
//! black and 1 is white, with the physical size of a pixel.
//!
//! [`load_radiograph`] joins decoding and the greyscale pipeline; it is the
//! one call the worker makes to look at an image. Pixel spacing travels
//! with the grey levels because findings are reported in millimetres
//! (nodule diameters, for instance), and because a spacing of zero — which
//! real CR plates do send — must read as "unknown", not as a size.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use super::ImagingError;
use super::attributes::all_f64;
use super::decode::decode_first_frame;
use super::greyscale_attributes::greyscale_pipeline;

/// A decoded, displayed radiograph.
#[derive(Debug, Clone, PartialEq)]
pub struct Radiograph {
    pub rows: u32,
    pub columns: u32,
    /// Grey levels in [0, 1], 0 = black, 1 = white; row-major; padding
    /// pixels are 0.
    pub grey: Vec<f32>,
    /// (row spacing, column spacing) in mm: Imager Pixel Spacing, else Pixel
    /// Spacing; `None` if absent or not positive.
    pub pixel_spacing_mm: Option<[f64; 2]>,
}

/// Decodes the first frame and renders it through the greyscale pipeline.
pub fn load_radiograph(object: &DefaultDicomObject) -> Result<Radiograph, ImagingError> {
    let frame = decode_first_frame(object)?;
    let pipeline = greyscale_pipeline(object, frame.layout, frame.photometric)?;
    Ok(Radiograph {
        rows: frame.rows,
        columns: frame.columns,
        grey: pipeline.apply(&frame.values),
        pixel_spacing_mm: pixel_spacing_mm(object),
    })
}

/// Imager Pixel Spacing (at the detector, what CR and DX define) if
/// usable, else Pixel Spacing.
///
/// Neither corrects for geometric magnification; for a chest PA the two
/// differ by about 10 %, which findings reported in millimetres should
/// state rather than hide.
fn pixel_spacing_mm(object: &InMemDicomObject) -> Option<[f64; 2]> {
    let spacing = |tag: Tag| match all_f64(object, tag)?.as_slice() {
        &[row, column, ..] if row > 0.0 && column > 0.0 => Some([row, column]),
        _ => None,
    };
    spacing(tags::IMAGER_PIXEL_SPACING).or_else(|| spacing(tags::PIXEL_SPACING))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, VR, dicom_value};

    fn spacing_of(elements: Vec<DataElement<InMemDicomObject>>) -> Option<[f64; 2]> {
        pixel_spacing_mm(&InMemDicomObject::from_element_iter(elements))
    }

    fn ds2(tag: Tag, row: &str, column: &str) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, VR::DS, dicom_value!(Strs, [row, column]))
    }

    #[test]
    fn imager_pixel_spacing_comes_first() {
        let spacing = spacing_of(vec![
            ds2(tags::IMAGER_PIXEL_SPACING, "0.2", "0.25"),
            ds2(tags::PIXEL_SPACING, "0.18", "0.18"),
        ]);
        assert_eq!(spacing, Some([0.2, 0.25]));
    }

    #[test]
    fn zero_spacing_reads_as_unknown() {
        assert_eq!(
            spacing_of(vec![ds2(tags::PIXEL_SPACING, "0.000", "0.000")]),
            None
        );
        let spacing = spacing_of(vec![
            ds2(tags::IMAGER_PIXEL_SPACING, "0", "0"),
            ds2(tags::PIXEL_SPACING, "0.168", "0.168"),
        ]);
        assert_eq!(spacing, Some([0.168, 0.168]));
        assert_eq!(spacing_of(vec![]), None);
    }
}
