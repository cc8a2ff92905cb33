//! What a viewer's words mean in the research protocol: finding codes
//! (SNOMED CT, DCM) and free text ("RUL nodule", "pneumonia?") mapped to
//! [`FindingType`], and certainty words or percentages to [`Certainty`].
//!
//! Codes are matched first; then the code meaning or text by keyword, so
//! a local code with the meaning "Lung nodule" is still a nodule. What
//! matches nothing is "other", with the words kept as its text.

use super::content::Code;
use crate::research::annotations::{Certainty, FindingType};

/// Known codes: (value, scheme, finding).
const CODES: &[(&str, &str, FindingType)] = &[
    ("27925004", "SCT", FindingType::NoduleMass),   // Nodule
    ("786838002", "SCT", FindingType::NoduleMass),  // Pulmonary nodule
    ("4147007", "SCT", FindingType::NoduleMass),    // Mass
    ("126713003", "SCT", FindingType::NoduleMass),  // Neoplasm of lung / lung mass
    ("56717001", "SCT", FindingType::Tuberculosis), // Tuberculosis
    ("154283005", "SCT", FindingType::Tuberculosis), // Pulmonary tuberculosis
    ("233604007", "SCT", FindingType::Pneumonia),   // Pneumonia
    ("95436008", "SCT", FindingType::Pneumonia),    // Lung consolidation
    ("309502009", "SCT", FindingType::Mediastinal), // Mediastinal mass
    ("13645005", "SCT", FindingType::Copd),         // COPD
    ("87433001", "SCT", FindingType::Copd),         // Pulmonary emphysema
    ("17621005", "SCT", FindingType::Normal),       // Normal
];

/// Keywords, in the order they are tried (more specific first).
const KEYWORDS: &[(&str, FindingType)] = &[
    ("mediastin", FindingType::Mediastinal),
    ("tubercul", FindingType::Tuberculosis),
    ("nodule", FindingType::NoduleMass),
    ("mass", FindingType::NoduleMass),
    ("pneumonia", FindingType::Pneumonia),
    ("consolidation", FindingType::Pneumonia),
    ("emphysema", FindingType::Copd),
    ("copd", FindingType::Copd),
    ("chronic obstructive", FindingType::Copd),
];

/// The finding a code names; "other" (with its meaning) when unknown.
pub fn finding_of_code(code: &Code) -> (FindingType, Option<String>) {
    if let Some((_, _, finding)) = CODES.iter().find(|(v, s, _)| code.is(v, s)) {
        return (*finding, None);
    }
    let words = if code.meaning.is_empty() {
        &code.value
    } else {
        &code.meaning
    };
    finding_of_text(words)
}

/// The finding free text names, by keyword; "other" with the text when
/// none matches.
pub fn finding_of_text(words: &str) -> (FindingType, Option<String>) {
    let lower = words.to_lowercase();
    match KEYWORDS.iter().find(|(k, _)| lower.contains(k)) {
        Some((_, finding)) => (*finding, None),
        None => (
            FindingType::Other,
            Some(words.trim().chars().take(200).collect()),
        ),
    }
}

/// A certainty named in words ("definite", "probable", "possible", or a
/// likelihood such as "high"/"low"), if any.
pub fn certainty_of_text(words: &str) -> Option<Certainty> {
    let lower = words.to_lowercase();
    let tokens: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect();
    // Word beginnings, so "unlikely" is not "likely" and "follow" not "low".
    let has = |list: &[&str]| tokens.iter().any(|t| list.iter().any(|w| t.starts_with(w)));
    if lower.contains('?')
        || has(&[
            "unlikely",
            "possibl",
            "low",
            "indeterminate",
            "equivocal",
            "suspic",
        ])
    {
        Some(Certainty::Possible)
    } else if has(&["probabl", "likely", "moderate", "medium"]) {
        Some(Certainty::Probable)
    } else if has(&["definite", "certain", "high", "confirmed"]) {
        Some(Certainty::Definite)
    } else {
        None
    }
}

/// A certainty given as a percentage.
pub fn certainty_of_percent(percent: f64) -> Certainty {
    if percent >= 90.0 {
        Certainty::Definite
    } else if percent >= 50.0 {
        Certainty::Probable
    } else {
        Certainty::Possible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(value: &str, scheme: &str, meaning: &str) -> Code {
        Code {
            value: value.into(),
            scheme: scheme.into(),
            meaning: meaning.into(),
        }
    }

    #[test]
    fn codes_then_keywords_then_other() {
        assert_eq!(
            finding_of_code(&code("27925004", "SRT", "Nodule")).0,
            FindingType::NoduleMass
        );
        assert_eq!(
            finding_of_code(&code("L-1", "99LOCAL", "Right upper lobe consolidation")).0,
            FindingType::Pneumonia
        );
        assert_eq!(
            finding_of_code(&code("X", "99LOCAL", "Pneumothorax")),
            (FindingType::Other, Some("Pneumothorax".into()))
        );
        assert_eq!(
            finding_of_text("mediastinal mass").0,
            FindingType::Mediastinal
        );
        assert_eq!(finding_of_text("COPD").0, FindingType::Copd);
    }

    #[test]
    fn certainty_words_and_percentages() {
        assert_eq!(certainty_of_text("Unlikely"), Some(Certainty::Possible));
        assert_eq!(certainty_of_text("likely"), Some(Certainty::Probable));
        assert_eq!(certainty_of_text("Definite"), Some(Certainty::Definite));
        assert_eq!(certainty_of_text("nodule, follow up"), None);
        assert_eq!(certainty_of_text("pneumonia?"), Some(Certainty::Possible));
        assert_eq!(certainty_of_percent(95.0), Certainty::Definite);
        assert_eq!(certainty_of_percent(10.0), Certainty::Possible);
    }
}
