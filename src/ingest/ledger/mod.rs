//! The centre's alarm ledger (报警处置台账), pure state: every alarm occurrence of every
//! gateway from its raise to its clear (销警), with the enterprise's acknowledgement and
//! the centre's handling feedback (处置反馈), and each gateway's online record.
//!
//! It changes only by [`Entry`]s — the same entries the journal keeps — so replaying
//! the journal at start-up rebuilds it exactly, and applying an entry twice (a message
//! the broker delivers again) changes nothing more. From it come the screen's alarm
//! list, the loop's counters (未销警, 未反馈, online rate, feedback times) and the
//! monthly report.

mod standing;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{
    contract::{
        topic::GatewayPath,
        wire::{Alarm, AlarmState, Standing},
    },
    model::{
        alarm::AlarmClass,
        alarm_loop::{AlarmLoopConfig, Cause},
    },
    reading::Timestamp,
};

/// One change to the ledger, as the journal keeps it. `at` is the centre's time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry<'a> {
    /// An alarm event of a gateway (`park/enterprise/gateway`), as it sent it.
    Alarm {
        at: Timestamp,
        gateway: String,
        #[serde(borrow)]
        alarm: Alarm<'a>,
    },
    /// Feedback given at the centre.
    Feedback {
        at: Timestamp,
        gateway: String,
        feedback: Feedback,
    },
    /// The gateway's answer to the `feedback` command that carried it.
    Reply {
        at: Timestamp,
        gateway: String,
        request_id: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A gateway's list of standing alarms (v1.6) told the ledger something new: an
    /// occurrence it had not heard of (a centre started during the alarm), or one no
    /// longer standing. Journaled only then; `ts` is the list's (gateway) time.
    Standing {
        at: Timestamp,
        gateway: String,
        ts: Timestamp,
        #[serde(borrow)]
        alarms: Vec<Standing<'a>>,
    },
    /// A gateway's status changed (online, or its enterprise's name).
    Status {
        at: Timestamp,
        gateway: String,
        online: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enterprise_name: Option<String>,
    },
}

impl Entry<'_> {
    pub fn at(&self) -> Timestamp {
        match self {
            Entry::Alarm { at, .. }
            | Entry::Feedback { at, .. }
            | Entry::Reply { at, .. }
            | Entry::Standing { at, .. }
            | Entry::Status { at, .. } => *at,
        }
    }
}

/// The centre's feedback on one occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    pub alarm_id: String,
    pub by: String,
    pub cause: String,
    #[serde(default)]
    pub measures: String,
    #[serde(default)]
    pub text: String,
    /// The `feedback` command's request id, which its answer carries.
    pub request_id: String,
    pub at: Timestamp,
    /// Whether the enterprise's gateway has it (in its audit log).
    #[serde(default)]
    pub delivery: Delivery,
}

/// What the gateway said to the feedback.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Delivery {
    /// Sent (again at every reconnect) until the gateway answers.
    #[default]
    Pending,
    Accepted {
        at: Timestamp,
    },
    Refused {
        at: Timestamp,
        error: String,
    },
}

/// Who did something, and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Who {
    pub at: Timestamp,
    pub by: String,
}

/// One alarm occurrence: `alarm_id` of `gateway`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Occurrence {
    pub gateway: String,
    pub park: String,
    pub enterprise: String,
    /// The name its gateway last gave, filled in when listed (a name may come after
    /// the alarm).
    pub enterprise_name: Option<String>,
    pub alarm_id: String,
    pub point: String,
    pub hazard_source: String,
    pub alarm: String,
    pub class: AlarmClass,
    /// When it was raised, by the gateway's clock (the time in its id).
    pub raised: Timestamp,
    /// The value and limit of the raise (or of the first event the centre saw).
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub unit: Option<String>,
    /// ISA-18.2 state after the last event.
    pub state: AlarmState,
    pub acknowledged: Option<Who>,
    /// 销警: when it went back to normal.
    pub cleared: Option<Timestamp>,
    pub feedback: Option<Feedback>,
    /// When its feedback is due.
    pub feedback_due: Timestamp,
    /// The time of the latest event applied: an older one (delivered again after a
    /// reconnect) changes nothing.
    #[serde(skip)]
    last_event: Timestamp,
}

impl Occurrence {
    /// 未反馈 at `now`: no feedback given by its deadline.
    pub fn feedback_overdue(&self, now: Timestamp) -> bool {
        match &self.feedback {
            None => now > self.feedback_due,
            Some(f) => f.at > self.feedback_due,
        }
    }
}

