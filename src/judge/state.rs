//! Durable judge state: what a restart, a power cut or a reload must not forget.
//!
//! Readings rebuild values; they cannot rebuild that an operator acknowledged an alarm
//! (and who), shelved it until when, took a point out of service, or that a special
//! operation is in progress on a source — nor when an alarm was raised (its id, its
//! persistence clock) or since when a source has been waiting out its hold. Forgetting
//! these raised old alarms as new and unacknowledged, and silently dropped the yellow
//! floor of a special operation. So the judge's state is saved whenever it changes and
//! restored at start-up; the first readings then reconcile it: an alarm whose condition
//! still holds continues under its id without a new `raised`; one whose condition went
//! away while the gateway was down clears, its event marked `at_restart`; an expired
//! shelving ends.
//!
//! The file is JSON (small: only points and sources not in their quiet state, plus each
//! point's last value), written as the overrides file is: a new file, fsynced, renamed
//! over the old one, then the directory fsynced — never a torn file. Points and sources
//! are keyed by id, so a reload keeps the state of every point that still exists.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{
    alarm::AlarmState,
    engine::{Engine, SpecialOperation},
    risk::RiskLevel,
};
use crate::{
    model::alarm::AlarmKind,
    reading::{RangeFlag, Timestamp},
};

/// The saved form. `version` changes when the form does; an unknown version is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedJudge {
    pub version: u32,
    pub points: BTreeMap<String, SavedPoint>,
    pub sources: BTreeMap<String, SavedSource>,
    pub enterprise: Option<RiskLevel>,
    /// The engine's next time-based change (ms).
    pub deadline: i64,
}

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedPoint {
    /// Last good value and its time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "exact")]
    pub last_good: Option<(f64, i64)>,
    #[serde(default, skip_serializing_if = "is_within")]
    pub range: SavedRange,
    /// Since when (ms) and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_service: Option<(i64, String)>,
    /// Alarms not in their quiet state, by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alarms: BTreeMap<AlarmKind, SavedAlarm>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SavedRange {
    #[default]
    Within,
    Over,
    Under,
}

fn is_within(r: &SavedRange) -> bool {
    *r == SavedRange::Within
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedAlarm {
    pub state: AlarmState,
    pub condition: bool,
    pub condition_since: i64,
    #[serde(default)]
    pub raised_at: Option<i64>,
    #[serde(default, with = "exact")]
    pub raised_value: Option<f64>,
    /// When and by whom.
    #[serde(default)]
    pub acknowledged: Option<(i64, String)>,
    #[serde(default)]
    pub shelved_until: Option<i64>,
    #[serde(default)]
    pub shelved_at: Option<i64>,
    #[serde(default)]
    pub bad_quality: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSource {
    pub level: RiskLevel,
    /// Since when the required colour has been below the current one (the hold).
    #[serde(default)]
    pub below_since: Option<Timestamp>,
    #[serde(default)]
    pub special_operation: Option<SavedSpecialOperation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSpecialOperation {
    pub kind: String,
    pub by: String,
    pub since: Timestamp,
}

/// Floats as decimal text: Rust's shortest round-trip form, read back by `str::parse`,
/// exact to the bit (a JSON number read back by serde_json may be off by one ulp).
mod exact {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub trait Exact: Sized {
        type Text: Serialize + for<'de> Deserialize<'de>;
        fn to_text(&self) -> Self::Text;
        fn from_text(t: Self::Text) -> Option<Self>;
    }

    impl Exact for f64 {
        type Text = String;
        fn to_text(&self) -> String {
            self.to_string()
        }
        fn from_text(t: String) -> Option<Self> {
            t.parse().ok()
        }
    }

    impl Exact for (f64, i64) {
        type Text = (String, i64);
        fn to_text(&self) -> (String, i64) {
            (self.0.to_string(), self.1)
        }
        fn from_text(t: (String, i64)) -> Option<Self> {
            Some((t.0.parse().ok()?, t.1))
        }
    }

    pub fn serialize<T: Exact, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(Exact::to_text).serialize(s)
    }

    pub fn deserialize<'de, T: Exact, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        match Option::<T::Text>::deserialize(d)? {
            None => Ok(None),
            Some(t) => T::from_text(t)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("not a number")),
        }
    }
}

