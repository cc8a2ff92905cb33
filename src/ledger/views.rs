//! What the ledger shows to monitoring without walking its trees: the
//! totals `chestnode status` prints and the index probe of `/health`.
//! Jobs, deliveries and incidents are read through their own handles
//! ([`super::JobQueue`], [`super::Deliveries`], [`super::IncidentLog`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Ledger;

/// Whether the index answers reads (for `/health`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexCheck {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Ledger {
    /// Instances in the index, and the bytes of their files (kept as
    /// instances come and go).
    pub fn instance_totals(&self) -> (u64, u64) {
        self.counts.instances()
    }

    /// Jobs by state label (kept as jobs change).
    pub fn jobs_by_state(&self) -> BTreeMap<String, u64> {
        self.counts.jobs_by_state()
    }

    /// Jobs received or being analysed: the backlog the store limits.
    pub fn unfinished_jobs(&self) -> u64 {
        self.counts.unfinished_jobs()
    }

    /// Reads the newest job record: the cheapest read that proves the index
    /// is open and answering.
    pub fn check_index(&self) -> IndexCheck {
        match self.jobs.last() {
            Ok(_) => IndexCheck {
                ok: true,
                error: None,
            },
            Err(error) => IndexCheck {
                ok: false,
                error: Some(error.to_string()),
            },
        }
    }
}
