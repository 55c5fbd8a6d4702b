//! Threshold changes made remotely ([`Overrides`], beside the site file). A failure to
//! read or write them is loud — a log line, and the command's answer — and never stops
//! judging. The judge's own state is kept by [`super::persist`].

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use tracing::{error, info};

use super::engine::{Command, Engine, Event, ThresholdChange};
use crate::{model::alarm::AlarmSettingsFile, reading::Timestamp};

/// Why the overrides file could not be used: a disk problem or a broken file, never a
/// threshold the guardrails refuse (that is checked when the changes are applied).
#[derive(Debug, thiserror::Error)]
pub enum OverridesError {
    #[error("cannot read the threshold overrides {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the threshold overrides {path} are not valid JSON: {source}")]
    Invalid {
        path: String,
        source: serde_json::Error,
    },
}

/// Alarm-setting changes made remotely, persisted beside the site file so they survive a
/// restart: `{ "GT-101": { "h": 18.0 }, … }`, merged over the site file's settings.
pub struct Overrides {
    pub(super) path: PathBuf,
    points: BTreeMap<String, AlarmSettingsFile>,
}

impl Overrides {
    /// The overrides file of a site file: `{file}.overrides.json`.
    pub fn beside(config: &Path) -> PathBuf {
        crate::model::beside(config, ".overrides.json")
    }

    pub(super) fn load(path: &Path) -> Result<Self, OverridesError> {
        let shown = || path.display().to_string();
        let points = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| OverridesError::Invalid {
                    path: shown(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(OverridesError::Read {
                    path: shown(),
                    source,
                })
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            points,
        })
    }

    pub(super) fn record(&mut self, changes: &[ThresholdChange]) -> std::io::Result<()> {
        for c in changes {
            let entry = self.points.entry(c.point.clone()).or_default();
            *entry = entry.merged_with(&c.set);
        }
        // A new file renamed over the old one, the directory fsynced: never torn.
        let bytes = serde_json::to_vec_pretty(&self.points).map_err(std::io::Error::other)?;
        crate::durable::replace(&self.path, &bytes, crate::durable::Access::Default)
    }
}

impl Overrides {
    /// Applies the file's changes over the site file's settings, as one thresholds
    /// command (the same guardrails as a remote change).
    pub(super) fn apply(&self, engine: &mut Engine, now: Timestamp, out: &mut Vec<Event>) {
        if self.points.is_empty() {
            return;
        }
        let changes: Vec<ThresholdChange> = self
            .points
            .iter()
            .map(|(point, set)| ThresholdChange {
                point: point.clone(),
                set: set.clone(),
            })
            .collect();
        let cmd = Command::Thresholds {
            changes,
            by: "overrides-file".into(),
        };
        match engine.on_command(&cmd, now, out) {
            Ok(()) => {
                info!(points = self.points.len(), path = %self.path.display(), "threshold overrides applied")
            }
            Err(e) => {
                error!(error = %e, path = %self.path.display(), "threshold overrides rejected; running with the site file's settings")
            }
        }
    }
}
