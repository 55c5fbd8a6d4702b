//! The judge core: a deterministic state machine over readings, operator commands and
//! the clock, producing alarm and risk events. No I/O and no clock of its own, so it can
//! be replayed over stored history exactly as it ran live.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    alarm::{analog_condition, limit_condition, Alarm, AlarmState, Transition},
    risk::{required_colour, CountedAlarm, Reason, RiskLevel, SourceRisk},
};
use crate::{
    model::{
        alarm::{self, AlarmClass, AlarmKind, AlarmSettings, AlarmSettingsFile},
        risk::Colour,
        HazardSourceId, PointId, PointIndex, PointKind, Site,
    },
    reading::{RangeFlag, Reading, Timestamp, Value},
};

/// What an alarm event reports: the contract's vocabulary, defined there.
pub use crate::contract::wire::AlarmAction;

impl From<Transition> for AlarmAction {
    fn from(t: Transition) -> Self {
        match t {
            Transition::Raised => Self::Raised,
            Transition::Cleared => Self::Cleared,
            Transition::Acknowledged => Self::Acknowledged,
            Transition::Shelved => Self::Shelved,
            Transition::Unshelved => Self::Unshelved,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmEvent {
    pub ts: Timestamp,
    /// This occurrence of the alarm, from its raise until it is back to normal, the same
    /// across restarts: `{point}:{alarm}:{raise time in ms}`. Ties raise, acknowledgement,
    /// feedback and clear together at the centre. None for an action on an alarm that is
    /// in no occurrence (shelving a quiet alarm).
    pub alarm_id: Option<String>,
    pub point: PointId,
    pub hazard_source: HazardSourceId,
    pub alarm: AlarmKind,
    pub class: AlarmClass,
    pub action: AlarmAction,
    pub state: AlarmState,
    /// The point's last good value, when it has one.
    pub value: Option<f64>,
    /// The value is above the point's measuring range: a bound ("at least"), the
    /// detector saturated.
    pub over_range: bool,
    pub limit: Option<f64>,
    /// Who, for operator actions.
    pub by: Option<String>,
    /// The point's quality is bad: the alarm is held in its state.
    pub bad_quality: bool,
    pub shelved: bool,
    pub out_of_service: bool,
    /// The change happened while the gateway was down: found when it started again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub at_restart: bool,
}

/// The id of an alarm occurrence (see [`AlarmEvent::alarm_id`]).
pub fn alarm_id(point: &PointId, kind: AlarmKind, raised_at: i64) -> String {
    format!("{point}:{}:{raised_at}", kind.as_str())
}

/// Whose colour changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "scope", content = "id", rename_all = "snake_case")]
pub enum RiskScope {
    HazardSource(HazardSourceId),
    Enterprise,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskChange {
    pub ts: Timestamp,
    #[serde(flatten)]
    pub scope: RiskScope,
    pub from: Colour,
    pub to: Colour,
    pub reasons: Vec<Reason>,
    /// Since when the level `to` holds (contract v1.3; = `ts` for a change).
    pub since: Timestamp,
    /// Not a change: the current level, restated (at start-up, after a reconnect and
    /// every integrity period) so the centre's retained picture is never stale. `from`
    /// and `to` are then equal (v1.3, sent only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub snapshot: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpecialOperationEvent {
    pub ts: Timestamp,
    pub hazard_source: HazardSourceId,
    pub active: bool,
    pub kind: String,
    pub by: String,
}

/// Everything the judge tells the rest of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Alarm(AlarmEvent),
    /// A level change, or a restatement of a level (`snapshot`).
    Risk(RiskChange),
    SpecialOperation(SpecialOperationEvent),
    /// Rare and large (two full settings): boxed so the hot variants stay small.
    Thresholds(Box<ThresholdsEvent>),
}

/// Operator commands into the judge (from the local API now, MQTT later).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Acknowledge one alarm of a point, or all of them.
    Acknowledge {
        point: String,
        #[serde(default)]
        alarm: Option<AlarmKind>,
        by: String,
    },
    /// Shelve for a limited time (auto-unshelve).
    Shelve {
        point: String,
        #[serde(default)]
        alarm: Option<AlarmKind>,
        duration_s: f64,
        by: String,
    },
    Unshelve {
        point: String,
        #[serde(default)]
        alarm: Option<AlarmKind>,
        by: String,
    },
    /// Take a point out of service (maintenance) or back in.
    OutOfService {
        point: String,
        enabled: bool,
        by: String,
    },
    /// Change alarm settings of points, all or nothing, checked against the guardrails.
    Thresholds {
        changes: Vec<ThresholdChange>,
        by: String,
    },
    /// Start or stop a special operation (特殊作业: hot work, confined space…) on a source.
    SpecialOperation {
        hazard_source: String,
        active: bool,
        #[serde(default)]
        kind: String,
        by: String,
    },
}

impl Command {
    /// Who sends the command.
    pub fn by(&self) -> &str {
        match self {
            Command::Acknowledge { by, .. }
            | Command::Shelve { by, .. }
            | Command::Unshelve { by, .. }
            | Command::OutOfService { by, .. }
            | Command::Thresholds { by, .. }
            | Command::SpecialOperation { by, .. } => by,
        }
    }
}

/// New settings for one point; only the fields given change.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdChange {
    pub point: String,
    pub set: AlarmSettingsFile,
}

/// Alarm settings of a point changed (remote command or overrides file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdsEvent {
    pub ts: Timestamp,
    pub point: PointId,
    pub hazard_source: HazardSourceId,
    pub by: String,
    pub old: AlarmSettings,
    pub new: AlarmSettings,
}

