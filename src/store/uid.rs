//! UIDs that arrive over the wire, checked before they may name a file.
//!
//! A [`ValidUid`] can only be built by [`ValidUid::parse`], so any path the
//! store derives from one is made of digits and dots alone: no `/`, no `..`,
//! nothing longer than the standard's 64 characters. This is the only gate
//! between network input and the file system.

use std::fmt;

/// A UID that satisfies PS3.5 §9.1: 1–64 characters, components of digits
/// separated by single dots, no leading zero in a multi-digit component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValidUid(String);

/// Why a UID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    #[error("UID is empty")]
    Empty,
    #[error("UID is longer than 64 characters")]
    TooLong,
    #[error("UID contains a character other than digits and dots")]
    IllegalCharacter,
    #[error("UID has an empty component")]
    EmptyComponent,
    #[error("UID component has a leading zero")]
    LeadingZero,
}

impl ValidUid {
    /// Validates a UID as found in a DICOM value: trailing NUL or space
    /// padding is removed first, anything else must be exact.
    pub fn parse(raw: &str) -> Result<ValidUid, UidError> {
        let uid = raw.trim_end_matches(['\0', ' ']);
        if uid.is_empty() {
            return Err(UidError::Empty);
        }
        if uid.len() > 64 {
            return Err(UidError::TooLong);
        }
        if !uid.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(UidError::IllegalCharacter);
        }
        for component in uid.split('.') {
            if component.is_empty() {
                return Err(UidError::EmptyComponent);
            }
            if component.len() > 1 && component.starts_with('0') {
                return Err(UidError::LeadingZero);
            }
        }
        Ok(ValidUid(uid.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ValidUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ValidUid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_uids_and_strips_padding() {
        let uid = ValidUid::parse("1.2.840.10008.5.1.4.1.1.1\0").unwrap();
        assert_eq!(uid.as_str(), "1.2.840.10008.5.1.4.1.1.1");
        assert!(ValidUid::parse("2.25.0").is_ok());
        assert!(ValidUid::parse(&format!("1.{}", "9".repeat(62))).is_ok());
    }

    #[test]
    fn refuses_anything_that_could_escape_a_directory() {
        for bad in [
            "../../etc/passwd",
            "1.2/3",
            "..",
            ".",
            "1..2",
            "1.2.",
            ".1.2",
        ] {
            assert!(ValidUid::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(ValidUid::parse("1.2.a"), Err(UidError::IllegalCharacter));
        assert_eq!(ValidUid::parse("1.2\\3"), Err(UidError::IllegalCharacter));
        assert_eq!(ValidUid::parse(""), Err(UidError::Empty));
        assert_eq!(ValidUid::parse("\0"), Err(UidError::Empty));
        assert_eq!(ValidUid::parse(&"1".repeat(65)), Err(UidError::TooLong));
        assert_eq!(ValidUid::parse("1.02"), Err(UidError::LeadingZero));
    }
}
