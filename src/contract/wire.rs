//! Every payload on the wire, one type each, serialised by the gateway and decoded by
//! the centre from the same definitions (`docs/mqtt.md`, schemas in `docs/schema/`).
//!
//! Text is `Cow<str>`: the gateway borrows its site's names, the centre borrows from
//! the received message; neither copies. Enums are the contract's vocabulary — a value
//! outside it does not decode.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{
    model::{
        alarm::{AlarmClass, AlarmKind, AlarmSettings},
        risk::Colour,
        PointKind,
    },
    reading::{self, Timestamp},
};

/// Text on the wire, borrowed where it can be.
pub type Text<'a> = Cow<'a, str>;

/// An identifier on the wire (park, enterprise, gateway, hazard source, point, device):
/// non-empty, without `/ + #` or whitespace — it is also a topic level and a store tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Id<'a>(pub Text<'a>);

impl<'a> From<&'a str> for Id<'a> {
    fn from(s: &'a str) -> Self {
        Id(Cow::Borrowed(s))
    }
}

impl std::ops::Deref for Id<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `s` may be an [`Id`].
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| matches!(c, '/' | '+' | '#') || c.is_whitespace())
}

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an id: non-empty, without / + # or whitespace")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Id<'de>, E> {
                is_id(s)
                    .then_some(Id(Cow::Borrowed(s)))
                    .ok_or_else(|| E::custom(format!("`{s}` is not an id")))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Id<'de>, E> {
                is_id(s)
                    .then(|| Id(Cow::Owned(s.to_string())))
                    .ok_or_else(|| E::custom(format!("`{s}` is not an id")))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// For a field the contract allows to be absent but not null: serde would take a null
/// `Option` as `None`; with this (and `default`), null is an error, as in the schemas.
fn some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// For a field the contract requires but allows to be null: serde takes a missing
/// `Option` as `None`; with this, a missing field is an error, as in the schemas.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

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
}

/// How far a reading can be trusted; `exception` beside it carries a Modbus code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Good,
    CommFailure,
    DeviceException,
    SensorFault,
    Stale,
}

impl Quality {
    /// As stored (string fields are not kept by every store): good 0 … stale 4.
    pub fn code(self) -> i64 {
        self as i64
    }
}

impl From<reading::Quality> for Quality {
    fn from(q: reading::Quality) -> Self {
        match q {
            reading::Quality::Good => Self::Good,
            reading::Quality::CommFailure => Self::CommFailure,
            reading::Quality::DeviceException(_) => Self::DeviceException,
            reading::Quality::SensorFault => Self::SensorFault,
            reading::Quality::Stale => Self::Stale,
        }
    }
}

/// A value in engineering units: a number, or a discrete state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    State(bool),
}

/// By hand, not `untagged`: serde's untagged enums buffer each value and try every
/// variant in turn, and a telemetry batch holds hundreds of values.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a boolean")
            }
            fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
                Ok(Value::Number(x))
            }
            fn visit_i64<E>(self, x: i64) -> Result<Value, E> {
                Ok(Value::Number(x as f64))
            }
            fn visit_u64<E>(self, x: u64) -> Result<Value, E> {
                Ok(Value::Number(x as f64))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
                Ok(Value::State(b))
            }
        }
        d.deserialize_any(Visit)
    }
}

impl Value {
    /// Discrete states as 1 / 0.
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Number(x) => x,
            Self::State(b) => f64::from(u8::from(b)),
        }
    }
}

impl From<reading::Value> for Value {
    fn from(v: reading::Value) -> Self {
        match v {
            reading::Value::Analog(x) => Self::Number(x),
            reading::Value::Discrete(b) => Self::State(b),
        }
    }
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
    #[serde(borrow)]
    pub version: Text<'a>,
    pub uptime_s: u64,
    pub spool_events: u64,
    pub spool_telemetry: u64,
    pub spool_bytes: u64,
    pub dropped_telemetry: u64,
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
            Message::Alarm { .. } => "alarm",
            Message::Risk { .. } => "risk",
            Message::SpecialOperation { .. } => "special_operation",
            Message::Thresholds { .. } => "thresholds",
            Message::Status(_) => "status",
            Message::CommandReply(_) => "command_reply",
        }
    }
}

