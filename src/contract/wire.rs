//! Every payload on the wire, one type each, serialised by the gateway and decoded by
//! the centre from the same definitions (`docs/mqtt.md`, schemas in `docs/schema/`).
//!
//! Text is `Cow<str>`: the gateway borrows its site's names, the centre borrows from
//! the received message; neither copies. Enums are the contract's vocabulary — a value
//! outside it does not decode.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use super::vocab::{is_id, Id, Quality, Text, Value};
pub(super) use super::vocab::{present, some};
use crate::{
    model::{
        alarm::{AlarmClass, AlarmKind, AlarmSettings},
        risk::Colour,
        PointKind,
    },
    reading::Timestamp,
};

/// The fields every message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head<'a> {
    /// Per gateway, persistent, never repeated (0 only on the Last Will).
    pub seq: u64,
    /// The message's number in its stream — events or telemetry (v1.3; absent on the
    /// Last Will).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stream_seq: u64,
    pub ts: Timestamp,
    #[serde(borrow)]
    pub park: Id<'a>,
    #[serde(borrow)]
    pub enterprise: Id<'a>,
    #[serde(borrow)]
    pub gateway: Id<'a>,
}

/// A whole message: the head's fields, then the body's, in one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<'a, B> {
    #[serde(flatten, borrow)]
    pub head: Head<'a>,
    #[serde(flatten)]
    pub body: B,
}

/// Message bodies, tagged by `type`. Built, serialised and dropped (never stored or
/// queued), so the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message<'a> {
    Telemetry {
        #[serde(borrow)]
        readings: Vec<Reading<'a>>,
    },
    /// Readings by index into the gateway's point table (v1.4, `docs/mqtt.md`).
    Samples {
        #[serde(borrow)]
        table: Text<'a>,
        scans: Vec<super::samples::Scan>,
    },
    /// A page of the gateway's point table (v1.4): points `first..first + len` of
    /// `total`.
    Points {
        #[serde(borrow)]
        table: Text<'a>,
        first: u32,
        total: u32,
        #[serde(borrow)]
        points: Vec<super::samples::PointInfo<'a>>,
    },
    Alarm {
        #[serde(borrow)]
        alarm: Alarm<'a>,
    },
    Risk {
        #[serde(borrow)]
        risk: Risk<'a>,
    },
    SpecialOperation {
        #[serde(borrow)]
        special_operation: SpecialOperation<'a>,
    },
    Thresholds {
        #[serde(borrow)]
        thresholds: Thresholds<'a>,
    },
    Status(#[serde(borrow)] Status<'a>),
    CommandReply(#[serde(borrow)] CommandReply<'a>),
    /// Every alarm standing at the gateway — not back to normal — retained on
    /// `alarms` (v1.6): a centre that starts during an alarm learns of it at once.
    ActiveAlarms {
        #[serde(borrow)]
        alarms: Vec<Standing<'a>>,
    },
}

/// A reading in a telemetry batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reading<'a> {
    #[serde(borrow)]
    pub point: Id<'a>,
    #[serde(borrow)]
    pub hazard_source: Id<'a>,
    /// The device the point is read from (v1.1; optional from older gateways).
    #[serde(
        borrow,
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub device: Option<Id<'a>>,
    pub kind: PointKind,
    #[serde(deserialize_with = "present")]
    pub value: Option<Value>,
    #[serde(borrow)]
    pub unit: Text<'a>,
    pub quality: Quality,
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub exception: Option<u8>,
    /// Above the measuring range: the value is a bound (v1.2, sent only when true).
    #[serde(default, skip_serializing_if = "is_false")]
    pub over_range: bool,
    /// Below the measuring range (v1.2, sent only when true).
    #[serde(default, skip_serializing_if = "is_false")]
    pub under_range: bool,
    /// Acquisition time.
    pub ts: Timestamp,
}

/// ISA-18.2 alarm states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Normal,
    ActiveUnacknowledged,
    ActiveAcknowledged,
    ReturnedUnacknowledged,
}

impl AlarmState {
    pub fn is_active(self) -> bool {
        matches!(self, Self::ActiveUnacknowledged | Self::ActiveAcknowledged)
    }

    pub fn is_unacknowledged(self) -> bool {
        matches!(
            self,
            Self::ActiveUnacknowledged | Self::ReturnedUnacknowledged
        )
    }
}

/// What an alarm event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmAction {
    Raised,
    Cleared,
    Acknowledged,
    Shelved,
    Unshelved,
    OutOfService,
    InService,
}