/// Longest shelving an operator may set: shelving is temporary by definition.
pub const MAX_SHELVE_S: f64 = 24.0 * 3600.0;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("no point `{0}`")]
    UnknownPoint(String),
    #[error("no hazard source `{0}`")]
    UnknownSource(String),
    #[error("point `{point}` has no `{alarm}` alarm")]
    UnknownAlarm { point: String, alarm: String },
    #[error("nothing to acknowledge on `{0}`")]
    NothingToAcknowledge(String),
    #[error("shelving duration must be above 0 and at most {max} s, got {got}")]
    BadDuration { got: String, max: f64 },
    #[error("`by` must name who sends the command")]
    Anonymous,
    #[error("thresholds rejected, nothing changed: {0}")]
    Guardrail(String),
    #[error("thresholds: no changes given")]
    NoChanges,
    /// Applied, but the file that keeps it across restarts could not be written.
    #[error("applied, but not persisted to {path}: {error} (it is lost at the next restart)")]
    NotPersisted { path: String, error: String },
}

#[derive(Debug, Clone)]
pub(super) struct PointAlarms {
    pub(super) alarms: Vec<Alarm>,
    pub(super) last_good: Option<(f64, i64)>,
    /// Whether the last good value was above or below the measuring range.
    pub(super) range: RangeFlag,
    pub(super) out_of_service: Option<(i64, String)>,
    /// Restored at start-up and not read since: what changes now happened while the
    /// gateway was down, and its events say so (`at_restart`).
    pub(super) restored: bool,
}

impl PointAlarms {
    /// What an event says of the point's value.
    fn sample(&self) -> Sample {
        Sample {
            value: self.last_good.map(|(v, _)| v),
            over_range: self.range.is_over(),
            at_restart: self.restored,
        }
    }
}

/// The point's value as an alarm event reports it, and whether it is the value found at
/// a restart.
#[derive(Debug, Clone, Copy)]
struct Sample {
    value: Option<f64>,
    over_range: bool,
    at_restart: bool,
}

#[derive(Debug, Clone)]
pub struct SpecialOperation {
    pub kind: String,
    pub by: String,
    pub since: Timestamp,
}

