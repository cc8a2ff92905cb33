//! A check of an RLE Lossless frame (PS3.5 Annex G) before it is decoded.
//!
//! `dicom-transfer-syntax-registry` 0.10's RLE decoder trusts the frame:
//! it slices the segment header without checking the fragment's length,
//! and indexes each decoded segment as if it held a full plane. A
//! malformed frame (found by fuzzing, `tests/fuzz_corpus/pixel_pipeline/`)
//! makes it panic. Here the header and every segment are checked first —
//! counting, without writing, how many bytes each PackBits segment decodes
//! to — so such a frame is a clear error instead.

/// The RLE header: a segment count and 15 offsets, as little-endian u32.
const HEADER_BYTES: usize = 64;
/// The most segments a frame may have.
const MAX_SEGMENTS: usize = 15;

/// Checks that `fragment` (the first frame's RLE data) decodes to
/// `rows × columns` bytes in each of its `samples_per_pixel ×
/// bits_allocated / 8` segments. Returns why not.
pub fn check_rle_frame(
    fragment: &[u8],
    rows: usize,
    columns: usize,
    samples_per_pixel: usize,
    bits_allocated: u16,
) -> Result<(), String> {
    if !matches!(bits_allocated, 8 | 16 | 32) {
        return Err(format!("RLE with Bits Allocated {bits_allocated}"));
    }
    let expected_segments = samples_per_pixel * usize::from(bits_allocated / 8);
    if fragment.len() < HEADER_BYTES {
        return Err(format!(
            "RLE fragment of {} bytes has no full header",
            fragment.len()
        ));
    }
    let word = |index: usize| {
        let bytes = &fragment[index * 4..index * 4 + 4];
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize
    };
    let segments = word(0);
    if segments != expected_segments || segments > MAX_SEGMENTS {
        return Err(format!(
            "RLE header declares {segments} segments, the image needs {expected_segments}"
        ));
    }
    let mut bounds: Vec<usize> = (1..=segments).map(word).collect();
    bounds.push(fragment.len());
    let plane = rows * columns;
    for (index, pair) in bounds.windows(2).enumerate() {
        let (start, end) = (pair[0], pair[1]);
        if start < HEADER_BYTES || start > end || end > fragment.len() {
            return Err(format!("RLE segment {index} has offsets {start}..{end}"));
        }
        let decoded = packbits_decoded_len(&fragment[start..end], plane);
        if decoded < plane {
            return Err(format!(
                "RLE segment {index} decodes to {decoded} bytes, not {plane}"
            ));
        }
    }
    Ok(())
}

/// How many bytes PackBits `data` decodes to, counting up to `limit`.
fn packbits_decoded_len(data: &[u8], limit: usize) -> usize {
    let (mut at, mut decoded) = (0, 0);
    while at < data.len() && decoded < limit {
        let header = data[at] as i8;
        at += 1;
        match header {
            0..=127 => {
                // A literal run of header + 1 bytes, as far as data goes.
                let run = (header as usize + 1).min(data.len() - at);
                decoded += run;
                at += run;
            }
            -127..=-1 if at < data.len() => {
                // The next byte, repeated 1 - header times.
                decoded += (1 - header as isize) as usize;
                at += 1;
            }
            _ => {} // -128: no operation; or a repeat missing its byte
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8-bit, one-sample frame whose only segment is `segment`.
    fn frame(segment: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_BYTES];
        bytes[0..4].copy_from_slice(&1u32.to_le_bytes());
        bytes[4..8].copy_from_slice(&64u32.to_le_bytes());
        bytes.extend_from_slice(segment);
        bytes
    }

    #[test]
    fn a_well_formed_frame_passes() {
        // 2×3 pixels: a run of 4 × 0x07, then literals 1 and 2.
        let segment = [0xFD, 0x07, 0x01, 0x01, 0x02];
        assert_eq!(check_rle_frame(&frame(&segment), 2, 3, 1, 8), Ok(()));
    }

    #[test]
    fn short_segments_bad_headers_and_offsets_are_refused() {
        let short = [0xFD, 0x07];
        assert!(check_rle_frame(&frame(&short), 2, 3, 1, 8).is_err());
        assert!(
            check_rle_frame(&[1, 0, 0, 0], 1, 1, 1, 8).is_err(),
            "no header"
        );
        let mut two_segments = frame(&[0x00, 0x01]);
        two_segments[0] = 2;
        assert!(check_rle_frame(&two_segments, 1, 1, 1, 8).is_err());
        let mut past_the_end = frame(&[0x00, 0x01]);
        past_the_end[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert!(check_rle_frame(&past_the_end, 1, 1, 1, 8).is_err());
        assert!(check_rle_frame(&frame(&[0x00, 0x01]), 1, 1, 1, 12).is_err());
    }
}
