//! PS3.15 Table E.1-1 as data: which action the Basic Application Level
//! Confidentiality Profile takes on each attribute, and how the options we
//! support change it.
//!
//! The table is kept verbatim (every column, combined actions included) in
//! `annex_e.tsv`, generated from a machine-readable copy of the standard
//! (docs/data-sources.md), so that a new edition of the standard is a data
//! change, not a code change. This file only decides what a row means for
//! one set of options.
//!
//! Combined actions ("the action depends on the attribute's type in the
//! IOD") are resolved without an IOD table by one rule:
//! - `Z/D`, `X/Z`, `X/Z/D` → Z (keep the attribute, empty: valid for Type 2
//!   and safe for Type 3), except that date/time VRs and sequences under
//!   `Z/D` and `X/Z/D` get D: those dates are the Type 1 dates of SR and
//!   enhanced objects (Content Date/Time) that must stay filled, and an
//!   empty sequence is invalid where the sequence is Type 1C or 3
//!   (Referenced Performed Procedure Step Sequence), so the sequence is
//!   kept with its items de-identified;
//! - `X/D` → X;
//! - `X/Z/U*` (reference sequences) → keep the sequence and replace the
//!   UIDs inside it, which keeps references valid.
//!
//! Patient Name and Patient ID are not decided here: the caller sets them
//! to the research ID.

use std::collections::HashMap;
use std::sync::LazyLock;

use dicom_core::{Tag, VR};

use super::DeidOptions;

/// What to do with one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// X: remove the attribute.
    Remove,
    /// Z: keep it with a zero-length value.
    Empty,
    /// D: replace with a non-identifying dummy of the same VR.
    Dummy,
    /// K: keep (sequences are still walked, UIDs still replaced).
    Keep,
    /// C: keep a cleaned value (dates shifted, text cleaned).
    Clean,
    /// U: replace UIDs consistently.
    Uid,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub(super) struct Row {
    /// The tag as in the table, `X` for a pattern digit (`60XX3000`).
    pub(super) pattern: &'static str,
    /// The attribute's name in the table (tests report by it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) name: &'static str,
    pub(super) basic: &'static str,
    pub(super) long_modif_dates: Option<&'static str>,
    pub(super) patient_chars: Option<&'static str>,
    pub(super) device_id: Option<&'static str>,
    pub(super) clean_desc: Option<&'static str>,
}

impl Row {
    /// A concrete tag for this row; patterns take group 5000/6000.
    pub(super) fn example_tag(&self) -> Tag {
        let hex = self.pattern.replace('X', "0");
        let group = u16::from_str_radix(&hex[..4], 16).expect("checked when parsed");
        let element = u16::from_str_radix(&hex[4..], 16).expect("checked when parsed");
        Tag(group, element)
    }

    /// Whether the row names a whole range (`50XXXXXX`) or a pattern.
    pub(super) fn is_pattern(&self) -> bool {
        self.pattern.contains('X')
    }

    fn matches(&self, tag: Tag) -> bool {
        let text = format!("{:04X}{:04X}", tag.0, tag.1);
        text.chars()
            .zip(self.pattern.chars())
            .all(|(t, p)| p == 'X' || p == t)
            // repeating groups are even and 50xx/60xx run to 1E
            && (!self.pattern.starts_with("50XX") && !self.pattern.starts_with("60XX")
                || tag.0.is_multiple_of(2) && tag.0 & 0x00FF <= 0x1E)
    }

    /// The action for this row under `options`, for an element of `vr`.
    ///
    /// An enabled option whose column has an entry overrides the basic
    /// action; where several do, K wins over C.
    pub(super) fn action(&self, options: &DeidOptions, vr: VR) -> Action {
        let columns = [
            (
                options.retain_longitudinal_modified_dates,
                self.long_modif_dates,
            ),
            (options.retain_patient_characteristics, self.patient_chars),
            (options.retain_device_identity, self.device_id),
            (options.clean_descriptors, self.clean_desc),
        ];
        let enabled: Vec<&str> = columns
            .iter()
            .filter(|(on, _)| *on)
            .filter_map(|(_, code)| *code)
            .collect();
        if enabled.contains(&"K") {
            return Action::Keep;
        }
        if enabled.contains(&"C") {
            return Action::Clean;
        }
        let stays_filled = matches!(vr, VR::DA | VR::DT | VR::TM | VR::SQ);
        match self.basic {
            "X" | "X/D" => Action::Remove,
            "Z" | "X/Z" => Action::Empty,
            "Z/D" | "X/Z/D" if stays_filled => Action::Dummy,
            "Z/D" | "X/Z/D" => Action::Empty,
            "D" => Action::Dummy,
            "K" => Action::Keep,
            "C" => Action::Clean,
            "U" | "X/Z/U*" => Action::Uid,
            // unknown codes are treated as the safest one
            _ => Action::Remove,
        }
    }
}