/// A feedback as the screen or the API asks for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    pub gateway: String,
    pub alarm_id: String,
    pub cause: String,
    #[serde(default)]
    pub measures: String,
    #[serde(default)]
    pub text: String,
}

/// Why feedback was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedbackError {
    #[error("no alarm `{alarm_id}` of gateway `{gateway}` is known here")]
    UnknownAlarm { gateway: String, alarm_id: String },
    #[error("cause `{0}` is not one of the configured causes ({1})")]
    UnknownCause(String, String),
    #[error("`{0}` is longer than {1} characters")]
    TooLong(&'static str, usize),
    #[error("this alarm already has feedback, by {by} at {at}")]
    AlreadyGiven { by: String, at: String },
}

/// The loop's figures for one gateway (an enterprise) or a park.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub park: String,
    /// Empty for a park's total.
    pub enterprise: String,
    /// The gateway's id (an enterprise may have several); empty for a park's total.
    pub gateway: String,
    pub enterprise_name: Option<String>,
    /// 未销警: occurrences not back to normal.
    pub not_cleared: usize,
    /// How long the longest of them has stood, seconds.
    pub longest_open_s: i64,
    /// 未反馈: occurrences past their feedback deadline with no feedback yet (late
    /// feedback stops the count here; the monthly report still counts it as late).
    pub feedback_overdue: usize,
    /// Gateways online, of those known.
    pub online: usize,
    pub gateways: usize,
    /// Raise → feedback, minutes, over the occurrences raised in the last 30 days.
    pub feedback_p50_min: Option<f64>,
    pub feedback_p90_min: Option<f64>,
}

/// Occurrences the ledger forgets once cleared and this old (the journal keeps them).
const KEEP_MS: i64 = 40 * 24 * 3_600_000;
const DAY_MS: i64 = 24 * 3_600_000;

/// Every occurrence and every gateway's online record.
pub struct Ledger {
    causes: Vec<Cause>,
    deadlines: crate::model::alarm_loop::Deadlines,
    occurrences: BTreeMap<(String, String), Occurrence>,
    /// A feedback command's request id → its occurrence.
    requests: HashMap<String, (String, String)>,
    /// Gateway → its status changes (centre time), oldest first.
    online: BTreeMap<String, Vec<(Timestamp, bool)>>,
    names: BTreeMap<String, String>,
}

impl Ledger {
    pub fn new(cfg: &AlarmLoopConfig) -> Self {
        Self {
            causes: cfg.causes.clone(),
            deadlines: cfg.feedback_deadline_min,
            occurrences: BTreeMap::new(),
            requests: HashMap::new(),
            online: BTreeMap::new(),
            names: BTreeMap::new(),
        }
    }

    pub fn causes(&self) -> &[Cause] {
        &self.causes
    }

    /// Applies one entry; true when anything changed.
    pub fn apply(&mut self, e: &Entry<'_>) -> bool {
        match e {
            Entry::Alarm { gateway, alarm, .. } => self.alarm(gateway, alarm),
            Entry::Standing {
                gateway,
                ts,
                alarms,
                ..
            } => {
                let plan = self.standing_plan(gateway, *ts, alarms);
                let changed = !plan.is_empty();
                self.carry_out(plan);
                changed
            }
            Entry::Feedback {
                gateway, feedback, ..
            } => {
                let key = (gateway.clone(), feedback.alarm_id.clone());
                let Some(o) = self.occurrences.get_mut(&key) else {
                    return false;
                };
                if o.feedback.is_some() {
                    return false;
                }
                self.requests.insert(feedback.request_id.clone(), key);
                o.feedback = Some(feedback.clone());
                true
            }
            Entry::Reply {
                at,
                request_id,
                ok,
                error,
                ..
            } => {
                let Some(f) = self
                    .requests
                    .get(request_id)
                    .and_then(|k| self.occurrences.get_mut(k))
                    .and_then(|o| o.feedback.as_mut())
                else {
                    return false;
                };
                if f.delivery != Delivery::Pending {
                    return false;
                }
                f.delivery = if *ok {
                    Delivery::Accepted { at: *at }
                } else {
                    Delivery::Refused {
                        at: *at,
                        error: error.clone().unwrap_or_default(),
                    }
                };
                true
            }
            Entry::Status {
                at,
                gateway,
                online,
                enterprise_name,
            } => {
                let renamed = enterprise_name.as_ref().is_some_and(|n| {
                    self.names.insert(gateway.clone(), n.clone()).as_ref() != Some(n)
                });
                let record = self.online.entry(gateway.clone()).or_default();
                if record.last().is_some_and(|(_, o)| o == online) {
                    return renamed;
                }
                record.push((*at, *online));
                true
            }
        }
    }

