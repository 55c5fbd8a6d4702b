//! One MQTT message from a gateway → checked → points for the store.
//!
//! The contract is checked against the same JSON Schemas the gateway's messages are
//! tested with (`docs/schema/`, embedded at build time), so the centre accepts exactly
//! what `docs/mqtt.md` promises — no second, drifting description of it. Then each
//! message type is mapped to its measurement (`docs/storage.md`). Everything here is
//! pure: no I/O, so it is tested and fuzzed without a broker or a store.

use std::{cell::RefCell, collections::HashMap, io::Write as _, sync::LazyLock, time::SystemTime};

use influxdb2::models::{DataPoint, WriteDataPoint};
use serde_json::Value;

/// Why a message was refused (and dead-lettered). `cause` is a fixed word, for the
/// metrics label and the once-per-cause log line; `detail` says exactly what.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub cause: &'static str,
    pub detail: String,
}

fn reject(cause: &'static str, detail: impl Into<String>) -> Rejected {
    Rejected {
        cause,
        detail: detail.into(),
    }
}

/// The stream a topic carries. Ingest reads every topic a gateway publishes on, so it
/// sees each message of the gateway's event stream and can tell loss (a gap in
/// `stream_seq`) from messages it merely was not subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Telemetry,
    Alarm,
    Risk,
    /// `risk/{scope}`: the retained level of one scope. Stored only when it is a
    /// restatement (`snapshot`): a copy of a change is already stored from `risk`.
    RiskOf,
    Status,
    /// `cmd/{name}/reply`: counted in the stream, nothing stored.
    Reply,
}

impl Stream {
    pub const ALL: [Stream; 6] = [
        Stream::Telemetry,
        Stream::Alarm,
        Stream::Risk,
        Stream::RiskOf,
        Stream::Status,
        Stream::Reply,
    ];

    /// The topic levels after the gateway, as a subscription filter.
    pub fn topic_level(self) -> &'static str {
        match self {
            Stream::Telemetry => "telemetry",
            Stream::Alarm => "alarm",
            Stream::Risk => "risk",
            Stream::RiskOf => "risk/+",
            Stream::Status => "status",
            Stream::Reply => "cmd/+/reply",
        }
    }

    /// Whether the topic levels after the gateway are this stream's.
    fn matches(self, rest: &[&str]) -> bool {
        match (self, rest) {
            (Stream::Telemetry, ["telemetry"])
            | (Stream::Alarm, ["alarm"])
            | (Stream::Risk, ["risk"])
            | (Stream::Status, ["status"]) => true,
            (Stream::RiskOf, ["risk", scope]) => !scope.is_empty(),
            (Stream::Reply, ["cmd", name, "reply"]) => !name.is_empty(),
            _ => false,
        }
    }

    /// The payload `type`s this stream may carry.
    fn types(self) -> &'static [&'static str] {
        match self {
            Stream::Telemetry => &["telemetry"],
            Stream::Alarm => &["alarm", "thresholds"],
            Stream::Risk => &["risk", "special_operation"],
            Stream::RiskOf => &["risk"],
            Stream::Status => &["status"],
            Stream::Reply => &["command_reply"],
        }
    }
}

/// What a good message yields.
#[derive(Debug)]
pub struct Decoded {
    pub message_type: &'static str,
    /// The points as line protocol (ms timestamps), one line each.
    pub lines: Vec<u8>,
    pub points: usize,
    /// The newest gateway timestamp in the message (ms since the epoch), for lag.
    pub newest_ms: Option<i64>,
    /// Where the message stands in its gateway's stream, for loss detection.
    pub position: Option<StreamPosition>,
}

/// A message's place in its gateway's stream (telemetry, or events): `stream_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    pub park: String,
    pub enterprise: String,
    pub gateway: String,
    pub telemetry: bool,
    pub n: u64,
}

