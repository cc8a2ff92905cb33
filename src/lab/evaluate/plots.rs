//! PNG plots of an evaluation: the ROC curves of every category with both
//! classes present, and the FROC curves of every localised category with
//! lesions.
//!
//! Drawn with plotters into an RGB buffer (its bitmap backend, without the
//! image-encoder feature) and written with the `image` crate; text uses the
//! DejaVu font the overlay already embeds, registered with plotters'
//! ab_glyph support.

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, anyhow};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::report::{EvaluationReport, FALSE_POSITIVE_RATES};

/// Reference lines.
const GREY: RGBColor = RGBColor(150, 150, 150);
const WIDTH: u32 = 900;
const HEIGHT: u32 = 700;
/// FROC x axis: log2 of false positives per image, 1/16 to 8.
const LOG2_RATE_RANGE: std::ops::Range<f64> = -4.0..3.0;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let data = crate::report::overlay::lettering::FONT_DATA;
        // The font is embedded and known to parse; a failure only loses text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, data);
    });
}

/// Draws into a fresh white RGB buffer and saves it as PNG.
fn render_png(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    register_font();
    let mut buffer = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        draw(&root)?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let image = image::RgbImage::from_raw(WIDTH, HEIGHT, buffer)
        .context("plot buffer has the wrong size")?;
    image
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn colour(index: usize) -> RGBColor {
    // Distinguishable on white (Okabe–Ito).
    const COLOURS: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 0, 0),
    ];
    COLOURS[index % COLOURS.len()]
}

/// The unit square as axes, labelled, with its diagonal drawn (chance for
/// ROC, perfect calibration for reliability).
fn unit_square_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: String,
    x_description: &str,
    y_description: &str,
) -> anyhow::Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>>
{
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.0)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc(x_description)
        .y_desc(y_description)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            GREY.stroke_width(1),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(chart)
}

/// `roc.png`: sensitivity against 1 − specificity, one curve per category.
pub fn plot_roc(report: &EvaluationReport, path: &Path) -> anyhow::Result<()> {
    render_png(path, |root| {
        let caption = format!("ROC: {} {}", report.model.name, report.model.version);
        let mut chart = unit_square_chart(root, caption, "1 - specificity", "sensitivity")?;
        for (i, category) in report
            .categories
            .iter()
            .filter(|c| !c.roc.is_empty())
            .enumerate()
        {
            let style = colour(i).stroke_width(2);
            let label = match category.auc {
                Some(auc) => format!("{} (AUC {auc:.3})", category.title),
                None => category.title.clone(),
            };
            chart
                .draw_series(LineSeries::new(
                    category
                        .roc
                        .iter()
                        .map(|p| (p.false_positive_rate, p.true_positive_rate)),
                    style,
                ))
                .map_err(|e| anyhow!("{e}"))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e}"))
    })
}

/// `froc.png`: lesion sensitivity against false positives per image (log
/// scale), one curve per localised category; the reported rates are marked.
pub fn plot_froc(report: &EvaluationReport, path: &Path) -> anyhow::Result<()> {
    render_png(path, |root| {
        let caption = format!("FROC: {} {}", report.model.name, report.model.version);
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(LOG2_RATE_RANGE, 0.0f64..1.0)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("false positives per image")
            .y_desc("lesion sensitivity")
            .x_labels(8)
            .x_label_formatter(&|log2| format!("{}", 2f64.powf(log2.round())))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        for rate in FALSE_POSITIVE_RATES {
            let x = rate.log2();
            chart
                .draw_series(LineSeries::new([(x, 0.0), (x, 1.0)], GREY.mix(0.5)))
                .map_err(|e| anyhow!("{e}"))?;
        }
        let floor = LOG2_RATE_RANGE.start;
        for (i, froc) in report
            .froc
            .iter()
            .filter(|f| !f.curve.is_empty())
            .enumerate()
        {
            let style = colour(i).stroke_width(2);
            // Steps: sensitivity holds until the next operating point.
            let mut points = Vec::new();
            let mut previous_sensitivity = 0.0;
            for point in &froc.curve {
                let x = point.false_positives_per_image.log2().max(floor);
                points.push((x, previous_sensitivity));
                points.push((x, point.sensitivity));
                previous_sensitivity = point.sensitivity;
            }
            if let Some(&(x, y)) = points.last()
                && x < LOG2_RATE_RANGE.end
            {
                points.push((LOG2_RATE_RANGE.end, y));
            }
            let label = match froc.mean_sensitivity {
                Some(mean) => format!("{} (mean {mean:.3})", froc.title),
                None => froc.title.clone(),
            };
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(|e| anyhow!("{e}"))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e}"))
    })
}

/// `reliability.png`: observed frequency against mean predicted
/// probability per bin, on real radiographs, one line per category; a
/// calibrated model lies on the diagonal.
pub fn plot_reliability(report: &EvaluationReport, path: &Path) -> anyhow::Result<()> {
    render_png(path, |root| {
        let caption = format!(
            "Reliability on real radiographs: {} {}",
            report.model.name, report.model.version
        );
        let mut chart = unit_square_chart(
            root,
            caption,
            "mean predicted probability",
            "observed frequency",
        )?;
        for (i, category) in report.calibration.iter().enumerate() {
            let style = colour(i).stroke_width(2);
            let points: Vec<(f64, f64)> = category
                .bins
                .iter()
                .filter_map(|b| Some((b.mean_predicted?, b.observed?)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(|e| anyhow!("{e}"))?
                .label(format!(
                    "{} (ECE {:.3}, n={})",
                    category.title, category.expected_calibration_error, category.cases
                ))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 4, colour(i).filled())),
                )
                .map_err(|e| anyhow!("{e}"))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e}"))
    })
}
