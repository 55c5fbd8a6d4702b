//! Any message as the centre reads it: [`Incoming`], decoded in one pass over the
//! bytes (no tree in between) and checked into the contract's [`Head`] and
//! [`Message`]. It refuses whatever the JSON Schemas refuse — unknown fields, nulls
//! where none may be, the schemas' if/then rules — which `tests/schema.rs` checks over
//! every single-field mutation of every message type.

use serde::Deserialize;

use super::samples::{is_table_id, PointInfo, Scan};
use super::wire::{
    some, Alarm, AlarmState, CommandReply, GatewayState, Head, Id, Message, Quality, Reading, Risk,
    Scope, SpecialOperation, Standing, Status, Text, Thresholds,
};
use crate::reading::Timestamp;

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
    table: Option<Text<'a>>,
    #[serde(default, deserialize_with = "some")]
    scans: Option<Vec<Scan>>,
    #[serde(default, deserialize_with = "some")]
    first: Option<u32>,
    #[serde(default, deserialize_with = "some")]
    total: Option<u32>,
    #[serde(borrow, default, deserialize_with = "some")]
    points: Option<Vec<PointInfo<'a>>>,
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
    enterprise_name: Option<Text<'a>>,
    #[serde(default, deserialize_with = "some")]
    clock_stepped_s: Option<f64>,
    #[serde(borrow, default, deserialize_with = "some")]
    history_error: Option<Text<'a>>,
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
    #[serde(borrow, default, deserialize_with = "some")]
    alarms: Option<Vec<Standing<'a>>>,
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
            "samples" => samples(self.table, self.scans)?,
            "points" => points(self.table, self.first, self.total, self.points)?,
            "alarm" => Message::Alarm {
                alarm: required(self.alarm, "alarm")?,
            },
            "risk" => risk(required(self.risk, "risk")?)?,
            "special_operation" => {
                special_operation(required(self.special_operation, "special_operation")?)?
            }
            "thresholds" => thresholds(required(self.thresholds, "thresholds")?)?,
            "active_alarms" => active_alarms(required(self.alarms, "alarms")?)?,
            "status" => Message::Status(Status {
                state: required(self.state, "state")?,
                enterprise_name: self.enterprise_name,
                version: required(self.version, "version")?,
                uptime_s: required(self.uptime_s, "uptime_s")?,
                spool_events: required(self.spool_events, "spool_events")?,
                spool_telemetry: required(self.spool_telemetry, "spool_telemetry")?,
                spool_bytes: required(self.spool_bytes, "spool_bytes")?,
                dropped_telemetry: required(self.dropped_telemetry, "dropped_telemetry")?,
                clock_stepped_s: self.clock_stepped_s,
                history_error: self.history_error,
            }),
            _ => command_reply(self.request_id, self.command, self.ok, self.error)?,
        };
        Ok((head, body))
    }

    /// The body fields the message's type has.
    fn fields_of_type(&self) -> Result<Vec<&'static str>, String> {
        Ok(match &*self.message_type {
            "telemetry" => vec!["readings"],
            "samples" => vec!["table", "scans"],
            "points" => vec!["table", "first", "total", "points"],
            "alarm" => vec!["alarm"],
            "risk" => vec!["risk"],
            "special_operation" => vec!["special_operation"],
            "thresholds" => vec!["thresholds"],
            "active_alarms" => vec!["alarms"],
            "status" => vec![
                "state",
                "enterprise_name",
                "version",
                "uptime_s",
                "spool_events",
                "spool_telemetry",
                "spool_bytes",
                "dropped_telemetry",
                "clock_stepped_s",
                "history_error",
            ],
            "command_reply" => vec!["request_id", "command", "ok", "error"],
            other => return Err(format!("unknown type `{other}`")),
        })
    }

    /// No body field of another type.
    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        let present = [
            ("readings", self.readings.is_some()),
            ("table", self.table.is_some()),
            ("scans", self.scans.is_some()),
            ("first", self.first.is_some()),
            ("total", self.total.is_some()),
            ("points", self.points.is_some()),
            ("alarm", self.alarm.is_some()),
            ("risk", self.risk.is_some()),
            ("special_operation", self.special_operation.is_some()),
            ("thresholds", self.thresholds.is_some()),
            ("state", self.state.is_some()),
            ("enterprise_name", self.enterprise_name.is_some()),
            ("version", self.version.is_some()),
            ("uptime_s", self.uptime_s.is_some()),
            ("spool_events", self.spool_events.is_some()),
            ("spool_telemetry", self.spool_telemetry.is_some()),
            ("spool_bytes", self.spool_bytes.is_some()),
            ("dropped_telemetry", self.dropped_telemetry.is_some()),
            ("clock_stepped_s", self.clock_stepped_s.is_some()),
            ("history_error", self.history_error.is_some()),
            ("request_id", self.request_id.is_some()),
            ("command", self.command.is_some()),
            ("ok", self.ok.is_some()),
            ("error", self.error.is_some()),
            ("alarms", self.alarms.is_some()),
        ];
        match present.iter().find(|(f, p)| *p && !allowed.contains(f)) {
            Some((f, _)) => Err(format!("`{f}` does not belong in a {}", self.message_type)),
            None => Ok(()),
        }
    }
}

/// A standing alarm is in an occurrence and not back to normal.
fn active_alarms(alarms: Vec<Standing<'_>>) -> Result<Message<'_>, String> {
    for (i, a) in alarms.iter().enumerate() {
        if a.alarm_id.is_empty() {
            return Err(format!("alarms[{i}].alarm_id must not be empty"));
        }
        if a.state == AlarmState::Normal {
            return Err(format!(
                "alarms[{i}].state: a standing alarm is never normal"
            ));
        }
    }
    Ok(Message::ActiveAlarms { alarms })
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

fn table(table: Option<Text<'_>>) -> Result<Text<'_>, String> {
    let table = required(table, "table")?;
    if !is_table_id(&table) {
        return Err(format!("table `{table}` is not 16 lowercase hex digits"));
    }
    Ok(table)
}

fn samples<'a>(t: Option<Text<'a>>, scans: Option<Vec<Scan>>) -> Result<Message<'a>, String> {
    let table = table(t)?;
    let scans = required(scans, "scans")?;
    if scans.is_empty() {
        return Err("scans must not be empty".into());
    }
    for s in &scans {
        s.check(None)?;
    }
    Ok(Message::Samples { table, scans })
}

fn points<'a>(
    t: Option<Text<'a>>,
    first: Option<u32>,
    total: Option<u32>,
    points: Option<Vec<PointInfo<'a>>>,
) -> Result<Message<'a>, String> {
    let table = table(t)?;
    let (first, total) = (required(first, "first")?, required(total, "total")?);
    let points = required(points, "points")?;
    if points.is_empty() {
        return Err("points must not be empty".into());
    }
    if u64::from(first) + points.len() as u64 > u64::from(total) {
        return Err(format!(
            "points {first}..{} lie beyond the table's {total}",
            u64::from(first) + points.len() as u64
        ));
    }
    Ok(Message::Points {
        table,
        first,
        total,
        points,
    })
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
