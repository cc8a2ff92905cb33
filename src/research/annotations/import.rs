//! `research annotations import FILE`: annotations from a CSV or JSON file
//! (the schema is in docs/research.md). Every row is checked, against its
//! image too, before anything is stored; a bad row is reported with its
//! line, and then nothing of the file is stored.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::record::{
    Certainty, Confirmation, CtConfirmation, FindingType, Location, NewAnnotation, Source,
};
use super::store::{Preparer, save_all};
use crate::ledger::Ledger;

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportFormat {
    Csv,
    Json,
}

impl ImportFormat {
    /// From a file name's extension.
    pub fn of(path: &Path) -> anyhow::Result<ImportFormat> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "csv" => Ok(ImportFormat::Csv),
            Some(e) if e == "json" => Ok(ImportFormat::Json),
            _ => anyhow::bail!("annotations are imported from a .csv or .json file"),
        }
    }
}

/// What an import stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    pub annotations: usize,
    pub images: usize,
}

/// The CSV columns, in the documented order.
pub const CSV_COLUMNS: [&str; 15] = [
    "sop_instance_uid",
    "reader",
    "finding",
    "finding_text",
    "certainty",
    "confirmed",
    "x",
    "y",
    "width",
    "height",
    "polygon",
    "ct_series_instance_uid",
    "ct_sop_instance_uid",
    "id",
    "deleted",
];

/// Checks and stores every annotation of `content`, or none.
pub fn import(
    ledger: &Ledger,
    data_dir: &Path,
    format: ImportFormat,
    content: &str,
    default_reader: &str,
    now: u64,
) -> anyhow::Result<Imported> {
    let rows = match format {
        ImportFormat::Csv => parse_csv(content)?,
        ImportFormat::Json => parse_json(content)?,
    };
    let mut preparer = Preparer::new(ledger, data_dir, now);
    let mut errors = Vec::new();
    let mut prepared = Vec::new();
    for (line, row) in rows {
        match row.and_then(|new| preparer.prepare(new, default_reader, Source::File)) {
            Ok(annotation) => prepared.push(annotation),
            Err(error) => errors.push(format!("line {line}: {error:#}")),
        }
    }
    if !errors.is_empty() {
        let shown: Vec<_> = errors.iter().take(20).cloned().collect();
        anyhow::bail!(
            "{} bad row(s); nothing was imported:\n{}{}",
            errors.len(),
            shown.join("\n"),
            if errors.len() > 20 { "\n…" } else { "" }
        );
    }
    anyhow::ensure!(!prepared.is_empty(), "the file holds no annotations");
    save_all(ledger, &prepared)?;
    let images: HashSet<&str> = prepared
        .iter()
        .map(|a| a.sop_instance_uid.as_str())
        .collect();
    Ok(Imported {
        annotations: prepared.len(),
        images: images.len(),
    })
}

type Row = (usize, anyhow::Result<NewAnnotation>);

fn parse_json(content: &str) -> anyhow::Result<Vec<Row>> {
    let values: Vec<serde_json::Value> = serde_json::from_str(content)
        .map_err(|e| anyhow::anyhow!("not a JSON array of annotations: {e}"))?;
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let parsed =
                serde_json::from_value::<NewAnnotation>(value).map_err(|e| anyhow::anyhow!("{e}"));
            // "line" is the element's position for JSON (1-based).
            (i + 1, parsed)
        })
        .collect())
}

fn parse_csv(content: &str) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(content.as_bytes());
    let headers = reader.headers()?.clone();
    let unknown: Vec<&str> = headers
        .iter()
        .filter(|h| !CSV_COLUMNS.contains(h))
        .collect();
    anyhow::ensure!(
        unknown.is_empty(),
        "unknown column(s) {unknown:?}; the columns are {}",
        CSV_COLUMNS.join(", ")
    );
    for required in ["sop_instance_uid", "finding", "certainty"] {
        anyhow::ensure!(
            headers.iter().any(|h| h == required),
            "the column {required} is missing"
        );
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let (line, parsed) = match record {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line() as usize);
                let get = |name: &str| -> Option<String> {
                    let i = headers.iter().position(|h| h == name)?;
                    record.get(i).filter(|v| !v.is_empty()).map(str::to_owned)
                };
                (line, row_of(&get))
            }
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line() as usize);
                (line, Err(anyhow::anyhow!("{error}")))
            }
        };
        rows.push((line, parsed));
    }
    Ok(rows)
}

fn row_of(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<NewAnnotation> {
    let number = |name: &str| -> anyhow::Result<Option<f64>> {
        get(name)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| anyhow::anyhow!("{name} is not a number: {v:?}"))
            })
            .transpose()
    };
    let box_parts = [
        number("x")?,
        number("y")?,
        number("width")?,
        number("height")?,
    ];
    let polygon = get("polygon");
    let location = match (box_parts, polygon) {
        ([None, None, None, None], None) => None,
        ([Some(x), Some(y), Some(width), Some(height)], None) => Some(Location::Box {
            x,
            y,
            width,
            height,
        }),
        ([None, None, None, None], Some(text)) => Some(Location::Polygon(parse_polygon(&text)?)),
        (_, Some(_)) => anyhow::bail!("give a box (x, y, width, height) or a polygon, not both"),
        _ => anyhow::bail!("a box needs all of x, y, width and height"),
    };
    let enumerated = |name: &str| -> anyhow::Result<Option<serde_json::Value>> {
        Ok(get(name).map(|v| serde_json::Value::String(v.to_ascii_lowercase())))
    };
    let certainty: Certainty = serde_json::from_value(
        enumerated("certainty")?.ok_or_else(|| anyhow::anyhow!("certainty is missing"))?,
    )
    .map_err(|_| anyhow::anyhow!("certainty is definite, probable or possible"))?;
    let confirmed: Option<Confirmation> = enumerated("confirmed")?
        .filter(|v| v != "no")
        .map(serde_json::from_value)
        .transpose()
        .map_err(|_| anyhow::anyhow!("confirmed is pathology, culture, other or empty"))?;
    let ct = get("ct_series_instance_uid").map(|series| CtConfirmation {
        series_instance_uid: series,
        sop_instance_uid: get("ct_sop_instance_uid"),
    });
    let deleted = match get("deleted").as_deref() {
        None | Some("false") | Some("no") | Some("0") => false,
        Some("true") | Some("yes") | Some("1") => true,
        Some(other) => anyhow::bail!("deleted is true or false, not {other:?}"),
    };
    Ok(NewAnnotation {
        id: get("id"),
        sop_instance_uid: get("sop_instance_uid")
            .ok_or_else(|| anyhow::anyhow!("sop_instance_uid is missing"))?,
        reader: get("reader"),
        finding: FindingType::parse(
            &get("finding").ok_or_else(|| anyhow::anyhow!("finding is missing"))?,
        )?,
        finding_text: get("finding_text"),
        location,
        ct,
        certainty,
        confirmed,
        deleted,
    })
}

/// "x1 y1; x2 y2; …".
fn parse_polygon(text: &str) -> anyhow::Result<Vec<[f64; 2]>> {
    text.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|point| {
            let numbers: Vec<f64> = point
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| anyhow::anyhow!("polygon point {point:?} is not \"x y\""))?;
            match numbers[..] {
                [x, y] => Ok([x, y]),
                _ => anyhow::bail!("polygon point {point:?} is not \"x y\""),
            }
        })
        .collect()
}
