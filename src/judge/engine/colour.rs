//! The four-colour evaluation: each hazard source's alarms through the rule table, and
//! the enterprise from its sources.

use super::{AlarmState, Engine, Event, RiskChange, RiskScope};
use crate::{
    judge::{
        alarm::Alarm,
        risk::{required_colour, CountedAlarm, Reason, RiskLevel},
    },
    model::{
        alarm::{AlarmClass, AlarmKind},
        risk::Colour,
        PointIndex, PointKind,
    },
    reading::Timestamp,
};

impl Engine {
    /// Alarms of a source that count toward its colour.
    pub(super) fn counted_alarms(&self, source: usize) -> Vec<CountedAlarm> {
        let mut counted = Vec::new();
        let mut blind = Vec::new();
        for &pi in &self.site.hazard_sources[source].points {
            let point = self.site.point(pi);
            let pa = &self.points[pi.get()];
            let safety = point.kind.is_safety_critical();
            let alarms = self.alarms.of(pi.get());
            let blind_spot = pa.out_of_service.is_some() || alarms.iter().any(Alarm::is_shelved);
            if safety && blind_spot {
                // Since the point went out of service, or its first alarm was shelved.
                let since = pa
                    .out_of_service
                    .as_deref()
                    .map(|(t, _)| *t)
                    .or_else(|| alarms.iter().filter_map(Alarm::shelved_at).min())
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
            for a in alarms
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

    pub(super) fn evaluate_source(&mut self, source: usize, now: Timestamp, out: &mut Vec<Event>) {
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
        let persistence_ms = site.risk.persistence.as_millis() as i64;
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

    pub(super) fn evaluate_enterprise(&mut self, now: Timestamp, out: &mut Vec<Event>) {
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
}
