//! The judge core: a deterministic state machine over readings, operator commands and
//! the clock, producing alarm and risk events. No I/O and no clock of its own, so it can
//! be replayed over stored history exactly as it ran live.
//!
//! Here: the state and the readings and the clock coming in. [`events`] is what comes
//! out, [`commands`] what operators send in, `colour` the four-colour evaluation of
//! sources and the enterprise, [`views`] what the local API shows.

mod colour;
pub mod commands;
pub mod events;
mod table;
pub mod views;

pub use commands::{Command, CommandError, ThresholdChange, MAX_SHELVE_S};
pub use events::{
    alarm_id, AlarmEvent, AlarmView, Event, RiskChange, RiskScope, SpecialOperationEvent,
    ThresholdsEvent,
};
pub use views::AlarmCounts;

use std::sync::Arc;

use self::table::AlarmTable;
use super::{
    alarm::{analog_condition, limit_condition, Alarm, AlarmState, Transition},
    risk::{RiskLevel, SourceRisk},
};
use crate::{
    model::{alarm::AlarmKind, PointIndex, Site},
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

#[derive(Debug, Clone)]
pub(super) struct PointAlarms {
    pub(super) last_good: Option<(f64, i64)>,
    /// Whether the last good value was above or below the measuring range.
    pub(super) range: RangeFlag,
    /// Since when and by whom; boxed, as most points never are (24 bytes a point).
    pub(super) out_of_service: Option<Box<(i64, String)>>,
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
    /// Each point's alarms, by point index.
    pub(super) alarms: AlarmTable,
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
            .map(|_| PointAlarms {
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
        let alarms = AlarmTable::build(site.points.len(), |i, out| {
            alarms_for(&site.points[i], out);
        });
        let hold_ms = site.risk.hold.as_millis() as i64;
        Self {
            site,
            points,
            alarms,
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

    /// The earliest instant a time-based change is due, if any: a replay steps its
    /// clock to it (the live judge's tick comes up to a second later).
    pub fn next_due(&self) -> Option<Timestamp> {
        (self.deadline != i64::MAX).then_some(Timestamp(self.deadline))
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
        // Whether a condition or a quality flag changed: if none did, settling finds
        // nothing (what time alone completes is swept at its deadline, above), and the
        // reading costs no more than the comparisons (most readings of a site).
        let mut touched = pa.restored;
        for a in self.alarms.of_mut(r.point.get()) {
            let before = (a.condition(), a.bad_quality);
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
            touched |= before != (a.condition(), a.bad_quality);
        }
        if let (true, Some(v)) = (good, r.value) {
            pa.last_good = Some((v.as_f64(), t));
            pa.range = r.range;
        }
        if touched && self.settle_point(r.point, now, out) {
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
        for a in self.alarms.of_mut(index.get()) {
            if let Some(tr) = a.expire_shelving(now.0) {
                // The alarm counts again (and the blind spot ends): the source must be
                // judged again now, not at some later evaluation.
                changed = true;
                out.push(alarm_event(point, a, tr.into(), now, sample, None, false));
            }
            if a.bad_quality && a.kind != AlarmKind::Fault {
                if let Some(until) = a.shelved_until() {
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

    /// The clock ticks: sweeps as [`Engine::on_tick`] does, but only when something is
    /// due. Every time-based change registers its instant in `deadline`, so between
    /// those instants a sweep of every point finds nothing (a property test holds the
    /// two to the same events) — and at 10,000 points a sweep a second was a third of
    /// the judge's work.
    pub fn on_clock(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if now.0 >= self.deadline {
            self.on_tick(now, out);
        }
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
}

/// The alarms a point's settings ask for, in their quiet state, appended to `alarms`.
fn alarms_for(p: &crate::model::Point, alarms: &mut Vec<Alarm>) {
    let s = &p.alarms;
    alarms.extend(
        [
            AlarmKind::Hh,
            AlarmKind::H,
            AlarmKind::L,
            AlarmKind::Ll,
            AlarmKind::Roc,
        ]
        .into_iter()
        .filter(|k| s.limit(*k).is_some() && !p.is_discrete())
        .map(|k| Alarm::new(k, s.class(k))),
    );
    if p.is_discrete() && s.alarm_on.is_some() {
        alarms.push(Alarm::new(
            AlarmKind::Discrete,
            s.class(AlarmKind::Discrete),
        ));
    }
    alarms.push(Alarm::new(AlarmKind::Fault, s.class(AlarmKind::Fault)));
}

fn alarm_event(
    point: &crate::model::Point,
    a: &Alarm,
    action: AlarmAction,
    now: Timestamp,
    sample: Sample,
    by: Option<&str>,
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
        by: by.map(str::to_string),
        bad_quality: a.bad_quality,
        shelved: a.is_shelved(),
        out_of_service,
        at_restart: sample.at_restart,
    })
}
