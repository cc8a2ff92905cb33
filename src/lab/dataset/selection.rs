//! Which label files of a dataset a run takes, by the provenance each
//! label file carries: its source, whether it is a real radiograph, its
//! split and whether the patient is a child.
//!
//! Training reads the train and validation splits and never the test
//! split; evaluation reads the test split of a real corpus. Both may leave
//! out whole sources (e.g. a collection of cropped publication figures
//! with burned-in arrows, which teaches the source rather than the
//! disease) and paediatric films (the node is for adults). Generated
//! datasets carry no split; training draws one for them as before.

use serde::Deserialize;

use super::split::Split;
use super::{SOURCE_SYNTHETIC, is_real_source};

/// The provenance fields of a label file (all optional: a generated
/// dataset has only `source`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Provenance {
    #[serde(default = "synthetic")]
    pub source: String,
    /// For `inserted` images: the source of the real background.
    #[serde(default)]
    pub background_source: Option<String>,
    #[serde(default)]
    pub split: Option<Split>,
    #[serde(default)]
    pub patient: Option<String>,
    /// `yes`, `no` or `unknown`.
    #[serde(default)]
    pub pediatric: Option<String>,
}

fn synthetic() -> String {
    SOURCE_SYNTHETIC.into()
}

impl Provenance {
    /// A real radiograph with its own labels (not generated, nothing drawn in).
    pub fn is_real(&self) -> bool {
        is_real_source(&self.source)
    }

    pub fn is_pediatric(&self) -> bool {
        self.pediatric.as_deref() == Some("yes")
    }

    /// The source results are reported under: the source itself, or
    /// `inserted:<background source>`.
    pub fn group(&self) -> String {
        match &self.background_source {
            Some(background) => format!("{}:{background}", self.source),
            None => self.source.clone(),
        }
    }
}

/// What a run takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Only label files of these splits (those without a split pass).
    pub splits: Option<Vec<Split>>,
    /// Sources (or background sources) left out.
    pub exclude_sources: Vec<String>,
    /// Take paediatric films too.
    pub include_pediatric: bool,
}

impl Selection {
    /// Training: the train and validation splits, never test.
    pub fn training(exclude_sources: Vec<String>, include_pediatric: bool) -> Selection {
        Selection {
            splits: Some(vec![Split::Train, Split::Validation]),
            exclude_sources,
            include_pediatric,
        }
    }

    /// Evaluation: the given splits (all when `None`; the CLI names one).
    pub fn evaluation(
        splits: Option<Vec<Split>>,
        exclude_sources: Vec<String>,
        include_pediatric: bool,
    ) -> Selection {
        Selection {
            splits,
            exclude_sources,
            include_pediatric,
        }
    }

    pub fn admits(&self, p: &Provenance) -> bool {
        if let (Some(splits), Some(split)) = (&self.splits, p.split)
            && !splits.contains(&split)
        {
            return false;
        }
        let excluded = |s: &str| self.exclude_sources.iter().any(|e| e == s);
        if excluded(&p.source) || p.background_source.as_deref().is_some_and(excluded) {
            return false;
        }
        self.include_pediatric || !p.is_pediatric()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance(json: &str) -> Provenance {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn training_never_takes_the_test_split() {
        let s = Selection::training(vec!["figures".into()], false);
        assert!(s.admits(&provenance(r#"{"source": "nih", "split": "train"}"#)));
        assert!(s.admits(&provenance(r#"{"source": "nih", "split": "validation"}"#)));
        assert!(!s.admits(&provenance(r#"{"source": "nih", "split": "test"}"#)));
        assert!(s.admits(&provenance("{}")), "generated data has no split");
        assert!(!s.admits(&provenance(r#"{"source": "figures", "split": "train"}"#)));
        assert!(!s.admits(&provenance(
            r#"{"source": "inserted", "background_source": "figures"}"#
        )));
        assert!(!s.admits(&provenance(r#"{"source": "k", "pediatric": "yes"}"#)));
    }

    #[test]
    fn real_and_groups() {
        assert!(!provenance("{}").is_real());
        let inserted = provenance(r#"{"source": "inserted", "background_source": "nih"}"#);
        assert!(!inserted.is_real());
        assert_eq!(inserted.group(), "inserted:nih");
        assert!(provenance(r#"{"source": "openist"}"#).is_real());
    }
}