#[derive(Debug, Clone)]
pub(super) struct SourceState {
    pub(super) risk: SourceRisk,
    pub(super) special_operation: Option<SpecialOperation>,
}

/// The alarm and risk state of a whole site.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(super) site: Arc<Site>,
    pub(super) points: Vec<PointAlarms>,
    pub(super) sources: Vec<SourceState>,
    pub(super) enterprise: RiskLevel,
    hold_ms: i64,
    /// The earliest instant a time-based change is due (a delay completing, shelving
    /// ending, persistence escalating, a hold ending): the first input at or after it
    /// sweeps everything, so escalation never waits for the next tick.
    pub(super) deadline: i64,
    /// State worth saving changed without an event (a hold started or ended).
    pub(super) unsaved: bool,
}

impl Engine {
    pub fn new(site: Arc<Site>, now: Timestamp) -> Self {
        let points = site
            .points
            .iter()
            .map(|p| PointAlarms {
                alarms: alarms_for(p),
                last_good: None,
                range: RangeFlag::Within,
                out_of_service: None,
                restored: false,
            })
            .collect();
        let sources = site
            .hazard_sources
            .iter()
            .map(|_| SourceState {
                risk: SourceRisk::new(now),
                special_operation: None,
            })
            .collect();
        let hold_ms = (site.risk.hold_s * 1000.0) as i64;
        Self {
            site,
            points,
            sources,
            enterprise: RiskLevel::blue(now),
            hold_ms,
            deadline: i64::MAX,
            unsaved: false,
        }
    }

    /// Whether state worth saving changed without an event since the last call.
    pub fn take_unsaved(&mut self) -> bool {
        std::mem::take(&mut self.unsaved)
    }

    fn due(&mut self, at: i64) {
        self.deadline = self.deadline.min(at);
    }

    pub fn site(&self) -> &Arc<Site> {
        &self.site
    }

    /// Feeds one reading. Events are appended to `out`.
    pub fn on_reading(&mut self, r: &Reading, now: Timestamp, out: &mut Vec<Event>) {
        if now.0 >= self.deadline {
            self.on_tick(now, out);
        }
        let Some(pa) = self.points.get_mut(r.point.get()) else {
            return;
        };
        let point = &self.site.points[r.point.get()];
        let source = point.source.0 as usize;
        let s = &point.alarms;
        let t = now.0;
        if pa.out_of_service.is_some() {
            // Out of service: nothing is evaluated until it is back in service.
            if let (true, Some(v)) = (r.quality.is_good(), r.value) {
                if v.as_f64().is_finite() {
                    pa.last_good = Some((v.as_f64(), t));
                    pa.range = r.range;
                }
            }
            return;
        }
        // Defence in depth: a non-finite number is never a measurement, whatever its flag
        // (replayed history or another source may carry one).
        let good = r.quality.is_good()
            && match r.value {
                Some(Value::Analog(v)) => v.is_finite(),
                Some(Value::Discrete(_)) => true,
                None => false,
            };
        let previous = pa.last_good;
        for a in &mut pa.alarms {
            match (a.kind, good, r.value) {
                (AlarmKind::Fault, _, _) => a.set_condition(!good, t),
                (_, false, _) => a.bad_quality = true,
                (AlarmKind::Discrete, true, Some(v)) => {
                    a.bad_quality = false;
                    a.set_condition(Some(v == Value::Discrete(true)) == s.alarm_on, t);
                }
                (AlarmKind::Roc, true, Some(v)) => {
                    a.bad_quality = false;
                    if let (Some((v0, t0)), Some(limit)) = (previous, s.rate_per_min) {
                        if t > t0 {
                            let rate = (v.as_f64() - v0).abs() * 60_000.0 / (t - t0) as f64;
                            a.set_condition(
                                analog_condition(AlarmKind::Roc, a.condition(), rate, limit, 0.0),
                                t,
                            );
                        }
                    }
                }
                (kind, true, Some(v)) => {
                    a.bad_quality = false;
                    if let Some(limit) = s.limit(kind) {
                        a.set_condition(
                            limit_condition(
                                kind,
                                a.condition(),
                                v.as_f64(),
                                r.range,
                                limit,
                                s.deadband,
                            ),
                            t,
                        );
                    }
                }
                _ => {}
            }
        }
        if let (true, Some(v)) = (good, r.value) {
            pa.last_good = Some((v.as_f64(), t));
            pa.range = r.range;
        }
        if self.settle_point(r.point, now, out) {
            self.evaluate_source(source, now, out);
        }
        // Read since the restart: what changes from here on is not "found at restart".
        self.points[r.point.get()].restored = false;
    }