    /// Whether a status would change a gateway's record (a restated status need not
    /// be journaled).
    pub fn is_status_change(&self, gateway: &str, online: bool, name: Option<&str>) -> bool {
        let renamed = name.is_some_and(|n| self.names.get(gateway).map(String::as_str) != Some(n));
        renamed
            || self
                .online
                .get(gateway)
                .and_then(|r| r.last())
                .is_none_or(|(_, o)| *o != online)
    }

    fn alarm(&mut self, gateway: &str, a: &Alarm<'_>) -> bool {
        let Some(id) = a.alarm_id.as_deref() else {
            return false;
        };
        let key = (gateway.to_string(), id.to_string());
        let cleared = (a.state == AlarmState::Normal).then_some(a.ts);
        let acked = (a.action == crate::contract::wire::AlarmAction::Acknowledged).then(|| Who {
            at: a.ts,
            by: a.by.as_deref().unwrap_or_default().to_string(),
        });
        if let Some(o) = self.occurrences.get_mut(&key) {
            if a.ts < o.last_event {
                return false;
            }
            o.last_event = a.ts;
            let before = (o.state, o.cleared, o.acknowledged.is_some());
            o.state = a.state;
            o.cleared = o.cleared.or(cleared);
            if o.acknowledged.is_none() {
                o.acknowledged = acked;
            }
            return before != (o.state, o.cleared, o.acknowledged.is_some());
        }
        let raised = id
            .rsplit(':')
            .next()
            .and_then(|ms| ms.parse().ok())
            .map_or(a.ts, Timestamp);
        let (park, enterprise) = park_and_enterprise(gateway);
        let o = Occurrence {
            gateway: gateway.to_string(),
            park,
            enterprise,
            enterprise_name: None,
            alarm_id: id.to_string(),
            point: a.point.to_string(),
            hazard_source: a.hazard_source.to_string(),
            alarm: a.alarm.as_str().to_string(),
            class: a.class,
            raised,
            value: a.value,
            limit: a.limit,
            unit: a.unit.as_deref().map(str::to_string),
            state: a.state,
            acknowledged: acked,
            cleared,
            feedback: None,
            feedback_due: Timestamp(raised.0 + self.deadlines.ms(a.class)),
            last_event: a.ts,
        };
        self.occurrences.insert(key, o);
        true
    }

