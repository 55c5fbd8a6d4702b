//! What the centre sees is true through start-up, restarts and outages: a gateway that
//! starts during a leak tells the centre; retained levels equal the gateway's state after
//! a restart; an unwritable spool stops the start loudly; a broker outage shows on
//! `/healthz` and `/metrics`. Real processes: pymodbus, Mosquitto, `hazgate run`.

mod common;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use common::{mqtt::*, *};
use serde_json::json;

/// A broker with a recording subscriber, a pymodbus detector reading `value` %LEL
/// (changeable through `control`), and the one-detector site publishing to the broker.
/// Fields drop in order: the subscriber's task, the detector, the broker, the directory.
struct Scene {
    sub: tokio::task::JoinHandle<()>,
    _peer: Proc,
    broker: Broker,
    got: Received,
    site: std::path::PathBuf,
    control: std::path::PathBuf,
    dir: tempfile::TempDir,
}

async fn scene(value: f64, uplink_extra: &str) -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let (got, sub) = subscriber(broker.port, "hazgate/#").await;
    let port = free_port();
    let (peer, control) = detector(dir.path(), &PeerAt::Tcp(port), value);
    let site = one_detector_site(dir.path(), &PeerAt::Tcp(port), broker.port, uplink_extra);
    Scene {
        sub,
        _peer: peer,
        broker,
        got,
        site,
        control,
        dir,
    }
}

