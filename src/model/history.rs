//! `[history]` in the site file: the gateway's own record of what it read and decided
//! (40号令: at least 30 days), for `hazgate export`, the local API's trends and
//! `hazgate tune`.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::problems::At;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// The directory of history segments (created if missing), e.g.
    /// `/var/lib/hazgate/history`.
    pub path: PathBuf,
    /// Segments wholly older than this are deleted.
    #[serde(default = "default_days")]
    pub max_age_days: u32,
    /// The history's disk budget: the oldest segments go first when it is exceeded.
    #[serde(default = "default_mib")]
    pub max_mib: u64,
    /// A reading is kept when it moved more than this share of the point's span since
    /// the last one kept (0: every change); every point is kept in full each
    /// `snapshot_s` whatever it did.
    #[serde(default)]
    pub deadband_pct: f64,
    #[serde(default = "default_snapshot")]
    pub snapshot_s: u64,
    /// Readings are gathered this long and written as one compressed, fsynced chunk:
    /// a power cut loses at most this much.
    #[serde(default = "default_commit")]
    pub commit_s: u64,
}

fn default_days() -> u32 {
    30
}

fn default_mib() -> u64 {
    1024
}

fn default_snapshot() -> u64 {
    60
}

fn default_commit() -> u64 {
    5
}

impl HistoryConfig {
    pub fn commit_window(&self) -> Duration {
        Duration::from_secs(self.commit_s)
    }

    pub fn max_age(&self) -> Duration {
        Duration::from_secs(u64::from(self.max_age_days) * 86_400)
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_mib.saturating_mul(1 << 20)
    }

    pub fn check(&self, p: &mut At<'_>) {
        if self.path.as_os_str().is_empty() {
            p.push(
                "path",
                "must name a directory, e.g. /var/lib/hazgate/history",
            );
        }
        if self.max_age_days < 30 {
            p.push(
                "max_age_days",
                format!(
                    "{}: at least 30 — major-hazard monitoring data is kept 30 days or more (原国家安全监管总局第40号令)",
                    self.max_age_days
                ),
            );
        }
        if self.max_mib < 16 {
            p.push("max_mib", format!("{}: at least 16", self.max_mib));
        }
        if !(self.deadband_pct.is_finite() && (0.0..50.0).contains(&self.deadband_pct)) {
            p.push("deadband_pct", "must be from 0 to under 50 (e.g. 0.5)");
        }
        if !(1..=3600).contains(&self.snapshot_s) {
            p.push("snapshot_s", "must be from 1 to 3600 (e.g. 60)");
        }
        if !(1..=60).contains(&self.commit_s) {
            p.push("commit_s", "must be from 1 to 60 (e.g. 5)");
        }
    }
}
