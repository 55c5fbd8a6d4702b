//! Every message type the gateway publishes validates against its JSON Schema in
//! `docs/schema/`, and the schemas are not vacuous (they reject broken messages).

mod common;

use std::sync::Arc;

use hazgate::{
    contract::wire::{Envelope, Message},
    forward::encode::{CommandReply, Encoder, GatewayState, Status},
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
        "alarm" => schema("alarm.json"),
        "risk" => schema("risk.json"),
        "special_operation" => schema("special-operation.json"),
        "status" => schema("status.json"),
        "command_reply" => schema("command-reply.json"),
        "thresholds" => schema("thresholds.json"),
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
        }
    }
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Alarm(a) if a.over_range)),
        "an over-range alarm event"
    );
    for t in [
        "alarm",
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
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: 12,
        spool_events: 0,
        spool_telemetry: 3,
        spool_bytes: 900,
        dropped_telemetry: 0,
    };
    assert_valid(&enc.status(101, Timestamp(0), status));
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