impl StreamPosition {
    pub fn stream(&self) -> &'static str {
        if self.telemetry {
            "telemetry"
        } else {
            "events"
        }
    }

    /// The `seq_gap` point saying `missing` messages of this stream never came.
    pub fn gap_line(&self, missing: u64, ts_ms: i64) -> Result<Vec<u8>, Rejected> {
        let b = DataPoint::builder("seq_gap")
            .tag("park", self.park.as_str())
            .tag("enterprise", self.enterprise.as_str())
            .tag("gateway", self.gateway.as_str())
            .tag("stream", self.stream())
            .field("missing", i64::try_from(missing).unwrap_or(i64::MAX))
            .field("before", i64::try_from(self.n).unwrap_or(i64::MAX))
            .timestamp(ts_ms);
        let mut out = Vec::new();
        render(&mut out, build(b)?);
        Ok(out)
    }
}

/// Loss in each gateway's streams: what `stream_seq` skipped.
#[derive(Debug, Default)]
pub struct Gaps {
    last: std::collections::HashMap<(String, String, String, bool), u64>,
}

impl Gaps {
    /// How many messages of the stream were lost just before this one: 0 for the next in
    /// order, the first seen, or a resend (a number already passed). A stream that starts
    /// again at 1 (a gateway with a new spool) starts afresh.
    pub fn see(&mut self, p: &StreamPosition) -> u64 {
        let key = (
            p.park.clone(),
            p.enterprise.clone(),
            p.gateway.clone(),
            p.telemetry,
        );
        let last = self.last.entry(key).or_insert(p.n.saturating_sub(1));
        if p.n == 1 {
            *last = 1;
            return 0;
        }
        if p.n <= *last {
            return 0;
        }
        let missing = p.n - *last - 1;
        *last = p.n;
        missing
    }
}

/// The identity a topic names: `{prefix}/v1/{park}/{enterprise}/{gateway}/{stream}`.
#[derive(Debug, PartialEq)]
struct TopicId<'a> {
    park: &'a str,
    enterprise: &'a str,
    gateway: &'a str,
    stream: Stream,
}

fn parse_topic<'a>(prefix: &str, topic: &'a str) -> Option<TopicId<'a>> {
    let parts: Vec<&str> = topic.split('/').collect();
    let [p, v, park, enterprise, gateway, rest @ ..] = parts.as_slice() else {
        return None;
    };
    if *p != prefix || *v != "v1" {
        return None;
    }
    let stream = Stream::ALL.into_iter().find(|s| s.matches(rest))?;
    Some(TopicId {
        park,
        enterprise,
        gateway,
        stream,
    })
}

macro_rules! schema {
    ($file:literal) => {
        LazyLock::new(|| {
            let schema: Value =
                serde_json::from_str(include_str!(concat!("../../docs/schema/", $file)))
                    .expect("embedded schema is JSON: every_embedded_schema_compiles");
            jsonschema::validator_for(&schema)
                .expect("embedded schema compiles: every_embedded_schema_compiles")
        })
    };
}

static TELEMETRY: LazyLock<jsonschema::Validator> = schema!("telemetry.json");
static ALARM: LazyLock<jsonschema::Validator> = schema!("alarm.json");
static RISK: LazyLock<jsonschema::Validator> = schema!("risk.json");
static SPECIAL: LazyLock<jsonschema::Validator> = schema!("special-operation.json");
static THRESHOLDS: LazyLock<jsonschema::Validator> = schema!("thresholds.json");
static REPLY: LazyLock<jsonschema::Validator> = schema!("command-reply.json");
static STATUS: LazyLock<jsonschema::Validator> = schema!("status.json");

fn validator(message_type: &str) -> Option<&'static jsonschema::Validator> {
    Some(match message_type {
        "telemetry" => &TELEMETRY,
        "alarm" => &ALARM,
        "risk" => &RISK,
        "special_operation" => &SPECIAL,
        "thresholds" => &THRESHOLDS,
        "status" => &STATUS,
        "command_reply" => &REPLY,
        _ => return None,
    })
}

