//! Reading single attribute values out of a data set, the way imaging needs
//! them: the first value of a multi-valued element, text without its
//! padding, and an empty or unparsable value treated as absent.
//!
//! Images from the field often carry empty Type 2 elements (`Window Center`
//! with no value, `View Position` of zero length) or sloppy decimal strings;
//! for the attributes that steer the greyscale pipeline and the gate,
//! "absent" is the safe reading of all of these, and it keeps every caller
//! free of the same three-way match.

use dicom_core::{PrimitiveValue, Tag};
use dicom_object::InMemDicomObject;

/// The first value of a text element, without padding; `None` when absent
/// or empty.
pub fn text(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = object.get(tag)?.to_str().ok()?;
    let first = value.split('\\').next().unwrap_or_default();
    let trimmed = first.trim_matches(|c: char| c == ' ' || c == '\0');
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// The first value of a numeric element (DS, IS, US, SS, FD, …) as `f64`;
/// `None` when absent, empty, unparsable or not finite.
pub fn first_f64(object: &InMemDicomObject, tag: Tag) -> Option<f64> {
    let element = object.get(tag)?;
    if element.value().multiplicity() == 0 {
        return None;
    }
    element.to_float64().ok().filter(|v| v.is_finite())
}

/// All values of a numeric element as `f64`; `None` when absent, empty or
/// any value is unparsable or not finite.
pub fn all_f64(object: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let values = object.get(tag)?.to_multi_float64().ok()?;
    (!values.is_empty() && values.iter().all(|v| v.is_finite())).then_some(values)
}

/// The first value of an integer element; `None` when absent, empty or
/// unparsable.
pub fn first_int(object: &InMemDicomObject, tag: Tag) -> Option<i64> {
    let element = object.get(tag)?;
    if element.value().multiplicity() == 0 {
        return None;
    }
    element.to_int::<i64>().ok()
}

/// The first item of a sequence element; `None` when absent or empty.
pub fn first_item(object: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    object.get(tag)?.items()?.first()
}

/// The 16-bit words of an OW (or US/SS) element such as LUT Data, however
/// the parser chose to hold them; `None` when absent or of another kind.
pub fn words(object: &InMemDicomObject, tag: Tag) -> Option<Vec<u16>> {
    let element = object.get(tag)?;
    match element.value().primitive()? {
        PrimitiveValue::U16(values) => Some(values.to_vec()),
        // Signed words keep their bit pattern; the LUT descriptor says how
        // to read them.
        PrimitiveValue::I16(values) => Some(values.iter().map(|&v| v as u16).collect()),
        // OW read as raw bytes: little endian, as every transfer syntax we
        // decode is.
        PrimitiveValue::U8(bytes) => Some(
            bytes
                .chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .collect(),
        ),
        other => other
            .to_multi_int::<i64>()
            .ok()
            .map(|values| values.into_iter().map(|v| v as u16).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, VR, dicom_value};
    use dicom_dictionary_std::tags;

    fn object_with(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
        InMemDicomObject::from_element_iter(elements)
    }

    #[test]
    fn text_takes_the_first_value_without_padding() {
        let object = object_with(vec![DataElement::new(
            tags::IMAGE_TYPE,
            VR::CS,
            dicom_value!(Strs, ["ORIGINAL ", "PRIMARY"]),
        )]);
        assert_eq!(text(&object, tags::IMAGE_TYPE).as_deref(), Some("ORIGINAL"));
    }

    #[test]
    fn empty_values_read_as_absent() {
        let object = object_with(vec![
            DataElement::new(tags::VIEW_POSITION, VR::CS, PrimitiveValue::Empty),
            DataElement::new(tags::WINDOW_CENTER, VR::DS, PrimitiveValue::Empty),
            DataElement::new(tags::BODY_PART_EXAMINED, VR::CS, dicom_value!(Str, "  ")),
        ]);
        assert_eq!(text(&object, tags::VIEW_POSITION), None);
        assert_eq!(text(&object, tags::BODY_PART_EXAMINED), None);
        assert_eq!(first_f64(&object, tags::WINDOW_CENTER), None);
        assert_eq!(text(&object, tags::MODALITY), None);
    }

    #[test]
    fn decimal_strings_parse_with_padding() {
        let object = object_with(vec![DataElement::new(
            tags::PIXEL_SPACING,
            VR::DS,
            dicom_value!(Strs, ["0.168 ", " 0.2"]),
        )]);
        assert_eq!(first_f64(&object, tags::PIXEL_SPACING), Some(0.168));
        assert_eq!(
            all_f64(&object, tags::PIXEL_SPACING),
            Some(vec![0.168, 0.2])
        );
    }

    #[test]
    fn words_from_bytes_are_little_endian() {
        let object = object_with(vec![DataElement::new(
            tags::LUT_DATA,
            VR::OW,
            PrimitiveValue::U8(vec![0x34, 0x12, 0xFF, 0x00].into()),
        )]);
        assert_eq!(words(&object, tags::LUT_DATA), Some(vec![0x1234, 0x00FF]));
    }
}
