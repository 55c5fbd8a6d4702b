//! Every message type the gateway publishes validates against its JSON Schema in
//! `docs/schema/`, and the schemas are not vacuous (they reject broken messages).

mod common;

use std::sync::Arc;

use hazgate::{
    contract::wire::{Envelope, Message},
    forward::encode::{table_name, CommandReply, Encoder, GatewayState, Status},
    ingest::tables::Tables,
    judge::{engine::Command, Engine, Event},
    model::{load_site, Site, SiteSource, DEMO_SITE_TOML},
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
};
use serde_json::Value as Json;

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/docs/schema/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn schema_for(msg: &Json) -> jsonschema::Validator {
    match msg["type"].as_str().unwrap() {
        "telemetry" => schema("telemetry.json"),
        "samples" => schema("samples.json"),
        "points" => schema("points.json"),
        "alarm" => schema("alarm.json"),
        "risk" => schema("risk.json"),
        "special_operation" => schema("special-operation.json"),
        "status" => schema("status.json"),
        "command_reply" => schema("command-reply.json"),
        "thresholds" => schema("thresholds.json"),
        "active_alarms" => schema("active-alarms.json"),
        other => panic!("no schema for type {other}"),
    }
}

fn assert_valid(bytes: &[u8]) -> Json {
    let msg: Json = serde_json::from_slice(bytes).unwrap();
    let v = schema_for(&msg);
    let errors: Vec<String> = v
        .iter_errors(&msg)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{msg}\n{}", errors.join("\n"));
    // The centre decodes it into the same types the gateway encoded it from, and they
    // write it back byte for byte: nothing the gateway sends is lost or renamed.
    let typed: Envelope<'_, Message<'_>> = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("the contract's types refuse {msg}: {e}"));
    assert_eq!(
        serde_json::to_vec(&typed).unwrap(),
        bytes,
        "decoded and encoded again, {msg} changed"
    );
    msg
}

fn site() -> Arc<Site> {
    Arc::new(
        load_site(SiteSource::Text {
            name: "demo",
            toml: DEMO_SITE_TOML,
        })
        .unwrap(),
    )
}

/// Events of every kind, from the real engine: a leak, a bypass, a comm loss, operator
/// commands, a special operation, and the colours they cause and clear.
fn events(site: &Arc<Site>) -> Vec<Event> {
    let mut e = Engine::new(site.clone(), Timestamp(0));
    let mut out = Vec::new();
    let reading = |id: &str, v: Option<Value>, q: Quality, t: i64| Reading {
        point: site.point_by_id(id).unwrap().index,
        value: v,
        quality: q,
        ts: Timestamp(t),
        raw: Raw::None,
        range: Default::default(),
    };
    for (t, v) in [(1_000, 25.0), (2_000, 45.0), (3_000, 1.0)] {
        e.on_reading(
            &reading("GT-101", Some(Value::Analog(v)), Quality::Good, t),
            Timestamp(t),
            &mut out,
        );
    }
    // A saturated detector: its alarm events carry `over_range`.
    e.on_reading(
        &Reading {
            range: RangeFlag::Over,
            ..reading("GT-103", Some(Value::Analog(130.0)), Quality::Good, 3_500)
        },
        Timestamp(3_500),
        &mut out,
    );
    e.on_reading(
        &reading("BP-101", Some(Value::Discrete(true)), Quality::Good, 4_000),
        Timestamp(4_000),
        &mut out,
    );
    e.on_reading(
        &reading("AT-201", None, Quality::CommFailure, 5_000),
        Timestamp(5_000),
        &mut out,
    );
    for cmd in [
        Command::Acknowledge {
            point: "BP-101".into(),
            alarm: None,
            by: "op-zhang".into(),
        },
        Command::Shelve {
            point: "AT-201".into(),
            alarm: None,
            duration_s: 60.0,
            by: "op-zhang".into(),
        },
        Command::OutOfService {
            point: "GT-102".into(),
            enabled: true,
            by: "tech-li".into(),
        },
        Command::SpecialOperation {
            hazard_source: "HS-03".into(),
            active: true,
            kind: "hot_work".into(),
            by: "safety".into(),
        },
    ] {
        e.on_command(&cmd, Timestamp(6_000), &mut out).unwrap();
    }
    // What stands now (acknowledged, shelved, saturated): the retained list (v1.6).
    out.push(e.active_alarms(Timestamp(6_500)));
    e.on_tick(Timestamp(2_000_000), &mut out);
    out
}

