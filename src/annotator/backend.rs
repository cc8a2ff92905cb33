//! Where the browser's annotations go: the [`AnnotationBackend`] trait the
//! API calls, the JSON shapes the page sends and receives, and
//! [`InMemoryAnnotations`], a store that lives only as long as the process.
//!
//! The trait keeps the web front apart from the annotation records: the
//! research wing's stored, versioned annotations plug in by implementing
//! it. Until then the node uses the in-memory store (see `node.rs`), so
//! what is saved in the browser is lost when the node stops.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The finding types a reader can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingType {
    NoduleMass,
    Tuberculosis,
    Pneumonia,
    Mediastinal,
    Copd,
    ScreeningD,
    Normal,
    Other,
}

/// How sure the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Certainty {
    Definite,
    Probable,
    Possible,
}

/// What confirmed the diagnosis, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confirmation {
    Pathology,
    Culture,
    Other,
}

/// A box in image pixels (x = column, y = row).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// Where the finding is; `None` in a record means image level only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    Box(PixelBox),
    /// At least three `[x, y]` points, not closed.
    Polygon(Vec<[f64; 2]>),
}

impl Location {
    /// Checks the coordinates: finite, and inside a `columns` × `rows`
    /// image when its size is known.
    pub fn validate(&self, size: Option<[u32; 2]>) -> Result<(), String> {
        let points: Vec<[f64; 2]> = match self {
            Location::Box(b) => {
                if !(b.width > 0.0 && b.height > 0.0) {
                    return Err("a box needs a positive width and height".into());
                }
                vec![[b.x, b.y], [b.x + b.width, b.y + b.height]]
            }
            Location::Polygon(points) => {
                if points.len() < 3 {
                    return Err("a polygon needs at least three points".into());
                }
                points.clone()
            }
        };
        for [x, y] in points {
            if !(x.is_finite() && y.is_finite() && x >= 0.0 && y >= 0.0) {
                return Err("coordinates must be finite and not negative".into());
            }
            if let Some([columns, rows]) = size
                && (x > f64::from(columns) || y > f64::from(rows))
            {
                return Err(format!(
                    "coordinates fall outside the {columns} x {rows} image"
                ));
            }
        }
        Ok(())
    }
}

/// What the page posts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationInput {
    pub finding: FindingType,
    #[serde(default)]
    pub finding_text: Option<String>,
    #[serde(default)]
    pub location: Option<Location>,
    pub certainty: Certainty,
    #[serde(default)]
    pub confirmed: Option<Confirmation>,
}

/// A new annotation as the API hands it to the backend: the page's input
/// with the image and the logged-in reader.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAnnotation {
    pub sop_instance_uid: String,
    pub reader: String,
    pub input: AnnotationInput,
}

/// A stored annotation, as the page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationRecord {
    pub id: String,
    pub version: u32,
    pub sop_instance_uid: String,
    pub reader: String,
    pub finding: FindingType,
    pub finding_text: Option<String>,
    pub location: Option<Location>,
    pub certainty: Certainty,
    pub confirmed: Option<Confirmation>,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// The store behind `GET` and `POST /annotate/api/images/{sop}/annotations`.
/// Calls come from blocking threads; the image and reader are checked
/// before a call.
pub trait AnnotationBackend: Send + Sync {
    /// Every current annotation of an image, oldest first.
    fn list(&self, sop_instance_uid: &str) -> anyhow::Result<Vec<AnnotationRecord>>;
    /// Stores a new annotation and returns it as stored.
    fn save(&self, annotation: NewAnnotation) -> anyhow::Result<AnnotationRecord>;
}

/// Annotations kept in memory only: lost when the node stops.
#[derive(Default)]
pub struct InMemoryAnnotations {
    records: Mutex<BTreeMap<String, Vec<AnnotationRecord>>>,
}

impl AnnotationBackend for InMemoryAnnotations {
    fn list(&self, sop_instance_uid: &str) -> anyhow::Result<Vec<AnnotationRecord>> {
        let records = self.records.lock().expect("annotations lock");
        Ok(records.get(sop_instance_uid).cloned().unwrap_or_default())
    }

    fn save(&self, annotation: NewAnnotation) -> anyhow::Result<AnnotationRecord> {
        let mut records = self.records.lock().expect("annotations lock");
        let count: usize = records.values().map(Vec::len).sum();
        let NewAnnotation {
            sop_instance_uid,
            reader,
            input,
        } = annotation;
        let record = AnnotationRecord {
            id: format!("mem-{}", count + 1),
            version: 1,
            sop_instance_uid: sop_instance_uid.clone(),
            reader,
            finding: input.finding,
            finding_text: input.finding_text,
            location: input.location,
            certainty: input.certainty,
            confirmed: input.confirmed,
            created_at: crate::clock::unix_now(),
        };
        records
            .entry(sop_instance_uid)
            .or_default()
            .push(record.clone());
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_shape_is_the_agreed_json() {
        let input: AnnotationInput = serde_json::from_str(
            r#"{"finding":"nodule-mass","location":{"box":{"x":1,"y":2,"width":3,"height":4}},
                "certainty":"probable","confirmed":"pathology","finding_text":null}"#,
        )
        .unwrap();
        let store = InMemoryAnnotations::default();
        let saved = store
            .save(NewAnnotation {
                sop_instance_uid: "1.2.3".into(),
                reader: "ann".into(),
                input,
            })
            .unwrap();
        let json = serde_json::to_value(&saved).unwrap();
        assert_eq!(json["location"]["box"]["width"], 3.0);
        assert_eq!(json["finding"], "nodule-mass");
        assert_eq!(json["version"], 1);
        assert_eq!(store.list("1.2.3").unwrap(), vec![saved]);
        let polygon: Location = serde_json::from_str(r#"{"polygon":[[1,1],[5,1],[3,4]]}"#).unwrap();
        assert!(polygon.validate(Some([10, 10])).is_ok());
        assert!(polygon.validate(Some([4, 10])).is_err());
        assert!(Location::Polygon(vec![[1.0, 1.0]]).validate(None).is_err());
    }
}
