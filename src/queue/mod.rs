//! The analysis queue: one [`Job`] per stored instance, kept in a sled tree
//! keyed by a monotonically increasing id, so iteration order is arrival
//! order, and moved through its states by the worker:
//!
//! ```text
//! received → analysing → analysed → delivering → delivered
//!               │                       └──→ dead-letter(reason)
//!               ├──→ not-analysed(reason) | dead-letter(reason)
//!               └──(error, attempts left)──→ received, not before a delay
//! ```
//!
//! (see [`JobState`]; the delivering half is kept by the outbox through
//! [`progress`]). The retry delay grows fourfold with each attempt, so a
//! transient problem (a file briefly unreadable) gets time to clear, and a
//! permanent one reaches `dead-letter` without spinning.
//!
//! Workers take urgent work first ([`Priority`], from the C-STORE Priority
//! field or the calling AE title), but a job gains one priority level for
//! every `priority.aging_secs` it waits, so routine work is never starved.
//!
//! This module holds the rules; the records live in the ledger, which
//! applies them ([`crate::ledger::JobQueue`]). Jobs are created only inside
//! the store's commit transaction ([`crate::ledger::Ledger::insert_with_job`]),
//! together with the instance record, so an instance is never acknowledged
//! without its job. A job's result (findings and timings) is written in the
//! same transaction as its final state.

mod job;
mod progress;
mod signal;

pub use crate::config::{Priority, PriorityConfig};
pub use job::{Job, JobState, PublishedObject};
pub use progress::{DeliveryUpdate, DestinationProgress, DestinationState};
pub use signal::WorkSignal;

/// Analysis attempts before a job is marked failed.
pub const MAX_ATTEMPTS: u32 = 3;