#[test]
fn every_published_message_type_validates() {
    let site = site();
    let enc = Encoder::new(&site);
    let events = events(&site);
    let mut types = std::collections::BTreeSet::new();
    for (i, ev) in events.iter().enumerate() {
        let msg = assert_valid(&enc.event(i as u64 + 1, ev));
        types.insert(msg["type"].as_str().unwrap().to_string());
        if msg["type"] == "risk" {
            types.insert(format!("risk:{}", msg["risk"]["scope"].as_str().unwrap()));
            // v1.5: the scope's name, for screens.
            let name = msg["risk"]["name"].as_str().unwrap_or("");
            let expected = match msg["risk"]["id"].as_str() {
                Some(id) => site
                    .hazard_sources
                    .iter()
                    .find(|h| h.id.as_str() == id)
                    .unwrap()
                    .name
                    .clone(),
                None => site.gateway.enterprise_name.clone(),
            };
            assert_eq!(name, expected, "{msg}");
        }
        if msg["type"] == "alarm" {
            let point = site
                .point_by_id(msg["alarm"]["point"].as_str().unwrap())
                .unwrap();
            if !point.unit.is_empty() {
                assert_eq!(msg["alarm"]["unit"], &*point.unit, "{msg}");
            }
        }
    }
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Alarm(a) if a.over_range)),
        "an over-range alarm event"
    );
    // v1.6: the standing alarms — acknowledged and not — with their units, no stream_seq.
    let standing = events
        .iter()
        .enumerate()
        .find_map(|(i, ev)| {
            matches!(ev, Event::ActiveAlarms(_)).then(|| assert_valid(&enc.event(i as u64 + 1, ev)))
        })
        .expect("a standing list");
    let list = standing["alarms"].as_array().unwrap();
    assert!(list.len() >= 2, "{standing}");
    assert!(standing.get("stream_seq").is_none(), "{standing}");
    assert!(
        list.iter().any(|a| a["acknowledged_by"] == "op-zhang")
            && list.iter().any(|a| a["unit"] == "%LEL"),
        "{standing}"
    );
    for t in [
        "alarm",
        "active_alarms",
        "risk",
        "risk:hazard_source",
        "risk:enterprise",
        "special_operation",
    ] {
        assert!(
            types.contains(t),
            "the scenario should produce a {t} message: {types:?}"
        );
    }
    // Telemetry with every quality, analog and discrete values.
    let readings: Vec<Reading> = [
        ("GT-101", Some(Value::Analog(1.5)), Quality::Good),
        ("XS-101", Some(Value::Discrete(false)), Quality::Good),
        ("AT-201", None, Quality::CommFailure),
        ("AT-301", None, Quality::DeviceException(2)),
        ("GT-301", None, Quality::SensorFault),
        ("LT-101", Some(Value::Analog(45.0)), Quality::Stale),
        ("GT-102", Some(Value::Analog(120.0)), Quality::Good),
        ("LT-102", Some(Value::Analog(-1.0)), Quality::Good),
    ]
    .iter()
    .map(|(id, v, q)| Reading {
        point: site.point_by_id(id).unwrap().index,
        value: *v,
        quality: *q,
        ts: Timestamp(1_795_419_779_123),
        raw: Raw::None,
        range: match *id {
            "GT-102" => RangeFlag::Over,
            "LT-102" => RangeFlag::Under,
            _ => RangeFlag::Within,
        },
    })
    .collect();
    let msg = assert_valid(&enc.telemetry(100, Timestamp(1_795_419_779_200), &readings));
    assert_eq!(msg["readings"][3]["exception"], 2);
    // The range flags are sent only when set (v1.2, additive).
    assert_eq!(msg["readings"][6]["over_range"], true);
    assert_eq!(msg["readings"][7]["under_range"], true);
    assert!(msg["readings"][0].get("over_range").is_none());
    assert!(msg["readings"][0].get("under_range").is_none());
    assert_eq!(msg["ts"], "2026-11-23T07:42:59.200Z");
    let status = Status {
        state: GatewayState::Online,
        enterprise_name: None,
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: 12,
        spool_events: 0,
        spool_telemetry: 3,
        spool_bytes: 900,
        dropped_telemetry: 0,
        clock_stepped_s: None,
        history_error: Some("No space left on device (os error 28)".into()),
    };
    // v1.5: the enterprise's name for screens.
    let msg = assert_valid(&enc.status(101, Timestamp(0), status));
    assert_eq!(
        msg["enterprise_name"],
        site.gateway.enterprise_name.as_str()
    );
    assert_valid(&enc.reply(
        102,
        Timestamp(0),
        CommandReply {
            request_id: Some("r-1".into()),
            command: "ack".into(),
            ok: true,
            error: None,
        },
    ));
    assert_valid(&enc.reply(
        103,
        Timestamp(0),
        CommandReply {
            request_id: None,
            command: "thresholds".into(),
            ok: false,
            error: Some("GT-101.h: 30 above 25 %LEL".into()),
        },
    ));
}