    /// Applies delays of one point's alarms; true if any alarm changed state.
    fn settle_point(&mut self, index: PointIndex, now: Timestamp, out: &mut Vec<Event>) -> bool {
        let point = &self.site.points[index.get()];
        let s = &point.alarms;
        let pa = &mut self.points[index.get()];
        let sample = pa.sample();
        let mut changed = false;
        let mut next = i64::MAX;
        for a in &mut pa.alarms {
            if let Some(tr) = a.expire_shelving(now.0) {
                // The alarm counts again (and the blind spot ends): the source must be
                // judged again now, not at some later evaluation.
                changed = true;
                out.push(alarm_event(point, a, tr.into(), now, sample, None, false));
            }
            if a.bad_quality && a.kind != AlarmKind::Fault {
                if let Some(until) = a.shelved_until {
                    next = next.min(until);
                }
                continue;
            }
            let (on, off) = match a.kind {
                AlarmKind::Fault => (s.fault_delay_ms, 0),
                _ => (s.on_delay_ms, s.off_delay_ms),
            };
            if let Some(tr) = a.settle(now.0, on, off, sample.value) {
                changed = true;
                out.push(alarm_event(point, a, tr.into(), now, sample, None, false));
            }
            if let Some(at) = a.next_deadline(on, off) {
                next = next.min(at);
            }
        }
        self.due(next);
        changed
    }

    /// Time passes: delays complete, shelving expires, holds end, persistence escalates.
    pub fn on_tick(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        self.deadline = i64::MAX;
        for i in 0..self.points.len() {
            if self.points[i].out_of_service.is_none() {
                self.settle_point(PointIndex(i as u32), now, out);
            }
        }
        for s in 0..self.sources.len() {
            self.evaluate_source(s, now, out);
        }
    }

    /// Alarms of a source that count toward its colour.
    fn counted_alarms(&self, source: usize) -> Vec<CountedAlarm> {
        let mut counted = Vec::new();
        let mut blind = Vec::new();
        for &pi in &self.site.hazard_sources[source].points {
            let point = self.site.point(pi);
            let pa = &self.points[pi.get()];
            let safety = point.kind.is_safety_critical();
            let blind_spot = pa.out_of_service.is_some() || pa.alarms.iter().any(Alarm::is_shelved);
            if safety && blind_spot {
                // Since the point went out of service, or its first alarm was shelved.
                let since = pa
                    .out_of_service
                    .as_ref()
                    .map(|(t, _)| *t)
                    .or_else(|| pa.alarms.iter().filter_map(|a| a.shelved_at).min())
                    .unwrap_or(0);
                counted.push(CountedAlarm {
                    point: pi,
                    kind: AlarmKind::Fault,
                    class: AlarmClass::Low,
                    since: Timestamp(since),
                    unacknowledged: false,
                    note: Some(if pa.out_of_service.is_some() {
                        "out of service"
                    } else {
                        "shelved"
                    }),
                });
            }
            if pa.out_of_service.is_some() {
                continue;
            }
            for a in pa
                .alarms
                .iter()
                .filter(|a| a.state.is_active() && !a.is_shelved())
            {
                if a.kind == AlarmKind::Fault
                    && matches!(point.kind, PointKind::CombustibleGas | PointKind::ToxicGas)
                {
                    blind.push((pi, a.raised_at.unwrap_or(0)));
                }
                counted.push(CountedAlarm {
                    point: pi,
                    kind: a.kind,
                    class: a.class,
                    since: Timestamp(a.raised_at.unwrap_or(0)),
                    unacknowledged: a.state == AlarmState::ActiveUnacknowledged,
                    note: None,
                });
            }
        }
        if blind.len() >= self.site.risk.blind_detectors as usize && !blind.is_empty() {
            let since = blind.iter().map(|(_, t)| *t).max().unwrap_or(0);
            counted.push(CountedAlarm {
                point: blind[0].0,
                kind: AlarmKind::Fault,
                class: AlarmClass::High,
                since: Timestamp(since),
                unacknowledged: false,
                note: Some("source blind: detectors in fault"),
            });
        }
        counted
    }

