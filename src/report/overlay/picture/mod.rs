//! What the secondary-capture overlay shows and where: the windowed
//! radiograph with each localised finding's outline, box and label, a
//! banner above it (intended use, model name and version) and a legend
//! below it (every category's colour, probability and call).
//!
//! The banner and legend are strips added to the canvas rather than drawn
//! over the lungs. All sizes are fractions of the image's shorter side, so
//! the picture keeps its proportions from a 200-pixel DX to a 3000-pixel
//! CR and the banner stays legible when a PACS shrinks it to a thumbnail.
//! Small images are enlarged (by a whole factor) until text fits on them;
//! very large ones are reduced. Finding coordinates, given on the original
//! pixel grid, are scaled with the image.

use image::imageops::{self, FilterType};

pub use super::canvas::Rgb;

pub use super::banner::Banner;

use super::banner::BannerLayout;
use super::canvas::Canvas;
use super::legend::LegendLayout;
use super::lettering::{self, fitting_size, line_metrics, text_width};
use crate::findings::{Category, Findings, LocalisedFinding};
use crate::imaging::Radiograph;

/// Images whose shorter side is smaller are enlarged by a whole factor.
const MIN_SHORT_SIDE: u32 = 512;
/// Images whose longer side is larger are reduced to it.
const MAX_LONG_SIDE: u32 = 4096;

/// Margins, in hundredths of the image's shorter side.
pub(super) const MARGIN: f32 = 1.2;
/// Sizes of finding labels and lines, in hundredths of the shorter side.
const LABEL_SIZE: f32 = 2.6;
const LINE_WIDTH: f32 = 0.35;
/// Text below this many pixels is unreadable anyway.
const MIN_TEXT_PX: f32 = 11.0;

pub(super) const PANEL_BACKGROUND: Rgb = Rgb(28, 28, 28);
pub(super) const SECONDARY_TEXT: Rgb = Rgb(200, 200, 200);
pub(super) const MUTED_TEXT: Rgb = Rgb(130, 130, 130);

/// The finished picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub columns: u32,
    pub rows: u32,
    /// Interleaved 8-bit RGB, row-major.
    pub rgb: Vec<u8>,
    /// Where the radiograph starts (below the banner), in rows.
    pub image_top: u32,
    /// Canvas pixels per original pixel.
    pub scale: f32,
}

/// The colour that stands for `category` in outlines, labels and legend.
pub fn category_colour(category: Category) -> Rgb {
    match category {
        Category::NoduleMass => Rgb(255, 72, 72),
        Category::Consolidation => Rgb(255, 165, 0),
        Category::Tuberculosis => Rgb(200, 110, 255),
        Category::MediastinalMass => Rgb(0, 200, 255),
        Category::Emphysema => Rgb(80, 220, 80),
        Category::AnyAbnormality => Rgb(255, 235, 50),
        Category::Normal => Rgb(255, 120, 200),
    }
}

/// Renders the overlay of `findings` on `radiograph`.
pub fn render(
    radiograph: &Radiograph,
    findings: &Findings,
    banner: &Banner,
) -> anyhow::Result<Picture> {
    let (grey, width, height, scale) = scaled_grey(radiograph)?;
    let unit = width.min(height) as f32 / 100.0;
    let banner_layout = BannerLayout::new(banner, width as f32, unit);
    let legend_layout = LegendLayout::new(&findings.categories, width as f32, unit);
    let image_top = banner_layout.height.ceil() as u32;
    let rows = image_top + height + legend_layout.height.ceil() as u32;

    let mut canvas = Canvas::new(width, rows)?;
    canvas.put_grey(&grey, width, image_top);
    banner_layout.draw(&mut canvas, unit);
    let area = ImageArea {
        top: image_top as f32,
        bottom: (image_top + height) as f32,
        scale,
        unit,
    };
    let mut labels = Vec::new();
    for finding in &findings.localised {
        draw_finding(&mut canvas, finding, &area, &mut labels);
    }
    legend_layout.draw(
        &mut canvas,
        &findings.categories,
        (image_top + height) as f32,
        unit,
    );
    Ok(Picture {
        columns: width,
        rows,
        rgb: canvas.into_rgb(),
        image_top,
        scale,
    })
}

