//! Where the browser's annotations go: the research wing's stored,
//! versioned annotation records (`research::annotations`), through the
//! same checks as every other way in (the image must be stored, a location
//! must lie inside it), as one new version per save.
//!
//! The page speaks the records' own JSON: what it posts is
//! [`AnnotationInput`], what it lists is [`Annotation`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::research::annotations::{
    self, Annotation, Certainty, Confirmation, FindingType, Location, Preparer, Source,
};

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

/// Why a save was refused: the input (400) or the store (500).
#[derive(Debug)]
pub enum SaveError {
    Invalid(String),
    Failed(anyhow::Error),
}

/// The annotation records of the node's ledger.
#[derive(Clone)]
pub struct AnnotationStore {
    ledger: Ledger,
    data_dir: PathBuf,
}

impl AnnotationStore {
    pub fn new(ledger: Ledger, data_dir: PathBuf) -> AnnotationStore {
        AnnotationStore { ledger, data_dir }
    }

    /// Every current annotation of an image. Blocking.
    pub fn list(&self, sop_instance_uid: &str) -> anyhow::Result<Vec<Annotation>> {
        annotations::current_for_image(&self.ledger, sop_instance_uid)
    }

    /// Checks and stores a new annotation by `reader`. Blocking.
    pub fn save(
        &self,
        sop_instance_uid: &str,
        reader: &str,
        input: AnnotationInput,
    ) -> Result<Annotation, SaveError> {
        let new = annotations::NewAnnotation {
            id: None,
            sop_instance_uid: sop_instance_uid.to_owned(),
            reader: Some(reader.to_owned()),
            finding: input.finding,
            finding_text: input.finding_text,
            location: input.location,
            ct: None,
            certainty: input.certainty,
            confirmed: input.confirmed,
            deleted: false,
        };
        let mut preparer = Preparer::new(&self.ledger, &self.data_dir, crate::clock::unix_now());
        let annotation = preparer
            .prepare(new, reader, Source::Browser)
            .map_err(|e| SaveError::Invalid(format!("{e:#}")))?;
        annotations::save_all(&self.ledger, std::slice::from_ref(&annotation))
            .map_err(SaveError::Failed)?;
        Ok(annotation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_input_is_the_records_json() {
        let input: AnnotationInput = serde_json::from_str(
            r#"{"finding":"nodule-mass","location":{"box":{"x":1,"y":2,"width":3,"height":4}},
                "certainty":"probable","confirmed":"pathology","finding_text":null}"#,
        )
        .unwrap();
        assert_eq!(
            input.location,
            Some(Location::Box {
                x: 1.0,
                y: 2.0,
                width: 3.0,
                height: 4.0
            })
        );
        let polygon: AnnotationInput = serde_json::from_str(
            r#"{"finding":"other","finding_text":"scar","certainty":"possible",
                "location":{"polygon":[[1,1],[5,1],[3,4]]}}"#,
        )
        .unwrap();
        assert!(matches!(polygon.location, Some(Location::Polygon(p)) if p.len() == 3));
        assert!(
            serde_json::from_str::<AnnotationInput>(r#"{"finding":"x","certainty":"probable"}"#)
                .is_err()
        );
    }
}
