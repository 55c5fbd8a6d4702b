//! One MQTT message from a gateway → checked → points for the store.
//!
//! The topic is parsed by the contract ([`crate::contract::Topic`]); the payload is
//! decoded straight into the contract's own types ([`crate::contract::wire`]) — never
//! walked by string keys — which accept no more than the contract's JSON Schemas
//! (`docs/schema/`, held to the types by `tests/schema.rs`); a refused message is
//! checked against the schemas ([`super::schema`]) to say what is wrong. Each message
//! is then mapped to its measurement ([`super::points`], `docs/storage.md`).
//! Everything here is pure: no I/O, so it is tested and fuzzed without a broker or a
//! store.

use serde_json::Value;

use super::{
    gaps::StreamPosition,
    points::Points,
    schema,
    tables::{Table, Tables},
};
use crate::contract::{
    samples::Scan,
    wire::{Head, Id, Message, Quality, Reading},
    GatewayPath, Incoming, Stream, Topic,
};

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

/// Checks one message and maps it to points. `received_ms` stamps what has no time of
/// its own worth keeping (the Last Will, built when the gateway connected).
///
/// The payload is decoded straight into the contract's types ([`Incoming`]), which
/// refuse whatever the schemas refuse (a test holds them to each other); only a refused
/// message is read again, against the schemas, to say exactly what is wrong.
pub fn decode(
    prefix: &str,
    topic: &str,
    payload: &[u8],
    max_bytes: usize,
    received_ms: i64,
    tables: &Tables,
) -> Result<Decoded, Rejected> {
    decode_shifted(
        prefix,
        topic,
        payload,
        max_bytes,
        received_ms,
        tables,
        |_| 0,
    )
}

/// [`decode`], storing the gateway's times less `shift(gateway)` milliseconds (its
/// clock's measured offset, when ingest re-stamps). `newest_ms` stays the gateway's
/// own time: it is what the offset is measured from.
pub fn decode_shifted(
    prefix: &str,
    topic: &str,
    payload: &[u8],
    max_bytes: usize,
    received_ms: i64,
    tables: &Tables,
    shift: impl Fn(GatewayPath<'_>) -> i64,
) -> Result<Decoded, Rejected> {
    let topic = Topic::parse(prefix, topic)
        .filter(|t| t.stream != Stream::Command)
        .ok_or_else(|| {
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
    let typed = serde_json::from_slice::<Incoming<'_>>(payload)
        .map_err(|e| e.to_string())
        .and_then(Incoming::into_message);
    let (head, message) = typed.map_err(|e| diagnose(topic.stream, payload, e))?;
    let message_type = message.type_name();
    if !topic.stream.types().contains(&message_type) {
        return Err(wrong_type(topic.stream, message_type));
    }
    check_identity(&head, topic.gateway)?;
    let table;
    let message = match message {
        Message::Samples { table: name, scans } => {
            table = tables.get(topic.gateway, &name).ok_or_else(|| {
                reject(
                    "unknown_table",
                    format!("point table {name} of this gateway has not arrived (its retained `points/{name}/…` pages)"),
                )
            })?;
            Message::Telemetry {
                readings: expand(&table, &scans)?,
            }
        }
        Message::Points {
            table: name,
            first,
            total,
            points,
        } => {
            if topic.name != Some(&*name) {
                return Err(reject("bad_table", "the topic names another table"));
            }
            tables
                .learn(topic.gateway, &name, first, total, &points)
                .map_err(|e| reject("bad_table", e))?;
            Message::Points {
                table: name,
                first,
                total,
                points,
            }
        }
        m => m,
    };
    let mut points = Points::new(topic.gateway, head.seq);
    points.shift_ms = shift(topic.gateway);
    let newest_ms = map(&mut points, &message, topic.stream, &head, received_ms);
    let position = (head.stream_seq > 0).then(|| StreamPosition {
        park: topic.gateway.park.to_string(),
        enterprise: topic.gateway.enterprise.to_string(),
        gateway: topic.gateway.gateway.to_string(),
        telemetry: matches!(message_type, "telemetry" | "samples"),
        n: head.stream_seq,
    });
    Ok(Decoded {
        message_type,
        lines: points.lines,
        points: points.count,
        newest_ms,
        position,
    })
}

/// A sample's scans as the readings they stand for, named by the table.
fn expand<'t>(table: &'t Table, scans: &[Scan]) -> Result<Vec<Reading<'t>>, Rejected> {
    let mut out = Vec::with_capacity(scans.iter().map(|s| s.values.len()).sum());
    for scan in scans {
        scan.check(Some(table.points.len()))
            .map_err(|e| reject("schema_invalid", e))?;
        for (i, value) in scan.indices().zip(&scan.values) {
            let p = &table.points[i as usize];
            let fault = scan.faults.iter().find(|f| f.index == i);
            out.push(Reading {
                point: Id(p.point.0.as_ref().into()),
                hazard_source: Id(p.hazard_source.0.as_ref().into()),
                device: Some(Id(p.device.0.as_ref().into())),
                kind: p.kind,
                value: *value,
                unit: p.unit.as_ref().into(),
                quality: fault.map_or(Quality::Good, |f| f.quality),
                exception: fault.and_then(|f| f.exception),
                over_range: scan.over_range.contains(&i),
                under_range: scan.under_range.contains(&i),
                ts: scan.ts,
            });
        }
    }
    Ok(out)
}

/// Why a message the contract's types refused was refused: not JSON, a type that does
/// not belong on its topic, or the first schema violation (the types' own words when
/// the schema has none to say).
fn diagnose(stream: Stream, payload: &[u8], typed: String) -> Rejected {
    let v: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => return reject("not_json", format!("not JSON: {e}")),
    };
    let message_type = v["type"].as_str().unwrap_or_default();
    let Some(message_type) = stream.types().iter().find(|t| **t == message_type) else {
        return wrong_type(stream, message_type);
    };
    reject(
        "schema_invalid",
        schema::violation(message_type, &v).unwrap_or(typed),
    )
}

