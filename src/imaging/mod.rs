//! Imaging: from a stored DICOM object to the tensor a model reads.
//!
//! The analysis worker asks three questions of every instance, in order:
//!
//! 1. Should it be analysed at all? [`gate`] lets through frontal chest
//!    radiographs (CR or DX) and gives a human-readable reason for anything
//!    else, so the node can say why an image got no findings.
//! 2. What does it look like? [`load_radiograph`] decodes the first frame
//!    (in any transfer syntax the node accepts) and applies the greyscale
//!    pipeline of PS3.3 C.11 — Modality LUT, VOI LUT or window, and the
//!    presentation step — so that 0 is black and 1 is white whatever the
//!    photometric interpretation, as a radiologist would see it.
//! 3. What goes into the model? [`model_input`] centre-crops to a square,
//!    downscales with anti-aliasing and normalises, and returns the
//!    [`InputGeometry`] that maps model coordinates back onto the original
//!    pixel grid, where findings must be reported.
//!
//! Each step is its own file: `decode` (stored values out of the pixel data,
//! with `jpeg_extended` for the 12-bit lossy JPEG `dicom-pixeldata` cannot
//! read), `lut` (the greyscale pipeline, pure arithmetic), `greyscale_attributes`
//! (reading that pipeline's parameters from the data set), `radiograph`
//! (the two joined, plus pixel spacing), `gating` and `resize`.

pub(crate) mod attributes;
mod decode;
mod gating;
pub(crate) mod greyscale_attributes;
mod jpeg_extended;
mod lut;
mod radiograph;
mod resize;
mod rle_check;

pub use decode::{MAX_FRAME_PIXELS, Photometric, SampleLayout, StoredFrame, decode_first_frame};
pub use gating::{Gate, gate};
pub use lut::{
    GreyscalePipeline, LookupTable, ModalityLut, PixelPadding, Voi, VoiFunction, Window,
};
pub use radiograph::{Radiograph, load_radiograph};
pub use resize::{InputGeometry, Normalisation, model_input};

/// Why an image could not be turned into grey levels or a model input.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The object has no Pixel Data: an SR document, a presentation state…
    #[error("not an image: the object has no Pixel Data")]
    NoPixelData,
    /// A colour image (Samples per Pixel other than 1).
    #[error(
        "not a greyscale image: Samples per Pixel is {samples_per_pixel} \
         ({photometric_interpretation}); only MONOCHROME1 and MONOCHROME2 are analysed"
    )]
    NotGreyscale {
        samples_per_pixel: u16,
        photometric_interpretation: String,
    },
    /// One sample per pixel, but not a greyscale interpretation
    /// (PALETTE COLOR, for instance).
    #[error(
        "photometric interpretation {0} is not supported; \
         only MONOCHROME1 and MONOCHROME2 are analysed"
    )]
    UnsupportedPhotometricInterpretation(String),
    /// A required attribute is absent or cannot be read.
    #[error("attribute {0} is missing or unreadable")]
    MissingAttribute(&'static str),
    /// An attribute holds a value we cannot work with.
    #[error("attribute {name} is invalid: {reason}")]
    InvalidAttribute { name: &'static str, reason: String },
    /// The codec failed, or the transfer syntax has no decoder.
    #[error("cannot decode pixel data in transfer syntax {transfer_syntax}: {source}")]
    Decode {
        transfer_syntax: String,
        #[source]
        source: dicom_pixeldata::Error,
    },
    /// A codec we call ourselves (rather than through `dicom-pixeldata`)
    /// failed.
    #[error("{codec} cannot decode the pixel data: {reason}")]
    Codec { codec: &'static str, reason: String },
    /// The decoder returned fewer bytes than the frame needs.
    #[error("decoded frame has {actual} bytes, {expected} expected")]
    ShortFrame { expected: usize, actual: usize },
    /// A Modality or VOI LUT that cannot be applied.
    #[error("invalid {which} LUT: {reason}")]
    InvalidLut { which: &'static str, reason: String },
    /// A model input was asked of an empty or inconsistent radiograph, or
    /// with a size of zero.
    #[error("cannot build a model input: {0}")]
    InvalidModelInput(String),
}
