//! Unit tests of `greyscale_attributes`.

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
