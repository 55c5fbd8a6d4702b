//! What the centre sees is true through start-up, restarts and outages: a gateway that
//! starts during a leak tells the centre; retained levels equal the gateway's state after
//! a restart; an unwritable spool stops the start loudly; a broker outage shows on
//! `/healthz` and `/metrics`. Real processes: pymodbus, Mosquitto, `hazgate run`.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{mqtt::*, *};
use serde_json::json;

/// A pymodbus detector reading `value` %LEL, changeable through `control`.
fn detector(dir: &Path, at: &PeerAt, value: f64) -> (Proc, std::path::PathBuf) {
    let control = dir.join("control.json");
    let map = json!({"devices": [{"unit": 1, "holding": {"size": 8, "values": [
        {"addr": 0, "type": "f32", "order": "CDAB", "value": value}]}}]});
    let opts = PeerOpts {
        control: Some(control.clone()),
        ..Default::default()
    };
    (pymodbus(&map, at, dir, &opts), control)
}

fn set_detector(control: &Path, value: f64) {
    std::fs::write(
        control,
        json!([{"unit": 1, "table": "holding", "addr": 0, "type": "f32", "order": "CDAB", "value": value}])
            .to_string(),
    )
    .unwrap();
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

/// `hazgate run` with the local API on `api`, its log to `log`.
fn run_with_api(site: &Path, api: u16, log: &Path) -> Gateway {
    let child = Command::new(BIN)
        .args(["run", "--api", &format!("127.0.0.1:{api}"), "--config"])
        .arg(site)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Gateway {
        proc: Proc {
            child,
            name: "hazgate run".into(),
        },
        log: log.to_path_buf(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_during_a_leak_tells_the_centre_every_time() {
    // The race lost this in 3 of 3 starts on an idle machine: try 3 starts.
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::start(dir.path());
        let (got, sub) = subscriber(broker.port, "hazgate/#").await;
        let port = free_port();
        let (_peer, _) = detector(dir.path(), &PeerAt::Tcp(port), 60.0);
        let site = one_detector_site(dir.path(), &PeerAt::Tcp(port), broker.port, "");
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
        let retained = retained(broker.port, "hazgate/#").await;
        let hs1 = retained
            .iter()
            .find(|(t, _)| t.ends_with("/risk/HS-1"))
            .unwrap_or_else(|| panic!("round {round}: no retained level: {retained:?}"));
        assert_eq!(hs1.1["risk"]["to"], "red", "round {round}");
        stop_gateway(&mut gw, &got).await;
        sub.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_retained_levels_are_the_gateways_not_the_last_runs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let (got, sub) = subscriber(broker.port, "hazgate/#").await;
    let port = free_port();
    let (_peer, control) = detector(dir.path(), &PeerAt::Tcp(port), 60.0);
    let site = one_detector_site(dir.path(), &PeerAt::Tcp(port), broker.port, "");
    let mut gw = start_gateway(&site, None);
    eventually(Duration::from_secs(20), "red", || raised_hh(&got) == 1).await;
    stop_gateway(&mut gw, &got).await;
    // The leak ends while the gateway is down.
    set_detector(&control, 0.0);
    let api = free_port();
    let mut gw = run_with_api(&site, api, &dir.path().join("gw2.log"));
    wait_for_port(api, "the gateway's API", Duration::from_secs(20));
    // Whatever the gateway's state, the broker's retained levels say the same (within
    // a second or so of its connecting: the restatement goes out on connect).
    let start = Instant::now();
    loop {
        let (_, body) = http(api, "GET", "/api/v1/state", None);
        let state: serde_json::Value = serde_json::from_str(&body).unwrap();
        let retained = retained(broker.port, "hazgate/#").await;
        let of = |scope: &str| {
            retained
                .iter()
                .find(|(t, _)| t.ends_with(&format!("/risk/{scope}")))
                .map(|(_, v)| v["risk"]["to"].clone())
        };
        let want_hs1 = state["hazard_sources"][0]["colour"].clone();
        let want_ent = state["enterprise"]["colour"].clone();
        if of("HS-1") == Some(want_hs1.clone()) && of("enterprise") == Some(want_ent.clone()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "retained HS-1 {:?} / enterprise {:?}, gateway says {want_hs1} / {want_ent}",
            of("HS-1"),
            of("enterprise")
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
    let mut gw = run_with_api(&site, api, &log);
    wait_for_port(api, "the gateway's API", Duration::from_secs(20));
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
