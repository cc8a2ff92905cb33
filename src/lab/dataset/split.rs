//! Train / validation / test assignment by patient.
//!
//! A split drawn per image would put two films of one patient on both
//! sides, and a model that recognises the patient would look better than
//! it is. So the split is a function of the patient alone: a SHA-256 of
//! the seed and the patient key, read as a number in [0, 1). The same
//! patient always lands in the same split, whatever else the corpus
//! holds, and adding images never moves old ones. Drawn per source with
//! the same fractions, every source is represented in every split
//! (stratified by source), so results can be reported per source.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where an image may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// Learnt from.
    Train,
    /// Early stopping and operating points.
    Validation,
    /// Never touched until the model is final.
    Test,
}

impl Split {
    pub fn key(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<Split> {
        match text {
            "train" => Some(Split::Train),
            "validation" => Some(Split::Validation),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// Shares of patients held out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    pub validation: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> SplitFractions {
        SplitFractions {
            validation: 0.15,
            test: 0.15,
        }
    }
}

/// The split of `patient` (a key unique across sources, e.g.
/// `nih:00001234` or `openist:img017`).
pub fn assign_split(patient: &str, fractions: SplitFractions, seed: u64) -> Split {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(patient.as_bytes());
    let digest = hasher.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let u = (u64::from_le_bytes(head) >> 11) as f64 / (1u64 << 53) as f64;
    if u < fractions.test {
        Split::Test
    } else if u < fractions.test + fractions.validation {
        Split::Validation
    } else {
        Split::Train
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patient_always_lands_in_one_split() {
        let f = SplitFractions::default();
        for i in 0..50 {
            let key = format!("nih:{i:08}");
            assert_eq!(assign_split(&key, f, 3), assign_split(&key, f, 3));
        }
    }

    #[test]
    fn fractions_are_respected_roughly() {
        let f = SplitFractions {
            validation: 0.2,
            test: 0.1,
        };
        let mut counts = [0usize; 3];
        for i in 0..10_000 {
            match assign_split(&format!("p{i}"), f, 1) {
                Split::Train => counts[0] += 1,
                Split::Validation => counts[1] += 1,
                Split::Test => counts[2] += 1,
            }
        }
        assert!((1800..2200).contains(&counts[1]), "{counts:?}");
        assert!((850..1150).contains(&counts[2]), "{counts:?}");
        let none = SplitFractions {
            validation: 0.0,
            test: 0.0,
        };
        assert_eq!(assign_split("x", none, 1), Split::Train);
    }

    #[test]
    fn keys_round_trip() {
        for s in [Split::Train, Split::Validation, Split::Test] {
            assert_eq!(Split::parse(s.key()), Some(s));
        }
        assert_eq!(Split::parse("holdout"), None);
    }
}
