//! The MQTT uplink against a real Mosquitto: a broker outage mid-stream loses nothing,
//! alarms raised during the outage arrive before the old telemetry, and every message
//! validates against its schema.

mod common;

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{mqtt::*, *};
use rumqttc::{AsyncClient, MqttOptions, QoS};

fn seqs(got: &Received) -> BTreeMap<u64, (String, String)> {
    got.lock()
        .unwrap()
        .iter()
        .filter_map(|(t, v)| {
            Some((
                v["seq"].as_u64()?,
                (t.clone(), v["type"].as_str().unwrap_or("").to_string()),
            ))
        })
        .filter(|(seq, _)| *seq > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_loses_nothing_and_alarms_come_first() {
    let outage = std::env::var("HAZGATE_TEST_OUTAGE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60u64);
    broker_outage_case("", "p2", outage).await;
}

/// The same over MQTT 5 (a shorter outage: the spool path is the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_broker_outage_loses_nothing_and_alarms_come_first() {
    broker_outage_case("protocol = \"5\"", "p5", 10).await;
}

/// Broker stopped `outage` seconds mid-stream while an alarm is raised, then restarted.
/// `protocol_tag` is how Mosquitto logs the protocol the gateway connected with.
async fn broker_outage_case(uplink: &str, protocol_tag: &str, outage: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    let (got, sub) = subscriber(broker.port, "hazgate/#").await;

    let pty = socat_pair(dir.path());
    let modbus = free_port();
    let site = demo_site_with_uplink(dir.path(), modbus, &pty.a, broker.port, uplink);
    // The bypass switches on 4 s in: during the outage.
    let _sim = start_simulator(
        &site,
        &pty.b,
        &[
            "--scenario",
            "bypass",
            "--target",
            "BP-101",
            "--start-after",
            "4",
        ],
    );
    let mut gw = start_gateway(&site, Some(&dir.path().join("gw.log")));

    eventually(
        Duration::from_secs(20),
        "telemetry before the outage",
        || seqs(&got).values().any(|(_, ty)| ty == "telemetry"),
    )
    .await;
    let before_outage = seqs(&got).len();
    // Telemetry made from here on is outage telemetry (what was made before may still be
    // unacknowledged, and is resent first by the MQTT session: it is not overtaking).
    let outage_from = hazgate::reading::Timestamp::now();
    broker.stop();
    tokio::time::sleep(Duration::from_secs(outage)).await;
    broker.restart();
    // Let the backlog drain, then stop the gateway cleanly.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = seqs(&got);
        let alarm = s.values().any(|(_, ty)| ty == "alarm");
        let (lo, hi) = (
            s.keys().next().copied().unwrap_or(0),
            s.keys().last().copied().unwrap_or(0),
        );
        if alarm && hi - lo + 1 == s.len() as u64 && s.len() > before_outage + 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backlog did not drain: {} messages, {lo}..{hi}",
            s.len()
        );
    }
    stop_gateway(&mut gw, &got).await;
    assert_retained_is_latest(broker.port, &got).await;
    assert_streams_in_order(&got, false);
    sub.abort();

    let s = seqs(&got);
    let (lo, hi) = (*s.keys().next().unwrap(), *s.keys().last().unwrap());
    let missing: Vec<u64> = (lo..=hi).filter(|q| !s.contains_key(q)).collect();
    assert!(
        missing.is_empty(),
        "gaps in seq: {missing:?} ({} messages {lo}..{hi})",
        s.len()
    );
    assert_eq!(lo, 1, "the first message ever has seq 1");

    // During the outage the bypass alarm was raised: after the reconnect it was sent
    // before the telemetry spooled during the outage (events first).
    let arrivals = got.lock().unwrap().clone();
    let alarm_at = arrivals
        .iter()
        .position(|(_, v)| v["type"] == "alarm" && v["alarm"]["point"] == "BP-101")
        .expect("the bypass alarm arrived");
    let alarm_seq = arrivals[alarm_at].1["seq"].as_u64().unwrap();
    let older_telemetry_after = arrivals[alarm_at..]
        .iter()
        .filter(|(_, v)| v["type"] == "telemetry" && v["seq"].as_u64().unwrap() < alarm_seq)
        .count();
    assert!(
        older_telemetry_after > 0,
        "older telemetry was still in the backlog after the alarm"
    );
    let made_in_outage = |v: &serde_json::Value| {
        v["ts"]
            .as_str()
            .and_then(hazgate::reading::Timestamp::parse_rfc3339)
            .is_some_and(|t| t.0 > outage_from.0 + 1_000)
    };
    let older_telemetry_before = arrivals[..alarm_at]
        .iter()
        .filter(|(_, v)| v["type"] == "telemetry" && made_in_outage(v))
        .filter(|(_, v)| v["seq"].as_u64().unwrap() < alarm_seq)
        .count();
    assert_eq!(
        older_telemetry_before, 0,
        "no outage telemetry may overtake the alarm"
    );
    // Retained risk level of HS-01 and the final status.
    assert!(arrivals
        .iter()
        .any(|(t, v)| t.ends_with("/risk/HS-01") && v["risk"]["to"] == "orange"));
    // The gateway's own goodbye (seq ≠ 0), not the broker's Last Will (seq 0, which the
    // broker's stop during the outage may have fired).
    let last_status = arrivals
        .iter()
        .rev()
        .find(|(t, _)| t.ends_with("/status"))
        .unwrap();
    assert_eq!(
        last_status.1["state"], "offline",
        "a clean stop says offline"
    );
    assert_ne!(last_status.1["seq"], 0, "a clean stop is not the Last Will");
    // Every message received validates against its schema.
    assert_schemas(&arrivals);
    let broker_log = std::fs::read_to_string(dir.path().join("mosquitto.log")).unwrap();
    assert!(
        broker_log.contains(&format!("as hazgate-GW-01 ({protocol_tag},")),
        "the gateway spoke {protocol_tag}: {broker_log}"
    );
}