/// Checks one message and maps it to points. `received_ms` stamps what has no time of
/// its own worth keeping (the Last Will, built when the gateway connected).
pub fn decode(
    prefix: &str,
    topic: &str,
    payload: &[u8],
    max_bytes: usize,
    received_ms: i64,
) -> Result<Decoded, Rejected> {
    let id = parse_topic(prefix, topic).ok_or_else(|| {
        reject(
            "unknown_topic",
            format!("`{topic}` is not a v1 gateway topic"),
        )
    })?;
    if payload.len() > max_bytes {
        return Err(reject(
            "too_large",
            format!("{} bytes, over the {max_bytes}-byte limit", payload.len()),
        ));
    }
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| reject("not_json", format!("not JSON: {e}")))?;
    let message_type = v["type"].as_str().unwrap_or_default();
    let message_type = id
        .stream
        .types()
        .iter()
        .copied()
        .find(|t| *t == message_type)
        .ok_or_else(|| {
            reject(
                "wrong_type",
                format!(
                    "type `{message_type}` does not belong on `{}`",
                    id.stream.topic_level()
                ),
            )
        })?;
    let schema = validator(message_type)
        .ok_or_else(|| reject("wrong_type", format!("no schema for `{message_type}`")))?;
    // is_valid stops at the first failure and builds no error: the common case is cheap.
    if let Some(e) = (!schema.is_valid(&v))
        .then(|| schema.iter_errors(&v).next())
        .flatten()
    {
        return Err(reject(
            "schema_invalid",
            format!("{message_type} at {}: {e}", e.instance_path),
        ));
    }
    for (field, expected) in [
        ("park", id.park),
        ("enterprise", id.enterprise),
        ("gateway", id.gateway),
    ] {
        if v[field] != expected {
            return Err(reject(
                "identity_mismatch",
                format!(
                    "{field} {} in the payload, `{expected}` in the topic",
                    v[field]
                ),
            ));
        }
    }
    let ids = Identity {
        park: id.park,
        enterprise: id.enterprise,
        gateway: id.gateway,
    };
    let seq = v["seq"].as_i64().unwrap_or_default();
    let mut points = 0usize;
    let mut lines: Vec<u8> = Vec::new();
    let mut newest_ms = None;
    let mut stamp = |ts: i64| {
        newest_ms = Some(newest_ms.map_or(ts, |n: i64| n.max(ts)));
        ts
    };
    // The schema has been checked: fields below exist with the right types; a time
    // that still does not parse is a schema gap, refused rather than guessed.
    let time = |s: &str| -> Result<i64, Rejected> {
        parse_ms(s).ok_or_else(|| reject("schema_invalid", format!("bad timestamp `{s}`")))
    };
    match message_type {
        "telemetry" => {
            let readings = v["readings"].as_array().map_or(&[][..], Vec::as_slice);
            lines.reserve(readings.len() * 200);
            // The readings of one scan share their timestamp: parse each text once.
            let mut last_ts: (&str, i64) = ("", 0);
            for r in readings {
                let r = Reading::of(r);
                if r.ts != last_ts.0 {
                    last_ts = (r.ts, time(r.ts)?);
                }
                let ts = stamp(last_ts.1);
                let tags = ReadingTags {
                    ids: &ids,
                    hazard_source: r.hazard_source,
                    point: r.point,
                    kind: r.kind,
                    device: r.device,
                    unit: r.unit.filter(|u| !u.is_empty()),
                };
                let fields = Fields {
                    exception: r.exception,
                    quality: quality_code(r.quality),
                    value: r.value,
                    over_range: r.over_range,
                    under_range: r.under_range,
                };
                tags.write_line(&mut lines, &fields, ts)?;
                points += 1;
            }
        }
        "alarm" => {
            let a = &v["alarm"];
            let ts = stamp(time(text(&a["ts"]))?);
            let mut b = ids
                .tags(DataPoint::builder("alarm"))
                .tag("hazard_source", text(&a["hazard_source"]))
                .tag("point", text(&a["point"]))
                .tag("alarm", text(&a["alarm"]))
                .tag("class", text(&a["class"]))
                .tag("action", text(&a["action"]))
                .tag("state", text(&a["state"]))
                // Whether the alarm is still active after this event: "active now"
                // is then last(active) per alarm, whatever the store.
                .field("active", i64::from(a["state"] != "normal"))
                .field("seq", seq)
                .field("bad_quality", a["bad_quality"].as_bool() == Some(true))
                .field("over_range", a["over_range"].as_bool() == Some(true))
                .field("shelved", a["shelved"].as_bool() == Some(true))
                .field(
                    "out_of_service",
                    a["out_of_service"].as_bool() == Some(true),
                );
            if let Some(x) = number(&a["value"]) {
                b = b.field("value", x);
            }
            if let Some(x) = number(&a["limit"]) {
                b = b.field("limit", x);
            }
            if let Some(by) = a["by"].as_str() {
                b = b.field("by", by);
            }
            // The occurrence (v1.3): ties raise, acknowledgement and clear together. A
            // field, not a tag: one value per occurrence would make a series each.
            if let Some(id) = a["alarm_id"].as_str() {
                b = b.field("alarm_id", id);
            }
            if a["at_restart"] == true {
                b = b.field("at_restart", true);
            }
            render(&mut lines, build(b.timestamp(ts))?);
            points += 1;
        }
        // A retained copy of a change: stored already, from `risk`.
        "risk" if id.stream == Stream::RiskOf && v["risk"]["snapshot"] != true => {}
        "command_reply" => {}
        "risk" => {
            let r = &v["risk"];
            let ts = stamp(time(text(&r["ts"]))?);
            let scope = text(&r["scope"]);
            let source = if scope == "enterprise" {
                "enterprise"
            } else {
                text(&r["id"])
            };
            let reasons: Vec<String> = r["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| format!("{} ({})", text(&x["rule"]), text(&x["colour"])))
                .collect();
            let b = ids
                .tags(DataPoint::builder("risk"))
                .tag("scope", scope)
                .tag("hazard_source", source)
                .tag("colour", text(&r["to"]))
                .field("level", colour_level(text(&r["to"])))
                .field("from_level", colour_level(text(&r["from"])))
                .field("colour", text(&r["to"]))
                .field("reasons", reasons.join("; "))
                .field("snapshot", i64::from(r["snapshot"] == true))
                .field("seq", seq);
            render(&mut lines, build(b.timestamp(ts))?);
            points += 1;
        }
        "special_operation" => {
            let o = &v["special_operation"];
            let ts = stamp(time(text(&o["ts"]))?);
            let b = ids
                .tags(DataPoint::builder("special_operation"))
                .tag("hazard_source", text(&o["hazard_source"]))
                .field("active", i64::from(o["active"].as_bool() == Some(true)))
                .field("kind", text(&o["kind"]))
                .field("by", text(&o["by"]))
                .field("seq", seq);
            render(&mut lines, build(b.timestamp(ts))?);
            points += 1;
        }
        "thresholds" => {
            let t = &v["thresholds"];
            let ts = stamp(time(text(&t["ts"]))?);
            let mut b = ids
                .tags(DataPoint::builder("threshold_change"))
                .tag("hazard_source", text(&t["hazard_source"]))
                .tag("point", text(&t["point"]))
                .field("by", text(&t["by"]))
                .field("old", t["old"].to_string())
                .field("new", t["new"].to_string())
                .field("seq", seq);
            // The new limits as numbers: a dashboard draws them as threshold lines.
            for limit in ["hh", "h", "l", "ll"] {
                if let Some(x) = number(&t["new"][limit]) {
                    b = b.field(limit, x);
                }
            }
            render(&mut lines, build(b.timestamp(ts))?);
            points += 1;
        }
        "status" => {
            // The Last Will (seq 0) was built when the gateway connected: its own `ts`
            // would put "offline" before the "online" it follows.
            let ts = if seq == 0 {
                received_ms
            } else {
                time(text(&v["ts"]))?
            };
            let ts = stamp(ts);
            let int = |k: &str| v[k].as_i64().unwrap_or_default();
            let b = ids
                .tags(DataPoint::builder("gateway_status"))
                .field("online", i64::from(v["state"] == "online"))
                .field("uptime_s", int("uptime_s"))
                .field("spool_events", int("spool_events"))
                .field("spool_telemetry", int("spool_telemetry"))
                .field("spool_bytes", int("spool_bytes"))
                .field("dropped_telemetry", int("dropped_telemetry"))
                .field("version", text(&v["version"]))
                .field("seq", seq);
            render(&mut lines, build(b.timestamp(ts))?);
            points += 1;
        }
        _ => unreachable!("message types are limited by Stream::types"),
    }
    let position = v["stream_seq"].as_u64().map(|n| StreamPosition {
        park: id.park.to_string(),
        enterprise: id.enterprise.to_string(),
        gateway: id.gateway.to_string(),
        telemetry: message_type == "telemetry",
        n,
    });
    Ok(Decoded {
        message_type,
        lines,
        points,
        newest_ms,
        position,
    })
}

