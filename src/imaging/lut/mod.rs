//! The greyscale pipeline of PS3.3 C.11 and PS3.4 Annex N, from stored
//! values to grey levels in [0, 1] where 0 is black and 1 is white.
//!
//! ```text
//! stored value --Modality LUT--> modality value --VOI--> [0, 1] --presentation--> grey
//!   (padding)                    (rescale or table)   (table, window,      (MONOCHROME1
//!                                                       or full range)       inverted)
//! ```
//!
//! A model trained on radiographs as a radiologist sees them needs its input
//! rendered the same way, whatever the modality stored: the VOI step picks
//! the same contrast the reading workstation would, and inverting
//! MONOCHROME1 means a plate that stores "bone is low" looks like every other
//! image. Pixel padding (collimator shutters, the area outside a CT's field
//! of view) is painted black and left out of the automatic full-range
//! window, so a large padded border cannot wash the anatomy out.
//!
//! This file is arithmetic only, so that each formula can be checked by hand
//! in its tests; `greyscale_attributes` builds a [`GreyscalePipeline`] from
//! a data set.

/// A lookup table as described by a LUT Descriptor (PS3.3 C.11.1.1.1):
/// `entries[0]` is the output for `first_input`; inputs below map to the
/// first entry, inputs above the last to the last.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupTable {
    pub first_input: i64,
    pub entries: Vec<u16>,
    /// Bits per entry (third value of the descriptor), 1..=16.
    pub bits_per_entry: u8,
}

impl LookupTable {
    /// The entry for an input value. Fractional inputs (a VOI LUT after a
    /// non-integer rescale) are rounded to the nearest entry.
    #[inline]
    fn entry(&self, input: f64) -> u16 {
        let last = self.entries.len() as i64 - 1;
        let index = (input.round() as i64).saturating_sub(self.first_input);
        self.entries[index.clamp(0, last) as usize]
    }

    /// The largest value an entry can hold: 2^bits - 1.
    fn max_output(&self) -> f64 {
        f64::from((1u32 << self.bits_per_entry) - 1)
    }
}

/// Stored value to modality value (Hounsfield units, optical density, or
/// simply the stored value when the image defines no transform).
#[derive(Debug, Clone, PartialEq)]
pub enum ModalityLut {
    /// `slope * stored + intercept` (Rescale Slope and Intercept).
    Rescale { slope: f64, intercept: f64 },
    /// Modality LUT Sequence: the entry values are the modality values.
    Table(LookupTable),
}

impl ModalityLut {
    pub const IDENTITY: ModalityLut = ModalityLut::Rescale {
        slope: 1.0,
        intercept: 0.0,
    };

    #[inline]
    pub fn apply(&self, stored: i32) -> f64 {
        match self {
            ModalityLut::Rescale { slope, intercept } => slope * f64::from(stored) + intercept,
            ModalityLut::Table(table) => f64::from(table.entry(f64::from(stored))),
        }
    }
}

/// VOI LUT Function (0028,1056): how a window maps values to output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiFunction {
    /// The default: PS3.3 C.11.2.1.2.1, with its half-value offsets.
    Linear,
    /// PS3.3 C.11.2.1.3.2: exactly from center - width/2 to center + width/2.
    LinearExact,
    /// PS3.3 C.11.2.1.3.1: a logistic curve around the center.
    Sigmoid,
}

/// A window (Window Center and Width) with its function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    center: f64,
    width: f64,
    function: VoiFunction,
}

impl Window {
    /// A window, if its width is valid for the function: at least 1 for
    /// LINEAR, positive otherwise (PS3.3 C.11.2.1.2).
    pub fn new(center: f64, width: f64, function: VoiFunction) -> Option<Window> {
        let valid = match function {
            VoiFunction::Linear => width >= 1.0,
            VoiFunction::LinearExact | VoiFunction::Sigmoid => width > 0.0,
        };
        (valid && center.is_finite() && width.is_finite()).then_some(Window {
            center,
            width,
            function,
        })
    }

    pub fn center(&self) -> f64 {
        self.center
    }

    pub fn width(&self) -> f64 {
        self.width
    }

    pub fn function(&self) -> VoiFunction {
        self.function
    }

