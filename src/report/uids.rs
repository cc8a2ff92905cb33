//! Deterministic UIDs for result objects.
//!
//! Analysing the same image with the same model must produce the same SR,
//! overlay and presentation state UIDs, so a PACS that receives a result
//! twice (after a crash between sending and recording, say) de-duplicates
//! it instead of showing two. A result UID is therefore a hash of what
//! defines the result — source SOP Instance UID, model name and version,
//! object kind — written either under the site's UID root or as a
//! `2.25.` UUID-derived UID (PS3.5 §B.2) when no root is configured.

use sha2::{Digest, Sha256};

use crate::config::ResultKind;
use crate::store::ValidUid;

/// Which UID of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UidRole {
    SopInstance,
    Series,
    /// The Device Observer UID of the analysing device (model).
    Device,
    /// The Tracking Unique Identifier of the n-th measurement group.
    Tracking(u32),
}

impl UidRole {
    fn tag(self) -> String {
        match self {
            UidRole::SopInstance => "instance".into(),
            UidRole::Series => "series".into(),
            UidRole::Device => "device".into(),
            UidRole::Tracking(n) => format!("tracking-{n}"),
        }
    }
}

/// Makes result UIDs under an optional organisational root.
#[derive(Debug, Clone)]
pub struct ResultUids {
    root: Option<ValidUid>,
}

impl ResultUids {
    /// `root` must leave room for at least 20 digits of hash (≤ 43 characters).
    pub fn new(root: Option<ValidUid>) -> anyhow::Result<ResultUids> {
        if let Some(root) = &root {
            anyhow::ensure!(
                root.as_str().len() <= 43,
                "UID root {root} is longer than 43 characters"
            );
        }
        Ok(ResultUids { root })
    }

    /// The UID of `role` for the `kind` object derived from `source` by
    /// `model_version` (name and version). Series UIDs depend on the
    /// source's study, so results of one study share one series per kind.
    pub fn derive(
        &self,
        source_study: &str,
        source_instance: &str,
        model_version: &str,
        kind: ResultKind,
        role: UidRole,
    ) -> String {
        let subject = match role {
            UidRole::Series => source_study,
            UidRole::Device => "",
            UidRole::SopInstance | UidRole::Tracking(_) => source_instance,
        };
        let role = role.tag();
        let mut hasher = Sha256::new();
        for part in [subject, model_version, kind.key(), role.as_str()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let mut high = [0u8; 16];
        high.copy_from_slice(&digest[..16]);
        let number = u128::from_be_bytes(high);
        match &self.root {
            None => {
                // A UUID-shaped 128-bit number (version 8, RFC 9562 variant).
                let uuid = (number & !(0xF << 76) & !(0x3 << 62)) | (0x8 << 76) | (0x2 << 62);
                format!("2.25.{uuid}")
            }
            Some(root) => {
                let room = 64 - root.as_str().len() - 1;
                let digits = number.to_string();
                let digits = digits[..digits.len().min(room)].trim_start_matches('0');
                format!("{root}.{}", if digits.is_empty() { "1" } else { digits })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUDY: &str = "1.2.826.0.1.3680043.8.498.1";
    const SOURCE: &str = "1.2.826.0.1.3680043.8.498.42";

    #[test]
    fn the_same_inputs_give_the_same_valid_uid() {
        for root in [
            None,
            Some(ValidUid::parse("1.2.826.0.1.3680043.10.1234").unwrap()),
        ] {
            let uids = ResultUids::new(root).unwrap();
            let a = uids.derive(
                STUDY,
                SOURCE,
                "model 1",
                ResultKind::Sr,
                UidRole::SopInstance,
            );
            let b = uids.derive(
                STUDY,
                SOURCE,
                "model 1",
                ResultKind::Sr,
                UidRole::SopInstance,
            );
            assert_eq!(a, b);
            assert!(ValidUid::parse(&a).is_ok(), "{a}");
            assert!(a.len() <= 64);
        }
    }

    #[test]
    fn kinds_roles_models_and_sources_get_different_uids() {
        let uids = ResultUids::new(None).unwrap();
        let base =
            |kind, role, model: &str, source: &str| uids.derive(STUDY, source, model, kind, role);
        let mut all = vec![
            base(ResultKind::Sr, UidRole::SopInstance, "m 1", SOURCE),
            base(ResultKind::Sc, UidRole::SopInstance, "m 1", SOURCE),
            base(ResultKind::Gsps, UidRole::SopInstance, "m 1", SOURCE),
            base(ResultKind::Sr, UidRole::Series, "m 1", SOURCE),
            base(ResultKind::Sr, UidRole::SopInstance, "m 2", SOURCE),
            base(ResultKind::Sr, UidRole::SopInstance, "m 1", "1.2.3"),
        ];
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
    }

    #[test]
    fn series_uids_are_shared_within_a_study() {
        let uids = ResultUids::new(None).unwrap();
        let one = uids.derive(STUDY, "1.2.3.1", "m 1", ResultKind::Sc, UidRole::Series);
        let two = uids.derive(STUDY, "1.2.3.2", "m 1", ResultKind::Sc, UidRole::Series);
        assert_eq!(one, two);
    }

    #[test]
    fn a_root_too_long_is_refused() {
        let long = ValidUid::parse(&format!("1.{}", "2".repeat(50))).unwrap();
        assert!(ResultUids::new(Some(long)).is_err());
    }
}
