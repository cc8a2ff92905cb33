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
mod tests {
    use super::*;
    use crate::findings::{CategoryCall, ModelIdentity, Region};

    /// A horizontal gradient, dark on the left, bright on the right.
    fn radiograph(columns: u32, rows: u32) -> Radiograph {
        let grey = (0..rows)
            .flat_map(|_| (0..columns).map(move |x| x as f32 / (columns - 1) as f32))
            .collect();
        Radiograph {
            rows,
            columns,
            grey,
            pixel_spacing_mm: Some([0.2, 0.2]),
        }
    }

    /// A nodule outlined by a square with corners on pixel centres.
    fn findings([x0, y0, x1, y1]: [f32; 4]) -> Findings {
        Findings {
            model: ModelIdentity {
                name: "test-model".into(),
                version: "2".into(),
                research_use_only: true,
                intended_use: "Testing.".into(),
            },
            categories: Category::ALL
                .iter()
                .map(|&category| CategoryCall {
                    category,
                    assessed: true,
                    probability: 0.7,
                    positive: category == Category::NoduleMass,
                    label_index: None,
                })
                .collect(),
            localised: vec![LocalisedFinding {
                category: Category::NoduleMass,
                label: "Nodule".into(),
                probability: 0.7,
                region: Region {
                    bounding_box: [x0, y0, x1, y1],
                    outline: vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                    size_mm: None,
                },
            }],
        }
    }

    fn banner() -> Banner {
        Banner {
            warning: Some("RESEARCH USE ONLY".into()),
            model: "test-model 2".into(),
            intended_use: "Testing.".into(),
        }
    }

    fn pixel(picture: &Picture, x: u32, y: u32) -> Rgb {
        let i = ((y * picture.columns + x) * 3) as usize;
        Rgb(picture.rgb[i], picture.rgb[i + 1], picture.rgb[i + 2])
    }

    const SQUARE: [f32; 4] = [100.5, 150.5, 200.5, 250.5];

    #[test]
    fn the_same_inputs_give_the_same_pixels() {
        let image = radiograph(600, 520);
        let first = render(&image, &findings(SQUARE), &banner()).unwrap();
        let second = render(&image, &findings(SQUARE), &banner()).unwrap();
        assert!(first == second);
    }

    #[test]
    fn the_image_keeps_its_size_between_banner_and_legend() {
        let image = radiograph(600, 520);
        let picture = render(&image, &findings(SQUARE), &banner()).unwrap();
        assert_eq!(picture.columns, 600);
        assert_eq!(picture.scale, 1.0);
        assert!(
            picture.image_top > 30,
            "banner of {} rows",
            picture.image_top
        );
        let legend = picture.rows - picture.image_top - 520;
        assert!(legend > 60, "legend of {legend} rows");
        assert_eq!(picture.rgb.len(), (600 * picture.rows * 3) as usize);
        // Away from the finding, the image is the radiograph's grey.
        for x in [0, 300, 599] {
            let grey = (x as f32 / 599.0 * 255.0).round() as u8;
            assert_eq!(
                pixel(&picture, x, picture.image_top + 510),
                Rgb(grey, grey, grey)
            );
        }
    }

    #[test]
    fn outlines_are_drawn_in_the_category_colour_where_the_finding_is() {
        let image = radiograph(600, 520);
        let picture = render(&image, &findings(SQUARE), &banner()).unwrap();
        let top = picture.image_top;
        let colour = category_colour(Category::NoduleMass);
        // The four sides of the outline…
        for (x, y) in [(150, 150), (150, 250), (100, 200), (200, 200)] {
            assert_eq!(pixel(&picture, x, top + y), colour, "at ({x}, {y})");
        }
        // …but not its inside, which still shows the image.
        let grey = (150.0f32 / 599.0 * 255.0).round() as u8;
        assert_eq!(pixel(&picture, 150, top + 200), Rgb(grey, grey, grey));
    }

    #[test]
    fn the_banner_carries_text_and_the_warning() {
        let image = radiograph(600, 520);
        let picture = render(&image, &findings(SQUARE), &banner()).unwrap();
        let banner: Vec<&[u8]> = picture.rgb[..(picture.image_top * 600 * 3) as usize]
            .chunks_exact(3)
            .collect();
        let count = |colour: [u8; 3]| banner.iter().filter(|p| **p == colour).count();
        assert!(count([140, 0, 0]) > 1000, "no warning band");
        assert!(count([255, 220, 0]) > 100, "no warning text");
        assert!(count([255, 255, 255]) > 100, "no model line");
        let plain = render(&image, &findings(SQUARE), &banner_with(None)).unwrap();
        assert!(plain.image_top < picture.image_top);
        let plain_banner = &plain.rgb[..(plain.image_top * 600 * 3) as usize];
        assert!(!plain_banner.chunks_exact(3).any(|p| p == [140, 0, 0]));
    }

    fn banner_with(warning: Option<&str>) -> Banner {
        Banner {
            warning: warning.map(str::to_owned),
            ..banner()
        }
    }

    #[test]
    fn small_images_are_enlarged_with_their_findings() {
        let image = radiograph(100, 80);
        let picture = render(&image, &findings([20.5, 30.5, 60.5, 50.5]), &banner()).unwrap();
        assert_eq!(picture.scale, 7.0);
        assert_eq!(picture.columns, 700);
        let colour = category_colour(Category::NoduleMass);
        // The top side at y = 30.5 lies at 213.5 on the canvas.
        assert_eq!(pixel(&picture, 280, picture.image_top + 213), colour);
    }

    #[test]
    fn very_large_images_are_reduced() {
        let image = radiograph(5000, 600);
        let picture = render(&image, &findings(SQUARE), &banner()).unwrap();
        assert_eq!(picture.columns, 4096);
        assert!((picture.scale - 4096.0 / 5000.0).abs() < 1e-6);
    }

    #[test]
    fn grey_levels_must_match_the_size() {
        let mut image = radiograph(100, 80);
        image.grey.pop();
        assert!(render(&image, &findings(SQUARE), &banner()).is_err());
    }

    #[test]
    fn every_category_has_a_distinct_colour() {
        let colours: std::collections::HashSet<_> =
            Category::ALL.iter().map(|&c| category_colour(c)).collect();
        assert_eq!(colours.len(), Category::ALL.len());
    }
}