/// The parsed table.
pub(super) struct Profile {
    rows: Vec<Row>,
    exact: HashMap<Tag, usize>,
    patterns: Vec<usize>,
}

static PROFILE: LazyLock<Profile> = LazyLock::new(|| {
    Profile::parse(include_str!("annex_e.tsv")).expect("annex_e.tsv is well-formed")
});

/// The table, parsed once.
pub(super) fn profile() -> &'static Profile {
    &PROFILE
}

impl Profile {
    fn parse(text: &'static str) -> Result<Self, String> {
        let mut rows = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&'static str> = line.split('\t').collect();
            if cells.len() != 12 {
                return Err(format!("line {}: {} cells", number + 1, cells.len()));
            }
            let pattern = cells[0];
            if pattern.len() != 8
                || !pattern
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase() || c == 'X')
            {
                return Err(format!("line {}: bad tag {pattern}", number + 1));
            }
            let column = |i: usize| Some(cells[i]).filter(|c| *c != "-");
            rows.push(Row {
                pattern,
                name: cells[11],
                basic: cells[1],
                long_modif_dates: column(2),
                patient_chars: column(3),
                device_id: column(4),
                clean_desc: column(5),
            });
        }
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if row.is_pattern() {
                patterns.push(i);
            } else {
                exact.insert(row.example_tag(), i);
            }
        }
        Ok(Profile {
            rows,
            exact,
            patterns,
        })
    }

    /// Every row, in tag order.
    #[cfg(test)]
    pub(super) fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The row that governs `tag`, if the table lists it.
    pub(super) fn row(&self, tag: Tag) -> Option<&Row> {
        if let Some(&i) = self.exact.get(&tag) {
            return Some(&self.rows[i]);
        }
        self.patterns
            .iter()
            .map(|&i| &self.rows[i])
            .find(|row| row.matches(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_whole() {
        let profile = profile();
        assert!(profile.rows().len() > 600, "{}", profile.rows().len());
        let name = profile.row(Tag(0x0010, 0x0010)).unwrap();
        assert_eq!(name.basic, "Z");
        assert_eq!(name.name, "Patient's Name");
        assert!(profile.row(Tag(0x6002, 0x3000)).is_some());
        assert!(profile.row(Tag(0x6003, 0x3000)).is_none());
        assert!(profile.row(Tag(0x6000, 0x0010)).is_none());
        assert!(profile.row(Tag(0x5010, 0x1234)).is_some());
        assert!(profile.row(Tag(0x0028, 0x0010)).is_none());
    }

    #[test]
    fn options_override_the_basic_action() {
        let on = DeidOptions::default();
        let off = DeidOptions {
            retain_longitudinal_modified_dates: false,
            retain_patient_characteristics: false,
            clean_descriptors: false,
            retain_device_identity: false,
            clean_pixel_regions: Vec::new(),
        };
        let row = |g, e| profile().row(Tag(g, e)).unwrap();
        // Study Date: Z, C under modified dates
        assert_eq!(row(0x0008, 0x0020).action(&on, VR::DA), Action::Clean);
        assert_eq!(row(0x0008, 0x0020).action(&off, VR::DA), Action::Empty);
        // Patient's Age: X, K under patient characteristics
        assert_eq!(row(0x0010, 0x1010).action(&on, VR::AS), Action::Keep);
        assert_eq!(row(0x0010, 0x1010).action(&off, VR::AS), Action::Remove);
        // Content Date Z/D stays filled; Content Creator's Name Z/D empties
        assert_eq!(row(0x0008, 0x0023).action(&off, VR::DA), Action::Dummy);
        assert_eq!(row(0x0070, 0x0084).action(&off, VR::PN), Action::Empty);
        // Device Serial Number X/Z/D → Z unless device identity is kept
        assert_eq!(row(0x0018, 0x1000).action(&on, VR::LO), Action::Empty);
        // Referenced Image Sequence X/Z/U*
        assert_eq!(row(0x0008, 0x1140).action(&on, VR::SQ), Action::Uid);
    }
}
