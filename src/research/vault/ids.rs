//! Research ID formats: the hospital chooses how its research IDs look
//! ("YCU-######"), and the vault draws each ID at random from that shape.
//!
//! The IDs replace Patient ID (LO, at most 64 characters, no backslash) in
//! exported objects, so a format is limited to characters that are safe in
//! that element, in file names and in shell commands. Each run of `#` is a
//! run of random decimal digits; every other character is kept as written.

use std::fmt;

use anyhow::{bail, ensure};
use serde::{Deserialize, Serialize};

use super::random;

/// The longest research ID a format may produce: the limit of Patient ID.
const MAX_LEN: usize = 64;

/// The most random digits a format may hold (the count of IDs must fit
/// in a `u64`).
const MAX_DIGITS: usize = 18;

/// The shape of the research IDs a vault hands out, e.g. `"YCU-######"`:
/// each `#` is a random digit, every other character is literal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResearchIdFormat {
    pattern: String,
}

impl ResearchIdFormat {
    /// Checks a pattern: 1 to 64 characters of ASCII letters, digits,
    /// `-`, `_`, `.` and `#`, with 1 to 18 `#`.
    pub fn parse(pattern: &str) -> anyhow::Result<Self> {
        ensure!(!pattern.is_empty(), "the research ID format is empty");
        ensure!(
            pattern.len() <= MAX_LEN,
            "the research ID format {pattern:?} is longer than {MAX_LEN} characters (the limit of Patient ID)"
        );
        if let Some(bad) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '#')))
        {
            bail!(
                "the research ID format {pattern:?} has the character {bad:?}; use letters, digits, '-', '_', '.' and '#' for a random digit"
            );
        }
        let digits = pattern.bytes().filter(|&b| b == b'#').count();
        ensure!(
            digits > 0,
            "the research ID format {pattern:?} has no '#': each '#' is a random digit, and there must be at least one"
        );
        ensure!(
            digits <= MAX_DIGITS,
            "the research ID format {pattern:?} has {digits} '#'; at most {MAX_DIGITS} are allowed"
        );
        Ok(Self {
            pattern: pattern.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// How many distinct IDs the format can produce (10 to the number of `#`).
    pub fn capacity(&self) -> u64 {
        10u64.pow(self.digits() as u32)
    }

    /// Whether `id` has this format's shape.
    pub fn matches(&self, id: &str) -> bool {
        id.len() == self.pattern.len()
            && self.pattern.bytes().zip(id.bytes()).all(|(p, c)| match p {
                b'#' => c.is_ascii_digit(),
                _ => p == c,
            })
    }

    /// A random ID of this format, from the operating system's generator.
    pub(super) fn random(&self) -> anyhow::Result<String> {
        self.nth(random::below(self.capacity())?)
    }

    /// The `n`th ID of this format (`n` below [`capacity`](Self::capacity)),
    /// its digits filled in order from the left.
    pub(super) fn nth(&self, n: u64) -> anyhow::Result<String> {
        ensure!(n < self.capacity(), "research ID number out of range");
        let digits = format!("{n:0width$}", width = self.digits());
        let mut digits = digits.chars();
        Ok(self
            .pattern
            .chars()
            .map(|c| match c {
                '#' => digits.next().expect("one digit per '#'"),
                other => other,
            })
            .collect())
    }

    fn digits(&self) -> usize {
        self.pattern.bytes().filter(|&b| b == b'#').count()
    }
}

impl Default for ResearchIdFormat {
    fn default() -> Self {
        Self::parse("RID-######").expect("the default format is valid")
    }
}

impl fmt::Display for ResearchIdFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl std::str::FromStr for ResearchIdFormat {
    type Err = anyhow::Error;

    fn from_str(pattern: &str) -> anyhow::Result<Self> {
        Self::parse(pattern)
    }
}

impl TryFrom<String> for ResearchIdFormat {
    type Error = anyhow::Error;

    fn try_from(pattern: String) -> anyhow::Result<Self> {
        Self::parse(&pattern)
    }
}

impl From<ResearchIdFormat> for String {
    fn from(format: ResearchIdFormat) -> String {
        format.pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_patterns_and_refuses_bad_ones() {
        assert_eq!(ResearchIdFormat::default().pattern(), "RID-######");
        assert_eq!(
            ResearchIdFormat::parse("YCU-######").unwrap().capacity(),
            1_000_000
        );
        assert_eq!(ResearchIdFormat::parse("T-#").unwrap().capacity(), 10);
        for bad in [
            "",
            "RID-",
            "RID ###",
            "R\\##",
            "Ä-###",
            &"#".repeat(19),
            &"A".repeat(65),
        ] {
            assert!(ResearchIdFormat::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn random_ids_have_the_shape() {
        let format = ResearchIdFormat::parse("A-##.x##").unwrap();
        for _ in 0..100 {
            let id = format.random().unwrap();
            assert!(format.matches(&id), "{id}");
        }
        assert_eq!(format.nth(7).unwrap(), "A-00.x07");
        assert!(!format.matches("A-00.x0"));
        assert!(!format.matches("B-00.x07"));
        assert!(format.nth(10_000).is_err());
    }

    #[test]
    fn serde_validates() {
        let format: ResearchIdFormat = serde_json::from_str("\"X-###\"").unwrap();
        assert_eq!(serde_json::to_string(&format).unwrap(), "\"X-###\"");
        assert!(serde_json::from_str::<ResearchIdFormat>("\"X-\"").is_err());
    }
}
