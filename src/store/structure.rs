//! A structural check of a received data set: walks every element header
//! and skips every value, proving the data set is complete and well formed
//! without reading (or holding) its pixel data.
//!
//! Parsing a whole 6 MB radiograph back from disk cost as much as the
//! fsync that makes it durable; the walk costs a few header reads. The
//! attributes before Pixel Data are still parsed in full by `dicom-object`
//! (see `Store::commit`); this walk covers the rest, including encapsulated
//! fragments and anything after Pixel Data. It understands the little-endian
//! encodings (PS3.5 §7.1); callers parse other transfer syntaxes fully.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;

/// Tags with special meaning in the encoding (PS3.5 §7.5).
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_DELIMITER: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: (u16, u16) = (0xFFFE, 0xE0DD);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);
const UNDEFINED_LENGTH: u32 = 0xFFFF_FFFF;
/// Nesting deeper than this is refused rather than followed.
const MAX_DEPTH: usize = 64;

/// How element headers are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    ExplicitVrLittleEndian,
    ImplicitVrLittleEndian,
}

impl Encoding {
    /// The encoding of a transfer syntax, if the walk understands it:
    /// implicit VR little endian, or any explicit VR little endian syntax
    /// that is not deflated (encapsulated ones included).
    pub fn of_transfer_syntax(uid: &str) -> Option<Encoding> {
        match uid {
            "1.2.840.10008.1.2" => Some(Encoding::ImplicitVrLittleEndian),
            "1.2.840.10008.1.2.1.99" | "1.2.840.10008.1.2.2" => None,
            "1.2.840.10008.1.2.1" => Some(Encoding::ExplicitVrLittleEndian),
            uid if uid.starts_with("1.2.840.10008.1.2.") => Some(Encoding::ExplicitVrLittleEndian),
            _ => None,
        }
    }
}

/// Deflated Explicit VR Little Endian: explicit VR little endian, deflated.
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// The most bytes a deflated data set may inflate to before it is walked
/// (a 4096 x 4096 16-bit radiograph is 32 MiB).
pub const MAX_INFLATED_BYTES: u64 = 256 << 20;

/// Walks the data set from the reader's position in `transfer_syntax`:
/// the little-endian encodings as they are, a deflated one after inflating
/// it into memory (at most [`MAX_INFLATED_BYTES`]). Returns false, having
/// read nothing, for a transfer syntax the walk does not understand (big
/// endian), which callers must bound some other way.
pub fn check_data_set_in<R: Read + Seek>(
    mut reader: R,
    transfer_syntax: &str,
) -> Result<bool, StructureError> {
    if let Some(encoding) = Encoding::of_transfer_syntax(transfer_syntax) {
        check_data_set(reader, encoding)?;
        return Ok(true);
    }
    if transfer_syntax.trim_end_matches(['\0', ' ']) != DEFLATED {
        return Ok(false);
    }
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(&mut reader)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut inflated)?;
    if inflated.len() as u64 > MAX_INFLATED_BYTES {
        return Err(StructureError::TooLarge(MAX_INFLATED_BYTES));
    }
    check_data_set(io::Cursor::new(inflated), Encoding::ExplicitVrLittleEndian)?;
    Ok(true)
}

/// Why the data set is not well formed.
#[derive(Debug, thiserror::Error)]
pub enum StructureError {
    #[error("data set ends inside an element at byte {0}")]
    Truncated(u64),
    #[error("unexpected {0:04X},{1:04X} at byte {2}")]
    Unexpected(u16, u16, u64),
    #[error("sequences nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("reading the data set: {0}")]
    Io(#[from] io::Error),
    #[error(
        "element {0:04X},{1:04X} at byte {2} has a length that is not a whole number of values"
    )]
    PartialValue(u16, u16, u64),
    #[error("deflated data set inflates to more than {0} bytes")]
    TooLarge(u64),
    #[error("not a Part-10 file: no DICM after the preamble")]
    NotPart10,
    #[error("file meta information: {0}")]
    Meta(String),
}

/// Walks a data set that starts at the reader's current position and runs
/// to its end.
pub fn check_data_set<R: Read + Seek>(
    mut reader: R,
    encoding: Encoding,
) -> Result<(), StructureError> {
    let position = reader.stream_position()?;
    let end = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(position))?;
    let mut walker = Walker {
        input: BufReader::with_capacity(8192, reader),
        encoding,
        position,
        end,
    };
    walker.elements_until(End::Eof, 0)
}

