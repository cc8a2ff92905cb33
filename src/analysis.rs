//! Analysing one stored image: gate → decode → preprocess → model →
//! findings, with the time each step took.
//!
//! This is plain synchronous code: the worker pool runs it off the async
//! runtime, and `chestnode analyze` runs it directly on files.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::findings::Findings;
use dicom_object::DefaultDicomObject;

use crate::imaging::{self, Gate, Normalisation, Radiograph};
use crate::model::Model;

/// How long each step took, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub read_ms: f64,
    pub decode_ms: f64,
    pub preprocess_ms: f64,
    pub inference_ms: f64,
    pub findings_ms: f64,
    pub total_ms: f64,
    /// Building and storing the result objects (server only; not in `total_ms`).
    #[serde(default)]
    pub report_ms: f64,
}

/// The result of an analysed image, as stored with its job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisResult {
    pub findings: Findings,
    pub timings: Timings,
    /// Size of the analysed image (columns, rows).
    pub image_size: [u32; 2],
    /// (row, column) spacing in mm, when the image states it.
    #[serde(default)]
    pub pixel_spacing_mm: Option<[f64; 2]>,
}

/// What became of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
// One outcome per image, moved a handful of times: boxing would only add
// noise at every match.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Analysed(AnalysisResult),
    /// Deliberately skipped, with the reason (e.g. a lateral view).
    NotAnalysed {
        reason: String,
    },
}

/// Why an image that should have been analysed could not be.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("reading the file: {0}")]
    Read(String),
    #[error("decoding the image: {0}")]
    Decode(String),
    #[error("running the model: {0}")]
    Model(String),
}

/// An analysis with what the report stage needs besides the outcome.
pub struct Analysis {
    pub outcome: Outcome,
    /// The source object as read.
    pub source: DefaultDicomObject,
    /// The image as displayed (analysed images only).
    pub radiograph: Option<Radiograph>,
    /// The model's probability per label, in manifest order (analysed
    /// images only; `chestnode evaluate` scores labels with it).
    pub label_probabilities: Vec<f32>,
}

/// Analyses one Part-10 file.
pub fn analyse_file(model: &Model, path: &Path) -> Result<Outcome, AnalysisError> {
    analyse_path(model, path).map(|analysis| analysis.outcome)
}

/// Analyses one Part-10 file, keeping the source and the decoded image.
pub fn analyse_path(model: &Model, path: &Path) -> Result<Analysis, AnalysisError> {
    let started = Instant::now();
    let source = std::fs::File::open(path)
        .map_err(|e| AnalysisError::Read(e.to_string()))
        .and_then(|file| {
            crate::store::open_checked(std::io::BufReader::new(file))
                .map_err(|e| AnalysisError::Read(e.to_string()))
        })?;
    let read_ms = elapsed_ms(started);
    if let Gate::NotAnalysed { reason } = imaging::gate(&source) {
        return Ok(Analysis {
            outcome: Outcome::NotAnalysed { reason },
            source,
            radiograph: None,
            label_probabilities: Vec::new(),
        });
    }
    let object = &source;

    let step = Instant::now();
    let radiograph =
        imaging::load_radiograph(object).map_err(|e| AnalysisError::Decode(e.to_string()))?;
    let decode_ms = elapsed_ms(step);

    let step = Instant::now();
    let spec = &model.manifest.input;
    let normalisation = Normalisation {
        low: spec.normalisation.low,
        high: spec.normalisation.high,
    };
    let (input, geometry) = imaging::model_input(&radiograph, spec.size, normalisation)
        .map_err(|e| AnalysisError::Decode(e.to_string()))?;
    let preprocess_ms = elapsed_ms(step);

    let step = Instant::now();
    let prediction = model
        .predict(&input)
        .map_err(|e| AnalysisError::Model(format!("{e:#}")))?;
    let inference_ms = elapsed_ms(step);

    let step = Instant::now();
    let findings = Findings::from_prediction(
        model,
        &prediction,
        |x, y| geometry.to_original(x, y),
        radiograph.pixel_spacing_mm,
    );
    let findings_ms = elapsed_ms(step);

    let outcome = Outcome::Analysed(AnalysisResult {
        findings,
        timings: Timings {
            read_ms,
            decode_ms,
            preprocess_ms,
            inference_ms,
            findings_ms,
            total_ms: elapsed_ms(started),
            report_ms: 0.0,
        },
        image_size: [radiograph.columns, radiograph.rows],
        pixel_spacing_mm: radiograph.pixel_spacing_mm,
    });
    Ok(Analysis {
        outcome,
        source,
        radiograph: Some(radiograph),
        label_probabilities: prediction.probabilities,
    })
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The human-readable form of one file's result, for `chestnode analyze`.
pub fn render_text(path: &Path, model: &Model, outcome: &Result<Outcome, AnalysisError>) -> String {
    let mut out = format!("{}\n", path.display());
    let info = &model.manifest.model;
    match outcome {
        Err(error) => out += &format!("  error: {error}\n"),
        Ok(Outcome::NotAnalysed { reason }) => out += &format!("  not analysed: {reason}\n"),
        Ok(Outcome::Analysed(result)) => {
            out += &format!(
                "  model {} {}{}\n",
                info.name,
                info.version,
                if info.research_use_only {
                    " (research use only, not for diagnosis)"
                } else {
                    ""
                }
            );
            for call in &result.findings.categories {
                let verdict = match (call.assessed, call.positive) {
                    (false, _) => "not assessed".to_owned(),
                    (true, true) => format!("POSITIVE  p={:.3}", call.probability),
                    (true, false) => format!("negative  p={:.3}", call.probability),
                };
                out += &format!("  {:<30} {verdict}\n", call.category.title());
            }
            for finding in &result.findings.localised {
                let [x0, y0, x1, y1] = finding.region.bounding_box;
                let size = finding
                    .region
                    .size_mm
                    .map(|[w, h]| format!(", {w:.0}×{h:.0} mm"))
                    .unwrap_or_default();
                out += &format!(
                    "  region: {} ({}) p={:.3} box x {x0:.0}–{x1:.0}, y {y0:.0}–{y1:.0} px{size}\n",
                    finding.category.title(),
                    finding.label,
                    finding.probability
                );
            }
            out += &format!("  time: {:.0} ms\n", result.timings.total_ms);
        }
    }
    out
}
