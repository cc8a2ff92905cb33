//! A dry run of dicom-parser's own data set reader over a stored object,
//! refusing any value whose declared length exceeds the bytes left, before
//! the parser reserves that length.
//!
//! dicom-parser reserves (and zero-fills) each element's declared length
//! before it reads the value, so a few bytes claiming a 3 GB value cost
//! 3 GB. The structural walk (`structure`) catches this for well-formed
//! headers, but it is a second reader of the encoding: wherever a malformed
//! header is read one way by the walk and another by the parser (an invalid
//! VR code, a stray item tag), the parser can still meet a length the walk
//! never saw. This pass cannot disagree with the parser, because it is the
//! parser: the same `DataSetReader`, on the same bytes, with the options
//! `dicom-object` uses. It only looks at each token between the header
//! and the value: the reader yields an element's header (or a fragment's
//! item start) as one token and reads its value on the next call, which is
//! where the check stands.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use dicom_core::Tag;
use dicom_core::header::Length;
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_parser::dataset::DataToken;
use dicom_parser::dataset::read::{DataSetReader, DataSetReaderOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::structure::{StructureError, inflate_capped};

const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";

/// Where the dry run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadExtent {
    /// The whole data set, as a full open reads it.
    Whole,
    /// Up to the first top-level element at or after this tag, as
    /// `OpenFileOptions::read_until` reads it.
    Until(Tag),
}

/// Runs the parser over the data set that `data_set` yields (the bytes
/// after the file meta group, `available` of them) in `transfer_syntax_uid`,
/// checking every declared length against the bytes left. An unknown
/// transfer syntax is left to the real parse, which refuses it.
pub fn check_declared_lengths<R: Read>(
    data_set: R,
    available: u64,
    transfer_syntax_uid: &str,
    extent: ReadExtent,
) -> Result<(), StructureError> {
    let uid = transfer_syntax_uid.trim_end_matches(['\0', ' ']);
    let Some(transfer_syntax) = TransferSyntaxRegistry.get(uid) else {
        return Ok(());
    };
    match transfer_syntax.codec() {
        Codec::Dataset(Some(_)) => {
            // Deflated: the parser reads the inflated stream, so the check
            // runs over it, inflated (within the walk's cap) into memory.
            let inflated = inflate_capped(data_set)?;
            let length = inflated.len() as u64;
            let explicit = TransferSyntaxRegistry
                .get(EXPLICIT_VR_LITTLE_ENDIAN)
                .expect("the registry has explicit VR little endian");
            dry_run(io::Cursor::new(inflated), length, explicit, extent)
        }
        Codec::Dataset(None) => Ok(()),
        Codec::None | Codec::EncapsulatedPixelData(..) => {
            dry_run(data_set, available, transfer_syntax, extent)
        }
    }
}

fn dry_run<R: Read>(
    data_set: R,
    available: u64,
    transfer_syntax: &dicom_encoding::TransferSyntax,
    extent: ReadExtent,
) -> Result<(), StructureError> {
    let consumed = Rc::new(Cell::new(0u64));
    let source = CountingReader {
        inner: io::BufReader::new(data_set),
        consumed: Rc::clone(&consumed),
    };
    let reader = DataSetReader::new_with_ts_options(
        source,
        transfer_syntax,
        DataSetReaderOptions::default(),
    )
    .map_err(|e| StructureError::Parser(e.to_string()))?;
    let check = |tag: Option<Tag>, length: Length| -> Result<(), StructureError> {
        let offset = consumed.get();
        match length.get() {
            Some(length) if u64::from(length) > available.saturating_sub(offset) => {
                Err(StructureError::LengthBeyondInput {
                    tag: tag.map(|t| (t.0, t.1)),
                    length,
                    offset,
                })
            }
            _ => Ok(()),
        }
    };
    let mut depth = 0usize;
    for token in reader {
        let token = token.map_err(|e| StructureError::Parser(e.to_string()))?;
        let top_level_tag = match &token {
            DataToken::ElementHeader(header) if depth == 0 => Some(header.tag),
            DataToken::SequenceStart { tag, .. } if depth == 0 => Some(*tag),
            DataToken::PixelSequenceStart if depth == 0 => Some(Tag(0x7FE0, 0x0010)),
            _ => None,
        };
        if let (ReadExtent::Until(until), Some(tag)) = (extent, top_level_tag)
            && until <= tag
        {
            return Ok(());
        }
        match token {
            DataToken::ElementHeader(header) => check(Some(header.tag), header.len)?,
            DataToken::SequenceStart { tag, len } => {
                check(Some(tag), len)?;
                depth += 1;
            }
            DataToken::ItemStart { len } => {
                check(None, len)?;
                depth += 1;
            }
            DataToken::PixelSequenceStart => depth += 1,
            DataToken::SequenceEnd | DataToken::ItemEnd => depth = depth.saturating_sub(1),
            DataToken::PrimitiveValue(_) | DataToken::ItemValue(_) | DataToken::OffsetTable(_) => {}
        }
    }
    Ok(())
}

