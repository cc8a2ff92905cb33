//! An RGB drawing surface for burned-in annotations: the greyscale image,
//! then anti-aliased outlines, boxes, panels and haloed text on top.
//!
//! Everything drawn here must read on bright bone and on black air alike,
//! so lines and text get a dark halo underneath. Drawing is deterministic:
//! the same calls give the same pixels.

use tiny_skia::{
    Color, FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Rect, Stroke, StrokeDash,
    Transform,
};

use super::lettering;

/// An opaque colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    pub const BLACK: Rgb = Rgb(0, 0, 0);

    fn with_alpha(self, alpha: f32) -> Color {
        let Rgb(r, g, b) = self;
        Color::from_rgba8(r, g, b, (alpha.clamp(0.0, 1.0) * 255.0).round() as u8)
    }
}

/// How much darker and wider than a line its halo is.
const HALO_ALPHA: f32 = 0.75;
const HALO_WIDTH: f32 = 2.2;

/// The drawing surface.
pub struct Canvas {
    pixmap: Pixmap,
}

impl Canvas {
    /// A black canvas of `width` × `height` pixels.
    pub fn new(width: u32, height: u32) -> anyhow::Result<Canvas> {
        let mut pixmap = Pixmap::new(width, height)
            .ok_or_else(|| anyhow::anyhow!("cannot make a {width}×{height} canvas"))?;
        pixmap.fill(Color::BLACK);
        Ok(Canvas { pixmap })
    }

    pub fn width(&self) -> u32 {
        self.pixmap.width()
    }

    /// Copies 8-bit grey levels (`width` × rows, row-major) to the canvas
    /// with their top-left corner at row `top`.
    pub fn put_grey(&mut self, grey: &[u8], width: u32, top: u32) {
        let canvas_width = self.pixmap.width() as usize;
        let pixels = self.pixmap.pixels_mut();
        for (row, line) in grey.chunks_exact(width as usize).enumerate() {
            let start = (top as usize + row) * canvas_width;
            let Some(target) = pixels.get_mut(start..start + line.len().min(canvas_width)) else {
                break;
            };
            for (pixel, &value) in target.iter_mut().zip(line) {
                *pixel = tiny_skia::PremultipliedColorU8::from_rgba(value, value, value, 255)
                    .expect("opaque colours are valid");
            }
        }
    }