    fn evaluate_source(&mut self, source: usize, now: Timestamp, out: &mut Vec<Event>) {
        let counted = self.counted_alarms(source);
        let hs = &self.site.hazard_sources[source];
        let special = self.sources[source]
            .special_operation
            .as_ref()
            .map(|s| s.since);
        let site = &self.site;
        let names = |p: PointIndex| site.point(p).id.to_string();
        let (required, reasons) =
            required_colour(&site.risk, hs.level, &counted, special, now, &names);
        // Persistence escalates at a known instant: make sure an input wakes us then.
        let persistence_ms = (site.risk.persistence_s * 1000.0) as i64;
        let escalation = counted
            .iter()
            .filter(|a| a.unacknowledged && a.note.is_none())
            .map(|a| a.since.0.saturating_add(persistence_ms).saturating_add(1))
            .filter(|t| *t > now.0)
            .min();
        if let Some(t) = escalation {
            self.deadline = self.deadline.min(t);
        }
        let state = &mut self.sources[source].risk;
        let hold_before = state.hold_ends(self.hold_ms);
        let changed = state.update(required, reasons, now, self.hold_ms);
        self.unsaved |= state.hold_ends(self.hold_ms) != hold_before;
        if let Some(end) = state.hold_ends(self.hold_ms) {
            self.deadline = self.deadline.min(end.0);
        }
        if let Some(from) = changed {
            let state = &self.sources[source].risk;
            out.push(Event::Risk(RiskChange {
                ts: now,
                scope: RiskScope::HazardSource(hs.id.clone()),
                from,
                to: state.current.colour,
                reasons: state.current.reasons.clone(),
                since: now,
                snapshot: false,
            }));
            self.evaluate_enterprise(now, out);
        }
    }

    fn evaluate_enterprise(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        let top = self
            .sources
            .iter()
            .map(|s| s.risk.current.colour)
            .max()
            .unwrap_or(Colour::Blue);
        let reasons: Vec<Reason> = self
            .site
            .hazard_sources
            .iter()
            .zip(&self.sources)
            .filter(|(_, s)| s.risk.current.colour == top && top > Colour::Blue)
            .flat_map(|(hs, s)| {
                s.risk.current.reasons.iter().map(move |r| Reason {
                    rule: format!("{}: {}", hs.id, r.rule),
                    ..r.clone()
                })
            })
            .collect();
        let from = self.enterprise.colour;
        if top != from {
            self.enterprise = RiskLevel {
                colour: top,
                since: now,
                reasons: reasons.clone(),
            };
            out.push(Event::Risk(RiskChange {
                ts: now,
                scope: RiskScope::Enterprise,
                from,
                to: top,
                reasons,
                since: now,
                snapshot: false,
            }));
        } else {
            self.enterprise.reasons = reasons;
        }
    }

