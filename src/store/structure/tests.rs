//! Unit tests of the structural walk: well-formed data sets pass, and
//! every truncation, bomb and walk/parser disagreement found so far is
//! refused.

use super::*;
use std::io::Cursor;

fn explicit(bytes: &[u8]) -> Result<(), StructureError> {
    check_data_set(
        Cursor::new(bytes.to_vec()),
        Encoding::ExplicitVrLittleEndian,
    )
}

fn element(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(group.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(vr);
    if has_long_length(vr) {
        out.extend([0, 0]);
        out.extend((value.len() as u32).to_le_bytes());
    } else {
        out.extend((value.len() as u16).to_le_bytes());
    }
    out.extend(value);
    out
}

fn header(group: u16, element: u16, length: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(group.to_le_bytes());
    out.extend(element.to_le_bytes());
    out.extend(length.to_le_bytes());
    out
}

/// Preamble, DICM and a meta group naming explicit VR little endian,
/// with the group length given (or the true one).
fn part10(group_length: Option<u32>, meta_extra: &[u8], data_set: &[u8]) -> Vec<u8> {
    let mut meta = element(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.1\0");
    meta.extend(meta_extra);
    let length = group_length.unwrap_or(meta.len() as u32);
    let mut file = vec![0u8; 128];
    file.extend(b"DICM");
    file.extend(element(0x0002, 0x0000, b"UL", &length.to_le_bytes()));
    file.extend(meta);
    file.extend(data_set);
    file
}

#[test]
fn part10_files_are_walked_meta_group_and_data_set() {
    let modality = element(0x0008, 0x0060, b"CS", b"DX");
    let check = |file: Vec<u8>| check_part10(Cursor::new(file));
    assert!(check(part10(None, &[], &modality)).unwrap().walked);
    // A data set element claiming about 4 GB, as a fuzzed file did.
    let mut huge = modality.clone();
    huge.extend([
        0x09, 0x00, 0x10, 0x00, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF,
    ]);
    assert!(matches!(
        check(part10(None, &[], &huge)),
        Err(StructureError::Truncated(_))
    ));
    // The same in the meta group.
    let huge_meta = [
        0x02, 0x00, 0x02, 0x01, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF,
    ];
    assert!(check(part10(None, &huge_meta, &modality)).is_err());
    // A group length reaching into the data set.
    assert!(matches!(
        check(part10(Some(200), &[], &modality)),
        Err(StructureError::Meta(_))
    ));
    assert!(matches!(
        check(vec![0u8; 200]),
        Err(StructureError::NotPart10)
    ));
}

#[test]
fn deflated_data_sets_are_inflated_and_walked() {
    use std::io::Write;
    let deflate = |data: &[u8]| {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        Cursor::new(encoder.finish().unwrap())
    };
    let modality = element(0x0008, 0x0060, b"CS", b"DX");
    assert!(check_data_set_in(deflate(&modality), DEFLATED).unwrap());
    // Found by the dataset and pixel_pipeline fuzz targets: a deflated
    // element claiming gigabytes went to the parser unchecked.
    let mut huge = modality.clone();
    huge.extend([
        0x09, 0x00, 0x10, 0x00, b'O', b'B', 0, 0, 0x00, 0x00, 0x00, 0x80,
    ]);
    assert!(matches!(
        check_data_set_in(deflate(&huge), DEFLATED),
        Err(StructureError::Truncated(_))
    ));
    // A bomb: far more zeros than the cap, from a few hundred kilobytes.
    let mut bomb = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(MAX_INFLATED_BYTES >> 20) + 1 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = Cursor::new(bomb.finish().unwrap());
    assert!(matches!(
        check_data_set_in(bomb, DEFLATED),
        Err(StructureError::TooLarge(_))
    ));
    assert!(!check_data_set_in(Cursor::new(vec![]), "1.2.840.10008.1.2.2").unwrap());
}

#[test]
fn a_binary_value_of_a_partial_length_is_refused() {
    // Rows (US) with 3 bytes: the parser would read one value and take
    // the next element's tag from the byte it left.
    let rows = element(0x0028, 0x0010, b"US", &[1, 0, 0]);
    assert!(matches!(
        explicit(&rows),
        Err(StructureError::PartialValue(0x0028, 0x0010, 0))
    ));
    let mut implicit = header(0x0028, 0x0010, 3);
    implicit.extend([1, 0, 0]);
    assert!(matches!(
        check_data_set(Cursor::new(implicit), Encoding::ImplicitVrLittleEndian),
        Err(StructureError::PartialValue(0x0028, 0x0010, 0))
    ));
    assert!(explicit(&element(0x0028, 0x0010, b"US", &[1, 0])).is_ok());
    assert!(explicit(&element(0x0008, 0x0060, b"CS", b"DX ")).is_ok());
}

#[test]
fn an_unknown_vr_is_read_with_a_long_length_as_the_parser_reads_it() {
    // (3435,3735) with VR " \0": the parser takes it as UN, with a
    // 4-byte length after two reserved bytes, here 0xD2350000.
    let mut element = vec![0x35, 0x34, 0x35, 0x37, b' ', 0, 0x60, 0x00];
    element.extend([0x00, 0x00, 0x35, 0xD2]);
    assert!(explicit(&element).is_err());
}

#[test]
fn a_stray_tag_of_group_fffe_among_elements_is_refused() {
    // (FFFE,E0E8) followed by bytes an element walk would read as
    // VR "OB", a short length: the parser reads a 4-byte length.
    let mut stray = vec![0xFE, 0xFF, 0xE8, 0xE0, b'O', b'B', 0x10, 0x00];
    stray.extend([0u8; 16]);
    assert!(matches!(
        explicit(&stray),
        Err(StructureError::Unexpected(0xFFFE, 0xE0E8, 0))
    ));
}

/// A sequence of known length holding one item of known length with
/// `inner` as its only element.
fn defined_length_sequence(inner: &[u8]) -> Vec<u8> {
    let mut item = header(0xFFFE, 0xE000, inner.len() as u32);
    item.extend_from_slice(inner);
    let mut data = vec![0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0];
    data.extend((item.len() as u32).to_le_bytes());
    data.extend(item);
    data
}

#[test]
fn items_of_a_sequence_of_known_length_are_walked_too() {
    let reference = element(0x0008, 0x1150, b"UI", b"1.2\0");
    assert!(explicit(&defined_length_sequence(&reference)).is_ok());
    // An OB inside the item claiming 2.9 GB: the parser would try to
    // allocate it (found by fuzzing).
    let mut bomb = vec![0x09, 0x00, 0x10, 0x00, b'O', b'B', 0, 0];
    bomb.extend(2_914_172_091u32.to_le_bytes());
    bomb.extend([0; 8]);
    assert!(explicit(&defined_length_sequence(&bomb)).is_err());
}

/// A data set with a nested undefined-length sequence and encapsulated
/// pixel data.
fn well_formed() -> Vec<u8> {
    let mut data = element(0x0008, 0x0018, b"UI", b"1.2.3\0");
    data.extend([0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0]);
    data.extend(UNDEFINED_LENGTH.to_le_bytes());
    data.extend(header(0xFFFE, 0xE000, UNDEFINED_LENGTH));
    data.extend(element(0x0008, 0x1150, b"UI", b"1.2\0"));
    data.extend(header(0xFFFE, 0xE00D, 0));
    data.extend(header(0xFFFE, 0xE0DD, 0));
    data.extend([0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0]);
    data.extend(UNDEFINED_LENGTH.to_le_bytes());
    data.extend(header(0xFFFE, 0xE000, 0));
    data.extend(header(0xFFFE, 0xE000, 4));
    data.extend([1, 2, 3, 4]);
    data.extend(header(0xFFFE, 0xE0DD, 0));
    data
}

#[test]
fn accepts_a_well_formed_data_set() {
    explicit(&well_formed()).unwrap();
    explicit(&[]).unwrap();
}

#[test]
fn refuses_every_truncation() {
    let data = well_formed();
    for cut in 1..data.len() {
        // Cuts on an element boundary at top level are complete data sets.
        let boundary = [14usize, 62].contains(&cut);
        let result = explicit(&data[..cut]);
        assert_eq!(result.is_ok(), boundary, "cut at {cut}: {result:?}");
    }
}

#[test]
fn refuses_stray_delimiters_and_bombs() {
    assert!(explicit(&header(0xFFFE, 0xE0DD, 0)).is_err());
    let mut deep = Vec::new();
    for _ in 0..200 {
        deep.extend([0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0]);
        deep.extend(UNDEFINED_LENGTH.to_le_bytes());
        deep.extend(header(0xFFFE, 0xE000, UNDEFINED_LENGTH));
    }
    assert!(matches!(explicit(&deep), Err(StructureError::TooDeep)));
    // A length far beyond the end.
    assert!(
        explicit(
            &element(0x7FE0, 0x0010, b"OW", &[])[..8]
                .iter()
                .chain(&[0, 0, 0xff, 0xff, 0xff, 0x7f])
                .copied()
                .collect::<Vec<_>>()
        )
        .is_err()
    );
}

#[test]
fn walks_implicit_vr() {
    let mut data = header(0x0008, 0x0018, 6);
    data.extend(b"1.2.3\0");
    data.extend(header(0x0008, 0x1140, UNDEFINED_LENGTH));
    data.extend(header(0xFFFE, 0xE000, 8));
    data.extend(header(0x0008, 0x1150, 0));
    data.extend(header(0xFFFE, 0xE0DD, 0));
    check_data_set(Cursor::new(data.clone()), Encoding::ImplicitVrLittleEndian).unwrap();
    assert!(
        check_data_set(
            Cursor::new(data[..data.len() - 3].to_vec()),
            Encoding::ImplicitVrLittleEndian
        )
        .is_err()
    );
}