const BASE: &str = "hazgate/v1/CP-320500-01/91320500MA1DEMO01X/GW-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_validated_answered_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let (got, sub) = subscriber(broker.port, "hazgate/#").await;
    let pty = socat_pair(dir.path());
    let site = demo_site_with_uplink(dir.path(), free_port(), &pty.a, broker.port, "");
    let _sim = start_simulator(&site, &pty.b, &[]);
    let mut _gw = start_gateway(&site, None);
    wait_online(&got).await;

    let mut o = MqttOptions::new("hazgate-test-operator", "127.0.0.1", broker.port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 64);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let huge = format!(
        "{{\"request_id\":\"r-huge\",\"by\":\"op\",\"point\":\"{}\"}}",
        "x".repeat(20_000)
    );
    // (command, payload, request id, expected error phrase; None = accepted)
    let table: Vec<(&str, String, &str, Option<&str>)> = vec![
        ("ack", "not json".into(), "", Some("not a JSON object")),
        ("ack", r#"{"request_id":"r-types","by":"op","point":42}"#.into(), "r-types", Some("invalid type")),
        ("ack", r#"{"request_id":"r-point","by":"op","point":"NOPE"}"#.into(), "r-point", Some("no point `NOPE`")),
        ("ack", r#"{"request_id":"r-nothing","by":"op","point":"GT-101"}"#.into(), "r-nothing", Some("nothing to acknowledge")),
        ("shelve", r#"{"request_id":"r-long","by":"op","point":"GT-101","duration_s":1e9}"#.into(), "r-long", Some("at most 86400")),
        ("reboot", r#"{"request_id":"r-cmd","by":"op"}"#.into(), "r-cmd", Some("unknown command `reboot`")),
        ("ack", huge, "", Some("over the 16384-byte limit")),
        ("special-operation", r#"{"request_id":"r-kind","by":"safety-li","hazard_source":"HS-03","active":true,"kind":"dancing"}"#.into(), "r-kind",
            Some("kind `dancing` is not a special operation of GB 30871-2022")),
        ("special-operation", r#"{"request_id":"r-anon","by":"","hazard_source":"HS-03","active":true,"kind":"hot_work"}"#.into(), "r-anon", Some("`by` must name")),
        ("special-operation", r#"{"request_id":"r-ok","by":"safety-li","hazard_source":"HS-03","active":true,"kind":"hot_work"}"#.into(), "r-ok", None),
        ("thresholds", r#"{"request_id":"r-guard","by":"eng-wu","changes":[{"point":"GT-101","set":{"h":30}}]}"#.into(), "r-guard",
            Some("GT-101.h: first-level alarm 30 %LEL is above the 25 %LEL ceiling of GB/T 50493-2019 5.5.2")),
        ("thresholds", r#"{"request_id":"r-order","by":"eng-wu","changes":[{"point":"GT-101","set":{"h":24,"hh":22}}]}"#.into(), "r-order",
            Some("hh = 22 must be above h = 24")),
        ("thresholds", r#"{"request_id":"r-tpoint","by":"eng-wu","changes":[{"point":"NOPE","set":{"h":10}}]}"#.into(), "r-tpoint", Some("no point `NOPE`")),
        ("thresholds", r#"{"request_id":"r-tfield","by":"eng-wu","changes":[{"point":"GT-101","set":{"hi":10}}]}"#.into(), "r-tfield", Some("unknown field `hi`")),
        ("thresholds", r#"{"request_id":"r-tok","by":"eng-wu","changes":[{"point":"GT-101","set":{"h":18}}]}"#.into(), "r-tok", None),
    ];
    for (name, payload, _, _) in &table {
        client
            .publish(
                format!("{BASE}/cmd/{name}"),
                QoS::AtLeastOnce,
                false,
                payload.clone().into_bytes(),
            )
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(20), "a reply to every command", || {
        got.lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.ends_with("/reply"))
            .count()
            >= table.len()
    })
    .await;
    let replies: Vec<(String, serde_json::Value)> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t.ends_with("/reply"))
        .cloned()
        .collect();
    for (name, _, id, expected) in &table {
        let (topic, reply) = replies
            .iter()
            .find(|(t, v)| {
                t == &format!("{BASE}/cmd/{name}/reply")
                    && (id.is_empty() || v["request_id"] == *id)
                    && (!id.is_empty() || v["request_id"].is_null())
                    && v["error"].as_str().map_or(expected.is_none(), |e| {
                        expected.is_some_and(|x| e.contains(x))
                    })
            })
            .unwrap_or_else(|| {
                panic!("no matching reply for {name} {id} {expected:?} in {replies:#?}")
            });
        assert_eq!(reply["ok"], expected.is_none(), "{topic}: {reply}");
    }
    // The accepted special operation raised HS-03's floor: its retained level is yellow.
    eventually(Duration::from_secs(10), "HS-03 yellow", || {
        got.lock()
            .unwrap()
            .iter()
            .any(|(t, v)| t.ends_with("/risk/HS-03") && v["risk"]["to"] == "yellow")
    })
    .await;
    // Every command, accepted or not, is in the audit log, in order.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), table.len(), "{audit}");
    assert!(
        lines.iter().all(|l| l["channel"] == "mqtt"),
        "the same audit format as the local API, naming the channel: {audit}"
    );
    assert_eq!(lines.iter().filter(|l| l["ok"] == true).count(), 2);
    let ok = lines
        .iter()
        .find(|l| l["ok"] == true && l["command"] == "special-operation")
        .unwrap();
    assert_eq!(
        (ok["by"].as_str(), ok["command"].as_str()),
        (Some("safety-li"), Some("special-operation"))
    );
    assert!(
        ok["changes"].to_string().contains("\"to\":\"yellow\""),
        "old → new recorded: {ok}"
    );
    let t = lines
        .iter()
        .find(|l| l["ok"] == true && l["command"] == "thresholds")
        .unwrap();
    assert_eq!(t["by"], "eng-wu");
    let change = &t["changes"][0];
    assert_eq!(
        (change["old"]["h"].as_f64(), change["new"]["h"].as_f64()),
        (Some(20.0), Some(18.0)),
        "{t}"
    );
    // Only the accepted change is persisted, beside the site file.
    let overrides: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.overrides.json", site.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(overrides, serde_json::json!({"GT-101": {"h": 18.0}}));
    stop_gateway(&mut _gw, &got).await;
    sub.abort();
    // A restart applies it again: the limit in force is the changed one.
    let log = dir.path().join("restart.log");
    let api = free_port();
    let mut gw = start_gateway_with_api(&site, api, &log);
    let (code, body) = http(api, "GET", "/api/v1/thresholds", None);
    assert_eq!(code, 200, "{body}");
    let settings: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        settings["GT-101"]["h"], 18.0,
        "the override is in force: {body}"
    );
    assert_eq!(
        settings["GT-102"]["h"], 20.0,
        "and only for its point: {body}"
    );
    let status = gw.terminate().unwrap();
    assert!(status.success(), "{status}");
    assert_no_panic(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_never_repeats_or_loses_a_committed_seq() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let (got, sub) = subscriber(broker.port, "hazgate/#").await;
    let pty = socat_pair(dir.path());
    // The shortest keepalive allowed: the broker notices a dead gateway in 1.5 × 5 s.
    let site = demo_site_with_uplink(
        dir.path(),
        free_port(),
        &pty.a,
        broker.port,
        "keepalive_s = 5",
    );
    let _sim = start_simulator(&site, &pty.b, &[]);
    let start_gw = || start_gateway(&site, None);
    let mut gw = start_gw();
    eventually(Duration::from_secs(20), "telemetry flowing", || {
        seqs(&got).len() > 20
    })
    .await;
    // SIGKILL mid-stream: no chance to flush anything.
    gw.child.kill().unwrap();
    let _ = gw.child.wait();
    // The broker publishes the Last Will: offline, seq 0 (it is sent at a time the
    // gateway does not choose, so it carries no seq of the stream).
    eventually(
        Duration::from_secs(15),
        "the Last Will after kill -9",
        || {
            got.lock()
                .unwrap()
                .iter()
                .any(|(t, v)| t.ends_with("/status") && v["state"] == "offline" && v["seq"] == 0)
        },
    )
    .await;
    let before = seqs(&got);
    let last_before = *before.keys().last().unwrap();
    let mut gw = start_gw();
    eventually(
        Duration::from_secs(20),
        "telemetry after the restart",
        || {
            seqs(&got)
                .keys()
                .last()
                .is_some_and(|s| *s > last_before + 20)
        },
    )
    .await;
    stop_gateway(&mut gw, &got).await;
    assert_retained_is_latest(broker.port, &got).await;
    sub.abort();

    // Arrival order never goes back except for resends of unacknowledged messages
    // (same seq, at-least-once); seqs are unique per payload and gap-free.
    let arrivals = got.lock().unwrap().clone();
    let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
    for (t, v) in &arrivals {
        let Some(seq) = v["seq"].as_u64().filter(|s| *s > 0) else {
            continue;
        };
        let body = format!("{t} {v}");
        if let Some(prev) = by_seq.insert(seq, body.clone()) {
            assert_eq!(prev, body, "seq {seq} was reused for a different message");
        }
    }
    let (lo, hi) = (
        *by_seq.keys().next().unwrap(),
        *by_seq.keys().last().unwrap(),
    );
    let missing: Vec<u64> = (lo..=hi).filter(|q| !by_seq.contains_key(q)).collect();
    assert!(missing.is_empty(), "seq gaps across kill -9: {missing:?}");
    assert!(hi > last_before, "the counter continued after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_full_drops_oldest_telemetry_counts_it_and_keeps_every_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    let (got, sub) = subscriber(broker.port, "hazgate/#").await;
    let pty = socat_pair(dir.path());
    // The smallest spool allowed (64 KiB of payload): ≈ 10 s of the demo site's
    // telemetry, so a 25 s outage overflows it.
    let site = demo_site_with_uplink(
        dir.path(),
        free_port(),
        &pty.a,
        broker.port,
        "spool_max_bytes = 65536",
    );
    let _sim = start_simulator(
        &site,
        &pty.b,
        &[
            "--scenario",
            "bypass",
            "--target",
            "BP-101",
            "--start-after",
            "8",
        ],
    );
    let mut gw = start_gateway(&site, None);
    eventually(
        Duration::from_secs(20),
        "telemetry before the outage",
        || seqs(&got).values().any(|(_, ty)| ty == "telemetry"),
    )
    .await;
    broker.stop();
    tokio::time::sleep(Duration::from_secs(25)).await;
    broker.restart();
    eventually(
        Duration::from_secs(30),
        "the bypass alarm after the outage",
        || {
            got.lock()
                .unwrap()
                .iter()
                .any(|(_, v)| v["type"] == "alarm" && v["alarm"]["point"] == "BP-101")
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "an online status reporting drops",
        || {
            got.lock().unwrap().iter().any(|(t, v)| {
                t.ends_with("/status")
                    && v["state"] == "online"
                    && v["dropped_telemetry"].as_u64() > Some(0)
            })
        },
    )
    .await;
    stop_gateway(&mut gw, &got).await;
    assert_retained_is_latest(broker.port, &got).await;
    sub.abort();

    let arrivals = got.lock().unwrap().clone();
    let last_status = &arrivals
        .iter()
        .rev()
        .find(|(t, v)| t.ends_with("/status") && v["state"] == "offline" && v["seq"] != 0)
        .expect("the clean stop's offline status")
        .1;
    let dropped = last_status["dropped_telemetry"]
        .as_u64()
        .unwrap_or_else(|| panic!("dropped_telemetry on status: {last_status}"));
    assert!(dropped > 0, "a 25 s outage must overflow a 64 KiB spool");
    // The drops were reported while they happened, not only at the end.
    assert!(
        arrivals.iter().any(|(t, v)| t.ends_with("/status")
            && v["state"] == "online"
            && v["dropped_telemetry"].as_u64() > Some(0)),
        "an online status reports the drops"
    );
    // Every gap in seq is a counted drop (a message whose PUBACK was lost at the
    // broker's stop may have been delivered and dropped: fewer gaps, never more).
    let s = seqs(&got);
    let hi = *s.keys().last().unwrap();
    let missing: Vec<u64> = (1..=hi).filter(|q| !s.contains_key(q)).collect();
    assert!(
        !missing.is_empty() && missing.len() as u64 <= dropped,
        "{} gaps, {dropped} counted drops",
        missing.len()
    );
    // Oldest first: the dropped telemetry is one contiguous run of the telemetry; what
    // arrived from inside that run are events only.
    let (lo_gap, hi_gap) = (missing[0], *missing.last().unwrap());
    let inside: Vec<&(String, String)> = s.range(lo_gap..=hi_gap).map(|(_, v)| v).collect();
    assert!(
        inside.iter().all(|(_, ty)| ty != "telemetry"),
        "telemetry newer than a dropped one survived inside the dropped run: {inside:?}"
    );
    assert!(
        s.range(hi_gap..).any(|(_, (_, ty))| ty == "telemetry"),
        "the newest telemetry was kept"
    );
    // No alarm lost: the bypass alarm and HS-01's orange both arrived.
    assert!(arrivals
        .iter()
        .any(|(t, v)| t.ends_with("/risk/HS-01") && v["risk"]["to"] == "orange"));
    assert_schemas(&arrivals);
}

/// A throw-away CA, a server certificate for localhost / 127.0.0.1, and a client
/// certificate (CN gw-01), all signed by that CA.
fn make_certs(dir: &Path, name: &str) {
    let script = format!(
        "set -e; cd {d}; \
         openssl req -x509 -newkey rsa:2048 -nodes -keyout {n}-ca.key -out {n}-ca.pem -days 1 -subj /CN={n}-ca 2>/dev/null; \
         openssl req -newkey rsa:2048 -nodes -keyout {n}-server.key -out {n}-server.csr -subj /CN=localhost 2>/dev/null; \
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > {n}-san.ext; \
         openssl x509 -req -in {n}-server.csr -CA {n}-ca.pem -CAkey {n}-ca.key -CAcreateserial -out {n}-server.pem -days 1 -extfile {n}-san.ext 2>/dev/null; \
         printf 'extendedKeyUsage=clientAuth' > {n}-client.ext; \
         openssl req -newkey rsa:2048 -nodes -keyout {n}-client.key -out {n}-client.csr -subj /CN=gw-01 2>/dev/null; \
         openssl x509 -req -in {n}-client.csr -CA {n}-ca.pem -CAkey {n}-ca.key -CAcreateserial -out {n}-client.pem -days 1 -extfile {n}-client.ext 2>/dev/null",
        d = dir.display(),
        n = name
    );
    assert!(
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap()
            .success(),
        "openssl failed"
    );
}

/// The listeners of [`secure_broker`].
struct SecurePorts {
    /// Username and password.
    password: u16,
    /// TLS, any client.
    tls: u16,
    /// TLS with a client certificate required (mutual TLS).
    mtls: u16,
    /// Anonymous, with an ACL that lets the gateway publish everything but telemetry.
    acl: u16,
}

/// Mosquitto with password, TLS, mutual-TLS and ACL listeners (per-listener settings).
fn secure_broker(dir: &Path) -> (Proc, SecurePorts) {
    make_certs(dir, "good");
    let passwd = dir.join("passwd");
    assert!(Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&passwd)
        .args(["gw-01", "s3cret"])
        .status()
        .unwrap()
        .success());
    let acl = dir.join("acl");
    std::fs::write(
        &acl,
        "topic write hazgate/+/+/+/+/status\ntopic write hazgate/+/+/+/+/alarm\n\
         topic write hazgate/+/+/+/+/risk/#\ntopic write hazgate/+/+/+/+/risk\n\
         topic read hazgate/+/+/+/+/cmd/#\n",
    )
    .unwrap();
    let ports = SecurePorts {
        password: free_port(),
        tls: free_port(),
        mtls: free_port(),
        acl: free_port(),
    };
    let d = dir.display();
    let tls = format!(
        "cafile {d}/good-ca.pem\ncertfile {d}/good-server.pem\nkeyfile {d}/good-server.key\n"
    );
    let conf = dir.join("secure.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\nuser root\nlog_dest file {d}/secure.log\n\
             listener {} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
             listener {} 127.0.0.1\nallow_anonymous true\n{tls}\
             listener {} 127.0.0.1\nallow_anonymous true\n{tls}require_certificate true\n\
             listener {} 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
            ports.password,
            passwd.display(),
            ports.tls,
            ports.mtls,
            ports.acl,
            acl.display(),
        ),
    )
    .unwrap();
    let child = Command::new(mosquitto_bin())
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for p in [ports.password, ports.tls, ports.mtls, ports.acl] {
        wait_for_port(p, "secure mosquitto", Duration::from_secs(10));
    }
    (
        Proc {
            child,
            name: "mosquitto (secure)".into(),
        },
        ports,
    )
}

/// Runs `hazgate run` with `uplink` settings until the broker's log shows it connected
/// (or not, as `online` expects) and its own log holds every phrase, at most 20 s;
/// returns whether it went online and its stderr.
fn run_against(
    dir: &Path,
    name: &str,
    uplink: &str,
    online: bool,
    phrases: &[&str],
) -> (bool, String) {
    let text = std::fs::read_to_string(root().join("firmware-config/demo-site.toml")).unwrap();
    let site = dir.join(format!("{name}.toml"));
    std::fs::write(
        &site,
        format!("{text}\n[uplink]\nclient_id = \"{name}\"\nspool_path = \"{d}/{name}.redb\"\naudit_path = \"{d}/{name}.audit\"\n{uplink}\n", d = dir.display()),
    )
    .unwrap();
    let log = dir.join(format!("{name}.log"));
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--api",
            "off",
            "--log-level",
            "warn,hazgate::acquire=error",
            "--config",
        ])
        .arg(&site)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let went_online = || {
        let broker_log = std::fs::read_to_string(dir.join("secure.log")).unwrap_or_default();
        broker_log
            .lines()
            .any(|l| l.contains("New client connected") && l.contains(&format!(" as {name} ")))
    };
    let logged = || {
        let text = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .to_lowercase();
        phrases.iter().all(|p| text.contains(&p.to_lowercase()))
    };
    // A refused client must have tried (its log says why) at least twice: it retries.
    let retried = || {
        online
            || std::fs::read_to_string(&log)
                .unwrap_or_default()
                .matches("uplink connect failed; retrying")
                .count()
                >= 2
    };
    let start = Instant::now();
    while !(went_online() == online && logged() && retried())
        && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let alive = child.try_wait().unwrap().is_none();
    let status = terminate(&mut child).unwrap();
    assert!(
        alive,
        "{name}: hazgate must keep running and retrying, not crash"
    );
    assert!(
        status.success(),
        "{name}: clean exit on SIGTERM, got {status:?}"
    );
    assert_no_panic(&log);
    (
        went_online(),
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

#[test]
fn password_and_tls_listeners_connect_and_bad_credentials_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, ports) = secure_broker(dir.path());
    make_certs(dir.path(), "rogue");
    let d = dir.path().display();
    let (pw, tls, mtls, acl) = (ports.password, ports.tls, ports.mtls, ports.acl);
    let ca = |name: &str| format!("ca_file = \"{d}/{name}-ca.pem\"");
    let client = |name: &str| {
        format!("cert_file = \"{d}/{name}-client.pem\", key_file = \"{d}/{name}-client.key\"")
    };
    // (client id, [uplink] lines, goes online, phrases its log must hold)
    let cases: Vec<(&str, String, bool, Vec<&str>)> = vec![
        (
            "gw-pass",
            format!("port = {pw}\nusername = \"gw-01\"\npassword = \"s3cret\""),
            true,
            vec![],
        ),
        (
            "gw-pass-v5",
            format!("port = {pw}\nprotocol = \"5\"\nusername = \"gw-01\"\npassword = \"s3cret\""),
            true,
            vec![],
        ),
        (
            "gw-wrongpass",
            format!("port = {pw}\nusername = \"gw-01\"\npassword = \"nope\""),
            false,
            vec!["uplink connect failed; retrying", "NotAuthorized"],
        ),
        (
            "gw-wrongpass-v5",
            format!("port = {pw}\nprotocol = \"5\"\nusername = \"gw-01\"\npassword = \"nope\""),
            false,
            vec!["uplink connect failed; retrying", "NotAuthorized"],
        ),
        (
            "gw-tls",
            format!(
                "host = \"localhost\"\nport = {tls}\ntls = {{ {} }}",
                ca("good")
            ),
            true,
            vec![],
        ),
        (
            "gw-untrusted",
            format!(
                "host = \"localhost\"\nport = {tls}\ntls = {{ {} }}",
                ca("rogue")
            ),
            false,
            vec![
                "uplink connect failed; retrying",
                "invalid peer certificate: UnknownIssuer",
            ],
        ),
        (
            "gw-mtls",
            format!(
                "host = \"localhost\"\nport = {mtls}\ntls = {{ {}, {} }}",
                ca("good"),
                client("good")
            ),
            true,
            vec![],
        ),
        (
            "gw-mtls-nocert",
            format!(
                "host = \"localhost\"\nport = {mtls}\ntls = {{ {} }}",
                ca("good")
            ),
            false,
            vec!["uplink connect failed; retrying", "CertificateRequired"],
        ),
        (
            "gw-mtls-rogue",
            format!(
                "host = \"localhost\"\nport = {mtls}\ntls = {{ {}, {} }}",
                ca("good"),
                client("rogue")
            ),
            false,
            vec!["uplink connect failed; retrying", "UnknownCA"],
        ),
        (
            "gw-acl-v5",
            format!("port = {acl}\nprotocol = \"5\""),
            true,
            vec!["broker refused a message", "NotAuthorized"],
        ),
        // MQTT 3.1.1 has no refusal: the broker acknowledges a denied publish and drops
        // it, so the gateway can only connect and keep running.
        ("gw-acl", format!("port = {acl}"), true, vec![]),
    ];
    // Every TLS case over MQTT 5 as well: rumqttc's v5 client has a TLS path of its own.
    let v5: Vec<(String, String, bool, Vec<&str>)> = cases
        .iter()
        .filter(|(name, uplink, _, _)| {
            name.starts_with("gw-") && uplink.contains("tls = ") && !uplink.contains("protocol")
        })
        .map(|(name, uplink, online, phrases)| {
            (
                format!("{name}-v5"),
                format!("{uplink}\nprotocol = \"5\""),
                *online,
                phrases.clone(),
            )
        })
        .collect();
    let cases: Vec<(&str, String, bool, Vec<&str>)> = cases
        .into_iter()
        .chain(
            v5.iter()
                .map(|(n, u, o, p)| (n.as_str(), u.clone(), *o, p.clone())),
        )
        .collect();
    // All at once (each gateway has its own client id, spool and log).
    let dir_path = dir.path();
    let results: Vec<(bool, String)> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(name, uplink, online, phrases)| {
                let uplink = if uplink.contains("host =") {
                    uplink.clone()
                } else {
                    format!("host = \"127.0.0.1\"\n{uplink}")
                };
                scope.spawn(move || run_against(dir_path, name, &uplink, *online, phrases))
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for ((name, _, online_expected, phrases), (online, log)) in cases.iter().zip(results) {
        assert_eq!(online, *online_expected, "{name}: online? {log}");
        for p in phrases {
            assert!(
                log.to_lowercase().contains(&p.to_lowercase()),
                "{name}: log lacks `{p}`: {log}"
            );
        }
    }
}