    /// Applies an operator command; nothing changes when it is rejected.
    pub fn on_command(
        &mut self,
        cmd: &Command,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), CommandError> {
        let by = cmd.by();
        if by.trim().is_empty() {
            return Err(CommandError::Anonymous);
        }
        match cmd {
            Command::Thresholds { changes, by } => self.change_thresholds(changes, by, now, out),
            Command::SpecialOperation {
                hazard_source,
                active,
                kind,
                by,
            } => {
                let si = self
                    .site
                    .hazard_sources
                    .iter()
                    .position(|h| h.id.as_str() == hazard_source)
                    .ok_or_else(|| CommandError::UnknownSource(hazard_source.clone()))?;
                self.sources[si].special_operation = active.then(|| SpecialOperation {
                    kind: kind.clone(),
                    by: by.clone(),
                    since: now,
                });
                out.push(Event::SpecialOperation(SpecialOperationEvent {
                    ts: now,
                    hazard_source: self.site.hazard_sources[si].id.clone(),
                    active: *active,
                    kind: kind.clone(),
                    by: by.clone(),
                }));
                self.evaluate_source(si, now, out);
                Ok(())
            }
            Command::Acknowledge { point, alarm, by }
            | Command::Shelve {
                point, alarm, by, ..
            }
            | Command::Unshelve { point, alarm, by } => {
                let pi = self.point_index(point)?;
                let site = Arc::clone(&self.site);
                let p = &site.points[pi.get()];
                let pa = &mut self.points[pi.get()];
                if let Some(k) = alarm {
                    if !pa.alarms.iter().any(|a| a.kind == *k) {
                        return Err(CommandError::UnknownAlarm {
                            point: point.clone(),
                            alarm: k.as_str().into(),
                        });
                    }
                }
                if let Command::Shelve { duration_s, .. } = cmd {
                    if !(*duration_s > 0.0 && *duration_s <= MAX_SHELVE_S) {
                        return Err(CommandError::BadDuration {
                            got: duration_s.to_string(),
                            max: MAX_SHELVE_S,
                        });
                    }
                }
                let sample = pa.sample();
                let mut any = false;
                let mut ends = i64::MAX;
                for a in pa
                    .alarms
                    .iter_mut()
                    .filter(|a| alarm.is_none_or(|k| a.kind == k))
                {
                    let tr = match cmd {
                        Command::Acknowledge { .. } => a.acknowledge(now.0, by),
                        Command::Shelve { duration_s, .. } => {
                            let until = now.0 + (*duration_s * 1000.0) as i64;
                            ends = ends.min(until);
                            Some(a.shelve(now.0, until))
                        }
                        _ => a.unshelve(),
                    };
                    if let Some(tr) = tr {
                        any = true;
                        out.push(alarm_event(p, a, tr.into(), now, sample, Some(by), false));
                    }
                }
                if !any && matches!(cmd, Command::Acknowledge { .. }) {
                    return Err(CommandError::NothingToAcknowledge(point.clone()));
                }
                // A shelve ends at a known instant: the first input then unshelves.
                self.due(ends);
                self.evaluate_source(p.source.0 as usize, now, out);
                Ok(())
            }
            Command::OutOfService { point, enabled, by } => {
                let pi = self.point_index(point)?;
                let site = Arc::clone(&self.site);
                let p = &site.points[pi.get()];
                let pa = &mut self.points[pi.get()];
                let was = pa.out_of_service.is_some();
                if was != *enabled {
                    pa.out_of_service = enabled.then(|| (now.0, by.clone()));
                    let action = if *enabled {
                        AlarmAction::OutOfService
                    } else {
                        AlarmAction::InService
                    };
                    let sample = pa.sample();
                    for a in &pa.alarms {
                        out.push(alarm_event(p, a, action, now, sample, Some(by), *enabled));
                    }
                    self.evaluate_source(p.source.0 as usize, now, out);
                }
                Ok(())
            }
        }
    }

