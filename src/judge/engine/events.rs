//! What the engine tells the rest of the gateway: alarm, risk, special-operation and
//! threshold events (put on the wire by `judge::wire`).

use serde::Serialize;

use super::{AlarmAction, AlarmState};
use crate::{
    judge::risk::Reason,
    model::{
        alarm::{AlarmClass, AlarmKind, AlarmSettings},
        risk::Colour,
        HazardSourceId, PointId,
    },
    reading::Timestamp,
};

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
    /// Not a change: every alarm standing, stated after each step that changed an
    /// alarm and with every restatement of the levels (retained on `alarms`, v1.6).
    ActiveAlarms(Box<ActiveAlarms>),
}

/// The alarms not back to normal at `ts`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveAlarms {
    pub ts: Timestamp,
    pub alarms: Vec<AlarmView>,
}

/// An alarm as the local API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmView {
    /// The occurrence's id while the alarm is not normal (see `AlarmEvent::alarm_id`).
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
