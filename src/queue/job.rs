//! One job: the record kept in sled for each stored instance, and the
//! states it moves through from reception to delivery of its results.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Priority, ResultKind};

use super::progress::{DestinationProgress, DestinationState};

/// Where a job is in its life. Stored as part of [`Job`]; the state is the
/// only source of truth about what remains to be done for an instance.
///
/// ```text
/// received → analysing → analysed → delivering → delivered
///    ↑           │                       │
///    └─(retry)───┤                       └─→ dead-letter(reason)
///                ├─→ not-analysed(reason)
///                └─→ dead-letter(reason)   (analysis failed every attempt)
/// ```
///
/// `analysed` is final when no destination takes the results; otherwise
/// the job is `delivering` until every destination has them (`delivered`)
/// or one refused them for good (`dead-letter`, until `chestnode retry`
/// puts it back to `delivering`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum JobState {
    /// Stored durably and waiting for an analysis worker.
    #[serde(alias = "pending")]
    Received,
    /// A worker is analysing it (back to received if the node stops first).
    Analysing,
    /// Analysed; the findings are in the results tree, and no destination
    /// takes the result objects.
    Analysed,
    /// Analysed; result objects are on their way to at least one
    /// destination (see [`Job::deliveries`]).
    Delivering,
    /// Analysed, and every destination has every result object.
    Delivered,
    /// Deliberately not analysed, e.g. a lateral view or a CT slice.
    NotAnalysed { reason: String },
    /// Given up: analysis failed on every attempt, or a destination
    /// refused the results permanently.
    #[serde(alias = "failed")]
    DeadLetter { reason: String },
}

impl JobState {
    /// Short name used in `status`, metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            JobState::Received => "received",
            JobState::Analysing => "analysing",
            JobState::Analysed => "analysed",
            JobState::Delivering => "delivering",
            JobState::Delivered => "delivered",
            JobState::NotAnalysed { .. } => "not-analysed",
            JobState::DeadLetter { .. } => "dead-letter",
        }
    }

    /// Whether analysis is still to come (the backlog that backpressure
    /// limits).
    pub fn awaits_analysis(&self) -> bool {
        matches!(self, JobState::Received | JobState::Analysing)
    }
}

/// The sled record for one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub sop_instance_uid: String,
    #[serde(flatten)]
    pub state: JobState,
    pub priority: Priority,
    /// Analysis attempts so far.
    pub attempts: u32,
    /// Seconds since the Unix epoch: when the instance was stored.
    pub created_at: u64,
    /// Last change of state.
    pub updated_at: u64,
    /// A received job waiting to be retried is not claimed before this time.
    #[serde(default)]
    pub not_before: u64,
    /// When analysis ended with findings or a reason not to analyse; not
    /// set for a job given up on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysed_at: Option<u64>,
    /// When the last destination confirmed the last result object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<u64>,
    /// The result objects made from the image (SR, overlay, presentation
    /// state), as written to the data directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<PublishedObject>,
    /// Delivery of the result objects, by destination name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deliveries: BTreeMap<String, DestinationProgress>,
}

/// One result object made for a job, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedObject {
    pub kind: ResultKind,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// Relative to the data directory.
    pub path: PathBuf,
}

impl Job {
    pub fn received(id: u64, sop_instance_uid: String, priority: Priority, now: u64) -> Job {
        Job {
            id,
            sop_instance_uid,
            state: JobState::Received,
            priority,
            attempts: 0,
            created_at: now,
            updated_at: now,
            not_before: 0,
            analysed_at: None,
            delivered_at: None,
            published: Vec::new(),
            deliveries: BTreeMap::new(),
        }
    }

    /// The worker analysed the image: `analysed`, or `delivering` at once
    /// if its results are already queued for destinations.
    pub fn finish_analysis(&mut self, now: u64) {
        self.state = JobState::Analysed;
        self.analysed_at = Some(now);
        self.updated_at = now;
        self.settle_delivery_state(now);
    }

    /// Once analysed: the state its deliveries put it in. Called after the
    /// analysis finishes and after every change in a delivery; leaves jobs
    /// still awaiting analysis, or not analysed, as they are.
    pub fn settle_delivery_state(&mut self, now: u64) {
        let past_analysis = matches!(
            self.state,
            JobState::Analysed
                | JobState::Delivering
                | JobState::Delivered
                | JobState::DeadLetter { .. }
        );
        // A job given up on in analysis has no analysed_at; its deliveries
        // (from a partial earlier attempt) do not revive it.
        if !past_analysis || self.analysed_at.is_none() {
            return;
        }
        let states: Vec<(&String, DestinationState)> = self
            .deliveries
            .iter()
            .map(|(name, progress)| (name, progress.state()))
            .collect();
        let next = if states.is_empty() {
            JobState::Analysed
        } else if states
            .iter()
            .any(|(_, s)| *s == DestinationState::Delivering)
        {
            JobState::Delivering
        } else if let Some((name, _)) = states
            .iter()
            .find(|(_, s)| *s == DestinationState::DeadLetter)
        {
            let why = self.deliveries[*name]
                .last_error
                .as_deref()
                .unwrap_or("refused");
            JobState::DeadLetter {
                reason: format!("delivery to {name}: {why}"),
            }
        } else {
            JobState::Delivered
        };
        if next == JobState::Delivered && self.state != JobState::Delivered {
            self.delivered_at = Some(now);
        }
        if next != self.state {
            self.state = next;
            self.updated_at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Priority;

    #[test]
    fn records_written_before_the_lifecycle_had_its_names_still_read() {
        let old = r#"{"id":3,"sop_instance_uid":"1.2","state":"pending","priority":"high","attempts":0,"created_at":1,"updated_at":1}"#;
        let job: Job = serde_json::from_str(old).unwrap();
        assert_eq!(job.state, JobState::Received);
        let old = r#"{"id":4,"sop_instance_uid":"1.3","state":"failed","reason":"x","priority":"low","attempts":3,"created_at":1,"updated_at":1}"#;
        let job: Job = serde_json::from_str(old).unwrap();
        assert_eq!(job.state, JobState::DeadLetter { reason: "x".into() });
        assert!(job.deliveries.is_empty());
    }

    #[test]
    fn labels_are_the_documented_names() {
        let json = serde_json::to_value(Job::received(1, "1.2".into(), Priority::Low, 5)).unwrap();
        assert_eq!(json["state"], "received");
        assert_eq!(
            JobState::DeadLetter { reason: "x".into() }.label(),
            "dead-letter"
        );
    }
}
