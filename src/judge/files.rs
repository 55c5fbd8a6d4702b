//! The judge's files: threshold changes made remotely ([`Overrides`], beside the site
//! file) and its durable state ([`Persist`], over `judge::state`). A failure to read
//! or write either is loud — a log line, a metric, `/healthz` — and never stops judging.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use tracing::{error, info};

use super::{
    engine::{Command, Engine, Event, ThresholdChange},
    state::{LoadedState, StateFile},
};
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

/// Saves the engine's state whenever it changed; a failure is loud (log once per new
/// error, metric, `/healthz`) and retried at the next change.
pub(super) struct Persist {
    file: StateFile,
    problem: Arc<Mutex<Option<String>>>,
}

impl Persist {
    pub(super) fn save(&self, engine: &Engine) {
        let result = self.file.save(&engine.save());
        let mut problem = self.problem.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                if problem.take().is_some() {
                    info!(path = %self.file.path.display(), "judge state written again");
                }
            }
            Err(e) => {
                let text = format!("{e}: {}", e.source_text());
                metrics::counter!("hazgate_state_write_failures_total").increment(1);
                if problem.as_deref() != Some(text.as_str()) {
                    error!(error = %text, "judge state not saved: a restart now would forget acknowledgements, shelves and special operations");
                }
                *problem = Some(text);
            }
        }
    }
}

/// Restores the saved state onto the engine; the file is then written on every change.
pub(super) fn restore(
    engine: &mut Engine,
    loaded: LoadedState,
    problem: Arc<Mutex<Option<String>>>,
) -> Persist {
    let path = loaded.file.path.display().to_string();
    // The counter exists from start-up, at 0 while all is well.
    metrics::counter!("hazgate_state_write_failures_total").increment(0);
    if let Some(p) = &loaded.problem {
        error!(error = %p, "judge state unreadable: starting without it (acknowledgements, shelves and special operations are forgotten)");
        *problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
    }
    match &loaded.saved {
        Some(saved) => {
            let r = engine.restore(saved);
            info!(path, points = r.points, sources = r.sources, unknown = ?r.unknown, "judge state restored");
        }
        None => info!(path, "no judge state saved yet: starting fresh"),
    }
    Persist {
        file: loaded.file,
        problem,
    }
}

/// Saves when the judge decided something (other than restating levels) or its hold
/// clocks moved.
pub(super) fn save_if_changed(engine: &mut Engine, out: &[Event], persist: Option<&Persist>) {
    let decided = out
        .iter()
        .any(|e| !matches!(e, Event::Risk(r) if r.snapshot));
    if engine.take_unsaved() | decided {
        if let Some(p) = persist {
            p.save(engine);
        }
    }
}