    /// The window's output for a modality value, in [0, 1].
    #[inline]
    pub fn apply(&self, x: f64) -> f64 {
        let (c, w) = (self.center, self.width);
        match self.function {
            VoiFunction::Linear => {
                if x <= c - 0.5 - (w - 1.0) / 2.0 {
                    0.0
                } else if x > c - 0.5 + (w - 1.0) / 2.0 {
                    1.0
                } else {
                    // Only reached when w > 1, so the division is safe.
                    (x - (c - 0.5)) / (w - 1.0) + 0.5
                }
            }
            VoiFunction::LinearExact => {
                if x <= c - w / 2.0 {
                    0.0
                } else if x > c + w / 2.0 {
                    1.0
                } else {
                    (x - c) / w + 0.5
                }
            }
            VoiFunction::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
        }
    }
}

/// The value-of-interest transform.
#[derive(Debug, Clone, PartialEq)]
pub enum Voi {
    /// VOI LUT Sequence, output scaled by 2^bits - 1.
    Table(LookupTable),
    /// Window Center and Width.
    Window(Window),
    /// No VOI in the data set: the range from the smallest to the largest
    /// modality value of the non-padding pixels, linearly.
    FullRange,
}

/// Pixel Padding Value, or the inclusive range it spans with Pixel Padding
/// Range Limit, in stored values (PS3.3 C.7.5.1.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelPadding {
    low: i32,
    high: i32,
}

impl PixelPadding {
    /// Padding between two stored values, in either order, inclusive.
    pub fn between(a: i32, b: i32) -> PixelPadding {
        PixelPadding {
            low: a.min(b),
            high: a.max(b),
        }
    }

    #[inline]
    pub fn contains(&self, stored: i32) -> bool {
        (self.low..=self.high).contains(&stored)
    }
}

/// The whole greyscale pipeline for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct GreyscalePipeline {
    pub modality: ModalityLut,
    pub voi: Voi,
    /// MONOCHROME1: the VOI output is inverted so that 0 is black.
    pub invert: bool,
    pub padding: Option<PixelPadding>,
}

/// The VOI step once the image is known: [`Voi::FullRange`] becomes the
/// pixels' actual range.
enum ResolvedVoi<'a> {
    Table { table: &'a LookupTable, scale: f64 },
    Window(Window),
    Range { min: f64, scale: f64 },
    Constant,
}

impl ResolvedVoi<'_> {
    #[inline]
    fn apply(&self, x: f64) -> f64 {
        match self {
            ResolvedVoi::Table { table, scale } => f64::from(table.entry(x)) * scale,
            ResolvedVoi::Window(window) => window.apply(x),
            ResolvedVoi::Range { min, scale } => (x - min) * scale,
            // A flat image has no contrast to show: mid-grey.
            ResolvedVoi::Constant => 0.5,
        }
    }
}

impl GreyscalePipeline {
    /// Grey levels for stored values: 0 black, 1 white, padding 0.
    pub fn apply(&self, stored: &[i32]) -> Vec<f32> {
        let voi = self.resolve_voi(stored);
        let is_padding = |s: i32| self.padding.is_some_and(|p| p.contains(s));
        stored
            .iter()
            .map(|&s| {
                if is_padding(s) {
                    return 0.0;
                }
                let grey = voi.apply(self.modality.apply(s)).clamp(0.0, 1.0);
                (if self.invert { 1.0 - grey } else { grey }) as f32
            })
            .collect()
    }

    fn resolve_voi<'a>(&'a self, stored: &[i32]) -> ResolvedVoi<'a> {
        match &self.voi {
            Voi::Table(table) => ResolvedVoi::Table {
                table,
                scale: 1.0 / table.max_output(),
            },
            Voi::Window(window) => ResolvedVoi::Window(*window),
            Voi::FullRange => {
                let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
                for &s in stored {
                    if !self.padding.is_some_and(|p| p.contains(s)) {
                        let value = self.modality.apply(s);
                        min = min.min(value);
                        max = max.max(value);
                    }
                }
                if max > min {
                    ResolvedVoi::Range {
                        min,
                        scale: 1.0 / (max - min),
                    }
                } else {
                    ResolvedVoi::Constant
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
