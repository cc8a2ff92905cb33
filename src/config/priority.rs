//! How urgently an image is analysed, and the rules that decide it.
//!
//! A modality can ask for urgency in the C-STORE Priority field, but many
//! send MEDIUM whatever the case; so the site can also fix the priority by
//! calling AE title (an emergency department's CR room, say, or a
//! research archive that can wait). The calling AE title wins over the
//! field. Workers then take higher priorities first, with ageing so that
//! routine work is never starved (see `JobQueue::claim_next`).
//!
//! The levels live with the configuration, which assigns them by AE title;
//! the queue re-exports them for the stages that schedule by them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How urgently this instance should be analysed.
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

    /// Rank for ordering: 0 low, 1 medium, 2 high.
    pub fn rank(self) -> u64 {
        self as u64
    }
}

/// The `[priority]` section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PriorityConfig {
    /// Use the C-STORE Priority field; if false, every image not matched
    /// by `calling_ae_titles` is medium.
    pub honour_dimse_priority: bool,
    /// Fixed priority by calling AE title (trailing spaces ignored).
    pub calling_ae_titles: BTreeMap<String, Priority>,
    /// A waiting image gains one level every this many seconds. 0: never
    /// (strict priority, which can starve low-priority work).
    pub aging_secs: u64,
}

impl Default for PriorityConfig {
    fn default() -> Self {
        PriorityConfig {
            honour_dimse_priority: true,
            calling_ae_titles: BTreeMap::new(),
            aging_secs: 300,
        }
    }
}

impl PriorityConfig {
    /// The priority of an instance from `calling_ae_title` whose C-STORE
    /// carried `dimse_priority`.
    pub fn priority_of(&self, calling_ae_title: &str, dimse_priority: u16) -> Priority {
        if let Some(fixed) = self.calling_ae_titles.get(calling_ae_title.trim()) {
            return *fixed;
        }
        if self.honour_dimse_priority {
            Priority::from_dimse(dimse_priority)
        } else {
            Priority::Medium
        }
    }

    /// The ageing step, as `JobQueue::claim_next` takes it.
    pub fn aging(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.aging_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calling_ae_title_overrides_the_dimse_field() {
        let config: PriorityConfig =
            toml::from_str("calling_ae_titles = { ED_CR = \"high\", RESEARCH = \"low\" }").unwrap();
        assert_eq!(config.priority_of("ED_CR ", 2), Priority::High);
        assert_eq!(config.priority_of("RESEARCH", 1), Priority::Low);
        assert_eq!(config.priority_of("WARD_DX", 1), Priority::High);
        assert_eq!(config.priority_of("WARD_DX", 0), Priority::Medium);
        let ignoring = PriorityConfig {
            honour_dimse_priority: false,
            ..config
        };
        assert_eq!(ignoring.priority_of("WARD_DX", 1), Priority::Medium);
    }
}
