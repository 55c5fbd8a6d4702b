//! The judge's events in the contract's types ([`crate::contract::wire`]): borrowed,
//! so putting an event on the wire copies no text.

use std::borrow::Cow;

use super::{
    engine::{
        AlarmEvent, AlarmView, Event, RiskChange, RiskScope, SpecialOperationEvent, ThresholdsEvent,
    },
    risk::Reason,
};
use crate::contract::wire::{self, Id};

impl<'a> From<&'a AlarmEvent> for wire::Alarm<'a> {
    fn from(a: &'a AlarmEvent) -> Self {
        Self {
            ts: a.ts,
            alarm_id: a.alarm_id.as_deref().map(Cow::Borrowed),
            point: Id::from(a.point.as_str()),
            hazard_source: Id::from(a.hazard_source.as_str()),
            alarm: a.alarm,
            class: a.class,
            action: a.action,
            state: a.state,
            value: a.value,
            over_range: a.over_range,
            limit: a.limit,
            by: a.by.as_deref().map(Cow::Borrowed),
            bad_quality: a.bad_quality,
            shelved: a.shelved,
            out_of_service: a.out_of_service,
            at_restart: a.at_restart,
            unit: None,
        }
    }
}

impl<'a> From<&'a Reason> for wire::Reason<'a> {
    fn from(r: &'a Reason) -> Self {
        Self {
            rule: Cow::Borrowed(&r.rule),
            colour: r.colour,
            alarms: r.alarms.iter().map(|a| Cow::Borrowed(a.as_str())).collect(),
            since: r.since,
        }
    }
}

impl<'a> From<&'a RiskChange> for wire::Risk<'a> {
    fn from(r: &'a RiskChange) -> Self {
        let (scope, id) = match &r.scope {
            RiskScope::HazardSource(id) => (wire::Scope::HazardSource, Some(id.as_str())),
            RiskScope::Enterprise => (wire::Scope::Enterprise, None),
        };
        Self {
            ts: r.ts,
            scope,
            id: id.map(Id::from),
            from: r.from,
            to: r.to,
            reasons: r.reasons.iter().map(Into::into).collect(),
            since: Some(r.since),
            snapshot: r.snapshot,
            name: None,
        }
    }
}

impl<'a> From<&'a SpecialOperationEvent> for wire::SpecialOperation<'a> {
    fn from(s: &'a SpecialOperationEvent) -> Self {
        Self {
            ts: s.ts,
            hazard_source: Id::from(s.hazard_source.as_str()),
            active: s.active,
            kind: Cow::Borrowed(&s.kind),
            by: Cow::Borrowed(&s.by),
        }
    }
}

impl<'a> From<&'a ThresholdsEvent> for wire::Thresholds<'a> {
    fn from(t: &'a ThresholdsEvent) -> Self {
        Self {
            ts: t.ts,
            point: Id::from(t.point.as_str()),
            hazard_source: Id::from(t.hazard_source.as_str()),
            by: Cow::Borrowed(&t.by),
            old: Cow::Borrowed(&t.old),
            new: Cow::Borrowed(&t.new),
        }
    }
}

impl<'a> From<&'a Event> for wire::Message<'a> {
    fn from(e: &'a Event) -> Self {
        match e {
            Event::Alarm(a) => Self::Alarm { alarm: a.into() },
            Event::Risk(r) => Self::Risk { risk: r.into() },
            Event::SpecialOperation(s) => Self::SpecialOperation {
                special_operation: s.into(),
            },
            Event::Thresholds(t) => Self::Thresholds {
                thresholds: t.as_ref().into(),
            },
            Event::ActiveAlarms(a) => Self::ActiveAlarms {
                alarms: a.alarms.iter().filter_map(standing).collect(),
            },
        }
    }
}

/// A standing alarm on the wire; none for one in no occurrence.
fn standing(a: &AlarmView) -> Option<wire::Standing<'_>> {
    Some(wire::Standing {
        alarm_id: Cow::Borrowed(a.alarm_id.as_deref()?),
        point: Id::from(a.point.as_str()),
        hazard_source: Id::from(a.hazard_source.as_str()),
        alarm: a.alarm,
        class: a.class,
        state: a.state,
        raised: a.raised_at?,
        value: a.raised_value,
        limit: a.limit,
        acknowledged_by: a.acknowledged_by.as_deref().map(Cow::Borrowed),
        acknowledged_at: a.acknowledged_at,
        shelved: a.shelved_until.is_some(),
        out_of_service: a.out_of_service,
        unit: None,
    })
}

impl Event {
    /// The event's own time: the time of its message.
    pub fn ts(&self) -> crate::reading::Timestamp {
        match self {
            Event::Alarm(a) => a.ts,
            Event::Risk(r) => r.ts,
            Event::SpecialOperation(s) => s.ts,
            Event::Thresholds(t) => t.ts,
            Event::ActiveAlarms(a) => a.ts,
        }
    }
}