struct Identity<'a> {
    park: &'a str,
    enterprise: &'a str,
    gateway: &'a str,
}

impl Identity<'_> {
    fn tags(
        &self,
        b: influxdb2::models::data_point::DataPointBuilder,
    ) -> influxdb2::models::data_point::DataPointBuilder {
        b.tag("park", self.park)
            .tag("enterprise", self.enterprise)
            .tag("gateway", self.gateway)
    }
}

fn render(lines: &mut Vec<u8>, p: DataPoint) {
    // Writing into a Vec cannot fail.
    let _ = p.write_data_point_to(lines);
}

/// One schema-checked reading's fields, gathered in a single pass over its object
/// (a lookup per field searched the map eight times per reading).
#[derive(Default)]
struct Reading<'a> {
    point: &'a str,
    hazard_source: &'a str,
    kind: &'a str,
    device: Option<&'a str>,
    unit: Option<&'a str>,
    quality: &'a str,
    value: Option<f64>,
    exception: Option<i64>,
    over_range: bool,
    under_range: bool,
    ts: &'a str,
}

impl<'a> Reading<'a> {
    fn of(v: &'a Value) -> Self {
        let mut r = Reading::default();
        for (key, x) in v.as_object().into_iter().flatten() {
            match key.as_str() {
                "point" => r.point = text(x),
                "hazard_source" => r.hazard_source = text(x),
                "kind" => r.kind = text(x),
                "device" => r.device = x.as_str(),
                "unit" => r.unit = x.as_str(),
                "quality" => r.quality = text(x),
                "value" => r.value = number(x),
                "exception" => r.exception = x.as_i64(),
                "over_range" => r.over_range = x.as_bool() == Some(true),
                "under_range" => r.under_range = x.as_bool() == Some(true),
                "ts" => r.ts = text(x),
                _ => {}
            }
        }
        r
    }
}

