//! The legend strip below the overlay's image: for every category the
//! model assessed (or could not), its colour, probability and call, so the
//! picture on its own says what was looked for and what was found.
//!
//! Rows go in two columns when they still read at no less than
//! `MIN_TWO_COLUMN_SCALE` of the full size, which keeps the strip short;
//! otherwise in one column, shrunk only if a row would not fit.

use super::canvas::{Canvas, Rgb};
use super::lettering::{fitting_size, line_metrics, line_pitch, text_width};
use super::picture::{
    MARGIN, MUTED_TEXT, PANEL_BACKGROUND, SECONDARY_TEXT, category_colour, text_size,
};
use crate::findings::CategoryCall;

/// Text size, in hundredths of the image's shorter side.
const LEGEND_SIZE: f32 = 2.3;
/// Two columns are used when their text is at least this fraction of the
/// full size.
const MIN_TWO_COLUMN_SCALE: f32 = 0.75;

const HEADING: &str = "p = model probability; call at the model's threshold";

/// Where the legend's rows go on a canvas of a given width.
pub struct LegendLayout {
    size: f32,
    columns: usize,
    /// Widths of the title, probability and call columns.
    widths: [f32; 3],
    pub height: f32,
}

impl LegendLayout {
    /// `unit`: a hundredth of the image's shorter side, in pixels.
    pub fn new(calls: &[CategoryCall], width: f32, unit: f32) -> LegendLayout {
        let margin = MARGIN * unit;
        let available = width - 2.0 * margin;
        let column_gap = 3.0 * margin;
        let target = text_size(LEGEND_SIZE, unit);
        let one_row = row_width(calls, target);
        let two_columns = (available - column_gap) / 2.0;
        let (size, columns) = if one_row <= two_columns {
            (target, 2)
        } else if two_columns / one_row >= MIN_TWO_COLUMN_SCALE {
            (target * two_columns / one_row, 2)
        } else {
            (target * (available / one_row).min(1.0), 1)
        };
        let rows = calls.len().div_ceil(columns);
        let height = margin + (rows + 1) as f32 * line_pitch(size) + margin;
        LegendLayout {
            size,
            columns,
            widths: column_widths(calls, size),
            height,
        }
    }

    /// Draws the legend with its top at `top`.
    pub fn draw(&self, canvas: &mut Canvas, calls: &[CategoryCall], top: f32, unit: f32) {
        let margin = MARGIN * unit;
        let width = canvas.width() as f32;
        canvas.fill_rect(0.0, top, width, self.height, PANEL_BACKGROUND, 1.0);
        let size = self.size;
        let pitch = line_pitch(size);
        let heading_size = fitting_size(HEADING, size, width - 2.0 * margin);
        canvas.text_line(HEADING, heading_size, margin, top + margin, MUTED_TEXT);
        let rows = calls.len().div_ceil(self.columns);
        let column_width = (width - 2.0 * margin) / self.columns as f32;
        let gap = gap(size);
        let metrics = line_metrics(size);
        for (index, call) in calls.iter().enumerate() {
            let (column, row) = (index / rows, index % rows);
            let left = margin + column as f32 * column_width;
            let row_top = top + margin + (row + 1) as f32 * pitch;
            let baseline = row_top + (pitch - metrics.height()) / 2.0 + metrics.ascent;
            let colour = category_colour(call.category);
            swatch(
                canvas,
                left,
                baseline,
                metrics.ascent * 0.9,
                colour,
                call.positive,
            );
            let (title_colour, call_colour) = match (call.assessed, call.positive) {
                (true, true) => (Rgb::WHITE, colour),
                (true, false) => (SECONDARY_TEXT, SECONDARY_TEXT),
                (false, _) => (MUTED_TEXT, MUTED_TEXT),
            };
            let mut x = left + size + gap;
            canvas.text(call.category.title(), size, x, baseline, title_colour);
            x += self.widths[0] + gap;
            // Probabilities are right-aligned so their digits line up.
            let probability = probability_text(call);
            let right = x + self.widths[1];
            let probability_x = right - text_width(&probability, size);
            canvas.text(&probability, size, probability_x, baseline, title_colour);
            canvas.text(call_text(call), size, right + gap, baseline, call_colour);
        }
    }
}

fn gap(size: f32) -> f32 {
    size * 0.8
}

/// A square of the category's colour standing on the baseline: filled for
/// a positive call, a frame otherwise.
fn swatch(canvas: &mut Canvas, x: f32, baseline: f32, side: f32, colour: Rgb, filled: bool) {
    let top = baseline - side;
    canvas.fill_rect(x, top, side, side, colour, 1.0);
    if !filled {
        let inset = (side * 0.25).max(1.0);
        let inner = side - 2.0 * inset;
        canvas.fill_rect(x + inset, top + inset, inner, inner, PANEL_BACKGROUND, 1.0);
    }
}

fn column_widths(calls: &[CategoryCall], size: f32) -> [f32; 3] {
    let widest = |text: &dyn Fn(&CategoryCall) -> String| {
        calls
            .iter()
            .map(|call| text_width(&text(call), size))
            .fold(0.0, f32::max)
    };
    [
        widest(&|call| call.category.title().to_owned()),
        widest(&probability_text),
        widest(&|call| call_text(call).to_owned()),
    ]
}

/// The width of the widest row at `size`: swatch, title, probability and
/// call with gaps between them.
fn row_width(calls: &[CategoryCall], size: f32) -> f32 {
    size + 3.0 * gap(size) + column_widths(calls, size).iter().sum::<f32>()
}

fn probability_text(call: &CategoryCall) -> String {
    if call.assessed {
        format!("p={:.2}", call.probability)
    } else {
        "-".to_owned()
    }
}

fn call_text(call: &CategoryCall) -> &'static str {
    match (call.assessed, call.positive) {
        (true, true) => "POSITIVE",
        (true, false) => "negative",
        (false, _) => "not assessed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::Category;

    fn calls() -> Vec<CategoryCall> {
        Category::ALL
            .iter()
            .map(|&category| CategoryCall {
                category,
                assessed: category != Category::Tuberculosis,
                probability: 0.4,
                positive: category == Category::NoduleMass,
                label_index: None,
            })
            .collect()
    }

    #[test]
    fn wide_canvases_get_two_columns_narrow_ones_one() {
        let calls = calls();
        let wide = LegendLayout::new(&calls, 3000.0, 10.0);
        assert_eq!((wide.columns, wide.size), (2, 23.0));
        let narrow = LegendLayout::new(&calls, 500.0, 10.0);
        assert_eq!(narrow.columns, 1);
        assert!(narrow.height > wide.height);
        assert!(row_width(&calls, narrow.size) <= 500.0 - 2.0 * MARGIN * 10.0 + 0.01);
    }

    #[test]
    fn calls_read_as_words() {
        let calls = calls();
        assert_eq!(call_text(&calls[0]), "POSITIVE");
        assert_eq!(call_text(&calls[1]), "negative");
        assert_eq!(call_text(&calls[2]), "not assessed");
        assert_eq!(probability_text(&calls[1]), "p=0.40");
        assert_eq!(probability_text(&calls[2]), "-");
    }
}
