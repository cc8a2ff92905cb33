//! Text for burned-in annotations: an embedded open font (DejaVu Sans
//! Bold, licence in `assets/fonts/LICENSE-DejaVu.txt`) laid out into
//! vector paths.
//!
//! Glyphs become `tiny-skia` paths rather than coverage bitmaps so that the
//! canvas can stroke them (a dark halo that keeps text readable on white
//! and black anatomy alike) and fill them with the same anti-aliasing as
//! every other shape. The font is compiled into the binary: the picture
//! must look the same on every node, whatever fonts the host has.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, OutlineCurve, ScaleFont};
use tiny_skia::{Path, PathBuilder};

/// The embedded font file (also used for the plots of `chestnode evaluate`).
pub(crate) static FONT_DATA: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// What replaces characters that are not printable ASCII, so burned-in
/// text stays plain ASCII whatever a model's manifest says.
const REPLACEMENT: char = '?';

/// The embedded font.
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_DATA).expect("the embedded font parses"))
}

/// Vertical metrics of a line of text at one size, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineMetrics {
    /// From the baseline up to the top of the tallest glyphs.
    pub ascent: f32,
    /// From the baseline down to the bottom of descenders (positive).
    pub descent: f32,
}

impl LineMetrics {
    pub fn height(&self) -> f32 {
        self.ascent + self.descent
    }
}

/// The metrics of the embedded font at `size` pixels (ascent - descent).
pub fn line_metrics(size: f32) -> LineMetrics {
    let scaled = font().as_scaled(size);
    LineMetrics {
        ascent: scaled.ascent(),
        descent: -scaled.descent(),
    }
}

/// Line pitch relative to a size's line height.
const LINE_SPACING: f32 = 1.2;

/// The distance from one line's top to the next at `size` pixels.
pub fn line_pitch(size: f32) -> f32 {
    line_metrics(size).height() * LINE_SPACING
}

/// `text` as it will be drawn: printable ASCII, anything else replaced.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                REPLACEMENT
            }
        })
        .collect()
}

fn glyph_ids(text: &str) -> impl Iterator<Item = GlyphId> + '_ {
    text.chars().map(|c| {
        let c = if c == ' ' || c.is_ascii_graphic() {
            c
        } else {
            REPLACEMENT
        };
        font().glyph_id(c)
    })
}

/// The advance width of `text` at `size` pixels.
pub fn text_width(text: &str, size: f32) -> f32 {
    let scaled = font().as_scaled(size);
    let mut width = 0.0;
    let mut previous: Option<GlyphId> = None;
    for id in glyph_ids(text) {
        if let Some(previous) = previous {
            width += scaled.kern(previous, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// The size at which `text` is at most `max_width` wide, never above
/// `size`.
pub fn fitting_size(text: &str, size: f32, max_width: f32) -> f32 {
    let width = text_width(text, size);
    if width <= max_width || width <= 0.0 {
        size
    } else {
        size * max_width / width
    }
}

/// The outlines of `text` at `size` pixels with its baseline starting at
/// (`x`, `baseline`); `None` for text without visible glyphs.
pub fn text_path(text: &str, size: f32, x: f32, baseline: f32) -> Option<Path> {
    let scaled = font().as_scaled(size);
    let factor = scaled.h_scale_factor();
    let mut builder = PathBuilder::new();
    let mut pen = x;
    let mut previous: Option<GlyphId> = None;
    for id in glyph_ids(text) {
        if let Some(previous) = previous {
            pen += scaled.kern(previous, id);
        }
        if let Some(outline) = font().outline(id) {
            // Font units have y pointing up; the canvas has it pointing down.
            let at = |p: ab_glyph::Point| (pen + p.x * factor, baseline - p.y * factor);
            append_curves(&mut builder, &outline.curves, at);
        }
        pen += scaled.h_advance(id);
        previous = Some(id);
    }
    builder.finish()
}

/// Appends a glyph's curves; a curve that does not start where the last
/// one ended begins a new contour.
fn append_curves(
    builder: &mut PathBuilder,
    curves: &[OutlineCurve],
    at: impl Fn(ab_glyph::Point) -> (f32, f32),
) {
    let mut end: Option<ab_glyph::Point> = None;
    for curve in curves {
        let start = match curve {
            OutlineCurve::Line(p0, _)
            | OutlineCurve::Quad(p0, _, _)
            | OutlineCurve::Cubic(p0, _, _, _) => *p0,
        };
        if end != Some(start) {
            if end.is_some() {
                builder.close();
            }
            let (x, y) = at(start);
            builder.move_to(x, y);
        }
        end = Some(match curve {
            OutlineCurve::Line(_, p1) => {
                let (x, y) = at(*p1);
                builder.line_to(x, y);
                *p1
            }
            OutlineCurve::Quad(_, p1, p2) => {
                let ((x1, y1), (x, y)) = (at(*p1), at(*p2));
                builder.quad_to(x1, y1, x, y);
                *p2
            }
            OutlineCurve::Cubic(_, p1, p2, p3) => {
                let ((x1, y1), (x2, y2), (x, y)) = (at(*p1), at(*p2), at(*p3));
                builder.cubic_to(x1, y1, x2, y2, x, y);
                *p3
            }
        });
    }
    if end.is_some() {
        builder.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_font_covers_ascii() {
        for c in (0x20u8..0x7f).map(char::from) {
            assert_ne!(font().glyph_id(c), GlyphId(0), "no glyph for {c:?}");
        }
    }

    #[test]
    fn width_grows_with_text_and_size() {
        let short = text_width("Nodule", 20.0);
        assert!(short > 20.0, "{short}");
        assert!(text_width("Nodule / mass", 20.0) > short);
        assert!((text_width("Nodule", 40.0) - 2.0 * short).abs() < 1e-3);
        assert_eq!(text_width("", 20.0), 0.0);
    }

    #[test]
    fn fitting_size_shrinks_only_when_needed() {
        let width = text_width("RESEARCH USE ONLY", 30.0);
        assert_eq!(fitting_size("RESEARCH USE ONLY", 30.0, width + 1.0), 30.0);
        let smaller = fitting_size("RESEARCH USE ONLY", 30.0, width / 2.0);
        assert!((text_width("RESEARCH USE ONLY", smaller) - width / 2.0).abs() < 0.01);
    }

    #[test]
    fn paths_sit_on_the_baseline_within_the_advance() {
        let path = text_path("Hg", 50.0, 10.0, 100.0).expect("visible glyphs");
        let bounds = path.bounds();
        let metrics = line_metrics(50.0);
        assert!(bounds.left() >= 10.0 && bounds.right() <= 10.0 + text_width("Hg", 50.0));
        assert!(bounds.top() >= 100.0 - metrics.ascent - 0.5);
        assert!(bounds.bottom() <= 100.0 + metrics.descent + 0.5);
        // "H" reaches cap height well above the baseline, "g" descends below it.
        assert!(bounds.top() < 70.0 && bounds.bottom() > 105.0, "{bounds:?}");
        assert!(text_path("   ", 50.0, 0.0, 50.0).is_none());
    }

    #[test]
    fn non_ascii_text_is_replaced() {
        assert_eq!(printable("Größe 5×5 mm"), "Gr??e 5?5 mm");
    }
}
