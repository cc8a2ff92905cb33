//! Consistent UID replacement for a cohort.
//!
//! De-identified objects must still point at each other: an SR's
//! Referenced SOP Instance UID, a GSPS's Referenced Image Sequence, the
//! Study and Series Instance UIDs shared by a study. Replacing each UID by
//! a keyed hash does that without a lookup table: the same UID under the
//! same cohort key always gives the same new UID, and without the key the
//! new UID says nothing about the old one.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The root under which the standard's own UIDs live (SOP classes,
/// transfer syntaxes, coding schemes, well-known frames of reference).
const STANDARD_ROOT: &str = "1.2.840.10008.";

/// Replaces UIDs consistently: same input UID + same key ⇒ same output,
/// on every object of a cohort, so references stay valid.
///
/// The output is `2.25.<decimal of the first 128 bits of
/// HMAC-SHA256(key, uid)>` (PS3.5 B.2, at most 44 characters). Standard
/// UIDs (`1.2.840.10008.*`) are returned unchanged.
pub struct UidRemapper {
    key: [u8; 32],
}

impl UidRemapper {
    /// A remapper for one cohort's key.
    pub fn new(key: [u8; 32]) -> Self {
        UidRemapper { key }
    }

    /// The new UID for `uid` (padding stripped first).
    pub fn remap(&self, uid: &str) -> String {
        let uid = trim_uid(uid);
        if is_standard(uid) || uid.is_empty() {
            return uid.to_owned();
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        mac.update(uid.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        format!("2.25.{}", u128::from_be_bytes(first))
    }
}

impl std::fmt::Debug for UidRemapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UidRemapper { key: <hidden> }")
    }
}

impl Drop for UidRemapper {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// A UID without the NUL/space padding of its encoded form.
pub(super) fn trim_uid(uid: &str) -> &str {
    uid.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// Whether `uid` is one of the standard's own UIDs, which carry no
/// information about the patient and must not change.
pub(super) fn is_standard(uid: &str) -> bool {
    trim_uid(uid).starts_with(STANDARD_ROOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_uid_different_key_different_uid() {
        let a = UidRemapper::new([7; 32]);
        let b = UidRemapper::new([8; 32]);
        let uid = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.1";
        assert_eq!(a.remap(uid), a.remap(&format!("{uid}\0")));
        assert_ne!(a.remap(uid), b.remap(uid));
        assert_ne!(a.remap(uid), a.remap("1.2.3"));
        let new = a.remap(uid);
        assert!(new.starts_with("2.25.") && new.len() <= 64, "{new}");
        assert!(new[5..].chars().all(|c| c.is_ascii_digit()));
        assert!(!new[5..].starts_with('0') || new.len() == 6);
    }

    #[test]
    fn standard_uids_stay() {
        let r = UidRemapper::new([1; 32]);
        for uid in ["1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.1.2.1"] {
            assert_eq!(r.remap(uid), uid);
        }
    }
}