    /// Validates every change first; applies all of them or none. Alarm states are kept
    /// (an active H stays active and is re-judged against its new limit on the next
    /// reading); only alarms whose limit is newly set appear.
    fn change_thresholds(
        &mut self,
        changes: &[ThresholdChange],
        by: &str,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), CommandError> {
        if changes.is_empty() {
            return Err(CommandError::NoChanges);
        }
        let mut site = (*self.site).clone();
        let mut problems = Vec::new();
        let mut changed = Vec::new();
        for c in changes {
            let pi = self.point_index(&c.point)?;
            let p = &mut site.points[pi.get()];
            let merged = p.alarms.to_file().merged_with(&c.set);
            let new = alarm::resolve(&merged, p.kind, p.normal);
            for v in alarm::guardrails(&new, p.kind, p.gas) {
                problems.push(format!("{}.{}: {}", p.id, v.field, v.message));
            }
            changed.push((pi, p.alarms.clone(), new.clone()));
            p.alarms = new;
        }
        if !problems.is_empty() {
            return Err(CommandError::Guardrail(problems.join("; ")));
        }
        let site = Arc::new(site);
        for (pi, old, new) in changed {
            let p = &site.points[pi.get()];
            let pa = &mut self.points[pi.get()];
            let mut fresh = alarms_for(p);
            for a in &mut fresh {
                if let Some(prev) = pa.alarms.iter().find(|x| x.kind == a.kind) {
                    let class = a.class;
                    *a = prev.clone();
                    a.class = class;
                }
            }
            pa.alarms = fresh;
            out.push(Event::Thresholds(Box::new(ThresholdsEvent {
                ts: now,
                point: p.id.clone(),
                hazard_source: p.source_id.clone(),
                by: by.to_string(),
                old,
                new,
            })));
        }
        self.site = site;
        for s in 0..self.sources.len() {
            self.evaluate_source(s, now, out);
        }
        Ok(())
    }

    fn point_index(&self, id: &str) -> Result<PointIndex, CommandError> {
        self.site
            .point_by_id(id)
            .map(|p| p.index)
            .ok_or_else(|| CommandError::UnknownPoint(id.to_string()))
    }

    /// Restates every source's level and the enterprise's as `snapshot` risk events, in
    /// the judge's own event order: a restatement can never overtake a change before it.
    pub fn restate_levels(&self, now: Timestamp, out: &mut Vec<Event>) {
        let restate = |scope: RiskScope, l: &RiskLevel| RiskChange {
            ts: now,
            scope,
            from: l.colour,
            to: l.colour,
            reasons: l.reasons.clone(),
            since: l.since,
            snapshot: true,
        };
        for (hs, s) in self.site.hazard_sources.iter().zip(&self.sources) {
            let r = restate(RiskScope::HazardSource(hs.id.clone()), &s.risk.current);
            out.push(Event::Risk(r));
        }
        out.push(Event::Risk(restate(
            RiskScope::Enterprise,
            &self.enterprise,
        )));
    }

    pub fn source_level(&self, source: usize) -> &RiskLevel {
        &self.sources[source].risk.current
    }

    pub fn special_operation(&self, source: usize) -> Option<&SpecialOperation> {
        self.sources[source].special_operation.as_ref()
    }

    pub fn enterprise_level(&self) -> &RiskLevel {
        &self.enterprise
    }

    /// Every alarm not in its quiet state (active, unacknowledged, shelved) and every
    /// alarm of an out-of-service point.
    pub fn alarm_views(&self) -> Vec<AlarmView> {
        let mut v = Vec::new();
        for (i, pa) in self.points.iter().enumerate() {
            let p = &self.site.points[i];
            for a in &pa.alarms {
                if a.state == AlarmState::Normal && !a.is_shelved() && pa.out_of_service.is_none() {
                    continue;
                }
                v.push(AlarmView {
                    alarm_id: a
                        .raised_at
                        .filter(|_| a.state != AlarmState::Normal)
                        .map(|t| alarm_id(&p.id, a.kind, t)),
                    point: p.id.clone(),
                    hazard_source: p.source_id.clone(),
                    alarm: a.kind,
                    class: a.class,
                    state: a.state,
                    raised_at: a.raised_at.map(Timestamp),
                    raised_value: a.raised_value,
                    limit: p.alarms.limit(a.kind),
                    acknowledged_by: a.acknowledged.as_ref().map(|(_, by)| by.clone()),
                    acknowledged_at: a.acknowledged.as_ref().map(|(t, _)| Timestamp(*t)),
                    shelved_until: a.shelved_until.map(Timestamp),
                    out_of_service: pa.out_of_service.is_some(),
                    bad_quality: a.bad_quality,
                });
            }
        }
        v
    }

