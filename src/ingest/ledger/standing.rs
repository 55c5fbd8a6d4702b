//! A gateway's list of standing alarms (contract v1.6, retained on `alarms`) held
//! against the ledger: what it tells that the alarm events did not. A centre started
//! during an alarm learns of it from the retained list; an occurrence the ledger holds
//! open but the gateway no longer lists has gone back to normal there.
//!
//! The decision ([`Ledger::standing_plan`]) is separate from the change
//! ([`Ledger::carry_out`]): the watcher journals a list only when its plan is not empty
//! (a list is restated every integrity period), and replaying the journal carries out
//! the same plan again.

use std::collections::HashSet;

use super::{park_and_enterprise, Ledger, Occurrence, Who};
use crate::{
    contract::wire::{AlarmState, Standing},
    reading::Timestamp,
};

/// One change a list makes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// An occurrence the ledger had not heard of.
    New(Box<Occurrence>),
    /// A known one whose state or acknowledgement the list brings up to date.
    Update {
        key: (String, String),
        state: AlarmState,
        acknowledged: Option<Who>,
        ts: Timestamp,
    },
    /// A known open one the list no longer holds: back to normal at the gateway by `ts`.
    Clear {
        key: (String, String),
        ts: Timestamp,
    },
}

impl Ledger {
    /// Whether `gateway`'s list of standing alarms at `ts` would change anything (a
    /// list that does not need not be journaled).
    pub fn is_standing_news(&self, gateway: &str, ts: Timestamp, alarms: &[Standing<'_>]) -> bool {
        !self.standing_plan(gateway, ts, alarms).is_empty()
    }

    /// What `gateway`'s list of standing alarms at `ts` changes; empty when nothing.
    /// An occurrence with an event newer than the list is left to that event.
    pub(super) fn standing_plan(
        &self,
        gateway: &str,
        ts: Timestamp,
        alarms: &[Standing<'_>],
    ) -> Vec<Step> {
        let mut plan = Vec::new();
        // An occurrence listed twice (no gateway does) counts once: the first.
        let mut seen = HashSet::new();
        let standing = alarms
            .iter()
            .filter(|a| a.state != AlarmState::Normal && seen.insert(&*a.alarm_id));
        for a in standing {
            let key = (gateway.to_string(), a.alarm_id.to_string());
            let acknowledged = a.acknowledged_by.as_deref().map(|by| Who {
                at: a.acknowledged_at.unwrap_or(ts),
                by: by.to_string(),
            });
            match self.occurrences.get(&key) {
                None => plan.push(Step::New(Box::new(self.occurrence_of(gateway, ts, a)))),
                Some(o) if o.last_event <= ts && o.cleared.is_none() => {
                    let acked = o.acknowledged.is_none() && acknowledged.is_some();
                    if o.state != a.state || acked {
                        plan.push(Step::Update {
                            key,
                            state: a.state,
                            acknowledged: acknowledged.filter(|_| acked),
                            ts,
                        });
                    }
                }
                Some(_) => {}
            }
        }
        let listed: HashSet<&str> = alarms
            .iter()
            .filter(|a| a.state != AlarmState::Normal)
            .map(|a| &*a.alarm_id)
            .collect();
        for ((g, id), o) in &self.occurrences {
            if g == gateway
                && o.cleared.is_none()
                && o.last_event <= ts
                && !listed.contains(id.as_str())
            {
                plan.push(Step::Clear {
                    key: (g.clone(), id.clone()),
                    ts,
                });
            }
        }
        plan
    }

    /// Makes the changes of a plan.
    pub(super) fn carry_out(&mut self, plan: Vec<Step>) {
        for step in plan {
            match step {
                Step::New(o) => {
                    self.occurrences
                        .insert((o.gateway.clone(), o.alarm_id.clone()), *o);
                }
                Step::Update {
                    key,
                    state,
                    acknowledged,
                    ts,
                } => {
                    if let Some(o) = self.occurrences.get_mut(&key) {
                        o.state = state;
                        o.acknowledged = o.acknowledged.take().or(acknowledged);
                        o.last_event = ts;
                    }
                }
                Step::Clear { key, ts } => {
                    if let Some(o) = self.occurrences.get_mut(&key) {
                        o.state = AlarmState::Normal;
                        o.cleared = Some(ts);
                        o.last_event = ts;
                    }
                }
            }
        }
    }

    /// An occurrence as a list states it (the list's time is its latest event).
    fn occurrence_of(&self, gateway: &str, ts: Timestamp, a: &Standing<'_>) -> Occurrence {
        let (park, enterprise) = park_and_enterprise(gateway);
        Occurrence {
            gateway: gateway.to_string(),
            park,
            enterprise,
            enterprise_name: None,
            alarm_id: a.alarm_id.to_string(),
            point: a.point.to_string(),
            hazard_source: a.hazard_source.to_string(),
            alarm: a.alarm.as_str().to_string(),
            class: a.class,
            raised: a.raised,
            value: a.value,
            limit: a.limit,
            unit: a.unit.as_deref().map(str::to_string),
            state: a.state,
            acknowledged: a.acknowledged_by.as_deref().map(|by| Who {
                at: a.acknowledged_at.unwrap_or(ts),
                by: by.to_string(),
            }),
            cleared: None,
            feedback: None,
            feedback_due: Timestamp(a.raised.0 + self.deadlines.ms(a.class)),
            last_event: ts,
        }
    }
}