/// Any message as the centre reads it, in one pass over its bytes and without a tree
/// in between: the head, the `type`, and every body's fields, each optional.
/// [`Incoming::into_message`] then checks that exactly the fields of the message's type
/// are there. Unknown fields are refused, as the schemas refuse them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incoming<'a> {
    seq: u64,
    #[serde(default, deserialize_with = "some")]
    stream_seq: Option<u64>,
    ts: Timestamp,
    #[serde(borrow)]
    park: Id<'a>,
    #[serde(borrow)]
    enterprise: Id<'a>,
    #[serde(borrow)]
    gateway: Id<'a>,
    #[serde(rename = "type", borrow)]
    message_type: Text<'a>,
    #[serde(borrow, default, deserialize_with = "some")]
    readings: Option<Vec<Reading<'a>>>,
    #[serde(borrow, default, deserialize_with = "some")]
    alarm: Option<Alarm<'a>>,
    #[serde(borrow, default, deserialize_with = "some")]
    risk: Option<Risk<'a>>,
    #[serde(borrow, default, deserialize_with = "some")]
    special_operation: Option<SpecialOperation<'a>>,
    #[serde(borrow, default, deserialize_with = "some")]
    thresholds: Option<Thresholds<'a>>,
    #[serde(default, deserialize_with = "some")]
    state: Option<GatewayState>,
    #[serde(borrow, default, deserialize_with = "some")]
    version: Option<Text<'a>>,
    #[serde(default, deserialize_with = "some")]
    uptime_s: Option<u64>,
    #[serde(default, deserialize_with = "some")]
    spool_events: Option<u64>,
    #[serde(default, deserialize_with = "some")]
    spool_telemetry: Option<u64>,
    #[serde(default, deserialize_with = "some")]
    spool_bytes: Option<u64>,
    #[serde(default, deserialize_with = "some")]
    dropped_telemetry: Option<u64>,
    /// Present (possibly null) or absent.
    #[serde(default, deserialize_with = "some")]
    request_id: Option<Option<Text<'a>>>,
    #[serde(borrow, default, deserialize_with = "some")]
    command: Option<Text<'a>>,
    #[serde(default, deserialize_with = "some")]
    ok: Option<bool>,
    #[serde(borrow, default, deserialize_with = "some")]
    error: Option<Text<'a>>,
}

impl<'a> Incoming<'a> {
    /// The head and the body, or what breaks the contract.
    pub fn into_message(self) -> Result<(Head<'a>, Message<'a>), String> {
        let status = self.message_type == "status";
        if self.seq == 0 && !status {
            return Err("seq must be at least 1".into());
        }
        if self.stream_seq == Some(0) {
            return Err("stream_seq must be at least 1".into());
        }
        self.only(&self.fields_of_type()?)?;
        let head = Head {
            seq: self.seq,
            stream_seq: self.stream_seq.unwrap_or(0),
            ts: self.ts,
            park: self.park,
            enterprise: self.enterprise,
            gateway: self.gateway,
        };
        let body = match &*self.message_type {
            "telemetry" => telemetry(self.readings)?,
            "alarm" => Message::Alarm {
                alarm: required(self.alarm, "alarm")?,
            },
            "risk" => risk(required(self.risk, "risk")?)?,
            "special_operation" => {
                special_operation(required(self.special_operation, "special_operation")?)?
            }
            "thresholds" => thresholds(required(self.thresholds, "thresholds")?)?,
            "status" => Message::Status(Status {
                state: required(self.state, "state")?,
                version: required(self.version, "version")?,
                uptime_s: required(self.uptime_s, "uptime_s")?,
                spool_events: required(self.spool_events, "spool_events")?,
                spool_telemetry: required(self.spool_telemetry, "spool_telemetry")?,
                spool_bytes: required(self.spool_bytes, "spool_bytes")?,
                dropped_telemetry: required(self.dropped_telemetry, "dropped_telemetry")?,
            }),
            _ => command_reply(self.request_id, self.command, self.ok, self.error)?,
        };
        Ok((head, body))
    }

