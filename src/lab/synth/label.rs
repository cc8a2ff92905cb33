//! What a generated case's label file says: its findings as label
//! entries (box, area, run-length mask, details, tags), its provenance and
//! the image-level categories, in the lab's one label format
//! ([`ImageLabel`], `docs/dataset-format.md`).

use super::canvas::Mask;
use super::findings::DrawnFinding;
use super::{SyntheticCase, insert};
use crate::lab::dataset::{
    FindingLabel, ImageLabel, LABEL_SCHEMA, RunLengthMask, SOURCE_INSERTED, SOURCE_SYNTHETIC,
    categories,
};

impl SyntheticCase {
    /// The label file contents; `image` is the DICOM path relative to the dataset.
    pub fn label(&self, image: &str) -> ImageLabel {
        let findings: Vec<FindingLabel> = self.findings.iter().filter_map(finding_label).collect();
        ImageLabel {
            schema: LABEL_SCHEMA.into(),
            image: image.into(),
            source: if self.background.is_some() {
                SOURCE_INSERTED.into()
            } else {
                SOURCE_SYNTHETIC.into()
            },
            background: self.background.as_ref().map(insert::Background::name),
            background_source: self.background.as_ref().and_then(|b| b.source.clone()),
            split: self.background.as_ref().and_then(|b| b.split.clone()),
            patient: self.background.as_ref().and_then(|b| b.patient.clone()),
            seed: self.seed,
            index: self.index,
            rows: self.size as u32,
            columns: self.size as u32,
            pixel_spacing_mm: [self.spacing_mm, self.spacing_mm],
            photometric_interpretation: self.photometric.as_str().into(),
            // Inserted images' structures are estimates (real_anatomy).
            anatomy_known: self.background.is_none() && !self.structures.is_empty(),
            categories: categories(&findings),
            findings,
        }
    }
}

/// A drawn finding's label entry (none for an empty mask).
fn finding_label(finding: &DrawnFinding) -> Option<FindingLabel> {
    Some(FindingLabel {
        kind: finding.kind,
        category: finding.kind.category_key().to_string(),
        bbox: finding.mask.bbox()?,
        area_px: finding.mask.area() as u32,
        mask: encode(&finding.mask),
        details: finding.details.clone(),
        tags: finding.tags.clone(),
    })
}

/// A square mask as runs.
fn encode(mask: &Mask) -> RunLengthMask {
    RunLengthMask::from_bits(
        mask.size as u32,
        mask.size as u32,
        mask.bits.iter().copied(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_length_round_trips() {
        let mut mask = Mask::new(5);
        for i in [0, 1, 7, 8, 9, 24] {
            mask.bits[i] = true;
        }
        let rle = encode(&mask);
        assert_eq!(rle.counts[0], 0);
        assert_eq!(rle.decode(), mask.bits);
    }
}