/// What a restore found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    pub points: usize,
    pub sources: usize,
    /// Saved points or sources the site no longer has (a reload removed them).
    pub unknown: Vec<String>,
}

impl Engine {
    /// The state worth keeping, as it is now.
    pub fn save(&self) -> SavedJudge {
        let mut points = BTreeMap::new();
        for (i, (p, pa)) in self.site.points.iter().zip(&self.points).enumerate() {
            let alarms: BTreeMap<AlarmKind, SavedAlarm> = self
                .alarms
                .of(i)
                .iter()
                .filter(|a| {
                    a.state != AlarmState::Normal
                        || a.condition()
                        || a.is_shelved()
                        || a.bad_quality
                        // The last occurrence (raise, acknowledgement) stays visible.
                        || a.raised_at.is_some()
                })
                .map(|a| {
                    let saved = SavedAlarm {
                        state: a.state,
                        condition: a.condition(),
                        condition_since: a.condition_since(),
                        raised_at: a.raised_at,
                        raised_value: a.raised_value,
                        acknowledged: a.acknowledged.as_deref().cloned(),
                        shelved_until: a.shelved_until(),
                        shelved_at: a.shelved_at(),
                        bad_quality: a.bad_quality,
                    };
                    (a.kind, saved)
                })
                .collect();
            let saved = SavedPoint {
                last_good: pa.last_good,
                range: match pa.range {
                    RangeFlag::Within => SavedRange::Within,
                    RangeFlag::Over => SavedRange::Over,
                    RangeFlag::Under => SavedRange::Under,
                },
                out_of_service: pa.out_of_service.as_deref().cloned(),
                alarms,
            };
            if saved != SavedPoint::default() {
                points.insert(p.id.to_string(), saved);
            }
        }
        let sources = self
            .site
            .hazard_sources
            .iter()
            .zip(&self.sources)
            .map(|(hs, s)| {
                let saved = SavedSource {
                    level: s.risk.current.clone(),
                    below_since: s.risk.below_since,
                    special_operation: s.special_operation.as_ref().map(|o| {
                        SavedSpecialOperation {
                            kind: o.kind.clone(),
                            by: o.by.clone(),
                            since: o.since,
                        }
                    }),
                };
                (hs.id.to_string(), saved)
            })
            .collect();
        SavedJudge {
            version: VERSION,
            points,
            sources,
            enterprise: Some(self.enterprise.clone()),
            deadline: self.deadline,
        }
    }

