//! One analysis job: the record kept in sled for each stored instance, and
//! the states it moves through.

use serde::{Deserialize, Serialize};

/// Where a job is in its life. Stored as part of [`Job`]; the state is the
/// only source of truth about what remains to be done for an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum JobState {
    /// Stored durably and waiting for the analysis worker.
    Pending,
    /// A worker is analysing it (back to pending if the node stops first).
    Analysing,
    /// Analysed; the findings are in the results tree.
    Analysed,
    /// Deliberately not analysed, e.g. a lateral view or a CT slice.
    NotAnalysed { reason: String },
    /// Analysis failed on every attempt.
    Failed { reason: String },
}

impl JobState {
    /// Short name used in `status` and logs.
    pub fn label(&self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Analysing => "analysing",
            JobState::Analysed => "analysed",
            JobState::NotAnalysed { .. } => "not-analysed",
            JobState::Failed { .. } => "failed",
        }
    }
}

/// How urgently the sender asked for this instance (C-STORE Priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    /// Maps the DIMSE Priority field (0 medium, 1 high, 2 low).
    pub fn from_dimse(value: u16) -> Priority {
        match value {
            1 => Priority::High,
            2 => Priority::Low,
            _ => Priority::Medium,
        }
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
    pub attempts: u32,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub updated_at: u64,
    /// A pending job waiting to be retried is not claimed before this time.
    #[serde(default)]
    pub not_before: u64,
}

impl Job {
    pub fn pending(id: u64, sop_instance_uid: String, priority: Priority, now: u64) -> Job {
        Job {
            id,
            sop_instance_uid,
            state: JobState::Pending,
            priority,
            attempts: 0,
            created_at: now,
            updated_at: now,
            not_before: 0,
        }
    }
}