    /// The body fields the message's type has.
    fn fields_of_type(&self) -> Result<Vec<&'static str>, String> {
        Ok(match &*self.message_type {
            "telemetry" => vec!["readings"],
            "alarm" => vec!["alarm"],
            "risk" => vec!["risk"],
            "special_operation" => vec!["special_operation"],
            "thresholds" => vec!["thresholds"],
            "status" => vec![
                "state",
                "version",
                "uptime_s",
                "spool_events",
                "spool_telemetry",
                "spool_bytes",
                "dropped_telemetry",
            ],
            "command_reply" => vec!["request_id", "command", "ok", "error"],
            other => return Err(format!("unknown type `{other}`")),
        })
    }

    /// No body field of another type.
    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        let present = [
            ("readings", self.readings.is_some()),
            ("alarm", self.alarm.is_some()),
            ("risk", self.risk.is_some()),
            ("special_operation", self.special_operation.is_some()),
            ("thresholds", self.thresholds.is_some()),
            ("state", self.state.is_some()),
            ("version", self.version.is_some()),
            ("uptime_s", self.uptime_s.is_some()),
            ("spool_events", self.spool_events.is_some()),
            ("spool_telemetry", self.spool_telemetry.is_some()),
            ("spool_bytes", self.spool_bytes.is_some()),
            ("dropped_telemetry", self.dropped_telemetry.is_some()),
            ("request_id", self.request_id.is_some()),
            ("command", self.command.is_some()),
            ("ok", self.ok.is_some()),
            ("error", self.error.is_some()),
        ];
        match present.iter().find(|(f, p)| *p && !allowed.contains(f)) {
            Some((f, _)) => Err(format!("`{f}` does not belong in a {}", self.message_type)),
            None => Ok(()),
        }
    }
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing field `{field}`"))
}

fn telemetry(readings: Option<Vec<Reading<'_>>>) -> Result<Message<'_>, String> {
    let readings = required(readings, "readings")?;
    if readings.is_empty() {
        return Err("readings must not be empty".into());
    }
    for r in &readings {
        if r.exception == Some(0) {
            return Err("exception codes are 1..=255".into());
        }
        if r.quality == Quality::DeviceException && r.exception.is_none() {
            return Err(format!(
                "{}: a device exception needs its `exception` code",
                r.point
            ));
        }
        let no_value = matches!(r.quality, Quality::CommFailure | Quality::DeviceException);
        if no_value && r.value.is_some() {
            return Err(format!(
                "{}: no value comes with {}",
                r.point,
                r.quality.as_str()
            ));
        }
    }
    Ok(Message::Telemetry { readings })
}

fn risk(risk: Risk<'_>) -> Result<Message<'_>, String> {
    if risk.scope == Scope::HazardSource && risk.id.is_none() {
        return Err("a hazard source's risk needs its `id`".into());
    }
    Ok(Message::Risk { risk })
}

fn special_operation(o: SpecialOperation<'_>) -> Result<Message<'_>, String> {
    if o.by.is_empty() {
        return Err("special_operation.by must not be empty".into());
    }
    Ok(Message::SpecialOperation {
        special_operation: o,
    })
}

fn thresholds(t: Thresholds<'_>) -> Result<Message<'_>, String> {
    if t.by.is_empty() {
        return Err("thresholds.by must not be empty".into());
    }
    for s in [&t.old, &t.new] {
        let delays = [s.on_delay_ms, s.off_delay_ms, s.fault_delay_ms];
        // JSON has no NaN: a deadband is a number, below zero or not.
        if s.deadband < 0.0 || delays.iter().any(|d| *d < 0) {
            return Err("deadband and delays must be ≥ 0".into());
        }
    }
    Ok(Message::Thresholds { thresholds: t })
}

fn command_reply<'a>(
    request_id: Option<Option<Text<'a>>>,
    command: Option<Text<'a>>,
    ok: Option<bool>,
    error: Option<Text<'a>>,
) -> Result<Message<'a>, String> {
    let ok = required(ok, "ok")?;
    if error.as_deref() == Some("") {
        return Err("error must not be empty".into());
    }
    if !ok && error.is_none() {
        return Err("a refused command's reply needs its `error`".into());
    }
    Ok(Message::CommandReply(CommandReply {
        request_id: required(request_id, "request_id")?,
        command: required(command, "command")?,
        ok,
        error,
    }))
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
