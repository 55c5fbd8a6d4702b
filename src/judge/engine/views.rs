//! What the local API shows of the engine: alarms, counts, levels.

use serde::Serialize;

use super::{
    alarm_id,
    events::{ActiveAlarms, AlarmView},
    AlarmState, Engine, Event, RiskChange, RiskScope, SpecialOperation,
};
use crate::{judge::risk::RiskLevel, reading::Timestamp};

impl Engine {
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
        out.push(self.active_alarms(now));
    }

    /// Every alarm standing (in an occurrence, not back to normal) at `ts`.
    pub fn active_alarms(&self, ts: Timestamp) -> Event {
        let alarms = self
            .alarm_views()
            .into_iter()
            .filter(|a| a.state != AlarmState::Normal && a.alarm_id.is_some())
            .collect();
        Event::ActiveAlarms(Box::new(ActiveAlarms { ts, alarms }))
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
            for a in self.alarms.of(i) {
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
                    acknowledged_by: a.acknowledged.as_deref().map(|(_, by)| by.clone()),
                    acknowledged_at: a.acknowledged.as_deref().map(|(t, _)| Timestamp(*t)),
                    shelved_until: a.shelved_until().map(Timestamp),
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
        for (i, pa) in self.points.iter().enumerate() {
            for a in self.alarms.of(i) {
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlarmCounts {
    pub active_unacknowledged: u32,
    pub active_acknowledged: u32,
    pub returned_unacknowledged: u32,
    pub shelved: u32,
    pub out_of_service: u32,
}
