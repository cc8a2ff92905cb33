//! The images reserved for independent evaluation, which no training,
//! validation, threshold or tuning step may see.
//!
//! `shared/data/reserved-for-evaluation.txt` names NIH ChestX-ray14 files
//! one a line, and whole repositories in a comment line
//! (`# Whole repositories reserved: owner/a, owner/b.`). An image is
//! refused when its repository is reserved, when its NIH file name is
//! listed, or when it belongs to an NIH patient (the first eight digits of
//! the file name) who has a listed image: another film of the same
//! patient would leak that patient into training.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;

/// The reserved list, parsed.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    names: BTreeSet<String>,
    patients: BTreeSet<String>,
    repositories: BTreeSet<String>,
}

impl Reserved {
    pub fn load(path: &Path) -> anyhow::Result<Reserved> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the reserved list {}", path.display()))?;
        Ok(Reserved::parse(&text))
    }

    pub fn parse(text: &str) -> Reserved {
        let mut reserved = Reserved::default();
        for line in text.lines().map(str::trim) {
            if let Some(comment) = line.strip_prefix('#') {
                if let Some((_, list)) = comment.split_once("repositories reserved:") {
                    reserved.repositories.extend(
                        list.split(',')
                            .map(|r| r.trim().trim_end_matches('.').to_ascii_lowercase())
                            .filter(|r| r.contains('/')),
                    );
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            if let Some(patient) = nih_patient_of(line) {
                reserved.patients.insert(patient.to_string());
            }
            reserved.names.insert(line.to_ascii_lowercase());
        }
        reserved
    }

    /// How many file names the list holds.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.repositories.is_empty()
    }

    /// Why an image may not be used, if it may not: `repository` is
    /// `owner/name`, `path` the image's path in it, `nih_patient` its NIH
    /// patient ID when known.
    pub fn refuses(
        &self,
        repository: &str,
        path: &str,
        nih_patient: Option<&str>,
    ) -> Option<String> {
        if self
            .repositories
            .contains(&repository.trim().to_ascii_lowercase())
        {
            return Some(format!("repository {repository} is reserved"));
        }
        let file = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        if self.names.contains(&file) {
            return Some(format!("{file} is reserved"));
        }
        let patient = nih_patient
            .map(|p| {
                // `1304`, `nih:1304` and `00001304` are one patient.
                let digits = p.trim_start_matches("nih:");
                format!("{digits:0>8}")
            })
            .or_else(|| nih_patient_of(&file).map(str::to_string));
        match patient {
            Some(p) if self.patients.contains(&p) => {
                Some(format!("NIH patient {p} has a reserved image"))
            }
            _ => None,
        }
    }
}

/// The patient of an NIH ChestX-ray14 file name (`00001234_005.png`).
fn nih_patient_of(name: &str) -> Option<&str> {
    let (patient, rest) = name.split_once('_')?;
    let follow_up = rest.split('.').next()?;
    (patient.len() == 8
        && patient.bytes().all(|b| b.is_ascii_digit())
        && follow_up.len() == 3
        && follow_up.bytes().all(|b| b.is_ascii_digit()))
    .then_some(patient)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "# Images reserved for independent evaluation.\n\
        # Whole repositories reserved: jrzech/reproduce-chexnet, agchung/Actualmed-COVID-chestxray-dataset.\n\
        # NIH ChestX-ray14 file names:\n00000075_000.png\n00000100_002.png\n";

    #[test]
    fn names_patients_and_repositories_are_refused() {
        let r = Reserved::parse(LIST);
        assert_eq!(r.len(), 2);
        assert!(r.refuses("a/b", "x/00000075_000.png", None).is_some());
        // Another film of a patient with a reserved one.
        assert!(r.refuses("a/b", "images/00000100_000.png", None).is_some());
        assert!(r.refuses("a/b", "renamed.jpg", Some("00000100")).is_some());
        // The corpus CSV writes NIH patient IDs without leading zeros.
        assert!(r.refuses("a/b", "renamed.jpg", Some("100")).is_some());
        assert!(r.refuses("a/b", "renamed.jpg", Some("nih:100")).is_some());
        assert!(
            r.refuses("AGCHUNG/Actualmed-COVID-chestxray-dataset", "any.png", None)
                .is_some()
        );
        assert!(
            r.refuses("jrzech/reproduce-chexnet", "x.png", None)
                .is_some()
        );
        assert!(r.refuses("a/b", "images/00000101_000.png", None).is_none());
        assert!(r.refuses("a/b", "person1_virus_6.jpeg", None).is_none());
    }

    #[test]
    fn the_shared_list_parses_when_present() {
        let path = std::path::Path::new("../shared/data/reserved-for-evaluation.txt");
        if let Ok(r) = Reserved::load(path) {
            assert!(r.len() > 100, "{}", r.len());
            assert!(
                r.refuses("jrzech/reproduce-chexnet", "a.png", None)
                    .is_some()
            );
        }
    }
}
