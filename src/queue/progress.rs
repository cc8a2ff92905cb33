//! How far a job's result objects have got with each destination: the
//! per-destination half of the job lifecycle.
//!
//! The outbox owns the delivery records (one per destination and result
//! object) and changes them; each change also updates the job's
//! [`DestinationProgress`] in the same sled transaction, so the job's
//! state never disagrees with its deliveries, even across a crash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::job::Job;

/// Where one destination is with a job's results, or with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationState {
    /// At least one object is still to be sent.
    Delivering,
    /// The destination confirmed every object.
    Delivered,
    /// Nothing is left to send, and at least one object was refused for
    /// good.
    DeadLetter,
}

impl DestinationState {
    /// Short name used in `status`.
    pub fn label(self) -> &'static str {
        match self {
            DestinationState::Delivering => "delivering",
            DestinationState::Delivered => "delivered",
            DestinationState::DeadLetter => "dead-letter",
        }
    }
}

/// One destination's share of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationProgress {
    /// Derived from `objects`; kept for readers of the record.
    pub state: DestinationState,
    /// Each result object for this destination, by SOP Instance UID.
    pub objects: BTreeMap<String, DestinationState>,
    /// C-STORE attempts made, all objects together.
    pub attempts: u32,
    /// Why the latest failed attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Seconds since the Unix epoch.
    pub updated_at: u64,
}

impl DestinationProgress {
    /// Delivering while any object is; else dead-letter if any was
    /// refused; else delivered.
    pub fn state(&self) -> DestinationState {
        let any = |wanted| self.objects.values().any(|s| *s == wanted);
        if any(DestinationState::Delivering) {
            DestinationState::Delivering
        } else if any(DestinationState::DeadLetter) {
            DestinationState::DeadLetter
        } else {
            DestinationState::Delivered
        }
    }
}

/// One change in the delivery of one object to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate<'a> {
    pub destination: &'a str,
    pub sop_instance_uid: &'a str,
    pub state: DestinationState,
    /// Whether this change is the outcome of a C-STORE attempt.
    pub attempted: bool,
    pub error: Option<&'a str>,
}

impl Job {
    /// Records a delivery change and moves the job to the state its
    /// deliveries now put it in. Idempotent: recording the same object in
    /// the same state twice changes nothing but the attempt count.
    pub fn record_delivery(&mut self, update: &DeliveryUpdate, now: u64) {
        let progress = self
            .deliveries
            .entry(update.destination.to_owned())
            .or_insert_with(|| DestinationProgress {
                state: DestinationState::Delivering,
                objects: BTreeMap::new(),
                attempts: 0,
                last_error: None,
                updated_at: now,
            });
        progress
            .objects
            .insert(update.sop_instance_uid.to_owned(), update.state);
        if update.attempted {
            progress.attempts += 1;
        }
        if let Some(error) = update.error {
            progress.last_error = Some(error.to_owned());
        }
        progress.state = progress.state();
        progress.updated_at = now;
        self.settle_delivery_state(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{JobState, Priority};

    fn update<'a>(
        destination: &'a str,
        uid: &'a str,
        state: DestinationState,
        error: Option<&'a str>,
    ) -> DeliveryUpdate<'a> {
        DeliveryUpdate {
            destination,
            sop_instance_uid: uid,
            state,
            attempted: state != DestinationState::Delivering || error.is_some(),
            error,
        }
    }

    fn analysed_job() -> Job {
        let mut job = Job::received(1, "1.2".into(), Priority::Medium, 0);
        job.state = JobState::Analysing;
        for (destination, uid) in [("pacs", "9.1"), ("pacs", "9.2"), ("viewer", "9.3")] {
            job.record_delivery(
                &update(destination, uid, DestinationState::Delivering, None),
                1,
            );
        }
        assert_eq!(job.state, JobState::Analysing, "analysis not finished yet");
        job.finish_analysis(2);
        job
    }

    #[test]
    fn a_job_is_delivered_when_every_destination_has_every_object() {
        let mut job = analysed_job();
        assert_eq!(job.state, JobState::Delivering);
        job.record_delivery(&update("pacs", "9.1", DestinationState::Delivered, None), 3);
        job.record_delivery(
            &update("viewer", "9.3", DestinationState::Delivered, None),
            3,
        );
        assert_eq!(job.state, JobState::Delivering);
        assert_eq!(job.deliveries["viewer"].state, DestinationState::Delivered);
        assert_eq!(job.deliveries["pacs"].state, DestinationState::Delivering);
        job.record_delivery(&update("pacs", "9.2", DestinationState::Delivered, None), 4);
        assert_eq!(job.state, JobState::Delivered);
        assert_eq!(job.delivered_at, Some(4));
        assert_eq!(job.deliveries["pacs"].attempts, 2);
    }

    #[test]
    fn a_refusal_dead_letters_the_job_once_nothing_else_is_in_flight() {
        let mut job = analysed_job();
        let refused = update(
            "viewer",
            "9.3",
            DestinationState::DeadLetter,
            Some("0xA900"),
        );
        job.record_delivery(&refused, 3);
        assert_eq!(job.state, JobState::Delivering, "pacs still to go");
        job.record_delivery(&update("pacs", "9.1", DestinationState::Delivered, None), 4);
        job.record_delivery(&update("pacs", "9.2", DestinationState::Delivered, None), 4);
        assert_eq!(
            job.state,
            JobState::DeadLetter {
                reason: "delivery to viewer: 0xA900".into()
            }
        );
        // `chestnode retry`: back to delivering, then delivered.
        job.record_delivery(
            &update("viewer", "9.3", DestinationState::Delivering, None),
            5,
        );
        assert_eq!(job.state, JobState::Delivering);
        job.record_delivery(
            &update("viewer", "9.3", DestinationState::Delivered, None),
            6,
        );
        assert_eq!(job.state, JobState::Delivered);
    }

    #[test]
    fn without_destinations_analysed_is_final() {
        let mut job = Job::received(1, "1.2".into(), Priority::Medium, 0);
        job.finish_analysis(1);
        assert_eq!(job.state, JobState::Analysed);
    }
}