#[test]
fn the_schemas_reject_broken_messages() {
    let site = site();
    let enc = Encoder::new(&site);
    let reading = Reading {
        point: site.point_by_id("AT-301").unwrap().index,
        value: None,
        quality: Quality::DeviceException(2),
        ts: Timestamp(0),
        raw: Raw::None,
        range: Default::default(),
    };
    let good: Json = serde_json::from_slice(&enc.telemetry(5, Timestamp(0), &[reading])).unwrap();
    let v = schema("telemetry.json");
    assert!(v.is_valid(&good));
    let broken = |f: &dyn Fn(&mut Json)| {
        let mut m = good.clone();
        f(&mut m);
        m
    };
    for (what, m) in [
        (
            "no seq",
            broken(&|m| {
                m.as_object_mut().unwrap().remove("seq");
            }),
        ),
        ("seq 0", broken(&|m| m["seq"] = 0.into())),
        (
            "ts not RFC 3339 ms",
            broken(&|m| m["ts"] = "2026-11-23 07:42".into()),
        ),
        (
            "exception without its code",
            broken(&|m| {
                m["readings"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("exception");
            }),
        ),
        (
            "a number for a failed read",
            broken(&|m| m["readings"][0]["value"] = 1.0.into()),
        ),
        (
            "unknown quality",
            broken(&|m| m["readings"][0]["quality"] = "ok".into()),
        ),
        ("extra field", broken(&|m| m["extra"] = 1.into())),
        (
            "slash in gateway id",
            broken(&|m| m["gateway"] = "a/b".into()),
        ),
    ] {
        assert!(!v.is_valid(&m), "{what} must be rejected: {m}");
    }
    let reply = schema("command-reply.json");
    let failed = serde_json::json!({"seq": 1, "ts": "2026-11-23T07:42:59.200Z", "park": "P", "enterprise": "E", "gateway": "G",
        "type": "command_reply", "request_id": null, "command": "ack", "ok": false});
    assert!(!reply.is_valid(&failed), "a failed reply must say why");
}

/// One message of every type the gateway publishes (events from the real engine, a
/// threshold change among them), as (topic suffix, payload).
fn one_of_each(site: &Arc<Site>) -> Vec<(String, Vec<u8>)> {
    let enc = Encoder::new(site);
    let mut events = events(site);
    let mut e = Engine::new(site.clone(), Timestamp(0));
    let change = Command::Thresholds {
        changes: vec![hazgate::judge::engine::ThresholdChange {
            point: "GT-101".into(),
            set: serde_json::from_str(r#"{"h": 18.0}"#).unwrap(),
        }],
        by: "engineer-wang".into(),
    };
    e.on_command(&change, Timestamp(7_000), &mut events)
        .unwrap();
    let mut out: Vec<(String, Vec<u8>)> = events
        .iter()
        .enumerate()
        .map(|(i, ev)| {
            let suffix = match ev {
                Event::Alarm(_) | Event::Thresholds(_) => "alarm",
                Event::ActiveAlarms(_) => "alarms",
                _ => "risk",
            };
            (suffix.to_string(), enc.event(i as u64 + 1, ev))
        })
        .collect();
    let reading = |id: &str, value, quality, range| Reading {
        point: site.point_by_id(id).unwrap().index,
        value,
        quality,
        ts: Timestamp(1_795_419_779_123),
        raw: Raw::None,
        range,
    };
    let readings = [
        reading(
            "GT-101",
            Some(Value::Analog(1.5)),
            Quality::Good,
            RangeFlag::Within,
        ),
        reading(
            "XS-101",
            Some(Value::Discrete(true)),
            Quality::Good,
            RangeFlag::Within,
        ),
        reading(
            "AT-301",
            None,
            Quality::DeviceException(2),
            RangeFlag::Within,
        ),
        reading(
            "GT-102",
            Some(Value::Analog(120.0)),
            Quality::Good,
            RangeFlag::Over,
        ),
    ];
    out.push((
        "telemetry".into(),
        enc.telemetry(100, Timestamp(5), &readings),
    ));
    // The point table before the samples that use it, as a centre receives them.
    let table = table_name(site);
    let n = site.points.len();
    for first in [0, n / 2] {
        let page = enc.points_page(98, Timestamp(5), &table, first, n / 2 + n % 2);
        out.push((format!("points/{table}/{first}"), page));
    }
    // A scan by run (a device's poll) and one by list, with a fault and a range flag.
    let mut later = readings;
    for r in &mut later {
        r.ts = Timestamp(1_795_419_780_000);
    }
    let run: Vec<Reading> = site.points[..3]
        .iter()
        .map(|p| {
            reading(
                p.id.as_str(),
                Some(Value::Analog(0.5)),
                Quality::Good,
                RangeFlag::Within,
            )
        })
        .collect();
    let both: Vec<Reading> = run.into_iter().chain(later).collect();
    out.push((
        "telemetry".into(),
        enc.samples(99, Timestamp(5), &table, &both),
    ));
    let status = |state| Status {
        state,
        enterprise_name: None,
        version: "0.1.0".into(),
        uptime_s: 12,
        spool_events: 0,
        spool_telemetry: 3,
        spool_bytes: 900,
        dropped_telemetry: 0,
        clock_stepped_s: None,
        history_error: None,
    };
    out.push((
        "status".into(),
        enc.status(101, Timestamp(0), status(GatewayState::Online)),
    ));
    out.push((
        "status".into(),
        enc.status(0, Timestamp(0), status(GatewayState::Offline)),
    ));
    for (ok, error) in [(true, None), (false, Some("no point `X`".into()))] {
        let reply = CommandReply {
            request_id: ok.then(|| "r-1".into()),
            command: "ack".into(),
            ok,
            error,
        };
        out.push(("cmd/ack/reply".into(), enc.reply(102, Timestamp(0), reply)));
    }
    out
}

/// Every way a field can be wrong: what a broken or foreign gateway might send.
fn mutants(msg: &Json) -> Vec<Json> {
    let replacements = [
        Json::Null,
        "".into(),
        "a b".into(),
        "x/y".into(),
        "blue".into(),
        "2026-11-23T07:42:59Z".into(),
        0.into(),
        (-1).into(),
        1.5.into(),
        256.into(),
        true.into(),
        serde_json::json!([]),
        serde_json::json!({}),
    ];
    let mut out = Vec::new();
    let mut paths = Vec::new();
    collect_paths(msg, &mut Vec::new(), &mut paths);
    for path in &paths {
        for r in &replacements {
            let mut m = msg.clone();
            *pointer(&mut m, path) = r.clone();
            out.push(m);
        }
        let (parent, last) = path.split_at(path.len().saturating_sub(1));
        let Some(key) = last.first() else { continue };
        let mut removed = msg.clone();
        if let Json::Object(o) = pointer(&mut removed, parent) {
            o.remove(key);
            out.push(removed);
        }
        let mut added = msg.clone();
        if let Json::Object(o) = pointer(&mut added, parent) {
            o.insert("unexpected".into(), 1.into());
            out.push(added);
        }
    }
    out
}

fn collect_paths(v: &Json, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Json::Object(o) => {
            for (k, x) in o {
                at.push(k.clone());
                out.push(at.clone());
                collect_paths(x, at, out);
                at.pop();
            }
        }
        Json::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(i.to_string());
                out.push(at.clone());
                collect_paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer<'v>(v: &'v mut Json, path: &[String]) -> &'v mut Json {
    path.iter().fold(v, |v, k| match v {
        Json::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        other => &mut other[k.as_str()],
    })
}

/// The centre decodes straight into the contract's types and consults the schemas only
/// to explain a refusal, so the types must accept nothing the schemas refuse: over
/// every message type and every single-field mutation of it (removed, retyped, an
/// unknown field added), whatever the decoder accepts validates.
/// Each message of [`one_of_each`] — samples and point-table pages among them — is
/// valid and decodes back byte for byte.
#[test]
fn one_of_each_is_valid_and_round_trips() {
    let site = site();
    let types: Vec<String> = one_of_each(&site)
        .iter()
        .map(|(_, bytes)| assert_valid(bytes)["type"].as_str().unwrap().to_string())
        .collect();
    for t in ["telemetry", "samples", "points", "status", "alarm", "risk"] {
        assert!(types.iter().any(|x| x == t), "no {t} in {types:?}");
    }
}

#[test]
fn the_centre_accepts_nothing_the_schemas_refuse() {
    let site = site();
    let tables = Tables::default();
    let (mut accepted, mut refused) = (0, 0);
    let topic_of = |suffix: &str, msg: &Json| {
        format!(
            "hazgate/v1/{}/{}/{}/{suffix}",
            msg["park"].as_str().unwrap(),
            msg["enterprise"].as_str().unwrap(),
            msg["gateway"].as_str().unwrap()
        )
    };
    let originals = one_of_each(&site);
    // Every original first: the point table is then complete, as at a centre running
    // for a while, and the samples' mutants reach the checks against it.
    for (suffix, bytes) in &originals {
        let msg: Json = serde_json::from_slice(bytes).unwrap();
        let topic = topic_of(suffix, &msg);
        if let Err(e) =
            hazgate::ingest::message::decode("hazgate", &topic, bytes, 1 << 20, 0, &tables)
        {
            panic!("the original {msg} is refused: {e:?}");
        }
    }
    for (suffix, bytes) in &originals {
        let msg: Json = serde_json::from_slice(bytes).unwrap();
        let topic = topic_of(suffix, &msg);
        for m in mutants(&msg) {
            let payload = serde_json::to_vec(&m).unwrap();
            match hazgate::ingest::message::decode("hazgate", &topic, &payload, 1 << 20, 0, &tables)
            {
                Ok(_) => {
                    accepted += 1;
                    let errors: Vec<String> = schema_for(&m)
                        .iter_errors(&m)
                        .map(|e| format!("{e} at {}", e.instance_path))
                        .collect();
                    assert!(
                        errors.is_empty(),
                        "decoded although the schema refuses it: {m}\n{errors:?}"
                    );
                }
                Err(_) => refused += 1,
            }
        }
    }
    assert!(
        accepted > 50 && refused > 500,
        "{accepted} accepted, {refused} refused"
    );
}

/// A reading sent as a sample is stored exactly as the same reading sent in full: the
/// point table gives back every name the sample leaves out. Over every point of the
/// demo site, with each quality and range flag, by run and by list.
#[test]
fn samples_store_exactly_what_telemetry_stores() {
    let site = site();
    let enc = Encoder::new(&site);
    let table = table_name(&site);
    let tables = Tables::default();
    let gw = "hazgate/v1/CP-320500-01/91320500MA1DEMO01X/GW-01";
    let n = site.points.len();
    for first in (0..n).step_by(7) {
        let page = enc.points_page(1, Timestamp(5), &table, first, 7);
        hazgate::ingest::message::decode(
            "hazgate",
            &format!("{gw}/points/{table}/{first}"),
            &page,
            1 << 20,
            0,
            &tables,
        )
        .unwrap();
    }
    let qualities = [
        Quality::Good,
        Quality::CommFailure,
        Quality::DeviceException(2),
        Quality::SensorFault,
        Quality::Stale,
    ];
    let readings: Vec<Reading> = site
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let quality = qualities[i % qualities.len()];
            let value = match quality {
                Quality::CommFailure | Quality::DeviceException(_) => None,
                _ if p.is_discrete() => Some(Value::Discrete(i % 2 == 0)),
                _ => Some(Value::Analog(i as f64 / 8.0)),
            };
            let range = [RangeFlag::Within, RangeFlag::Over, RangeFlag::Under][i % 3];
            Reading {
                point: p.index,
                value,
                quality,
                // Runs of three points share a time: some scans by run, and the
                // reversed half below by list.
                ts: Timestamp(1_795_419_779_000 + (i / 3) as i64),
                raw: Raw::None,
                range,
            }
        })
        .collect();
    let mut mixed = readings.clone();
    mixed[n / 2..].reverse();
    // Readings by exception: a few points of a poll, not following each other.
    let sparse: Vec<Reading> = readings.iter().copied().step_by(2).collect();
    for batch in [&readings, &mixed, &sparse] {
        let full = enc.telemetry(7, Timestamp(9), batch);
        let compact = enc.samples(7, Timestamp(9), &table, batch);
        assert!(compact.len() < full.len());
        let decode = |bytes: &[u8]| {
            hazgate::ingest::message::decode(
                "hazgate",
                &format!("{gw}/telemetry"),
                bytes,
                1 << 20,
                0,
                &tables,
            )
            .unwrap()
        };
        let (a, b) = (decode(&full), decode(&compact));
        assert_eq!(a.points, batch.len());
        assert_eq!(
            String::from_utf8(b.lines).unwrap(),
            String::from_utf8(a.lines).unwrap()
        );
        assert_eq!(a.newest_ms, b.newest_ms);
    }
}
