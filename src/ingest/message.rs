//! One MQTT message from a gateway → checked → points for the store.
//!
//! The contract is checked against the same JSON Schemas the gateway's messages are
//! tested with (`docs/schema/`, embedded at build time), so the centre accepts exactly
//! what `docs/mqtt.md` promises — no second, drifting description of it. Then each
//! message type is mapped to its measurement (`docs/storage.md`). Everything here is
//! pure: no I/O, so it is tested and fuzzed without a broker or a store.

use std::{sync::LazyLock, time::SystemTime};

use influxdb2::models::DataPoint;
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

/// The stream a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Telemetry,
    Alarm,
    Risk,
    Status,
}

impl Stream {
    pub const ALL: [Stream; 4] = [
        Stream::Telemetry,
        Stream::Alarm,
        Stream::Risk,
        Stream::Status,
    ];

    pub fn topic_level(self) -> &'static str {
        match self {
            Stream::Telemetry => "telemetry",
            Stream::Alarm => "alarm",
            Stream::Risk => "risk",
            Stream::Status => "status",
        }
    }

    /// The payload `type`s this stream may carry.
    fn types(self) -> &'static [&'static str] {
        match self {
            Stream::Telemetry => &["telemetry"],
            Stream::Alarm => &["alarm", "thresholds"],
            Stream::Risk => &["risk", "special_operation"],
            Stream::Status => &["status"],
        }
    }
}

/// What a good message yields.
#[derive(Debug)]
pub struct Decoded {
    pub message_type: &'static str,
    pub points: Vec<DataPoint>,
    /// The newest gateway timestamp in the message (ms since the epoch), for lag.
    pub newest_ms: Option<i64>,
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
    let mut it = topic.split('/');
    let (p, v, park, enterprise, gateway, stream) = (
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    );
    if p != prefix || v != "v1" || it.next().is_some() {
        return None;
    }
    let stream = Stream::ALL
        .into_iter()
        .find(|s| s.topic_level() == stream)?;
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
                    .expect("embedded schema is JSON (checked by tests/schema.rs)");
            jsonschema::validator_for(&schema).expect("embedded schema compiles")
        })
    };
}

static TELEMETRY: LazyLock<jsonschema::Validator> = schema!("telemetry.json");
static ALARM: LazyLock<jsonschema::Validator> = schema!("alarm.json");
static RISK: LazyLock<jsonschema::Validator> = schema!("risk.json");
static SPECIAL: LazyLock<jsonschema::Validator> = schema!("special-operation.json");
static THRESHOLDS: LazyLock<jsonschema::Validator> = schema!("thresholds.json");
static STATUS: LazyLock<jsonschema::Validator> = schema!("status.json");

fn validator(message_type: &str) -> Option<&'static jsonschema::Validator> {
    Some(match message_type {
        "telemetry" => &TELEMETRY,
        "alarm" => &ALARM,
        "risk" => &RISK,
        "special_operation" => &SPECIAL,
        "thresholds" => &THRESHOLDS,
        "status" => &STATUS,
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
    let mut points = Vec::new();
    let mut newest_ms = None;
    let mut stamp = |ts: i64| {
        newest_ms = Some(newest_ms.map_or(ts, |n: i64| n.max(ts)));
        ts
    };
    // The schema has been checked: fields below exist with the right types; a time
    // that still does not parse is a schema gap, refused rather than guessed.
    let time = |v: &Value| -> Result<i64, Rejected> {
        let s = v.as_str().unwrap_or_default();
        parse_ms(s).ok_or_else(|| reject("schema_invalid", format!("bad timestamp `{s}`")))
    };
    match message_type {
        "telemetry" => {
            for r in v["readings"].as_array().into_iter().flatten() {
                let ts = stamp(time(&r["ts"])?);
                let mut b = ids
                    .tags(DataPoint::builder("reading"))
                    .tag("hazard_source", text(&r["hazard_source"]))
                    .tag("point", text(&r["point"]))
                    .tag("kind", text(&r["kind"]));
                if let Some(device) = r["device"].as_str() {
                    b = b.tag("device", device);
                }
                if let Some(unit) = r["unit"].as_str().filter(|u| !u.is_empty()) {
                    b = b.tag("unit", unit);
                }
                if let Some(x) = number(&r["value"]) {
                    b = b.field("value", x);
                }
                let quality = quality_code(text(&r["quality"]));
                // `good` (1 / 0) makes a success rate a plain mean() in any store.
                b = b
                    .field("quality", quality)
                    .field("good", i64::from(quality == 0));
                if let Some(code) = r["exception"].as_i64() {
                    b = b.field("exception", code);
                }
                points.push(build(b.timestamp(ts))?);
            }
        }
        "alarm" => {
            let a = &v["alarm"];
            let ts = stamp(time(&a["ts"])?);
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
            points.push(build(b.timestamp(ts))?);
        }
        "risk" => {
            let r = &v["risk"];
            let ts = stamp(time(&r["ts"])?);
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
                .field("seq", seq);
            points.push(build(b.timestamp(ts))?);
        }
        "special_operation" => {
            let o = &v["special_operation"];
            let ts = stamp(time(&o["ts"])?);
            let b = ids
                .tags(DataPoint::builder("special_operation"))
                .tag("hazard_source", text(&o["hazard_source"]))
                .field("active", i64::from(o["active"].as_bool() == Some(true)))
                .field("kind", text(&o["kind"]))
                .field("by", text(&o["by"]))
                .field("seq", seq);
            points.push(build(b.timestamp(ts))?);
        }
        "thresholds" => {
            let t = &v["thresholds"];
            let ts = stamp(time(&t["ts"])?);
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
            points.push(build(b.timestamp(ts))?);
        }
        "status" => {
            // The Last Will (seq 0) was built when the gateway connected: its own `ts`
            // would put "offline" before the "online" it follows.
            let ts = if seq == 0 {
                received_ms
            } else {
                time(&v["ts"])?
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
            points.push(build(b.timestamp(ts))?);
        }
        _ => unreachable!("message types are limited by Stream::types"),
    }
    Ok(Decoded {
        message_type,
        points,
        newest_ms,
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
    use influxdb2::models::WriteDataPoint;

    const T: &str = "hazgate/v1/P1/E1/G1/telemetry";

    fn line(p: &DataPoint) -> String {
        let mut out = Vec::new();
        p.write_data_point_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
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
        let lines: Vec<String> = d.points.iter().map(line).collect();
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
        assert!(
            line(&d.points[0]).ends_with(" 42\n"),
            "{}",
            line(&d.points[0])
        );
        assert!(line(&d.points[0]).contains("online=0i"));
    }
}
