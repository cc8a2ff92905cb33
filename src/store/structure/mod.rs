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
/// endian), which the parser's dry run (`declared_lengths`) bounds.
pub fn check_data_set_in<R: Read + Seek>(
    reader: R,
    transfer_syntax: &str,
) -> Result<bool, StructureError> {
    if let Some(encoding) = Encoding::of_transfer_syntax(transfer_syntax) {
        check_data_set(reader, encoding)?;
        return Ok(true);
    }
    if transfer_syntax.trim_end_matches(['\0', ' ']) != DEFLATED {
        return Ok(false);
    }
    let inflated = inflate_capped(reader)?;
    check_data_set(io::Cursor::new(inflated), Encoding::ExplicitVrLittleEndian)?;
    Ok(true)
}

/// Inflates a deflated data set into memory, refusing one that inflates to
/// more than [`MAX_INFLATED_BYTES`] (a deflate bomb).
pub(super) fn inflate_capped<R: Read>(deflated: R) -> Result<Vec<u8>, StructureError> {
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut inflated)?;
    if inflated.len() as u64 > MAX_INFLATED_BYTES {
        return Err(StructureError::TooLarge(MAX_INFLATED_BYTES));
    }
    Ok(inflated)
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
    #[error("{} at byte {offset} declares {length} bytes, more than the data set holds", match tag { Some((group, element)) => format!("element {group:04X},{element:04X}"), None => "an item".to_owned() })]
    LengthBeyondInput {
        /// The element's tag; `None` for an item (a fragment).
        tag: Option<(u16, u16)>,
        length: u32,
        /// Bytes into the data set where the value would start.
        offset: u64,
    },
    #[error("parsing the data set: {0}")]
    Parser(String),
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
/// [`check_data_set_in`] does (`walked` false if its transfer syntax is one
/// the walk does not understand). Run before a file from
/// anywhere is parsed: the parser reserves each element's declared length
/// before reading it, so a few bytes claiming a 4 GB value would cost
/// 4 GB.
pub fn check_part10<R: Read + Seek>(mut reader: R) -> Result<Part10Layout, StructureError> {
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
    let walked = check_data_set_in(reader, meta.transfer_syntax())?;
    Ok(Part10Layout {
        data_set_start,
        data_set_bytes: end - data_set_start,
        transfer_syntax: meta.transfer_syntax().to_owned(),
        walked,
    })
}

/// Where a checked Part-10 file's data set lies, and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part10Layout {
    /// Offset of the data set's first byte (just after the meta group).
    pub data_set_start: u64,
    /// Bytes from there to the end of the file.
    pub data_set_bytes: u64,
    pub transfer_syntax: String,
    /// Whether the walk understood the transfer syntax (false for big
    /// endian, which it leaves to the parser).
    pub walked: bool,
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
mod tests;