    /// Restores saved state onto a new engine of (possibly another version of) the site,
    /// by point and source id. Readings after this reconcile it (see the module doc).
    pub fn restore(&mut self, saved: &SavedJudge) -> Restored {
        let mut report = Restored::default();
        for (id, sp) in &saved.points {
            let Some(p) = self.site.point_by_id(id) else {
                report.unknown.push(id.clone());
                continue;
            };
            let pa = &mut self.points[p.index.get()];
            pa.last_good = sp.last_good;
            pa.range = match sp.range {
                SavedRange::Within => RangeFlag::Within,
                SavedRange::Over => RangeFlag::Over,
                SavedRange::Under => RangeFlag::Under,
            };
            pa.out_of_service = sp.out_of_service.clone().map(Box::new);
            for a in self.alarms.of_mut(p.index.get()) {
                let Some(sa) = sp.alarms.get(&a.kind) else {
                    continue;
                };
                a.state = sa.state;
                a.restore_condition(sa.condition, sa.condition_since);
                a.raised_at = sa.raised_at;
                a.raised_value = sa.raised_value;
                a.acknowledged = sa.acknowledged.clone().map(Box::new);
                a.restore_shelving(sa.shelved_until, sa.shelved_at);
                a.bad_quality = sa.bad_quality;
            }
            pa.restored = true;
            report.points += 1;
        }
        for (id, ss) in &saved.sources {
            let Some(i) = self
                .site
                .hazard_sources
                .iter()
                .position(|h| h.id.as_str() == id)
            else {
                report.unknown.push(id.clone());
                continue;
            };
            let s = &mut self.sources[i];
            s.risk.current = ss.level.clone();
            s.risk.below_since = ss.below_since;
            s.special_operation = ss.special_operation.as_ref().map(|o| SpecialOperation {
                kind: o.kind.clone(),
                by: o.by.clone(),
                since: o.since,
            });
            report.sources += 1;
        }
        if let Some(e) = &saved.enterprise {
            self.enterprise = e.clone();
        }
        // Whatever was due while the gateway was down is due at the first input.
        self.deadline = self.deadline.min(saved.deadline);
        report
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the judge state {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the judge state {path} is not valid: {message}")]
    Invalid { path: String, message: String },
    #[error("cannot write the judge state {path} (set [gateway] state_path to a writable place)")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// A state file opened at start-up: what it held, and what was wrong with it.
#[derive(Debug)]
pub struct LoadedState {
    pub file: StateFile,
    pub saved: Option<SavedJudge>,
    /// The file was unreadable as state (kept aside as `…corrupt`): the judge starts
    /// fresh, and says so loudly.
    pub problem: Option<String>,
}

impl StateError {
    /// The underlying cause, for one log line.
    pub fn source_text(&self) -> String {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => source.to_string(),
            Self::Invalid { message, .. } => message.clone(),
        }
    }
}

/// Where the judge state lives, and how it is written.
#[derive(Debug, Clone)]
pub struct StateFile {
    pub path: PathBuf,
}

impl StateFile {
    /// The default place: beside the site file, `{file}.state.json`.
    pub fn beside(config: &Path) -> PathBuf {
        crate::model::beside(config, ".state.json")
    }

    /// Opens the state at start-up: reads it, and writes it straight back, so a place
    /// that cannot be written is an error now (the caller stops the start), not a silent
    /// loss at the first change. A file that is not valid state is moved aside and
    /// reported; the judge then starts fresh.
    pub fn open(path: &Path) -> Result<LoadedState, StateError> {
        let file = Self {
            path: path.to_path_buf(),
        };
        let (saved, problem) = match file.load() {
            Ok(saved) => (saved, None),
            Err(e @ StateError::Invalid { .. }) => {
                let aside = file.path.with_extension("json.corrupt");
                let _ = std::fs::rename(&file.path, &aside);
                (None, Some(format!("{e}; moved to {}", aside.display())))
            }
            Err(e) => return Err(e),
        };
        let probe = saved.clone().unwrap_or(SavedJudge {
            version: VERSION,
            deadline: i64::MAX,
            ..SavedJudge::default()
        });
        file.save(&probe)?;
        Ok(LoadedState {
            file,
            saved,
            problem,
        })
    }

    /// The saved state, if there is one.
    pub fn load(&self) -> Result<Option<SavedJudge>, StateError> {
        let path = self.path.display().to_string();
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let saved: SavedJudge =
            serde_json::from_slice(&bytes).map_err(|e| StateError::Invalid {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if saved.version != VERSION {
            return Err(StateError::Invalid {
                path,
                message: format!("version {} (this hazgate reads {VERSION})", saved.version),
            });
        }
        Ok(Some(saved))
    }

    /// Writes `state` durably: a new file, fsynced, renamed over the old, directory
    /// fsynced.
    pub fn save(&self, state: &SavedJudge) -> Result<(), StateError> {
        let write = |source| StateError::Write {
            path: self.path.display().to_string(),
            source,
        };
        let bytes = serde_json::to_vec(state).map_err(|e| write(std::io::Error::other(e)))?;
        crate::durable::replace(&self.path, &bytes, crate::durable::Access::Default).map_err(write)
    }
}