/// Walks a whole Part-10 file: the file meta group (always explicit VR
/// little endian) after the preamble and `DICM`, then the data set as
/// [`check_data_set_in`] does (false if its transfer syntax is one the
/// walk does not understand). Run before a file from
/// anywhere is parsed: the parser reserves each element's declared length
/// before reading it, so a few bytes claiming a 4 GB value would cost
/// 4 GB.
pub fn check_part10<R: Read + Seek>(mut reader: R) -> Result<bool, StructureError> {
    let end = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(128))?;
    let mut magic = [0u8; 4];
    if reader.read_exact(&mut magic).is_err() || &magic != b"DICM" {
        return Err(StructureError::NotPart10);
    }
    // The meta reader trusts (0002,0000) for where the group ends, and
    // would read data set elements as meta ones if it claimed too much.
    let mut group_length = [0u8; 12];
    reader.read_exact(&mut group_length)?;
    if group_length[..8] != [0x02, 0x00, 0x00, 0x00, b'U', b'L', 0x04, 0x00] {
        return Err(StructureError::Meta(
            "does not start with File Meta Information Group Length".into(),
        ));
    }
    let declared = u32::from_le_bytes(group_length[8..].try_into().expect("4 bytes"));
    let mut walker = Walker {
        input: BufReader::with_capacity(8192, &mut reader),
        encoding: Encoding::ExplicitVrLittleEndian,
        position: 144,
        end,
    };
    walker.elements_until(End::Group(0x0002), 0)?;
    let data_set_start = walker.position;
    drop(walker);
    if u64::from(declared) != data_set_start - 144 {
        return Err(StructureError::Meta(format!(
            "group length {declared} where the group holds {} bytes",
            data_set_start - 144
        )));
    }
    reader.seek(SeekFrom::Start(128))?;
    let meta = dicom_object::FileMetaTable::from_reader(&mut reader)
        .map_err(|e| StructureError::Meta(e.to_string()))?;
    reader.seek(SeekFrom::Start(data_set_start))?;
    check_data_set_in(reader, meta.transfer_syntax())
}

/// What ends a list of elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The end of the file (top level).
    Eof,
    /// An item delimitation item (an item of undefined length).
    ItemDelimiter,
    /// This many bytes (an item of defined length).
    Bytes(u64),
    /// The first element of another group, or the end of the file (the
    /// file meta group).
    Group(u16),
}

struct Walker<R> {
    input: BufReader<R>,
    encoding: Encoding,
    /// Offset of the next byte, tracked here rather than asked of the file.
    position: u64,
    /// Length of the file.
    end: u64,
}

