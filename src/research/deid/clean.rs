//! The Clean Descriptors option: free text (Study Description, Protocol
//! Name, Image Comments, …) is kept for research, but without what
//! identifies the patient.
//!
//! Before anything is changed, the names and identifiers present in the
//! object are gathered (patient name parts, patient and other IDs,
//! physician and operator names, institution names and addresses,
//! accession number). Cleaning then removes those from the text, together
//! with date-like strings and runs of five or more digits (record numbers,
//! phone numbers). Words are matched case-insensitively and whole, so a
//! patient called "Chest" would lose the word from a description, but
//! "CHESTER" stays.

use dicom_core::{Tag, VR, header::Header, value::Value};
use dicom_object::InMemDicomObject;

/// Attributes whose values are identifying phrases (beyond every PN).
const IDENTIFYING: [Tag; 10] = [
    Tag(0x0010, 0x0020), // Patient ID
    Tag(0x0010, 0x1000), // Other Patient IDs
    Tag(0x0010, 0x0021), // Issuer of Patient ID
    Tag(0x0008, 0x0050), // Accession Number
    Tag(0x0008, 0x0080), // Institution Name
    Tag(0x0008, 0x0081), // Institution Address
    Tag(0x0008, 0x1040), // Institutional Department Name
    Tag(0x0010, 0x1040), // Patient's Address
    Tag(0x0010, 0x2154), // Patient's Telephone Numbers
    Tag(0x0038, 0x0010), // Admission ID
];

/// Identifying words and phrases found in one object.
#[derive(Debug, Default)]
pub(super) struct Identifiers {
    /// Upper-cased whole values, removed wherever they occur.
    phrases: Vec<String>,
    /// Upper-cased single words (name parts), removed as whole words.
    words: Vec<String>,
}

impl Identifiers {
    /// Gathers identifiers from `object` and every nested item.
    pub(super) fn gather(object: &InMemDicomObject) -> Self {
        let mut found = Identifiers::default();
        found.visit(object);
        found.phrases.sort_by_key(|p| std::cmp::Reverse(p.len()));
        found.phrases.dedup();
        found.words.sort();
        found.words.dedup();
        found
    }

    fn visit(&mut self, object: &InMemDicomObject) {
        for element in object.iter() {
            match element.value() {
                Value::Sequence(seq) => {
                    for item in seq.items() {
                        self.visit(item);
                    }
                }
                Value::Primitive(_) => {
                    let is_pn = element.vr() == VR::PN;
                    if !is_pn && !IDENTIFYING.contains(&element.tag()) {
                        continue;
                    }
                    let Ok(values) = element.value().to_multi_str() else {
                        continue;
                    };
                    for value in values.iter() {
                        self.add(value, is_pn);
                    }
                }
                Value::PixelSequence(_) => {}
            }
        }
    }

    fn add(&mut self, value: &str, is_pn: bool) {
        let upper = value.trim().to_uppercase();
        if is_pn {
            for word in upper
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().count() >= 2)
            {
                self.words.push(word.to_owned());
            }
            let plain = upper.split('^').filter(|p| !p.is_empty()).count() > 0;
            if plain {
                self.phrases.push(upper.replace('^', " ").trim().to_owned());
            }
        } else if upper.chars().filter(|c| c.is_alphanumeric()).count() >= 2 {
            self.phrases.push(upper);
        }
    }

    /// `text` without the identifiers, date-like strings and long digit
    /// runs, whitespace collapsed.
    pub(super) fn clean(&self, text: &str) -> String {
        // Match on an upper-case copy and keep the original's characters,
        // so the kept text keeps its case.
        let upper_chars: Vec<char> = text.to_uppercase().chars().collect();
        let mut original: Vec<char> = text.chars().collect();
        if upper_chars.len() != original.len() {
            // case mapping changed the length (rare scripts): keep upper case
            original = upper_chars.clone();
        }
        let mut keep = vec![true; original.len()];
        for phrase in self.phrases.iter().filter(|p| !p.is_empty()) {
            mark_occurrences(&upper_chars, phrase, false, &mut keep);
        }
        for word in &self.words {
            mark_occurrences(&upper_chars, word, true, &mut keep);
        }
        mark_numbers(&upper_chars, &mut keep);
        let kept: String = original
            .iter()
            .zip(&keep)
            .map(|(c, k)| if *k { *c } else { ' ' })
            .collect();
        kept.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Marks every occurrence of `needle` in `haystack` as not kept; `whole`
/// requires non-alphanumeric characters (or the ends) around it.
fn mark_occurrences(haystack: &[char], needle: &str, whole: bool, keep: &mut [bool]) {
    let needle: Vec<char> = needle.chars().collect();
    if needle.is_empty() || needle.len() > haystack.len() {
        return;
    }
    for start in 0..=haystack.len() - needle.len() {
        let end = start + needle.len();
        if haystack[start..end] != needle[..] {
            continue;
        }
        let boundary_before = start == 0 || !haystack[start - 1].is_alphanumeric();
        let boundary_after = end == haystack.len() || !haystack[end].is_alphanumeric();
        if !whole || boundary_before && boundary_after {
            keep[start..end].iter_mut().for_each(|k| *k = false);
        }
    }
}

/// Marks runs of five or more digits and date-like strings: three digit
/// groups joined by `/`, `-` or `.` that read as a date (`2020-01-02`,
/// `1/2/2020`, `02.01.20`), but not a version such as `1.2.0`.
fn mark_numbers(text: &[char], keep: &mut [bool]) {
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut groups = vec![0usize];
        while i < text.len() {
            let c = text[i];
            if c.is_ascii_digit() {
                *groups.last_mut().expect("one group at least") += 1;
            } else if matches!(c, '/' | '-' | '.')
                && text.get(i + 1).is_some_and(|n| n.is_ascii_digit())
            {
                groups.push(0);
            } else {
                break;
            }
            i += 1;
        }
        let long_run = groups.iter().any(|&g| g >= 5);
        let date_like = groups.len() == 3
            && (1..=2).contains(&groups[1])
            && (groups[0] == 4 && (1..=2).contains(&groups[2])
                || (1..=2).contains(&groups[0]) && matches!(groups[2], 2 | 4));
        if long_run || date_like {
            keep[start..i].iter_mut().for_each(|k| *k = false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue};

    #[test]
    fn removes_names_ids_dates_and_numbers() {
        let object = InMemDicomObject::from_element_iter([
            DataElement::new(
                Tag(0x0010, 0x0010),
                VR::PN,
                PrimitiveValue::from("Doe^Jane"),
            ),
            DataElement::new(
                Tag(0x0010, 0x0020),
                VR::LO,
                PrimitiveValue::from("MRN-884211"),
            ),
            DataElement::new(
                Tag(0x0008, 0x0080),
                VR::LO,
                PrimitiveValue::from("St Elsewhere"),
            ),
        ]);
        let ids = Identifiers::gather(&object);
        let cleaned = ids.clean("Chest PA jane DOE mrn-884211 St Elsewhere 12/03/2021 tel 5551234");
        assert_eq!(cleaned, "Chest PA tel");
        assert_eq!(ids.clean("Chester janet"), "Chester janet");
        assert_eq!(ids.clean("CT 1.5 mm"), "CT 1.5 mm");
        assert_eq!(ids.clean("v1.2.0 on 1.2.20 and 2020.1.2"), "v1.2.0 on and");
    }
}