/// The fields of one reading's line. The range flags are written only when set
/// (`over_range=1i`, `under_range=1i`): they are rare, and every byte of a reading's
/// line costs throughput.
#[derive(Debug, Clone, Copy, Default)]
struct Fields {
    exception: Option<i64>,
    quality: i64,
    value: Option<f64>,
    over_range: bool,
    under_range: bool,
}

/// The tags of one reading's point.
struct ReadingTags<'a> {
    ids: &'a Identity<'a>,
    hazard_source: &'a str,
    point: &'a str,
    kind: &'a str,
    device: Option<&'a str>,
    unit: Option<&'a str>,
}

thread_local! {
    /// Line-protocol prefixes (`reading,<escaped tags>`) by point identity. A gateway
    /// sends the same points over and over; the prefix is rendered once, by the
    /// influxdb2 crate (which escapes correctly), and reused — building a DataPoint per
    /// reading cost more than everything else in ingest together.
    static PREFIXES: RefCell<(String, HashMap<String, Vec<u8>>)> = RefCell::default();
}

/// At most this many point prefixes are cached per thread (≈ 200 B each).
const PREFIX_CACHE: usize = 200_000;

impl ReadingTags<'_> {
    fn data_point(&self) -> influxdb2::models::data_point::DataPointBuilder {
        let mut b = self
            .ids
            .tags(DataPoint::builder("reading"))
            .tag("hazard_source", self.hazard_source)
            .tag("point", self.point)
            .tag("kind", self.kind);
        if let Some(device) = self.device {
            b = b.tag("device", device);
        }
        if let Some(unit) = self.unit {
            b = b.tag("unit", unit);
        }
        b
    }

    /// Appends the reading's line: cached tags, then fields in the crate's (sorted)
    /// order, then the timestamp.
    fn write_line(&self, out: &mut Vec<u8>, f: &Fields, ts: i64) -> Result<(), Rejected> {
        /// What the probe point ends with: its one field and timestamp.
        const PROBE_TAIL: &[u8] = b" x=0i 0\n";
        PREFIXES.with(|cache| {
            let (key, map) = &mut *cache.borrow_mut();
            key.clear();
            for part in [
                self.ids.park,
                self.ids.enterprise,
                self.ids.gateway,
                self.hazard_source,
                self.point,
                self.kind,
                self.device.unwrap_or("\u{1}"),
                self.unit.unwrap_or("\u{1}"),
            ] {
                key.push_str(part);
                key.push('\0');
            }
            if !map.contains_key(key.as_str()) {
                let mut probe = Vec::new();
                render(
                    &mut probe,
                    build(self.data_point().field("x", 0i64).timestamp(0))?,
                );
                let prefix = probe
                    .strip_suffix(PROBE_TAIL)
                    .ok_or_else(|| reject("schema_invalid", "cannot form a reading's tags"))?;
                if map.len() >= PREFIX_CACHE {
                    map.clear();
                }
                map.insert(key.clone(), prefix.to_vec());
            }
            out.extend_from_slice(&map[key.as_str()]);
            Ok::<(), Rejected>(())
        })?;
        // Numbers as the crate writes them: integers with `i`, floats by Display.
        out.push(b' ');
        if let Some(code) = f.exception {
            let _ = write!(out, "exception={code}i,");
        }
        let _ = write!(out, "good={}i,", i64::from(f.quality == 0));
        if f.over_range {
            out.extend_from_slice(b"over_range=1i,");
        }
        let _ = write!(out, "quality={}i", f.quality);
        if f.under_range {
            out.extend_from_slice(b",under_range=1i");
        }
        if let Some(x) = f.value {
            let _ = write!(out, ",value={x}");
        }
        let _ = writeln!(out, " {ts}");
        Ok(())
    }
}

