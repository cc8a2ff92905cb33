//! One delivery: the sled record kept for each (destination, result SOP
//! Instance UID), and the states it moves through.
//!
//! ```text
//! pending ──(C-STORE success or warning)──→ delivered
//!    │ └──(transient failure)──→ pending, not before a growing delay
//!    └──(permanent failure)──→ dead-letter ──(chestnode retry)──→ pending
//! ```
//!
//! A record is never deleted: a delivered one is what stops a re-analysed
//! image from being sent to the same destination twice.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ResultKind;

/// Where a delivery is in its life; the only source of truth about what
/// remains to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DeliveryState {
    /// Waiting to be sent, not before this time (milliseconds since the
    /// Unix epoch; 0: at once).
    Pending { not_before_ms: u64 },
    /// The destination answered the C-STORE with success or a warning.
    Delivered {
        /// Seconds since the Unix epoch.
        at: u64,
    },
    /// Failed permanently; waits for `chestnode retry`.
    DeadLetter { reason: String },
}

impl DeliveryState {
    /// Short name used in `status` and logs.
    pub fn label(&self) -> &'static str {
        match self {
            DeliveryState::Pending { .. } => "pending",
            DeliveryState::Delivered { .. } => "delivered",
            DeliveryState::DeadLetter { .. } => "dead-letter",
        }
    }
}

/// The sled record for one result object bound for one destination.
/// Identifiers only: no patient data is kept here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The destination's configured name.
    pub destination: String,
    pub kind: ResultKind,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// Transfer syntax of the stored file.
    pub transfer_syntax_uid: String,
    /// The Part-10 file, relative to the data directory.
    pub path: PathBuf,
    /// The analysed image this result is about.
    pub source_sop_instance_uid: String,
    /// The job of the analysed image (absent in records made before jobs
    /// tracked their deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// Attempts made so far, successful or not.
    pub attempts: u32,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    #[serde(default)]
    pub last_attempt_at: Option<u64>,
    #[serde(flatten)]
    pub state: DeliveryState,
    /// Why the last attempt failed (kept after a later success, for the
    /// record).
    #[serde(default)]
    pub last_error: Option<String>,
}

impl Delivery {
    /// Whether this is pending and may be sent at `now_ms`.
    pub fn is_due(&self, now_ms: u64) -> bool {
        matches!(self.state, DeliveryState::Pending { not_before_ms } if not_before_ms <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_as_flat_json() {
        let delivery = Delivery {
            destination: "pacs".into(),
            kind: ResultKind::Sr,
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.88.34".into(),
            sop_instance_uid: "1.2.3.4".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            path: PathBuf::from("results/1.2.3.4.dcm"),
            source_sop_instance_uid: "1.2.3".into(),
            job_id: Some(7),
            attempts: 0,
            created_at: 100,
            last_attempt_at: None,
            state: DeliveryState::Pending { not_before_ms: 5 },
            last_error: None,
        };
        let json: serde_json::Value = serde_json::to_value(&delivery).unwrap();
        assert_eq!(json["state"], "pending");
        assert_eq!(json["not_before_ms"], 5);
        assert_eq!(json["kind"], "sr");
        let back: Delivery = serde_json::from_value(json).unwrap();
        assert_eq!(back, delivery);
        assert!(back.is_due(5) && !back.is_due(4));
    }
}