    /// Count of alarms by state, shelved and out-of-service ones counted separately.
    pub fn alarm_counts(&self) -> AlarmCounts {
        let mut c = AlarmCounts::default();
        for pa in &self.points {
            for a in &pa.alarms {
                if pa.out_of_service.is_some() {
                    c.out_of_service += 1;
                } else if a.is_shelved() {
                    c.shelved += 1;
                } else {
                    match a.state {
                        AlarmState::ActiveUnacknowledged => c.active_unacknowledged += 1,
                        AlarmState::ActiveAcknowledged => c.active_acknowledged += 1,
                        AlarmState::ReturnedUnacknowledged => c.returned_unacknowledged += 1,
                        AlarmState::Normal => {}
                    }
                }
            }
        }
        c
    }
}

/// The alarms a point's settings ask for, in their quiet state.
fn alarms_for(p: &crate::model::Point) -> Vec<Alarm> {
    let s = &p.alarms;
    let mut alarms: Vec<Alarm> = [
        AlarmKind::Hh,
        AlarmKind::H,
        AlarmKind::L,
        AlarmKind::Ll,
        AlarmKind::Roc,
    ]
    .into_iter()
    .filter(|k| s.limit(*k).is_some() && !p.is_discrete())
    .map(|k| Alarm::new(k, s.class(k)))
    .collect();
    if p.is_discrete() && s.alarm_on.is_some() {
        alarms.push(Alarm::new(
            AlarmKind::Discrete,
            s.class(AlarmKind::Discrete),
        ));
    }
    alarms.push(Alarm::new(AlarmKind::Fault, s.class(AlarmKind::Fault)));
    alarms
}

fn alarm_event(
    point: &crate::model::Point,
    a: &Alarm,
    action: AlarmAction,
    now: Timestamp,
    sample: Sample,
    by: Option<&String>,
    out_of_service: bool,
) -> Event {
    let occurrence = a.raised_at.filter(|_| {
        a.state != AlarmState::Normal
            || matches!(action, AlarmAction::Cleared | AlarmAction::Acknowledged)
    });
    Event::Alarm(AlarmEvent {
        ts: now,
        alarm_id: occurrence.map(|t| alarm_id(&point.id, a.kind, t)),
        point: point.id.clone(),
        hazard_source: point.source_id.clone(),
        alarm: a.kind,
        class: a.class,
        action,
        state: a.state,
        value: sample.value,
        over_range: sample.over_range,
        limit: point.alarms.limit(a.kind),
        by: by.cloned(),
        bad_quality: a.bad_quality,
        shelved: a.is_shelved(),
        out_of_service,
        at_restart: sample.at_restart,
    })
}

/// An alarm as the local API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmView {
    /// The occurrence's id while the alarm is not normal (see [`AlarmEvent::alarm_id`]).
    pub alarm_id: Option<String>,
    pub point: PointId,
    pub hazard_source: HazardSourceId,
    pub alarm: AlarmKind,
    pub class: AlarmClass,
    pub state: AlarmState,
    pub raised_at: Option<Timestamp>,
    pub raised_value: Option<f64>,
    pub limit: Option<f64>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Timestamp>,
    pub shelved_until: Option<Timestamp>,
    pub out_of_service: bool,
    pub bad_quality: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlarmCounts {
    pub active_unacknowledged: u32,
    pub active_acknowledged: u32,
    pub returned_unacknowledged: u32,
    pub shelved: u32,
    pub out_of_service: u32,
}