fn build(b: influxdb2::models::data_point::DataPointBuilder) -> Result<DataPoint, Rejected> {
    b.build()
        .map_err(|e| reject("schema_invalid", format!("cannot form a point: {e}")))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A reading's value as a number: discrete states become 1 / 0.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        other => other.as_f64(),
    }
}

/// Quality as a stored code (string fields are not kept by every store).
pub fn quality_code(q: &str) -> i64 {
    match q {
        "good" => 0,
        "comm_failure" => 1,
        "device_exception" => 2,
        "sensor_fault" => 3,
        "stale" => 4,
        _ => -1,
    }
}

/// Risk colour as a level: blue 0, yellow 1, orange 2, red 3.
pub fn colour_level(c: &str) -> i64 {
    match c {
        "blue" => 0,
        "yellow" => 1,
        "orange" => 2,
        "red" => 3,
        _ => -1,
    }
}

/// RFC 3339 → milliseconds since the epoch.
pub fn parse_ms(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(s).ok()?;
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "hazgate/v1/P1/E1/G1/telemetry";

    /// The schemas are compiled into the binary: this proves the `expect`s in
    /// `schema!` can not fire, for every type a topic may carry.
    #[test]
    fn every_embedded_schema_compiles() {
        for stream in Stream::ALL {
            for t in stream.types() {
                let v = validator(t).unwrap_or_else(|| panic!("no schema for {t}"));
                assert!(
                    !v.is_valid(&serde_json::json!({})),
                    "{t} rejects an empty object"
                );
            }
        }
    }

    fn text(d: &Decoded) -> String {
        String::from_utf8(d.lines.clone()).unwrap()
    }

    #[test]
    fn gaps_count_what_a_stream_skipped_not_resends_or_the_other_stream() {
        let p = |telemetry: bool, n: u64| StreamPosition {
            park: "P".into(),
            enterprise: "E".into(),
            gateway: "G".into(),
            telemetry,
            n,
        };
        let mut g = Gaps::default();
        assert_eq!(g.see(&p(true, 7)), 0, "first seen");
        assert_eq!(g.see(&p(true, 8)), 0);
        assert_eq!(g.see(&p(false, 3)), 0, "events are a stream of their own");
        assert_eq!(g.see(&p(true, 11)), 2, "9 and 10 lost");
        assert_eq!(g.see(&p(true, 9)), 0, "a late resend is not a loss");
        assert_eq!(g.see(&p(false, 4)), 0);
        assert_eq!(g.see(&p(true, 1)), 0, "a new spool starts again");
        assert_eq!(g.see(&p(true, 3)), 1);
        let line = p(true, 3).gap_line(1, 1_795_419_779_123).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "seq_gap,enterprise=E,gateway=G,park=P,stream=telemetry before=3i,missing=1i 1795419779123\n"
        );
    }

    #[test]
    fn cached_reading_lines_are_what_the_crate_would_write() {
        // Ids may hold what line protocol escapes (`,` `=`), units spaces-free symbols.
        for (point, unit, exception, quality, value, over, under) in [
            ("GT-101", Some("%LEL"), None, 0, Some(12.5), false, false),
            ("A,B=C", Some("m³/h"), Some(2), 2, None, false, false),
            ("T\\1", None, None, 3, Some(-0.000123), false, true),
            ("BIG", Some("kPa"), None, 0, Some(1e21), true, false),
        ] {
            let ids = Identity {
                park: "P,1",
                enterprise: "E=1",
                gateway: "G1",
            };
            let tags = ReadingTags {
                ids: &ids,
                hazard_source: "HS-01",
                point,
                kind: "pressure",
                device: Some("D1"),
                unit,
            };
            for _ in 0..2 {
                // second round: from the cache
                let mut ours = Vec::new();
                let fields = Fields {
                    exception,
                    quality,
                    value,
                    over_range: over,
                    under_range: under,
                };
                tags.write_line(&mut ours, &fields, 1_795_419_778_001)
                    .unwrap();
                let mut b = tags
                    .data_point()
                    .field("quality", quality)
                    .field("good", i64::from(quality == 0));
                if let Some(x) = value {
                    b = b.field("value", x);
                }
                if let Some(e) = exception {
                    b = b.field("exception", e);
                }
                if over {
                    b = b.field("over_range", 1i64);
                }
                if under {
                    b = b.field("under_range", 1i64);
                }
                let mut theirs = Vec::new();
                render(&mut theirs, build(b.timestamp(1_795_419_778_001)).unwrap());
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(theirs).unwrap()
                );
            }
        }
    }

    fn telemetry(readings: &str) -> String {
        format!(
            r#"{{"seq":5,"ts":"2026-11-23T07:42:59.123Z","park":"P1","enterprise":"E1","gateway":"G1","type":"telemetry","readings":[{readings}]}}"#
        )
    }

    #[test]
    fn a_reading_becomes_one_point_at_its_acquisition_time() {
        let msg = telemetry(
            r#"{"point":"GT-101","hazard_source":"HS-01","device":"D1","kind":"combustible_gas","value":12.5,"unit":"%LEL","quality":"good","ts":"2026-11-23T07:42:58.001Z"},
               {"point":"BP-101","hazard_source":"HS-01","kind":"interlock_bypass","value":null,"unit":"","quality":"device_exception","exception":2,"ts":"2026-11-23T07:42:58.002Z"}"#,
        );
        let d = decode("hazgate", T, msg.as_bytes(), 1 << 20, 0).unwrap();
        let text = String::from_utf8(d.lines.clone()).unwrap();
        let lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
        assert_eq!(
            lines[0],
            "reading,device=D1,enterprise=E1,gateway=G1,hazard_source=HS-01,kind=combustible_gas,park=P1,point=GT-101,unit=%LEL good=1i,quality=0i,value=12.5 1795419778001\n"
        );
        assert_eq!(
            lines[1],
            "reading,enterprise=E1,gateway=G1,hazard_source=HS-01,kind=interlock_bypass,park=P1,point=BP-101 exception=2i,good=0i,quality=2i 1795419778002\n"
        );
        assert_eq!(d.newest_ms, Some(1_795_419_778_002));
    }

    #[test]
    fn every_kind_of_bad_message_is_refused_with_its_cause() {
        let ok = telemetry(
            r#"{"point":"GT-101","hazard_source":"HS-01","kind":"combustible_gas","value":1.0,"unit":"%LEL","quality":"good","ts":"2026-11-23T07:42:58.001Z"}"#,
        );
        let cases: Vec<(&str, String, &str)> = vec![
            ("hazgate/v1/P1/E1/G1/other", ok.clone(), "unknown_topic"),
            ("other/v1/P1/E1/G1/telemetry", ok.clone(), "unknown_topic"),
            (T, "x".repeat(2000), "too_large"),
            (T, telemetry(""), "schema_invalid"),
            (T, "not json".into(), "not_json"),
            (
                T,
                ok.replace("\"telemetry\",\"readings\"", "\"alarm\",\"readings\""),
                "wrong_type",
            ),
            (
                T,
                ok.replace("\"seq\":5", "\"seq\":\"5\""),
                "schema_invalid",
            ),
            (
                T,
                ok.replace("\"gateway\":\"G1\"", "\"gateway\":\"G2\""),
                "identity_mismatch",
            ),
        ];
        for (topic, payload, cause) in cases {
            let r = decode("hazgate", topic, payload.as_bytes(), 1024, 0).unwrap_err();
            assert_eq!(r.cause, cause, "{topic} {payload}: {r:?}");
        }
    }

    #[test]
    fn an_alarm_point_carries_its_occurrence_and_restart_mark() {
        let msg = r#"{"seq":9,"stream_seq":4,"ts":"2026-11-23T07:42:59.123Z","park":"P1","enterprise":"E1","gateway":"G1","type":"alarm","alarm":{"ts":"2026-11-23T07:42:59.123Z","alarm_id":"GT-101:hh:1795419700000","point":"GT-101","hazard_source":"HS-01","alarm":"hh","class":"critical","action":"cleared","state":"returned_unacknowledged","value":3.0,"limit":40.0,"by":null,"bad_quality":false,"shelved":false,"out_of_service":false,"at_restart":true}}"#;
        let d = decode(
            "hazgate",
            "hazgate/v1/P1/E1/G1/alarm",
            msg.as_bytes(),
            1 << 20,
            0,
        )
        .unwrap();
        let line = text(&d);
        assert!(
            line.contains(r#"alarm_id="GT-101:hh:1795419700000""#)
                && line.contains("at_restart=t,"),
            "{line}"
        );
        assert_eq!(
            d.position,
            Some(StreamPosition {
                park: "P1".into(),
                enterprise: "E1".into(),
                gateway: "G1".into(),
                telemetry: false,
                n: 4
            })
        );
    }

    #[test]
    fn the_last_will_is_stamped_when_received() {
        let will = r#"{"seq":0,"ts":"2026-11-23T07:00:00.000Z","park":"P1","enterprise":"E1","gateway":"G1","type":"status","state":"offline","version":"0.1.0","uptime_s":0,"spool_events":0,"spool_telemetry":0,"spool_bytes":0,"dropped_telemetry":0}"#;
        let d = decode(
            "hazgate",
            "hazgate/v1/P1/E1/G1/status",
            will.as_bytes(),
            1 << 20,
            42,
        )
        .unwrap();
        assert!(text(&d).ends_with(" 42\n"), "{}", text(&d));
        assert!(text(&d).contains("online=0i"));
    }
}