/// An alarm event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alarm<'a> {
    pub ts: Timestamp,
    /// The occurrence, `{point}:{alarm}:{raise ms}` (v1.3); null for an action on an
    /// alarm in no occurrence.
    #[serde(borrow, default)]
    pub alarm_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub point: Id<'a>,
    #[serde(borrow)]
    pub hazard_source: Id<'a>,
    pub alarm: AlarmKind,
    pub class: AlarmClass,
    pub action: AlarmAction,
    pub state: AlarmState,
    #[serde(deserialize_with = "present")]
    pub value: Option<f64>,
    /// The value is a bound: the detector saturated (v1.2).
    #[serde(default)]
    pub over_range: bool,
    #[serde(deserialize_with = "present")]
    pub limit: Option<f64>,
    #[serde(deserialize_with = "present")]
    pub by: Option<Text<'a>>,
    pub bad_quality: bool,
    pub shelved: bool,
    pub out_of_service: bool,
    /// The change happened while the gateway was down (v1.3, sent only when true).
    #[serde(default, skip_serializing_if = "is_false")]
    pub at_restart: bool,
    /// The point's engineering unit, for screens (v1.5).
    #[serde(
        borrow,
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub unit: Option<Text<'a>>,
}

/// An alarm standing at the gateway (v1.6): its occurrence and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standing<'a> {
    /// The occurrence, as its events carry it.
    #[serde(borrow)]
    pub alarm_id: Text<'a>,
    #[serde(borrow)]
    pub point: Id<'a>,
    #[serde(borrow)]
    pub hazard_source: Id<'a>,
    pub alarm: AlarmKind,
    pub class: AlarmClass,
    /// Never `normal`: a normal alarm is not standing.
    pub state: AlarmState,
    /// When it was raised, and the value then.
    pub raised: Timestamp,
    #[serde(deserialize_with = "present")]
    pub value: Option<f64>,
    #[serde(deserialize_with = "present")]
    pub limit: Option<f64>,
    /// Who acknowledged it, and when; null until someone has.
    #[serde(borrow, deserialize_with = "present")]
    pub acknowledged_by: Option<Text<'a>>,
    #[serde(deserialize_with = "present")]
    pub acknowledged_at: Option<Timestamp>,
    pub shelved: bool,
    pub out_of_service: bool,
    #[serde(
        borrow,
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub unit: Option<Text<'a>>,
}

/// Whose level a risk message gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    HazardSource,
    Enterprise,
}

/// A level change, or a restatement of the current level (`snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Risk<'a> {
    pub ts: Timestamp,
    pub scope: Scope,
    /// The hazard source (absent for the enterprise).
    #[serde(
        borrow,
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<Id<'a>>,
    pub from: Colour,
    pub to: Colour,
    #[serde(borrow)]
    pub reasons: Vec<Reason<'a>>,
    /// Since when `to` holds (v1.3).
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<Timestamp>,
    /// Not a change: the level restated (v1.3, sent only when true).
    #[serde(default, skip_serializing_if = "is_false")]
    pub snapshot: bool,
    /// The hazard source's name, or the enterprise's, for screens (v1.5).
    #[serde(
        borrow,
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Text<'a>>,
}

/// Why a scope has its colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason<'a> {
    #[serde(borrow)]
    pub rule: Text<'a>,
    pub colour: Colour,
    /// `{point}:{alarm}` of the alarms that meet the rule.
    #[serde(borrow)]
    pub alarms: Vec<Text<'a>>,
    pub since: Timestamp,
}

/// A special operation (特殊作业) began or ended on a hazard source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialOperation<'a> {
    pub ts: Timestamp,
    #[serde(borrow)]
    pub hazard_source: Id<'a>,
    pub active: bool,
    #[serde(borrow)]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub by: Text<'a>,
}

/// A point's alarm settings changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds<'a> {
    pub ts: Timestamp,
    #[serde(borrow)]
    pub point: Id<'a>,
    #[serde(borrow)]
    pub hazard_source: Id<'a>,
    #[serde(borrow)]
    pub by: Text<'a>,
    pub old: Cow<'a, AlarmSettings>,
    pub new: Cow<'a, AlarmSettings>,
}

/// Whether the gateway is connected; the Last Will says offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayState {
    Online,
    Offline,
}