fn wrong_type(stream: Stream, message_type: &str) -> Rejected {
    reject(
        "wrong_type",
        format!(
            "type `{message_type}` does not belong on `{}`",
            stream.filter()
        ),
    )
}

fn check_identity(head: &Head<'_>, topic: GatewayPath<'_>) -> Result<(), Rejected> {
    for (field, ours, theirs) in [
        ("park", &*head.park, topic.park),
        ("enterprise", &*head.enterprise, topic.enterprise),
        ("gateway", &*head.gateway, topic.gateway),
    ] {
        if ours != theirs {
            return Err(reject(
                "identity_mismatch",
                format!("{field} \"{ours}\" in the payload, `{theirs}` in the topic"),
            ));
        }
    }
    Ok(())
}

/// The message's points; returns the newest gateway time among them.
fn map(
    points: &mut Points<'_>,
    message: &Message<'_>,
    stream: Stream,
    head: &Head<'_>,
    received_ms: i64,
) -> Option<i64> {
    match message {
        Message::Telemetry { readings } => {
            points.readings(readings);
            readings.iter().map(|r| r.ts.0).max()
        }
        Message::Alarm { alarm } => {
            points.alarm(alarm);
            Some(alarm.ts.0)
        }
        // A retained copy of a change is stored already, from `risk`; a restatement
        // (`snapshot`) is stored from wherever it comes.
        Message::Risk { risk } if stream == Stream::RiskOf && !risk.snapshot => None,
        Message::Risk { risk } => {
            points.risk(risk);
            Some(risk.ts.0)
        }
        Message::SpecialOperation { special_operation } => {
            points.special_operation(special_operation);
            Some(special_operation.ts.0)
        }
        Message::Thresholds { thresholds } => {
            points.thresholds(thresholds);
            Some(thresholds.ts.0)
        }
        Message::Status(status) => {
            // The Last Will (seq 0) was built when the gateway connected: its own `ts`
            // would put "offline" before the "online" it follows.
            // That is centre time already: moved by the shift here, as storing takes
            // the shift off every time.
            let ts = if head.seq == 0 {
                received_ms.saturating_add(points.shift_ms)
            } else {
                head.ts.0
            };
            points.status(status, ts);
            Some(ts)
        }
        // Counted in the stream, nothing stored (every alarm event of a standing list
        // is stored from the alarm stream).
        Message::CommandReply(_) | Message::Points { .. } | Message::ActiveAlarms { .. } => None,
        // Expanded into readings before mapping.
        Message::Samples { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "hazgate/v1/P1/E1/G1/telemetry";

    fn text(d: &Decoded) -> String {
        String::from_utf8(d.lines.clone()).unwrap()
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
        let d = decode("hazgate", T, msg.as_bytes(), 1 << 20, 0, &Tables::default()).unwrap();
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
            let r = decode(
                "hazgate",
                topic,
                payload.as_bytes(),
                1024,
                0,
                &Tables::default(),
            )
            .unwrap_err();
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
            &Tables::default(),
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
            &Tables::default(),
        )
        .unwrap();
        assert!(text(&d).ends_with(" 42\n"), "{}", text(&d));
        assert!(text(&d).contains("online=0i"));
    }
}