fn raised_hh(got: &Received) -> usize {
    got.lock()
        .unwrap()
        .iter()
        .filter(|(_, v)| {
            v["type"] == "alarm" && v["alarm"]["alarm"] == "hh" && v["alarm"]["action"] == "raised"
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_during_a_leak_tells_the_centre_every_time() {
    // The race lost this in 3 of 3 starts on an idle machine: try 3 starts.
    for round in 0..3 {
        let Scene {
            dir: _dir,
            broker,
            got,
            sub,
            site,
            control: _,
            _peer,
        } = scene(60.0, "").await;
        let mut gw = start_gateway(&site, None);
        eventually(
            Duration::from_secs(20),
            "HH raised and the red level",
            || {
                let red = got.lock().unwrap().iter().any(|(t, v)| {
                    t.ends_with("/risk") && v["risk"]["id"] == "HS-1" && v["risk"]["to"] == "red"
                });
                raised_hh(&got) == 1 && red
            },
        )
        .await;
        assert_eq!(
            retained_colour(broker.port, "HS-1").await,
            Some(json!("red")),
            "round {round}"
        );
        stop_gateway(&mut gw, &got).await;
        sub.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_retained_levels_are_the_gateways_not_the_last_runs() {
    let Scene {
        dir,
        broker,
        got,
        sub,
        site,
        control,
        _peer,
    } = scene(60.0, "").await;
    let mut gw = start_gateway(&site, None);
    eventually(Duration::from_secs(20), "red", || raised_hh(&got) == 1).await;
    stop_gateway(&mut gw, &got).await;
    // The leak ends while the gateway is down.
    set_detector(&control, 0.0);
    let api = free_port();
    let mut gw = start_gateway_with_api(&site, api, &dir.path().join("gw2.log"));
    // Whatever the gateway's state, the broker's retained levels say the same (within
    // a second or so of its connecting: the restatement goes out on connect).
    let start = Instant::now();
    loop {
        let (_, body) = http(api, "GET", "/api/v1/state", None);
        let state: serde_json::Value = serde_json::from_str(&body).unwrap();
        let (hs1, ent) = (
            retained_colour(broker.port, "HS-1").await,
            retained_colour(broker.port, "enterprise").await,
        );
        let want_hs1 = state["hazard_sources"][0]["colour"].clone();
        let want_ent = state["enterprise"]["colour"].clone();
        if hs1 == Some(want_hs1.clone()) && ent == Some(want_ent.clone()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "retained HS-1 {hs1:?} / enterprise {ent:?}, gateway says {want_hs1} / {want_ent}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_gateway(&mut gw, &got).await;
    sub.abort();
}

#[test]
fn an_unwritable_spool_stops_the_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // The spool's directory would be inside a regular file: it cannot be created.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let spool = blocker.join("spool.redb");
    let site = one_detector_site(dir.path(), &PeerAt::Tcp(free_port()), free_port(), "");
    let text = std::fs::read_to_string(&site).unwrap().replace(
        &format!("{}/spool.redb", dir.path().display()),
        &spool.display().to_string(),
    );
    std::fs::write(&site, text).unwrap();
    let out = Command::new(BIN)
        .args(["run", "--api", "off", "--config"])
        .arg(&site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "must not run without its spool: {err}"
    );
    assert!(
        err.contains(&blocker.display().to_string()) && err.contains("spool_path"),
        "the error names the spool's path: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_shows_on_healthz_and_metrics_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port(); // nothing listens there yet
    let port = free_port();
    let (_peer, _) = detector(dir.path(), &PeerAt::Tcp(port), 5.0);
    let site = one_detector_site(dir.path(), &PeerAt::Tcp(port), broker_port, "");
    let api = free_port();
    let log = dir.path().join("gw.log");
    let mut gw = start_gateway_with_api(&site, api, &log);
    // From start-up, before any event: the level gauges exist.
    let (_, metrics) = http(api, "GET", "/metrics", None);
    assert!(
        metrics.contains("hazgate_risk_level{hazard_source=\"HS-1\"} 0"),
        "{metrics}"
    );
    let health = || -> (u16, serde_json::Value) {
        let (code, body) = http(api, "GET", "/healthz", None);
        (code, serde_json::from_str(&body).unwrap_or_default())
    };
    let start = Instant::now();
    let body = loop {
        let (code, body) = health();
        assert_eq!(code, 200, "spooling is degraded, not down: {body}");
        if body["uplink"]["oldest_unsent_s"].as_f64() > Some(1.0) {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["uplink"]["state"], "spooling", "{body}");
    assert!(body["uplink"]["spool_events"].as_u64() > Some(0), "{body}");
    assert!(
        body["uplink"]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "says why: {body}"
    );
    let (_, metrics) = http(api, "GET", "/metrics", None);
    for needle in [
        "hazgate_uplink_connected 0",
        "hazgate_spool_messages{class=\"event\"}",
        "hazgate_spool_oldest_unsent_seconds",
    ] {
        assert!(metrics.contains(needle), "{needle} in\n{metrics}");
    }
    // The broker comes: connected, the backlog drains.
    let _broker = Broker::start_on(dir.path(), broker_port);
    let start = Instant::now();
    loop {
        let (code, body) = health();
        if code == 200
            && body["status"] == "ok"
            && body["uplink"]["state"] == "connected"
            && body["uplink"]["spool_events"] == 0
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = http(api, "GET", "/metrics", None);
    assert!(metrics.contains("hazgate_uplink_connected 1"), "{metrics}");
    let status = gw.terminate().unwrap();
    assert!(status.success(), "{status}");
    assert_no_panic(&log);
}

/// Sends a command over MQTT and waits for its reply; returns the reply.
async fn command(
    port: u16,
    got: &Received,
    name: &str,
    payload: serde_json::Value,
) -> serde_json::Value {
    let id = format!("t-{}", free_port());
    let mut body = payload;
    body["request_id"] = json!(id);
    let (client, mut el) = rumqttc::AsyncClient::new(
        rumqttc::MqttOptions::new(format!("op-{id}"), "127.0.0.1", port),
        16,
    );
    let poller = tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
        .publish(
            format!("hazgate/v1/P1/E1/GW-T/cmd/{name}"),
            rumqttc::QoS::AtLeastOnce,
            false,
            body.to_string(),
        )
        .await
        .unwrap();
    let mut reply = serde_json::Value::Null;
    eventually(
        Duration::from_secs(15),
        &format!("the reply to {name}"),
        || {
            if let Some((_, v)) = got
                .lock()
                .unwrap()
                .iter()
                .find(|(t, v)| t.ends_with("/reply") && v["request_id"] == id.as_str())
            {
                reply = v.clone();
            }
            !reply.is_null()
        },
    )
    .await;
    poller.abort();
    reply
}

/// Distinct alarm messages (by `seq`: delivery is at-least-once, and a message resent
/// after a `kill -9` is the same message) of one alarm kind and action, in order.
fn alarm_events(got: &Received, alarm: &str, action: &str) -> Vec<serde_json::Value> {
    let mut seen = std::collections::BTreeSet::new();
    got.lock()
        .unwrap()
        .iter()
        .filter(|(t, v)| {
            t.ends_with("/alarm")
                && v["alarm"]["alarm"] == alarm
                && v["alarm"]["action"] == action
                && seen.insert(v["seq"].as_u64())
        })
        .map(|(_, v)| v["alarm"].clone())
        .collect()
}

fn view(api: u16, alarm: &str) -> serde_json::Value {
    let (_, body) = http(api, "GET", "/api/v1/alarms", None);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|a| a["point"] == "GT-1" && a["alarm"] == alarm)
        .cloned()
        .unwrap_or_else(|| panic!("no {alarm} view in {body}"))
}

/// Seqs received (not the Last Will's 0), each once.
fn seq_gaps(got: &Received) -> Vec<u64> {
    let seqs: std::collections::BTreeSet<u64> = got
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, v)| v["seq"].as_u64())
        .filter(|s| *s > 0)
        .collect();
    let (lo, hi) = (*seqs.first().unwrap(), *seqs.last().unwrap());
    (lo..=hi).filter(|s| !seqs.contains(s)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_an_acknowledged_hh_and_a_shelve_under_the_same_alarm_id() {
    let Scene {
        dir,
        broker,
        got,
        sub,
        site,
        control: _,
        _peer,
    } = scene(60.0, "keepalive_s = 5").await;
    let api = free_port();
    let mut gw = start_gateway_with_api(&site, api, &dir.path().join("gw1.log"));
    eventually(Duration::from_secs(20), "HH raised", || {
        alarm_events(&got, "hh", "raised").len() == 1
    })
    .await;
    let id = alarm_events(&got, "hh", "raised")[0]["alarm_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ack = command(
        broker.port,
        &got,
        "ack",
        json!({"by": "op-zhang", "point": "GT-1", "alarm": "hh"}),
    )
    .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let shelve = command(
        broker.port,
        &got,
        "shelve",
        json!({"by": "op-li", "point": "GT-1", "alarm": "h", "duration_s": 3600}),
    )
    .await;
    assert_eq!(shelve["ok"], true, "{shelve}");
    let shelved_until = view(api, "h")["shelved_until"].clone();
    assert!(shelved_until.is_string());

    // Power cut.
    gw.child.kill().unwrap();
    let _ = gw.child.wait();
    let mut gw = start_gateway_with_api(&site, api, &dir.path().join("gw2.log"));
    // Running and reading again: a new online status after the restart.
    let onlines = || {
        got.lock()
            .unwrap()
            .iter()
            .filter(|(t, v)| t.ends_with("/status") && v["state"] == "online" && v["uptime_s"] == 0)
            .count()
    };
    eventually(Duration::from_secs(20), "online again", || onlines() >= 2).await;
    let hh = view(api, "hh");
    assert_eq!(
        (&hh["state"], &hh["acknowledged_by"], &hh["alarm_id"]),
        (
            &json!("active_acknowledged"),
            &json!("op-zhang"),
            &json!(id)
        ),
        "{hh}"
    );
    let h = view(api, "h");
    assert_eq!(
        h["shelved_until"], shelved_until,
        "the shelve's remaining time: {h}"
    );
    stop_gateway(&mut gw, &got).await;
    assert_eq!(
        alarm_events(&got, "hh", "raised").len(),
        1,
        "no second HH raised"
    );
    assert!(alarm_events(&got, "hh", "cleared").is_empty());
    assert_eq!(
        seq_gaps(&got),
        Vec::<u64>::new(),
        "no seq gap across the kill"
    );
    sub.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_that_went_away_while_the_gateway_was_down_clears_once_at_restart() {
    let Scene {
        dir: _dir,
        broker: _broker,
        got,
        sub,
        site,
        control,
        _peer,
    } = scene(60.0, "").await;
    let mut gw = start_gateway(&site, None);
    eventually(Duration::from_secs(20), "HH raised", || {
        alarm_events(&got, "hh", "raised").len() == 1
    })
    .await;
    let id = alarm_events(&got, "hh", "raised")[0]["alarm_id"].clone();
    gw.child.kill().unwrap();
    let _ = gw.child.wait();
    set_detector(&control, 0.0);
    let mut gw = start_gateway(&site, None);
    eventually(Duration::from_secs(20), "HH cleared", || {
        !alarm_events(&got, "hh", "cleared").is_empty()
    })
    .await;
    stop_gateway(&mut gw, &got).await;
    let cleared = alarm_events(&got, "hh", "cleared");
    assert_eq!(cleared.len(), 1, "exactly one clear: {cleared:?}");
    assert_eq!(
        (&cleared[0]["alarm_id"], &cleared[0]["at_restart"]),
        (&id, &json!(true)),
        "the same occurrence, found at restart: {}",
        cleared[0]
    );
    assert_eq!(
        alarm_events(&got, "hh", "raised").len(),
        1,
        "not raised again"
    );
    sub.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_special_operation_survives_a_restart_and_the_centre_keeps_its_floor() {
    let Scene {
        dir,
        broker,
        got,
        sub,
        site,
        control: _,
        _peer,
    } = scene(5.0, "").await;
    let mut gw = start_gateway(&site, None);
    wait_online(&got).await;
    let r = command(
        broker.port,
        &got,
        "special-operation",
        json!({"by": "safety-li", "hazard_source": "HS-1", "active": true, "kind": "hot_work"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    gw.child.kill().unwrap();
    let _ = gw.child.wait();
    let api = free_port();
    let mut gw = start_gateway_with_api(&site, api, &dir.path().join("gw2.log"));
    let (_, body) = http(api, "GET", "/api/v1/state", None);
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state["hazard_sources"][0]["colour"], "yellow", "{state}");
    assert_eq!(
        state["hazard_sources"][0]["special_operation"]["by"],
        "safety-li"
    );
    // And the centre's retained level says so (restated on connect).
    let start = Instant::now();
    loop {
        let hs1 = retained_colour(broker.port, "HS-1").await;
        if hs1 == Some(json!("yellow")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "retained {hs1:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_gateway(&mut gw, &got).await;
    sub.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_in_hh_keeps_the_alarm_and_the_red() {
    let Scene {
        dir,
        broker,
        got,
        sub,
        site,
        control: _,
        _peer,
    } = scene(60.0, "").await;
    let mut gw = start_gateway_with_api(&site, free_port(), &dir.path().join("gw.log"));
    eventually(Duration::from_secs(20), "HH raised", || {
        alarm_events(&got, "hh", "raised").len() == 1
    })
    .await;
    // A changed site file (renamed enterprise), then SIGHUP: the pipeline restarts.
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(&site, text.replace("Test enterprise", "Renamed enterprise")).unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    eventually(Duration::from_secs(20), "reloaded", || {
        std::fs::read_to_string(&gw.log)
            .unwrap_or_default()
            .contains("configuration reloaded")
    })
    .await;
    assert_eq!(
        retained_colour(broker.port, "HS-1").await,
        Some(json!("red")),
        "red after the reload"
    );
    stop_gateway(&mut gw, &got).await;
    assert_eq!(
        alarm_events(&got, "hh", "raised").len(),
        1,
        "the same HH, not a new one"
    );
    let blue = got.lock().unwrap().iter().any(|(t, v)| {
        t.ends_with("/risk") && v["risk"]["id"] == "HS-1" && v["risk"]["to"] == "blue"
    });
    assert!(!blue, "never blue in between");
    sub.abort();
}

/// A gateway whose wall clock is stepped while it runs (NTP arriving late on a box
/// without an RTC battery; here libfaketime moves it 10 min ahead) says so: a warning
/// in its log and `clock_stepped_s` on its next status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stepped_wall_clock_is_logged_and_reported_on_status() {
    const LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
    assert!(
        Path::new(LIB).exists(),
        "libfaketime: run tests/setup-peers.sh"
    );
    let s = scene(1.0, "").await;
    let fake = s.dir.path().join("faketime");
    std::fs::write(&fake, "+0\n").unwrap();
    let log = s.dir.path().join("gateway.log");
    let child = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .args(["run", "--api", "off", "--log-level", "warn", "--config"])
        .arg(&s.site)
        .env("LD_PRELOAD", LIB)
        .env("FAKETIME_TIMESTAMP_FILE", &fake)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _gateway = Proc {
        child,
        name: "hazgate run (faketime)".into(),
    };
    let online = || {
        s.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, v)| t.ends_with("/status") && v["state"] == "online")
            .count()
    };
    eventually(Duration::from_secs(15), "the first status", || {
        online() >= 1
    })
    .await;
    assert!(
        s.got
            .lock()
            .unwrap()
            .iter()
            .all(|(_, v)| v.get("clock_stepped_s").is_none()),
        "no step yet"
    );
    std::fs::write(&fake, "+10m\n").unwrap();
    let stepped = || {
        s.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(t, v)| {
                t.ends_with("/status")
                    .then(|| v["clock_stepped_s"].as_f64())
                    .flatten()
            })
            .next_back()
    };
    eventually(Duration::from_secs(15), "a status with the step", || {
        stepped().is_some()
    })
    .await;
    let step = stepped().unwrap();
    assert!((598.0..=602.0).contains(&step), "{step}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("the wall clock was stepped").count(),
        1,
        "{text}"
    );
}