/// Gateway status, retained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status<'a> {
    pub state: GatewayState,
    /// The enterprise's name, for screens (v1.5; absent on the Last Will).
    #[serde(
        borrow,
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub enterprise_name: Option<Text<'a>>,
    #[serde(borrow)]
    pub version: Text<'a>,
    pub uptime_s: u64,
    pub spool_events: u64,
    pub spool_telemetry: u64,
    pub spool_bytes: u64,
    pub dropped_telemetry: u64,
    /// How far the gateway's wall clock was stepped since it started (v1.5; sent only
    /// beyond 2 s): its timestamps before and after the step do not line up.
    #[serde(
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub clock_stepped_s: Option<f64>,
    /// Why the gateway's own history cannot be written (v1.6; sent only then): a full
    /// or broken disk. Acquisition, the judge and the uplink go on.
    #[serde(
        borrow,
        default,
        deserialize_with = "some",
        skip_serializing_if = "Option::is_none"
    )]
    pub history_error: Option<Text<'a>>,
}

/// The answer to a command, on `cmd/{name}/reply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandReply<'a> {
    #[serde(deserialize_with = "present")]
    pub request_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub command: Text<'a>,
    pub ok: bool,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Text<'a>>,
}

/// Longest texts of a `feedback` command, in characters: a cause is an id from the
/// centre's list; the measures and the text are a paragraph each, and the whole
/// request stays within what the gateway's audit log keeps of it.
pub const MAX_CAUSE_CHARS: usize = 64;
pub const MAX_FEEDBACK_CHARS: usize = 500;

/// `as_str`: each enum's wire spelling, for stores and screens that key on it (a test
/// holds it to the serde spelling).
macro_rules! spelled {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
    };
}

spelled!(Quality { Good => "good", CommFailure => "comm_failure", DeviceException => "device_exception", SensorFault => "sensor_fault", Stale => "stale" });
spelled!(AlarmState { Normal => "normal", ActiveUnacknowledged => "active_unacknowledged", ActiveAcknowledged => "active_acknowledged", ReturnedUnacknowledged => "returned_unacknowledged" });
spelled!(AlarmAction { Raised => "raised", Cleared => "cleared", Acknowledged => "acknowledged", Shelved => "shelved", Unshelved => "unshelved", OutOfService => "out_of_service", InService => "in_service" });
spelled!(Scope { HazardSource => "hazard_source", Enterprise => "enterprise" });
spelled!(GatewayState { Online => "online", Offline => "offline" });

impl Message<'_> {
    /// The message's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Telemetry { .. } => "telemetry",
            Message::Samples { .. } => "samples",
            Message::Points { .. } => "points",
            Message::Alarm { .. } => "alarm",
            Message::Risk { .. } => "risk",
            Message::SpecialOperation { .. } => "special_operation",
            Message::Thresholds { .. } => "thresholds",
            Message::Status(_) => "status",
            Message::CommandReply(_) => "command_reply",
            Message::ActiveAlarms { .. } => "active_alarms",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_name<T: Serialize>(t: T) -> String {
        serde_json::to_value(t)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn spellings_are_the_serde_names() {
        use AlarmAction as A;
        use AlarmState as S;
        use Quality as Q;
        for q in [
            Q::Good,
            Q::CommFailure,
            Q::DeviceException,
            Q::SensorFault,
            Q::Stale,
        ] {
            assert_eq!(q.as_str(), serde_name(q));
        }
        for s in [
            S::Normal,
            S::ActiveUnacknowledged,
            S::ActiveAcknowledged,
            S::ReturnedUnacknowledged,
        ] {
            assert_eq!(s.as_str(), serde_name(s));
        }
        for a in [
            A::Raised,
            A::Cleared,
            A::Acknowledged,
            A::Shelved,
            A::Unshelved,
            A::OutOfService,
            A::InService,
        ] {
            assert_eq!(a.as_str(), serde_name(a));
        }
        for s in [Scope::HazardSource, Scope::Enterprise] {
            assert_eq!(s.as_str(), serde_name(s));
        }
        for g in [GatewayState::Online, GatewayState::Offline] {
            assert_eq!(g.as_str(), serde_name(g));
        }
        for c in [AlarmClass::Low, AlarmClass::High, AlarmClass::Critical] {
            assert_eq!(c.as_str(), serde_name(c));
        }
        for c in [Colour::Blue, Colour::Yellow, Colour::Orange, Colour::Red] {
            assert_eq!(c.as_str(), serde_name(c));
        }
    }

    #[test]
    fn quality_codes_are_the_stored_ones() {
        let codes = [
            Quality::Good,
            Quality::CommFailure,
            Quality::DeviceException,
            Quality::SensorFault,
            Quality::Stale,
        ]
        .map(Quality::code);
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }
}