    /// Checks a feedback request from `by` at `now` — its content first, then the
    /// occurrence — and gives the entry to journal and apply.
    pub fn feedback(
        &self,
        req: &FeedbackRequest,
        by: &str,
        request_id: String,
        now: Timestamp,
    ) -> Result<Entry<'static>, FeedbackError> {
        use crate::contract::wire::{MAX_CAUSE_CHARS, MAX_FEEDBACK_CHARS};
        if !self.causes.iter().any(|c| c.id == req.cause) {
            let known: Vec<&str> = self.causes.iter().map(|c| c.id.as_str()).collect();
            return Err(FeedbackError::UnknownCause(
                req.cause.chars().take(64).collect(),
                known.join(", "),
            ));
        }
        for (field, v, max) in [
            ("cause", &req.cause, MAX_CAUSE_CHARS),
            ("measures", &req.measures, MAX_FEEDBACK_CHARS),
            ("text", &req.text, MAX_FEEDBACK_CHARS),
        ] {
            if v.chars().count() > max {
                return Err(FeedbackError::TooLong(field, max));
            }
        }
        let o = self
            .occurrences
            .get(&(req.gateway.clone(), req.alarm_id.clone()))
            .ok_or_else(|| FeedbackError::UnknownAlarm {
                gateway: req.gateway.clone(),
                alarm_id: req.alarm_id.clone(),
            })?;
        if let Some(f) = &o.feedback {
            return Err(FeedbackError::AlreadyGiven {
                by: f.by.clone(),
                at: f.at.to_rfc3339(),
            });
        }
        Ok(Entry::Feedback {
            at: now,
            gateway: req.gateway.clone(),
            feedback: Feedback {
                alarm_id: req.alarm_id.clone(),
                by: by.to_string(),
                cause: req.cause.clone(),
                measures: req.measures.clone(),
                text: req.text.clone(),
                request_id,
                at: now,
                delivery: Delivery::Pending,
            },
        })
    }

    pub fn occurrence(&self, gateway: &str, alarm_id: &str) -> Option<&Occurrence> {
        self.occurrences
            .get(&(gateway.to_string(), alarm_id.to_string()))
    }

    /// Occurrences not back to normal, plus those cleared in the last day still
    /// without feedback: what the alarm list shows.
    pub fn listed(&self, now: Timestamp) -> Vec<Occurrence> {
        let mut v: Vec<Occurrence> = self
            .occurrences
            .values()
            .filter(|o| {
                o.cleared.is_none()
                    || (o.feedback.is_none() && o.cleared.is_some_and(|c| now.0 - c.0 < DAY_MS))
            })
            .map(|o| Occurrence {
                enterprise_name: self.names.get(&o.gateway).cloned(),
                ..o.clone()
            })
            .collect();
        v.sort_by_key(|o| (o.cleared.is_some(), o.raised));
        v
    }

    /// Feedback the gateways have not answered yet: (gateway, feedback).
    pub fn pending(&self) -> Vec<(&str, &Feedback)> {
        self.occurrences
            .values()
            .filter_map(|o| o.feedback.as_ref().map(|f| (o.gateway.as_str(), f)))
            .filter(|(_, f)| f.delivery == Delivery::Pending)
            .collect()
    }

    /// Forgets cleared occurrences older than the loop needs (the journal keeps them).
    pub fn prune(&mut self, now: Timestamp) {
        let old = |o: &Occurrence| o.cleared.is_some_and(|c| now.0 - c.0 > KEEP_MS);
        self.occurrences.retain(|_, o| !old(o));
        let known = &self.occurrences;
        self.requests.retain(|_, k| known.contains_key(k));
    }

    /// Every occurrence, for the report.
    pub fn all(&self) -> impl Iterator<Item = &Occurrence> {
        self.occurrences.values()
    }

    /// Gateways known to the ledger, with their enterprise names.
    pub fn gateways(&self) -> Vec<(String, Option<String>)> {
        let mut g: Vec<&String> = self
            .online
            .keys()
            .chain(self.occurrences.keys().map(|(g, _)| g))
            .collect();
        g.sort();
        g.dedup();
        g.into_iter()
            .map(|g| (g.clone(), self.names.get(g).cloned()))
            .collect()
    }

    /// The enterprise name a gateway gave.
    pub fn name(&self, gateway: &str) -> Option<&str> {
        self.names.get(gateway).map(String::as_str)
    }

    /// Whether the gateway is online now (its last status).
    pub fn is_online(&self, gateway: &str) -> Option<bool> {
        self.online.get(gateway)?.last().map(|(_, o)| *o)
    }

    /// The share of `[from, to)` the gateway was online, of the part its status was
    /// known; None when it was never known in the window.
    pub fn online_share(&self, gateway: &str, from: Timestamp, to: Timestamp) -> Option<f64> {
        let record = self.online.get(gateway)?;
        let (mut known, mut up) = (0i64, 0i64);
        for (i, (at, online)) in record.iter().enumerate() {
            let end = record.get(i + 1).map_or(to, |(next, _)| *next);
            let (s, e) = (at.0.max(from.0), end.0.min(to.0));
            if e > s {
                known += e - s;
                if *online {
                    up += e - s;
                }
            }
        }
        (known > 0).then(|| up as f64 / known as f64)
    }

    /// The loop's counters per gateway, then per park (enterprise empty), at `now`.
    pub fn counts(&self, now: Timestamp) -> Vec<Counts> {
        let mut by_gateway: BTreeMap<String, Counts> = BTreeMap::new();
        let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (g, name) in self.gateways() {
            let c = by_gateway.entry(g.clone()).or_default();
            (c.park, c.enterprise) = park_and_enterprise(&g);
            c.gateway = GatewayPath::parse(&g).map_or_else(String::new, |p| p.gateway.into());
            c.enterprise_name = name;
            c.gateways = 1;
            c.online = usize::from(self.is_online(&g) == Some(true));
        }
        for o in self.occurrences.values() {
            let Some(c) = by_gateway.get_mut(&o.gateway) else {
                continue;
            };
            if o.cleared.is_none() {
                c.not_cleared += 1;
                c.longest_open_s = c.longest_open_s.max((now.0 - o.raised.0) / 1000);
            }
            if o.feedback.is_none() && o.feedback_overdue(now) {
                c.feedback_overdue += 1;
            }
            if let Some(f) = o
                .feedback
                .as_ref()
                .filter(|_| now.0 - o.raised.0 < 30 * DAY_MS)
            {
                let min = (f.at.0 - o.raised.0) as f64 / 60_000.0;
                times.entry(o.gateway.clone()).or_default().push(min);
                times.entry(o.park.clone()).or_default().push(min);
            }
        }
        let mut parks: BTreeMap<String, Counts> = BTreeMap::new();
        for (g, c) in &mut by_gateway {
            (c.feedback_p50_min, c.feedback_p90_min) = quantiles(times.get_mut(g.as_str()));
            let p = parks.entry(c.park.clone()).or_insert_with(|| Counts {
                park: c.park.clone(),
                ..Counts::default()
            });
            p.not_cleared += c.not_cleared;
            p.longest_open_s = p.longest_open_s.max(c.longest_open_s);
            p.feedback_overdue += c.feedback_overdue;
            p.online += c.online;
            p.gateways += 1;
        }
        for (park, p) in &mut parks {
            (p.feedback_p50_min, p.feedback_p90_min) = quantiles(times.get_mut(park.as_str()));
        }
        by_gateway
            .into_values()
            .chain(parks.into_values())
            .collect()
    }
}

