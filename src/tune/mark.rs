//! What happened, in the one form the figures are counted from: an alarm raised or
//! cleared, a colour changed. Made from the judge's events, replayed or recorded.

use serde::Serialize;

use crate::{
    judge::engine::{AlarmAction, Event, RiskScope},
    model::{
        alarm::{AlarmClass, AlarmKind},
        risk::Colour,
    },
};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Mark {
    Alarm(AlarmMark),
    Colour(ColourMark),
}

impl Mark {
    pub fn ts(&self) -> i64 {
        match self {
            Self::Alarm(a) => a.ts,
            Self::Colour(c) => c.ts,
        }
    }
}

/// An alarm raised (`raised`) or back to normal (`!raised`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmMark {
    pub ts: i64,
    pub point: String,
    pub alarm: AlarmKind,
    pub class: AlarmClass,
    pub raised: bool,
    pub value: Option<f64>,
}

/// A colour change of a hazard source, or of the enterprise (`scope` = `enterprise`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColourMark {
    pub ts: i64,
    pub scope: String,
    pub from: Colour,
    pub to: Colour,
}

/// The scope name of the enterprise's own colour.
pub const ENTERPRISE: &str = "enterprise";

/// The mark an event makes, if any: restatements, acknowledgements, shelving and
/// settings make none.
pub fn of_event(e: &Event) -> Option<Mark> {
    match e {
        Event::Alarm(a) => {
            let raised = match a.action {
                AlarmAction::Raised => true,
                AlarmAction::Cleared => false,
                _ => return None,
            };
            Some(Mark::Alarm(AlarmMark {
                ts: a.ts.0,
                point: a.point.to_string(),
                alarm: a.alarm,
                class: a.class,
                raised,
                value: a.value,
            }))
        }
        Event::Risk(r) if !r.snapshot && r.from != r.to => Some(Mark::Colour(ColourMark {
            ts: r.ts.0,
            scope: match &r.scope {
                RiskScope::HazardSource(id) => id.to_string(),
                RiskScope::Enterprise => ENTERPRISE.to_string(),
            },
            from: r.from,
            to: r.to,
        })),
        _ => None,
    }
}
