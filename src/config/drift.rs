//! `[drift]`: drift detection on a schedule in `orgvend serve`.

use serde::Deserialize;

/// `[drift]`: how often `orgvend serve` compares the target branch with the organization
/// and updates the drift issue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// Seconds between two drift runs over all replicas; 0 turns it off. Default 3600.
    #[serde(default = "default_drift_interval")]
    pub interval_seconds: u64,
    /// The label of the one drift issue on the subaccounts project. Default `orgvend-drift`.
    #[serde(default = "default_drift_label")]
    pub label: String,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            interval_seconds: default_drift_interval(),
            label: default_drift_label(),
        }
    }
}

fn default_drift_interval() -> u64 {
    3600
}
fn default_drift_label() -> String {
    "orgvend-drift".into()
}