    /// Fills a rectangle, `alpha` from 0 (invisible) to 1 (opaque).
    pub fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, colour: Rgb, alpha: f32) {
        if let Some(rect) = Rect::from_xywh(x, y, width, height) {
            self.pixmap
                .fill_rect(rect, &paint(colour, alpha), Transform::identity(), None);
        }
    }

    /// Strokes a closed polygon with a halo.
    pub fn outline(&mut self, points: &[[f32; 2]], colour: Rgb, width: f32) {
        let mut builder = PathBuilder::new();
        for (i, &[x, y]) in points.iter().enumerate() {
            if i == 0 {
                builder.move_to(x, y);
            } else {
                builder.line_to(x, y);
            }
        }
        builder.close();
        let Some(path) = builder.finish() else {
            return;
        };
        for (paint, width) in [
            (paint(Rgb::BLACK, HALO_ALPHA), width * HALO_WIDTH),
            (paint(colour, 1.0), width),
        ] {
            let stroke = Stroke {
                width,
                line_join: LineJoin::Round,
                line_cap: LineCap::Round,
                ..Stroke::default()
            };
            self.pixmap
                .stroke_path(&path, &paint, &stroke, Transform::identity(), None);
        }
    }

    /// Strokes a dashed rectangle with a halo; `[x0, y0, x1, y1]`.
    pub fn dashed_box(&mut self, corners: [f32; 4], colour: Rgb, width: f32) {
        let [x0, y0, x1, y1] = corners;
        let Some(rect) = Rect::from_ltrb(x0, y0, x1, y1) else {
            return;
        };
        let path = PathBuilder::from_rect(rect);
        let dash = width * 4.0;
        for (paint, stroke_width) in [
            (paint(Rgb::BLACK, HALO_ALPHA), width * HALO_WIDTH),
            (paint(colour, 1.0), width),
        ] {
            let stroke = Stroke {
                width: stroke_width,
                dash: StrokeDash::new(vec![dash, dash], 0.0),
                ..Stroke::default()
            };
            self.pixmap
                .stroke_path(&path, &paint, &stroke, Transform::identity(), None);
        }
    }

    /// Draws `text` at `size` pixels, its baseline starting at
    /// (`x`, `baseline`), with a dark halo.
    pub fn text(&mut self, text: &str, size: f32, x: f32, baseline: f32, colour: Rgb) {
        let Some(path) = lettering::text_path(text, size, x, baseline) else {
            return;
        };
        let halo = Stroke {
            width: (size * 0.16).max(1.0),
            line_join: LineJoin::Round,
            ..Stroke::default()
        };
        self.pixmap.stroke_path(
            &path,
            &paint(Rgb::BLACK, HALO_ALPHA),
            &halo,
            Transform::identity(),
            None,
        );
        self.pixmap.fill_path(
            &path,
            &paint(colour, 1.0),
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }

    /// Draws one line of text whose line box starts at `top` (the baseline
    /// sits where [`lettering::line_pitch`] centres the glyphs); returns the
    /// next line's top.
    pub fn text_line(&mut self, text: &str, size: f32, x: f32, top: f32, colour: Rgb) -> f32 {
        let metrics = lettering::line_metrics(size);
        let pitch = lettering::line_pitch(size);
        let baseline = top + (pitch - metrics.height()) / 2.0 + metrics.ascent;
        self.text(text, size, x, baseline, colour);
        top + pitch
    }

    /// The pixels as interleaved RGB (the canvas is always opaque, so
    /// premultiplied and straight colours are the same).
    pub fn into_rgb(self) -> Vec<u8> {
        self.pixmap
            .data()
            .chunks_exact(4)
            .flat_map(|pixel| [pixel[0], pixel[1], pixel[2]])
            .collect()
    }
}

fn paint(colour: Rgb, alpha: f32) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(colour.with_alpha(alpha));
    paint.anti_alias = true;
    paint
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb_at(rgb: &[u8], width: u32, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * width + x) * 3) as usize;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    }

    #[test]
    fn grey_is_copied_below_the_top_offset() {
        let mut canvas = Canvas::new(4, 5).unwrap();
        canvas.put_grey(&[10, 20, 30, 40, 50, 60, 70, 80], 4, 2);
        let rgb = canvas.into_rgb();
        assert_eq!(rgb.len(), 4 * 5 * 3);
        assert_eq!(rgb_at(&rgb, 4, 0, 1), [0, 0, 0]);
        assert_eq!(rgb_at(&rgb, 4, 1, 2), [20, 20, 20]);
        assert_eq!(rgb_at(&rgb, 4, 3, 3), [80, 80, 80]);
    }

    #[test]
    fn outlines_are_coloured_on_the_line_and_haloed_beside_it() {
        let mut canvas = Canvas::new(100, 100).unwrap();
        canvas.fill_rect(0.0, 0.0, 100.0, 100.0, Rgb::WHITE, 1.0);
        canvas.outline(
            &[[20.0, 20.0], [80.0, 20.0], [80.0, 80.0], [20.0, 80.0]],
            Rgb(255, 0, 0),
            4.0,
        );
        let rgb = canvas.into_rgb();
        assert_eq!(rgb_at(&rgb, 100, 50, 20), [255, 0, 0]);
        let beside = rgb_at(&rgb, 100, 50, 16);
        assert!(beside[0] < 128 && beside[1] < 128, "{beside:?}");
        assert_eq!(rgb_at(&rgb, 100, 50, 50), [255, 255, 255]);
    }

    #[test]
    fn text_marks_pixels_in_its_colour() {
        let mut canvas = Canvas::new(200, 60).unwrap();
        canvas.text("HELLO", 40.0, 5.0, 45.0, Rgb(0, 255, 0));
        let rgb = canvas.into_rgb();
        let green = rgb.chunks_exact(3).filter(|p| p == &[0, 255, 0]).count();
        assert!(green > 200, "{green} green pixels");
    }
}
