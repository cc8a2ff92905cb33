//! The incident log: the most recent errors, kept in sled so that
//! `chestnode status` can show them after the fact, even across restarts.
//!
//! Messages must not contain patient data; callers pass UIDs and reasons
//! only.

use serde::{Deserialize, Serialize};

use crate::clock::unix_now;

/// Name of the sled tree holding incidents.
const INCIDENTS_TREE: &str = "incidents";

/// How many incidents are kept; older ones are dropped.
const KEEP: usize = 100;

/// One recorded error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Which stage, e.g. `scp` or `store`.
    pub stage: String,
    pub message: String,
}

#[derive(Clone)]
pub struct IncidentLog {
    db: sled::Db,
    tree: sled::Tree,
}

impl IncidentLog {
    pub(super) fn open(db: &sled::Db) -> sled::Result<IncidentLog> {
        Ok(IncidentLog {
            tree: db.open_tree(INCIDENTS_TREE)?,
            db: db.clone(),
        })
    }

    /// Records an incident. Failures to record are logged, never raised:
    /// the log must not turn one error into two.
    pub fn record(&self, stage: &str, message: impl Into<String>) {
        let incident = Incident {
            at: unix_now(),
            stage: stage.to_owned(),
            message: message.into(),
        };
        let result = (|| -> anyhow::Result<()> {
            let id = self.db.generate_id()?;
            self.tree
                .insert(id.to_be_bytes(), serde_json::to_vec(&incident)?)?;
            while self.tree.len() > KEEP {
                self.tree.pop_min()?;
            }
            Ok(())
        })();
        if let Err(error) = result {
            tracing::warn!(%error, "could not record an incident");
        }
    }

    /// The newest `limit` incidents, newest first.
    pub fn latest(&self, limit: usize) -> Vec<Incident> {
        self.tree
            .iter()
            .rev()
            .filter_map(|entry| {
                entry
                    .ok()
                    .and_then(|(_, v)| serde_json::from_slice(&v).ok())
            })
            .take(limit)
            .collect()
    }
}
