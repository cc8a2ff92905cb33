//! JPEG Extended (Process 2 & 4, transfer syntax 1.2.840.10008.1.2.4.51)
//! with libjpeg-turbo.
//!
//! Process 4 is lossy JPEG at 12 bits per sample, the way many CR and CT
//! archives stored 10- to 12-bit images before JPEG 2000. The decoder
//! behind `dicom-pixeldata` (`jpeg-decoder`) only does lossy JPEG at 8 bits
//! and refuses these with "unsupported JPEG feature: SamplePrecision(12)",
//! and no pure-Rust decoder handles them yet. libjpeg-turbo 3 does, for
//! both precisions, so this transfer syntax goes through it — built from the
//! source bundled with `turbojpeg-sys` (needs cmake and a C compiler, as
//! CharLS already does), never a system library that may predate 12-bit
//! support.
//!
//! The FFI is confined to `Decompressor`, which owns the TurboJPEG handle;
//! everything else here is safe code. libjpeg's warnings are errors: a
//! truncated or corrupt stream must not reach the model as a half-decoded
//! radiograph. One warning is about nothing that matters: encoders of the
//! WG-04 era wrote a spectral selection end (Se) of 0 instead of 63 in the
//! scan header, fields a sequential decoder does not use. We set those
//! fields to the values the standard requires before decoding, rather than
//! let that warning through, because libjpeg only reports the first warning
//! of an image and would hide any that came after it.

use std::ffi::CStr;

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use turbojpeg_sys as tj;

use super::ImagingError;
use super::attributes::first_int;

/// The transfer syntax this module decodes.
pub const JPEG_EXTENDED_UID: &str = "1.2.840.10008.1.2.4.51";

/// The first frame's samples, row-major, as the JPEG stream holds them
/// (0 ..= 255 or 0 ..= 4095).
pub fn decode_first_frame(
    object: &DefaultDicomObject,
    rows: u32,
    columns: u32,
) -> Result<Vec<u16>, ImagingError> {
    let mut stream = first_frame_stream(object)?;
    normalise_sequential_scan_header(&mut stream)?;
    let mut decompressor = Decompressor::new()?;
    decompressor.read_header(&stream)?;
    let (width, height, precision) = decompressor.dimensions();
    if (width, height) != (columns, rows) {
        return Err(codec_error(format!(
            "JPEG stream is {width}x{height}, the image {columns}x{rows}"
        )));
    }
    match precision {
        8 => decompressor.decompress_8(&stream, rows, columns),
        12 => decompressor.decompress_12(&stream, rows, columns),
        other => Err(codec_error(format!(
            "{other}-bit precision in a JPEG Extended stream"
        ))),
    }
}

/// The bytes of frame 1: all fragments of a single-frame image, or the
/// first fragment when each frame has one.
fn first_frame_stream(object: &DefaultDicomObject) -> Result<Vec<u8>, ImagingError> {
    let fragments = object
        .get(tags::PIXEL_DATA)
        .and_then(|element| element.fragments())
        .ok_or_else(|| codec_error("Pixel Data is not encapsulated".into()))?;
    let frames = first_int(object, tags::NUMBER_OF_FRAMES).unwrap_or(1);
    match (frames, fragments) {
        (_, []) => Err(codec_error("Pixel Data has no fragments".into())),
        (1, _) => Ok(fragments.concat()),
        (frames, [first, ..]) if usize::try_from(frames) == Ok(fragments.len()) => {
            Ok(first.clone())
        }
        (frames, _) => Err(codec_error(format!(
            "cannot tell which of {} fragments hold frame 1 of {frames}",
            fragments.len()
        ))),
    }
}

/// Sets Ss, Se, Ah and Al of a sequential (SOF0/SOF1) stream's first scan
/// header to 0, 63, 0 and 0 (ITU T.81 B.2.3), the only values allowed
/// there and the ones the decoder assumes anyway. Other streams are left
/// alone.
fn normalise_sequential_scan_header(stream: &mut [u8]) -> Result<(), ImagingError> {
    const SOI: [u8; 2] = [0xFF, 0xD8];
    const SOF_BASELINE: u8 = 0xC0;
    const SOF_EXTENDED: u8 = 0xC1;
    const SOS: u8 = 0xDA;
    if stream.get(..2) != Some(&SOI[..]) {
        return Err(codec_error("stream does not start with SOI".into()));
    }
    let mut sequential = false;
    let mut at = 2;
    while let Some(&[0xFF, marker, length_high, length_low]) = stream.get(at..at + 4) {
        if marker == 0xFF {
            // A fill byte before the marker.
            at += 1;
            continue;
        }
        match marker {
            SOF_BASELINE | SOF_EXTENDED => sequential = true,
            SOS => {
                let components = usize::from(*stream.get(at + 4).unwrap_or(&0));
                let selection = at + 5 + 2 * components;
                return match stream.get_mut(selection..selection + 3) {
                    Some(fields) if sequential => {
                        fields.copy_from_slice(&[0, 63, 0]);
                        Ok(())
                    }
                    Some(_) => Ok(()),
                    None => Err(codec_error("truncated scan header".into())),
                };
            }
            _ => {}
        }
        at += 2 + usize::from(u16::from_be_bytes([length_high, length_low]));
    }
    Err(codec_error("no scan header before the data".into()))
}

fn codec_error(reason: String) -> ImagingError {
    ImagingError::Codec {
        codec: "libjpeg-turbo (JPEG Extended)",
        reason,
    }
}

