//! The banner strip above the overlay's image: a research-use warning when
//! the model is a research model (large, yellow on red, so it survives a
//! thumbnail), then the model's name and version and its intended use.
//!
//! The banner is part of the picture because a secondary capture is often
//! all a reader sees of a result: whatever it shows must say where it came
//! from and what it may be used for.

use super::canvas::{Canvas, Rgb};
use super::lettering::{fitting_size, line_metrics, line_pitch, printable, text_width};
use super::picture::{MARGIN, PANEL_BACKGROUND, SECONDARY_TEXT, text_size};

/// Sizes, in hundredths of the image's shorter side.
const WARNING_SIZE: f32 = 4.4;
const MODEL_SIZE: f32 = 3.2;
const INTENDED_USE_SIZE: f32 = 2.2;
/// Intended-use text beyond this many lines is cut short.
const MAX_INTENDED_USE_LINES: usize = 3;

const WARNING_BACKGROUND: Rgb = Rgb(140, 0, 0);
const WARNING_TEXT: Rgb = Rgb(255, 220, 0);

/// The text of the banner.
#[derive(Debug, Clone, PartialEq)]
pub struct Banner {
    /// Shown first and most prominently (e.g. research use only).
    pub warning: Option<String>,
    /// Model name and version.
    pub model: String,
    pub intended_use: String,
}

/// Where the banner's lines go on a canvas of a given width.
pub struct BannerLayout {
    warning: Option<(String, f32)>,
    model: (String, f32),
    intended_use: (Vec<String>, f32),
    pub height: f32,
}

impl BannerLayout {
    /// `unit`: a hundredth of the image's shorter side, in pixels.
    pub fn new(banner: &Banner, width: f32, unit: f32) -> BannerLayout {
        let margin = MARGIN * unit;
        let available = width - 2.0 * margin;
        let warning = banner.warning.as_deref().map(|warning| {
            let warning = printable(warning);
            let size = fitting_size(&warning, text_size(WARNING_SIZE, unit), available);
            (warning, size)
        });
        let model = printable(&format!("AI result - model {}", banner.model));
        let model_size = fitting_size(&model, text_size(MODEL_SIZE, unit), available);
        let intended_use_size = text_size(INTENDED_USE_SIZE, unit);
        let intended_use = wrap(
            &printable(&banner.intended_use),
            intended_use_size,
            available,
            MAX_INTENDED_USE_LINES,
        );
        let warning_height = warning
            .as_ref()
            .map_or(0.0, |(_, size)| line_pitch(*size) + margin);
        let height = warning_height
            + margin
            + line_pitch(model_size)
            + intended_use.len() as f32 * line_pitch(intended_use_size)
            + margin;
        BannerLayout {
            warning,
            model: (model, model_size),
            intended_use: (intended_use, intended_use_size),
            height,
        }
    }

    /// Draws the banner at the top of `canvas`.
    pub fn draw(&self, canvas: &mut Canvas, unit: f32) {
        let margin = MARGIN * unit;
        let width = canvas.width() as f32;
        canvas.fill_rect(0.0, 0.0, width, self.height, PANEL_BACKGROUND, 1.0);
        let mut top = 0.0;
        if let Some((warning, size)) = &self.warning {
            let band = line_pitch(*size) + margin;
            canvas.fill_rect(0.0, 0.0, width, band, WARNING_BACKGROUND, 1.0);
            let metrics = line_metrics(*size);
            let baseline = (band - metrics.height()) / 2.0 + metrics.ascent;
            let x = (width - text_width(warning, *size)) / 2.0;
            canvas.text(warning, *size, x, baseline, WARNING_TEXT);
            top = band;
        }
        top += margin;
        let (model, size) = &self.model;
        top = canvas.text_line(model, *size, margin, top, Rgb::WHITE);
        let (lines, size) = &self.intended_use;
        for line in lines {
            top = canvas.text_line(line, *size, margin, top, SECONDARY_TEXT);
        }
    }
}

/// Breaks `text` into lines at most `width` wide at `size`, at spaces; at
/// most `max_lines`, the last one ending in "..." when text was cut. A
/// single word wider than `width` gets a line of its own.
fn wrap(text: &str, size: f32, width: f32, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if current.is_empty() || text_width(&candidate, size) <= width {
            current = candidate;
        } else {
            lines.push(std::mem::replace(&mut current, word.to_owned()));
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            while !last.is_empty() && text_width(&format!("{last}..."), size) > width {
                last.pop();
            }
            last.push_str("...");
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_fit_and_keep_every_word() {
        let text = "Flags chest radiographs with findings for a radiologist's review";
        let lines = wrap(text, 20.0, 250.0, 10);
        assert!(lines.len() > 1, "{lines:?}");
        assert!(
            lines.iter().all(|l| text_width(l, 20.0) <= 250.0),
            "{lines:?}"
        );
        assert_eq!(lines.join(" "), text);
    }

    #[test]
    fn text_beyond_the_last_line_is_cut_with_an_ellipsis() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        let lines = wrap(text, 20.0, 120.0, 2);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].ends_with("..."), "{lines:?}");
        assert!(text_width(&lines[1], 20.0) <= 120.0);
    }

    #[test]
    fn the_warning_adds_a_band() {
        let mut banner = Banner {
            warning: None,
            model: "m 1".into(),
            intended_use: "Triage.".into(),
        };
        let without = BannerLayout::new(&banner, 1000.0, 10.0).height;
        banner.warning = Some("RESEARCH USE ONLY".into());
        let with = BannerLayout::new(&banner, 1000.0, 10.0).height;
        assert!(with > without + 40.0, "{without} → {with}");
    }
}