/// The radiograph as 8-bit grey at the canvas's resolution: (grey levels,
/// width, height, scale).
fn scaled_grey(radiograph: &Radiograph) -> anyhow::Result<(Vec<u8>, u32, u32, f32)> {
    let (columns, rows) = (radiograph.columns, radiograph.rows);
    anyhow::ensure!(
        columns > 0 && rows > 0 && radiograph.grey.len() == columns as usize * rows as usize,
        "the radiograph's {} grey levels do not make {columns}×{rows} pixels",
        radiograph.grey.len()
    );
    let grey: Vec<u8> = radiograph
        .grey
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let short = columns.min(rows);
    let long = columns.max(rows);
    let scale = if long > MAX_LONG_SIDE {
        MAX_LONG_SIDE as f32 / long as f32
    } else {
        // Enlarged, but never beyond the longest side allowed.
        let factor = MIN_SHORT_SIDE
            .div_ceil(short)
            .min(MAX_LONG_SIDE / long)
            .max(1);
        if factor == 1 {
            return Ok((grey, columns, rows, 1.0));
        }
        factor as f32
    };
    let width = ((columns as f32 * scale).round() as u32).max(1);
    let height = ((rows as f32 * scale).round() as u32).max(1);
    let image = image::GrayImage::from_raw(columns, rows, grey)
        .ok_or_else(|| anyhow::anyhow!("grey levels do not fit the image"))?;
    // Enlarging keeps the original pixels visible; reducing averages them.
    let filter = if scale > 1.0 {
        FilterType::Nearest
    } else {
        FilterType::Triangle
    };
    let resized = imageops::resize(&image, width, height, filter);
    Ok((resized.into_raw(), width, height, scale))
}

/// A text size in pixels: `hundredths` of the shorter side, never below
/// what can be read.
pub(super) fn text_size(hundredths: f32, unit: f32) -> f32 {
    (hundredths * unit).max(MIN_TEXT_PX)
}

/// Where the radiograph lies on the canvas.
struct ImageArea {
    /// First and one-past-last canvas row of the image.
    top: f32,
    bottom: f32,
    /// Canvas pixels per original pixel.
    scale: f32,
    /// A hundredth of the image's shorter side, in canvas pixels.
    unit: f32,
}

impl ImageArea {
    /// A point on the original pixel grid, on the canvas.
    fn place(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [x * self.scale, y * self.scale + self.top]
    }
}

/// Draws one finding's box, outline and label. Labels already placed are
/// in `labels` (as `[x0, y0, x1, y1]`), so a new one avoids them.
fn draw_finding(
    canvas: &mut Canvas,
    finding: &LocalisedFinding,
    area: &ImageArea,
    labels: &mut Vec<[f32; 4]>,
) {
    let colour = category_colour(finding.category);
    let line = (LINE_WIDTH * area.unit).max(1.5);
    let [x0, y0, x1, y1] = finding.region.bounding_box;
    let ([bx0, by0], [bx1, by1]) = (area.place([x0, y0]), area.place([x1, y1]));
    // The box stands a little off the outline, which touches its sides.
    let margin = line * 2.0;
    let boxed = [bx0 - margin, by0 - margin, bx1 + margin, by1 + margin];
    canvas.dashed_box(boxed, colour, line * 0.6);
    let outline: Vec<[f32; 2]> = finding
        .region
        .outline
        .iter()
        .map(|&point| area.place(point))
        .collect();
    canvas.outline(&outline, colour, line);

    let text = lettering::printable(&format!(
        "{} p={:.2}",
        finding.category.title(),
        finding.probability
    ));
    let canvas_width = canvas.width() as f32;
    let size = fitting_size(&text, text_size(LABEL_SIZE, area.unit), canvas_width * 0.9);
    let metrics = line_metrics(size);
    let padding = size * 0.25;
    let label_size = [
        text_width(&text, size) + 2.0 * padding,
        metrics.height() + 2.0 * padding,
    ];
    let [x, y] = place_label(boxed, label_size, line * 3.0, canvas_width, area, labels);
    let [width, height] = label_size;
    labels.push([x, y, x + width, y + height]);
    canvas.fill_rect(x, y, width, height, Rgb::BLACK, 0.6);
    canvas.fill_rect(x, y, padding * 0.6, height, colour, 1.0);
    canvas.text(
        &text,
        size,
        x + padding,
        y + padding + metrics.ascent,
        colour,
    );
}

/// The top-left corner for a label of `[width, height]` belonging to the
/// box `boxed`: above the box if there is room, else below it, else just
/// inside its top; moved further away from the box when it would cover
/// one of the `placed` labels. Always within the image.
fn place_label(
    boxed: [f32; 4],
    [width, height]: [f32; 2],
    gap: f32,
    canvas_width: f32,
    area: &ImageArea,
    placed: &[[f32; 4]],
) -> [f32; 2] {
    let x = boxed[0].clamp(0.0, (canvas_width - width).max(0.0));
    let step = height + gap;
    let above = boxed[1] - gap - height;
    let below = boxed[3] + gap;
    let inside = boxed[1] + gap;
    let free = |y: f32| {
        y >= area.top
            && y + height <= area.bottom
            && placed
                .iter()
                .all(|&[x0, y0, x1, y1]| x + width <= x0 || x >= x1 || y + height <= y0 || y >= y1)
    };
    (0..8)
        .flat_map(|k| {
            let k = k as f32;
            [above - k * step, below + k * step, inside + k * step]
        })
        .find(|&y| free(y))
        .map(|y| [x, y])
        .unwrap_or_else(|| {
            [
                x,
                above.clamp(area.top, (area.bottom - height).max(area.top)),
            ]
        })
}

#[cfg(test)]
mod tests;