/// Counts the bytes the parser has taken, which is where it stands: the
/// stateful decoder reads exactly what it decodes, with no read-ahead of
/// its own (the buffering is below the count).
struct CountingReader<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.consumed.set(self.consumed.get() + read as u64);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPLICIT: &str = "1.2.840.10008.1.2.1";
    const IMPLICIT: &str = "1.2.840.10008.1.2";

    fn check(bytes: &[u8], uid: &str, extent: ReadExtent) -> Result<(), StructureError> {
        check_declared_lengths(bytes, bytes.len() as u64, uid, extent)
    }

    /// (0010,0010) PN "DOE^JANE" in explicit VR little endian.
    fn patient_name() -> Vec<u8> {
        let mut bytes = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N', 8, 0];
        bytes.extend_from_slice(b"DOE^JANE");
        bytes
    }

    #[test]
    fn a_well_formed_data_set_passes() {
        check(&patient_name(), EXPLICIT, ReadExtent::Whole).unwrap();
    }

    #[test]
    fn a_value_claiming_more_than_the_input_is_refused_before_it_is_read() {
        let mut bytes = patient_name();
        // (0009,0010) with the invalid VR code "\x01\x02", which the parser
        // reads as UN: a 4-byte length after two reserved bytes, 3 GB here.
        bytes.extend_from_slice(&[0x09, 0x00, 0x10, 0x00, 0x01, 0x02, 0, 0]);
        bytes.extend_from_slice(&0xC000_0000u32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 16]);
        let error = check(&bytes, EXPLICIT, ReadExtent::Whole).unwrap_err();
        assert!(
            matches!(
                error,
                StructureError::LengthBeyondInput {
                    tag: Some((0x0009, 0x0010)),
                    length: 0xC000_0000,
                    offset: 28
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_fragment_claiming_more_than_the_input_is_refused() {
        // Encapsulated Pixel Data: an empty offset table, then a fragment
        // claiming 2 GB.
        let mut bytes = vec![
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        bytes.extend_from_slice(&0x8000_0000u32.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        let error = check(&bytes, "1.2.840.10008.1.2.4.50", ReadExtent::Whole).unwrap_err();
        assert!(
            matches!(error, StructureError::LengthBeyondInput { tag: None, .. }),
            "{error}"
        );
    }

    #[test]
    fn reading_until_a_tag_stops_before_its_value() {
        let mut bytes = patient_name();
        // Pixel Data (OW) claiming 1 GB: not read when the extent stops
        // at Pixel Data, as the SCP's identifying parse does.
        bytes.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]);
        bytes.extend_from_slice(&0x4000_0000u32.to_le_bytes());
        check(&bytes, EXPLICIT, ReadExtent::Until(Tag(0x7FE0, 0x0010))).unwrap();
        assert!(check(&bytes, EXPLICIT, ReadExtent::Whole).is_err());
    }

    #[test]
    fn implicit_vr_lengths_are_checked_too() {
        // (0010,0020) claiming 2 GB in implicit VR.
        let mut bytes = vec![0x10, 0x00, 0x20, 0x00];
        bytes.extend_from_slice(&0x8000_0000u32.to_le_bytes());
        bytes.extend_from_slice(b"12345678");
        assert!(check(&bytes, IMPLICIT, ReadExtent::Whole).is_err());
    }

    #[test]
    fn a_deflated_data_set_is_checked_inflated() {
        use std::io::Write;
        let mut bytes = patient_name();
        bytes.extend_from_slice(&[0x10, 0x00, 0x20, 0x00, b'L', b'O', 0xFE, 0xFF]);
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&bytes).unwrap();
        let deflated = encoder.finish().unwrap();
        let error = check(&deflated, "1.2.840.10008.1.2.1.99", ReadExtent::Whole).unwrap_err();
        assert!(
            matches!(error, StructureError::LengthBeyondInput { .. }),
            "{error}"
        );
        let deflated_good = {
            let mut encoder =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&patient_name()).unwrap();
            encoder.finish().unwrap()
        };
        check(&deflated_good, "1.2.840.10008.1.2.1.99", ReadExtent::Whole).unwrap();
    }
}
