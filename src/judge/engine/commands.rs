//! Operator commands into the engine: acknowledge, shelve, out of service, special
//! operations, thresholds — each checked, applied, and answered with its events.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::{
    alarm_event, alarms_for, AlarmAction, Engine, Event, SpecialOperation, SpecialOperationEvent,
    ThresholdsEvent,
};
use crate::{
    model::{
        alarm::{self, AlarmKind, AlarmSettingsFile},
        PointIndex,
    },
    reading::Timestamp,
};

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
    /// The centre's handling feedback (处置反馈) on one alarm occurrence, kept in the
    /// audit log: it changes no alarm, but the point and alarm it names must exist.
    Feedback {
        alarm_id: String,
        cause: String,
        #[serde(default)]
        measures: String,
        #[serde(default)]
        text: String,
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
            | Command::SpecialOperation { by, .. }
            | Command::Feedback { by, .. } => by,
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
    #[error("`{0}` is not an alarm id (`{{point}}:{{alarm}}:{{raise time in ms}}`)")]
    BadAlarmId(String),
    #[error("thresholds rejected, nothing changed: {0}")]
    Guardrail(String),
    #[error("thresholds: no changes given")]
    NoChanges,
    /// Applied, but the file that keeps it across restarts could not be written.
    #[error("applied, but not persisted to {path}: {error} (it is lost at the next restart)")]
    NotPersisted { path: String, error: String },
}

impl Engine {
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
            } => self.special_operation_command(hazard_source, *active, kind, by, now, out),
            Command::Acknowledge { point, alarm, .. }
            | Command::Shelve { point, alarm, .. }
            | Command::Unshelve { point, alarm, .. } => {
                self.alarm_command(cmd, point, *alarm, by, now, out)
            }
            Command::OutOfService { point, enabled, by } => {
                self.out_of_service_command(point, *enabled, by, now, out)
            }
            Command::Feedback { alarm_id, .. } => self.check_occurrence(alarm_id),
        }
    }

    /// Whether `id` names an occurrence this site could have raised: a known point, an
    /// alarm it has, a raise time. The occurrence itself may be long cleared (feedback
    /// often comes after), so its time is not looked up.
    fn check_occurrence(&self, id: &str) -> Result<(), CommandError> {
        let bad = || CommandError::BadAlarmId(id.chars().take(200).collect());
        let mut parts = id.rsplitn(3, ':');
        let (Some(ms), Some(kind), Some(point)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let kind = AlarmKind::parse(kind).ok_or_else(bad)?;
        ms.parse::<i64>().map_err(|_| bad())?;
        let pi = self.point_index(point)?;
        self.known_alarm(pi, point, kind)
    }

    /// Whether point `pi` (named `point`) has an alarm of `kind`.
    fn known_alarm(
        &self,
        pi: PointIndex,
        point: &str,
        kind: AlarmKind,
    ) -> Result<(), CommandError> {
        if !self.alarms.of(pi.get()).iter().any(|a| a.kind == kind) {
            return Err(CommandError::UnknownAlarm {
                point: point.to_string(),
                alarm: kind.as_str().into(),
            });
        }
        Ok(())
    }

    fn special_operation_command(
        &mut self,
        hazard_source: &str,
        active: bool,
        kind: &str,
        by: &str,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), CommandError> {
        let si = self
            .site
            .hazard_sources
            .iter()
            .position(|h| h.id.as_str() == hazard_source)
            .ok_or_else(|| CommandError::UnknownSource(hazard_source.to_string()))?;
        self.sources[si].special_operation = active.then(|| SpecialOperation {
            kind: kind.to_string(),
            by: by.to_string(),
            since: now,
        });
        out.push(Event::SpecialOperation(SpecialOperationEvent {
            ts: now,
            hazard_source: self.site.hazard_sources[si].id.clone(),
            active,
            kind: kind.to_string(),
            by: by.to_string(),
        }));
        self.evaluate_source(si, now, out);
        Ok(())
    }

    /// Acknowledge, shelve or unshelve one alarm of a point, or all of them.
    fn alarm_command(
        &mut self,
        cmd: &Command,
        point: &str,
        alarm: Option<AlarmKind>,
        by: &str,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), CommandError> {
        let pi = self.point_index(point)?;
        let site = Arc::clone(&self.site);
        let p = &site.points[pi.get()];
        if let Some(k) = alarm {
            self.known_alarm(pi, point, k)?;
        }
        if let Command::Shelve { duration_s, .. } = cmd {
            if !(*duration_s > 0.0 && *duration_s <= MAX_SHELVE_S) {
                return Err(CommandError::BadDuration {
                    got: duration_s.to_string(),
                    max: MAX_SHELVE_S,
                });
            }
        }
        let sample = self.points[pi.get()].sample();
        let mut any = false;
        let mut ends = i64::MAX;
        for a in self
            .alarms
            .of_mut(pi.get())
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
            return Err(CommandError::NothingToAcknowledge(point.to_string()));
        }
        // A shelve ends at a known instant: the first input then unshelves.
        self.due(ends);
        self.evaluate_source(p.source.0 as usize, now, out);
        Ok(())
    }

    fn out_of_service_command(
        &mut self,
        point: &str,
        enabled: bool,
        by: &str,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), CommandError> {
        let pi = self.point_index(point)?;
        let site = Arc::clone(&self.site);
        let p = &site.points[pi.get()];
        let pa = &mut self.points[pi.get()];
        if pa.out_of_service.is_some() == enabled {
            return Ok(());
        }
        pa.out_of_service = enabled.then(|| Box::new((now.0, by.to_string())));
        let action = if enabled {
            AlarmAction::OutOfService
        } else {
            AlarmAction::InService
        };
        let sample = pa.sample();
        for a in self.alarms.of(pi.get()) {
            out.push(alarm_event(p, a, action, now, sample, Some(by), enabled));
        }
        if !enabled {
            // Sweeps skip a point out of service, so whatever fell due meanwhile (its
            // shelving ending, a delay completing) is due now: the next input settles it.
            self.due(now.0);
        }
        self.evaluate_source(p.source.0 as usize, now, out);
        Ok(())
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
            for v in alarm::guardrails(&new, p.kind, p.gas.as_deref()) {
                problems.push(format!("{}.{}: {}", p.id, v.field, v.message));
            }
            changed.push((pi, alarm::AlarmSettings::clone(&p.alarms), new.clone()));
            p.alarms = Arc::new(new);
        }
        if !problems.is_empty() {
            return Err(CommandError::Guardrail(problems.join("; ")));
        }
        let site = Arc::new(site);
        for (pi, old, new) in changed {
            let p = &site.points[pi.get()];
            let mut fresh = Vec::new();
            alarms_for(p, &mut fresh);
            let before = self.alarms.of(pi.get());
            for a in &mut fresh {
                if let Some(prev) = before.iter().find(|x| x.kind == a.kind) {
                    let class = a.class;
                    *a = prev.clone();
                    a.class = class;
                }
            }
            self.alarms.replace(pi.get(), fresh);
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
}