impl<R: Read + Seek> Walker<R> {
    fn read<const N: usize>(&mut self) -> Result<[u8; N], StructureError> {
        let mut bytes = [0u8; N];
        match self.input.read_exact(&mut bytes) {
            Ok(()) => {
                self.position += N as u64;
                Ok(bytes)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(StructureError::Truncated(self.position))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn read_tag(&mut self) -> Result<(u16, u16), StructureError> {
        let b = self.read::<4>()?;
        Ok((
            u16::from_le_bytes([b[0], b[1]]),
            u16::from_le_bytes([b[2], b[3]]),
        ))
    }

    fn read_u32(&mut self) -> Result<u32, StructureError> {
        Ok(u32::from_le_bytes(self.read::<4>()?))
    }

    /// Skips `length` value bytes, checking they exist. A skip within the
    /// read buffer costs no system call.
    fn skip(&mut self, length: u64) -> Result<(), StructureError> {
        if self.position + length > self.end {
            return Err(StructureError::Truncated(self.position));
        }
        let offset = i64::try_from(length).expect("a u32 length fits");
        self.input.seek_relative(offset)?;
        self.position += length;
        Ok(())
    }

    /// Walks elements until `end`.
    fn elements_until(&mut self, end: End, depth: usize) -> Result<(), StructureError> {
        if depth > MAX_DEPTH {
            return Err(StructureError::TooDeep);
        }
        let start = self.position;
        loop {
            match end {
                End::Eof if self.position >= self.end => return Ok(()),
                End::Bytes(length) => {
                    let consumed = self.position - start;
                    if consumed == length {
                        return Ok(());
                    }
                    if consumed > length {
                        return Err(StructureError::Truncated(self.position));
                    }
                }
                _ => {}
            }
            if matches!(end, End::Group(_)) && self.position >= self.end {
                return Ok(());
            }
            let at = self.position;
            let tag = self.read_tag()?;
            if matches!(end, End::Group(group) if tag.0 != group) {
                self.input.seek_relative(-4)?;
                self.position = at;
                return Ok(());
            }
            if tag == ITEM_DELIMITER {
                self.read_u32()?;
                return match end {
                    End::ItemDelimiter => Ok(()),
                    _ => Err(StructureError::Unexpected(tag.0, tag.1, at)),
                };
            }
            // Any other tag of group FFFE is read by the parser as an item
            // header (no VR, a 4-byte length), whatever the encoding: it has
            // no place among elements, and walking it as an element would
            // read a different length than the parser does.
            if tag.0 == 0xFFFE {
                return Err(StructureError::Unexpected(tag.0, tag.1, at));
            }
            self.element_value(tag, depth)?;
        }
    }

    /// Reads the rest of an element header and walks or skips its value.
    fn element_value(&mut self, tag: (u16, u16), depth: usize) -> Result<(), StructureError> {
        let at = self.position - 4;
        let (vr, length, fragments) = match self.encoding {
            Encoding::ImplicitVrLittleEndian => {
                (implicit_vr(tag), self.read_u32()?, tag == PIXEL_DATA)
            }
            Encoding::ExplicitVrLittleEndian => {
                let vr = self.read::<2>()?;
                let length = if has_long_length(&vr) {
                    self.read::<2>()?;
                    self.read_u32()?
                } else {
                    u32::from(u16::from_le_bytes(self.read::<2>()?))
                };
                (vr, length, matches!(&vr, b"OB" | b"OW"))
            }
        };
        if length != UNDEFINED_LENGTH && length % value_size(&vr) != 0 {
            return Err(StructureError::PartialValue(tag.0, tag.1, at));
        }
        if length == UNDEFINED_LENGTH {
            // A sequence (items of elements) or encapsulated pixel data
            // (items of raw fragments), up to the sequence delimiter.
            self.items(depth + 1, fragments, None)
        } else if &vr == b"SQ" {
            // A sequence of known length: its items are parsed too, so
            // they are walked, not skipped.
            self.items(depth + 1, false, Some(u64::from(length)))
        } else {
            self.skip(u64::from(length))
        }
    }

    /// Walks items until a sequence delimitation item, or until `bound`
    /// bytes are consumed for a sequence of known length. Fragments (of
    /// encapsulated pixel data) are skipped; other items hold elements.
    fn items(
        &mut self,
        depth: usize,
        fragments: bool,
        bound: Option<u64>,
    ) -> Result<(), StructureError> {
        if depth > MAX_DEPTH {
            return Err(StructureError::TooDeep);
        }
        let start = self.position;
        loop {
            if let Some(length) = bound {
                let consumed = self.position - start;
                if consumed == length {
                    return Ok(());
                }
                if consumed > length {
                    return Err(StructureError::Truncated(self.position));
                }
            }
            let at = self.position;
            let tag = self.read_tag()?;
            let length = self.read_u32()?;
            match tag {
                SEQUENCE_DELIMITER if bound.is_none() => return Ok(()),
                ITEM if fragments && length != UNDEFINED_LENGTH => self.skip(u64::from(length))?,
                ITEM if fragments => return Err(StructureError::Unexpected(tag.0, tag.1, at)),
                ITEM if length == UNDEFINED_LENGTH => {
                    self.elements_until(End::ItemDelimiter, depth)?
                }
                ITEM => self.elements_until(End::Bytes(u64::from(length)), depth)?,
                _ => return Err(StructureError::Unexpected(tag.0, tag.1, at)),
            }
        }
    }
}

/// The VR the parser gives an element in implicit VR: the dictionary's,
/// OW for pixel and overlay data (as `dicom-encoding` decides it).
fn implicit_vr(tag: (u16, u16)) -> [u8; 2] {
    if tag == PIXEL_DATA || (tag.0 >> 8 == 0x60 && tag.1 == 0x3000) {
        return *b"OW";
    }
    StandardDataDictionary
        .by_tag(Tag(tag.0, tag.1))
        .map(|entry| entry.vr().relaxed().to_bytes())
        .unwrap_or(*b"UN")
}

/// Bytes per value of a VR. The parser (`dicom-parser` 0.10) reads binary
/// values whole and, given a length that is not a multiple of this, leaves
/// the rest unread and loses its place: it then takes a length from the
/// middle of a value, one this walk never checked.
fn value_size(vr: &[u8; 2]) -> u32 {
    match vr {
        b"US" | b"SS" | b"OW" => 2,
        b"UL" | b"SL" | b"FL" | b"AT" | b"OL" | b"OF" => 4,
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => 8,
        _ => 1,
    }
}

/// Explicit VRs with a 2-byte reserved field and a 4-byte length: all but
/// the short-length ones. An unknown VR code counts as long, as the parser
/// (`dicom-parser` 0.10) reads it as UN; treating it as short here let a
/// fuzzed file pass the walk with a length the parser then read as 3 GB.
fn has_long_length(vr: &[u8; 2]) -> bool {
    !matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FD"
            | b"FL"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

#[cfg(test)]
mod tests {
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
        assert!(check(part10(None, &[], &modality)).unwrap());
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
}