/// A TurboJPEG decompression instance.
struct Decompressor {
    handle: tj::tjhandle,
}

impl Decompressor {
    fn new() -> Result<Decompressor, ImagingError> {
        // SAFETY: tj3Init has no preconditions; it returns null on failure,
        // which we check before using the handle.
        let handle = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as i32) };
        if handle.is_null() {
            return Err(codec_error("cannot create a TurboJPEG instance".into()));
        }
        let decompressor = Decompressor { handle };
        // SAFETY: the handle is valid (non-null, owned by `decompressor`).
        let status = unsafe { tj::tj3Set(handle, tj::TJPARAM_TJPARAM_STOPONWARNING as i32, 1) };
        decompressor.check(status)?;
        Ok(decompressor)
    }

    fn read_header(&mut self, stream: &[u8]) -> Result<(), ImagingError> {
        // SAFETY: the handle is valid; the pointer and length describe
        // `stream`, which outlives the call and is only read.
        let status =
            unsafe { tj::tj3DecompressHeader(self.handle, stream.as_ptr(), stream.len() as _) };
        self.check(status)
    }

    /// (width, height, precision) from the last header read.
    fn dimensions(&self) -> (u32, u32, i32) {
        // SAFETY: the handle is valid; tj3Get only reads a parameter.
        let get = |param: tj::TJPARAM| unsafe { tj::tj3Get(self.handle, param as i32) };
        let width = get(tj::TJPARAM_TJPARAM_JPEGWIDTH);
        let height = get(tj::TJPARAM_TJPARAM_JPEGHEIGHT);
        let precision = get(tj::TJPARAM_TJPARAM_PRECISION);
        (
            u32::try_from(width).unwrap_or(0),
            u32::try_from(height).unwrap_or(0),
            precision,
        )
    }

    fn decompress_8(
        &mut self,
        stream: &[u8],
        rows: u32,
        columns: u32,
    ) -> Result<Vec<u16>, ImagingError> {
        let mut samples = vec![0u8; rows as usize * columns as usize];
        // SAFETY: the handle is valid and its header matches `rows` x
        // `columns` (checked by the caller); `samples` holds exactly one
        // grey byte per pixel, which is what TJPF_GRAY with pitch 0 (rows
        // packed tightly) writes.
        let status = unsafe {
            tj::tj3Decompress8(
                self.handle,
                stream.as_ptr(),
                stream.len() as _,
                samples.as_mut_ptr(),
                0,
                tj::TJPF_TJPF_GRAY,
            )
        };
        self.check(status)?;
        Ok(samples.into_iter().map(u16::from).collect())
    }

    fn decompress_12(
        &mut self,
        stream: &[u8],
        rows: u32,
        columns: u32,
    ) -> Result<Vec<u16>, ImagingError> {
        let mut samples = vec![0i16; rows as usize * columns as usize];
        // SAFETY: as for `decompress_8`, with one 12-bit sample per pixel
        // in an i16 (`short`), which is what tj3Decompress12 writes.
        let status = unsafe {
            tj::tj3Decompress12(
                self.handle,
                stream.as_ptr(),
                stream.len() as _,
                samples.as_mut_ptr(),
                0,
                tj::TJPF_TJPF_GRAY,
            )
        };
        self.check(status)?;
        // 12-bit samples are 0 ..= 4095, so the conversion is exact.
        Ok(samples.into_iter().map(|s| s as u16).collect())
    }

    /// Turns a TurboJPEG status into an error carrying its message.
    fn check(&self, status: i32) -> Result<(), ImagingError> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: the handle is valid; the returned string is owned by the
        // instance (or thread-local), NUL-terminated, and copied at once.
        let message = unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.handle)) };
        Err(codec_error(message.to_string_lossy().into_owned()))
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.handle) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, a frame header with marker `sof`, a DQT and a scan header with
    /// Ss = 0, Se = 0 (as the WG-04 encoder wrote it), then two data bytes.
    fn stream(sof: u8) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8];
        bytes.extend([0xFF, sof, 0, 11, 12, 0, 4, 0, 4, 1, 1, 0x11, 0]);
        bytes.extend([0xFF, 0xFF]); // fill byte before the next marker
        bytes.extend([0xFF, 0xDB, 0, 3, 0]);
        bytes.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 0, 0, 0xAB, 0xCD]);
        bytes
    }

    #[test]
    fn sequential_scan_header_gets_the_standard_spectral_selection() {
        let mut extended = stream(0xC1);
        normalise_sequential_scan_header(&mut extended).unwrap();
        let mut expected = stream(0xC1);
        let selection = expected.len() - 5;
        expected[selection..selection + 3].copy_from_slice(&[0, 63, 0]);
        assert_eq!(extended, expected);
    }

    #[test]
    fn other_processes_are_left_alone() {
        let mut progressive = stream(0xC2);
        normalise_sequential_scan_header(&mut progressive).unwrap();
        assert_eq!(progressive, stream(0xC2));
    }

    #[test]
    fn streams_without_a_scan_are_refused() {
        let mut no_scan = stream(0xC1);
        no_scan.truncate(no_scan.len() - 12);
        assert!(normalise_sequential_scan_header(&mut no_scan).is_err());
        let mut not_jpeg = vec![0u8; 16];
        assert!(normalise_sequential_scan_header(&mut not_jpeg).is_err());
    }
}