/// The park and enterprise of a gateway's path (`park/enterprise/gateway`).
pub fn park_and_enterprise(gateway: &str) -> (String, String) {
    GatewayPath::parse(gateway).map_or_else(
        || (String::new(), String::new()),
        |p| (p.park.to_string(), p.enterprise.to_string()),
    )
}

/// The median and 90th percentile (nearest rank) of `v`.
pub fn quantiles(v: Option<&mut Vec<f64>>) -> (Option<f64>, Option<f64>) {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return (None, None);
    };
    v.sort_by(f64::total_cmp);
    let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (Some(rank(0.5)), Some(rank(0.9)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        contract::wire::AlarmAction,
        model::{alarm::AlarmKind, alarm_loop::Deadlines},
    };
    use proptest::prelude::*;

    const GW: &str = "CP-1/ENT-1/gw-1";
    const MIN: i64 = 60_000;

    fn cfg() -> AlarmLoopConfig {
        toml::from_str("journal_dir = \"/tmp/unused\"").unwrap()
    }

    fn alarm(id_ms: i64, at_ms: i64, action: AlarmAction, state: AlarmState) -> Entry<'static> {
        Entry::Alarm {
            at: Timestamp(at_ms),
            gateway: GW.into(),
            alarm: Alarm {
                ts: Timestamp(at_ms),
                alarm_id: Some(format!("GT-101:hh:{id_ms}").into()),
                point: "GT-101".into(),
                hazard_source: "HS-01".into(),
                alarm: AlarmKind::Hh,
                class: AlarmClass::Critical,
                action,
                state,
                value: Some(40.0),
                over_range: false,
                limit: Some(25.0),
                by: (action == AlarmAction::Acknowledged).then(|| "op-wang".into()),
                bad_quality: false,
                shelved: false,
                out_of_service: false,
                at_restart: false,
                unit: Some("%LEL".into()),
            },
        }
    }

    /// A list of standing alarms at `at_ms`: (occurrence's raise ms, acknowledged).
    fn standing(at_ms: i64, alarms: &[(i64, bool)]) -> Entry<'static> {
        Entry::Standing {
            at: Timestamp(at_ms),
            gateway: GW.into(),
            ts: Timestamp(at_ms),
            alarms: alarms
                .iter()
                .map(|&(id_ms, acked)| Standing {
                    alarm_id: format!("GT-101:hh:{id_ms}").into(),
                    point: "GT-101".into(),
                    hazard_source: "HS-01".into(),
                    alarm: AlarmKind::Hh,
                    class: AlarmClass::Critical,
                    state: if acked {
                        AlarmState::ActiveAcknowledged
                    } else {
                        AlarmState::ActiveUnacknowledged
                    },
                    raised: Timestamp(id_ms),
                    value: Some(40.0),
                    limit: Some(25.0),
                    acknowledged_by: acked.then(|| "op-wang".into()),
                    acknowledged_at: acked.then_some(Timestamp(id_ms + 1)),
                    shelved: false,
                    out_of_service: false,
                    unit: Some("%LEL".into()),
                })
                .collect(),
        }
    }

    /// A centre started during an alarm: the retained list brings it, acknowledged and
    /// all; a later list without it clears it; the same list again changes nothing.
    #[test]
    fn a_list_of_standing_alarms_opens_what_the_centre_missed_and_closes_what_ended() {
        let mut l = Ledger::new(&cfg());
        let list = standing(10 * MIN, &[(1000, true), (2000, false)]);
        assert!(l.apply(&list));
        assert!(!l.apply(&list), "restated: nothing new");
        let open = l.listed(Timestamp(11 * MIN));
        assert_eq!(open.len(), 2);
        let first = open
            .iter()
            .find(|o| o.alarm_id == "GT-101:hh:1000")
            .unwrap();
        assert_eq!(first.raised, Timestamp(1000));
        assert_eq!(first.acknowledged.as_ref().unwrap().by, "op-wang");
        assert_eq!(first.feedback_due, Timestamp(1000 + 30 * MIN));
        // An event newer than a list wins over it; an older list changes nothing.
        l.apply(&alarm(
            2000,
            12 * MIN,
            AlarmAction::Acknowledged,
            AlarmState::ActiveAcknowledged,
        ));
        assert!(
            !l.apply(&standing(11 * MIN, &[(1000, true)])),
            "an older list"
        );
        // GT-101:hh:1000 is no longer standing: back to normal at the list's time.
        assert!(l.apply(&standing(13 * MIN, &[(2000, true)])));
        let o = l.occurrence(GW, "GT-101:hh:1000").unwrap();
        assert_eq!(
            (o.cleared, o.state),
            (Some(Timestamp(13 * MIN)), AlarmState::Normal)
        );
        assert!(l
            .occurrence(GW, "GT-101:hh:2000")
            .unwrap()
            .cleared
            .is_none());
        let counts = l.counts(Timestamp(14 * MIN));
        assert_eq!(counts[0].not_cleared, 1);
    }

    fn request(cause: &str) -> FeedbackRequest {
        FeedbackRequest {
            gateway: GW.into(),
            alarm_id: "GT-101:hh:1000".into(),
            cause: cause.into(),
            measures: "关闭切断阀 closed the shut-off valve".into(),
            text: String::new(),
        }
    }

    #[test]
    fn an_occurrence_is_raised_acknowledged_fed_back_and_cleared() {
        let mut l = Ledger::new(&cfg());
        l.apply(&alarm(
            1000,
            1000,
            AlarmAction::Raised,
            AlarmState::ActiveUnacknowledged,
        ));
        let o = l.occurrence(GW, "GT-101:hh:1000").unwrap();
        assert_eq!(
            o.feedback_due,
            Timestamp(1000 + 30 * MIN),
            "critical: 30 min"
        );
        assert_eq!((o.park.as_str(), o.enterprise.as_str()), ("CP-1", "ENT-1"));
        l.apply(&alarm(
            1000,
            5000,
            AlarmAction::Acknowledged,
            AlarmState::ActiveAcknowledged,
        ));
        let fb = l
            .feedback(
                &request("real_leak"),
                "centre-li",
                "r1".into(),
                Timestamp(20 * MIN),
            )
            .unwrap();
        assert!(l.apply(&fb));
        assert_eq!(
            l.feedback(
                &request("real_leak"),
                "centre-zhao",
                "r2".into(),
                Timestamp(21 * MIN)
            )
            .unwrap_err(),
            FeedbackError::AlreadyGiven {
                by: "centre-li".into(),
                at: Timestamp(20 * MIN).to_rfc3339()
            }
        );
        assert_eq!(l.pending().len(), 1, "unanswered feedback is pending");
        let reply = Entry::Reply {
            at: Timestamp(20 * MIN + 500),
            gateway: GW.into(),
            request_id: "r1".into(),
            ok: true,
            error: None,
        };
        assert!(l.apply(&reply));
        assert!(l.pending().is_empty());
        assert_eq!(
            l.counts(Timestamp(25 * MIN))[0].not_cleared,
            1,
            "未销警 until normal"
        );
        l.apply(&alarm(
            1000,
            26 * MIN,
            AlarmAction::Cleared,
            AlarmState::Normal,
        ));
        let o = l.occurrence(GW, "GT-101:hh:1000").unwrap();
        assert_eq!(o.cleared, Some(Timestamp(26 * MIN)));
        assert_eq!(
            o.acknowledged.as_ref().map(|w| w.by.as_str()),
            Some("op-wang")
        );
        assert_eq!(
            o.feedback.as_ref().map(|f| &f.delivery),
            Some(&Delivery::Accepted {
                at: Timestamp(20 * MIN + 500)
            })
        );
        let c = &l.counts(Timestamp(40 * MIN))[0];
        assert_eq!((c.not_cleared, c.feedback_overdue), (0, 0));
        assert!(
            l.listed(Timestamp(40 * MIN)).is_empty(),
            "cleared with feedback: off the list"
        );
    }

    #[test]
    fn feedback_is_overdue_past_the_class_deadline_and_refused_for_unknown_causes() {
        let mut l = Ledger::new(&cfg());
        l.apply(&alarm(
            1000,
            1000,
            AlarmAction::Raised,
            AlarmState::ActiveUnacknowledged,
        ));
        let due = 1000 + 30 * MIN;
        assert_eq!(
            l.counts(Timestamp(due))[0].feedback_overdue,
            0,
            "at the deadline: not yet"
        );
        assert_eq!(
            l.counts(Timestamp(due + 1))[0].feedback_overdue,
            1,
            "past it: 未反馈"
        );
        assert_eq!(
            l.counts(Timestamp(due + 1))[1].feedback_overdue,
            1,
            "the park's total"
        );
        assert!(matches!(
            l.feedback(&request("aliens"), "centre-li", "r".into(), Timestamp(due)),
            Err(FeedbackError::UnknownCause(..))
        ));
        let late = l
            .feedback(
                &request("sensor_fault"),
                "centre-li",
                "r".into(),
                Timestamp(due + 1),
            )
            .unwrap();
        l.apply(&late);
        assert_eq!(
            l.counts(Timestamp(due + 2))[0].feedback_overdue,
            0,
            "given, if late"
        );
        let o = l.occurrence(GW, "GT-101:hh:1000").unwrap();
        assert!(
            o.feedback_overdue(Timestamp(due + 2)),
            "but late: the report counts it"
        );
        let d = Deadlines {
            critical: 5,
            high: 60,
            low: 240,
        };
        assert_eq!(d.ms(AlarmClass::Critical), 5 * MIN);
    }

    #[test]
    fn the_online_share_counts_only_what_was_known() {
        let mut l = Ledger::new(&cfg());
        let status = |at, online| Entry::Status {
            at: Timestamp(at),
            gateway: GW.into(),
            online,
            enterprise_name: Some("示范化工 Demo Chemical".into()),
        };
        assert!(l.apply(&status(100, true)));
        assert!(
            !l.apply(&status(150, true)),
            "a restated status changes nothing"
        );
        l.apply(&status(400, false));
        l.apply(&status(500, true));
        assert_eq!(l.online_share(GW, Timestamp(0), Timestamp(600)), Some(0.8));
        assert_eq!(l.name(GW), Some("示范化工 Demo Chemical"));
        assert!(!l.is_status_change(GW, true, Some("示范化工 Demo Chemical")));
        assert!(l.is_status_change(GW, false, None));
    }

    /// Entries of a few occurrences in any order, as a broker might deliver them.
    fn entry() -> impl Strategy<Value = Entry<'static>> {
        let actions = [
            (AlarmAction::Raised, AlarmState::ActiveUnacknowledged),
            (AlarmAction::Acknowledged, AlarmState::ActiveAcknowledged),
            (AlarmAction::Cleared, AlarmState::ReturnedUnacknowledged),
            (AlarmAction::Cleared, AlarmState::Normal),
        ];
        prop_oneof![
            (0..3i64, 0..100i64, 0..4usize).prop_map(move |(id, t, a)| {
                let (action, state) = actions[a];
                alarm(1000 * (id + 1), t * MIN, action, state)
            }),
            (0..3i64, 0..100i64).prop_map(|(id, t)| Entry::Feedback {
                at: Timestamp(t * MIN),
                gateway: GW.into(),
                feedback: Feedback {
                    alarm_id: format!("GT-101:hh:{}", 1000 * (id + 1)),
                    by: "centre-li".into(),
                    cause: "real_leak".into(),
                    measures: String::new(),
                    text: String::new(),
                    request_id: format!("r{id}"),
                    at: Timestamp(t * MIN),
                    delivery: Delivery::Pending,
                },
            }),
            (0..3i64, any::<bool>()).prop_map(|(id, ok)| Entry::Reply {
                at: Timestamp(id),
                gateway: GW.into(),
                request_id: format!("r{id}"),
                ok,
                error: None,
            }),
            (
                0..100i64,
                prop::collection::vec((0..3i64, any::<bool>()), 0..3)
            )
                .prop_map(|(t, alarms)| {
                    let alarms: Vec<(i64, bool)> = alarms
                        .into_iter()
                        .map(|(id, a)| (1000 * (id + 1), a))
                        .collect();
                    standing(t * MIN, &alarms)
                }),
            (0..100i64, any::<bool>()).prop_map(|(t, online)| Entry::Status {
                at: Timestamp(t * MIN),
                gateway: GW.into(),
                online,
                enterprise_name: None,
            }),
        ]
    }

    fn figures(l: &Ledger) -> String {
        let now = Timestamp(200 * MIN);
        serde_json::to_string(&(l.listed(now), l.counts(now), l.pending())).unwrap()
    }

    proptest! {
        /// The journal rebuilds the ledger exactly, and a message delivered twice
        /// (QoS 1 after a reconnect) changes nothing more.
        #[test]
        fn replayed_or_redelivered_entries_give_the_same_ledger(entries in prop::collection::vec(entry(), 0..40)) {
            let mut once = Ledger::new(&cfg());
            let mut twice = Ledger::new(&cfg());
            let mut replayed = Ledger::new(&cfg());
            for e in &entries {
                once.apply(e);
                twice.apply(e);
                twice.apply(e);
                let line = serde_json::to_string(e).unwrap();
                replayed.apply(&serde_json::from_str::<Entry<'_>>(&line).unwrap());
            }
            prop_assert_eq!(figures(&once), figures(&twice));
            prop_assert_eq!(figures(&once), figures(&replayed));
        }

        /// A list is the truth as of its time: after it, the gateway's open
        /// occurrences are exactly those it lists, in its states — whatever events
        /// (all older) came before.
        #[test]
        fn after_a_list_the_open_occurrences_are_the_listed_ones(
            before in prop::collection::vec(entry(), 0..30),
            listed in prop::collection::btree_map(0..3i64, any::<bool>(), 0..3),
        ) {
            let mut l = Ledger::new(&cfg());
            for e in before.iter().filter(|e| !matches!(e, Entry::Standing { .. })) {
                l.apply(e);
            }
            let alarms: Vec<(i64, bool)> = listed.iter().map(|(id, a)| (1000 * (id + 1), *a)).collect();
            l.apply(&standing(150 * MIN, &alarms));
            let open: BTreeMap<String, AlarmState> = l
                .all()
                .filter(|o| o.cleared.is_none())
                .map(|o| (o.alarm_id.clone(), o.state))
                .collect();
            // An occurrence cleared before is not reopened by a list (its id would be
            // new if it were raised again).
            let want: BTreeMap<String, AlarmState> = alarms
                .iter()
                .map(|(id, acked)| (format!("GT-101:hh:{id}"), *acked))
                .filter(|(id, _)| l.occurrence(GW, id).is_some_and(|o| o.cleared.is_none()))
                .map(|(id, acked)| (id, if acked { AlarmState::ActiveAcknowledged } else { AlarmState::ActiveUnacknowledged }))
                .collect();
            prop_assert_eq!(open, want);
        }

        /// An alarm event delivered again later, after newer ones, changes nothing.
        #[test]
        fn an_alarm_event_delivered_again_later_changes_nothing(
            mut events in prop::collection::vec((0..3i64, 0..4usize), 1..30),
            again in any::<prop::sample::Index>(),
        ) {
            let actions = [
                (AlarmAction::Raised, AlarmState::ActiveUnacknowledged),
                (AlarmAction::Acknowledged, AlarmState::ActiveAcknowledged),
                (AlarmAction::Cleared, AlarmState::ReturnedUnacknowledged),
                (AlarmAction::Cleared, AlarmState::Normal),
            ];
            events.sort_by_key(|(_, a)| *a);
            let entries: Vec<Entry<'static>> = events
                .iter()
                .enumerate()
                .map(|(t, (id, a))| alarm(1000 * (id + 1), t as i64 * MIN, actions[*a].0, actions[*a].1))
                .collect();
            let mut l = Ledger::new(&cfg());
            for e in &entries {
                l.apply(e);
            }
            let before = figures(&l);
            prop_assert!(!l.apply(again.get(&entries)));
            prop_assert_eq!(before, figures(&l));
        }
    }
}
