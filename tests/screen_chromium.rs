//! The command-centre screen in a real browser: headless Chromium (Debian's, driven by
//! chromedriver over WebDriver) loads `/screen` from `hazgate ingest`; a risk change
//! published on MQTT turns the right tile the right colour within a second. A
//! screenshot is kept in `target/screenshots/screen.png` for a person to look at.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{mqtt::*, *};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{json, Value};

/// One WebDriver call (chromedriver speaks HTTP + JSON).
fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "30", "-X", method])
        .arg(format!("http://127.0.0.1:{port}{path}"));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "-d"])
            .arg(b.to_string());
    }
    let out = cmd.output().expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{method} {path}: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn risk(park: &str, ent: &str, id: &str, scope: &str, to: &str, rule: &str) -> (String, String) {
    let topic_id = if scope == "enterprise" {
        "enterprise"
    } else {
        id
    };
    (
        format!("hazgate/v1/{park}/{ent}/GW-1/risk/{topic_id}"),
        json!({"seq": 1, "ts": "2026-11-23T08:00:00.000Z", "park": park, "enterprise": ent, "gateway": "GW-1",
            "type": "risk", "risk": {"ts": "2026-11-23T08:00:00.000Z", "scope": scope, "id": id, "from": "blue", "to": to,
            "reasons": [{"rule": rule, "colour": to, "alarms": [], "since": "2026-11-23T08:00:00.000Z"}]}})
        .to_string(),
    )
}

fn status(park: &str, ent: &str, state: &str) -> (String, String) {
    (
        format!("hazgate/v1/{park}/{ent}/GW-1/status"),
        json!({"seq": 2, "ts": "2026-11-23T08:00:00.000Z", "park": park, "enterprise": ent, "gateway": "GW-1",
            "type": "status", "state": state, "version": "0.1.0", "uptime_s": 1, "spool_events": 0,
            "spool_telemetry": 0, "spool_bytes": 0, "dropped_telemetry": 0})
        .to_string(),
    )
}

/// Headless Chromium driven by chromedriver: one WebDriver session.
struct Browser {
    port: u16,
    sid: String,
    _driver: Proc,
}

impl Browser {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let driver = Proc {
            child: Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver: run tests/setup-peers.sh first"),
            name: "chromedriver".into(),
        };
        wait_for_port(port, "chromedriver", Duration::from_secs(15));
        let profile = dir.join(format!("chromium-profile-{port}"));
        let session = wd(
            port,
            "POST",
            "/session",
            Some(
                json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1920,1080", format!("--user-data-dir={}", profile.display())]}}}}),
            ),
        );
        let sid = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {session}"))
            .to_string();
        Self {
            port,
            sid,
            _driver: driver,
        }
    }

    /// Runs `js` in the page; its return value.
    fn script(&self, js: &str) -> Value {
        wd(
            self.port,
            "POST",
            &format!("/session/{}/execute/sync", self.sid),
            Some(json!({"script": js, "args": []})),
        )["value"]
            .clone()
    }

    fn goto(&self, url: &str) {
        wd(
            self.port,
            "POST",
            &format!("/session/{}/url", self.sid),
            Some(json!({"url": url})),
        );
    }

    /// Keeps a screenshot in `target/screenshots/{name}` for a person to look at.
    fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let shot = wd(
            self.port,
            "GET",
            &format!("/session/{}/screenshot", self.sid),
            None,
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["value"].as_str().unwrap())
            .unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(name), png).unwrap();
    }

    /// Waits up to 5 s for `js` to return `want`.
    async fn until(&self, what: &str, js: &str, want: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let v = self.script(js);
            if want(&v) {
                return v;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "{what}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_risk_change_on_mqtt_turns_the_right_tile_the_right_colour_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new("screen-test", "127.0.0.1", broker.port),
        64,
    );
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let publish = |(topic, payload): (String, String)| {
        let c = client.clone();
        async move {
            c.publish(topic, QoS::AtLeastOnce, true, payload)
                .await
                .unwrap()
        }
    };
    // The park as the retained messages tell it before the screen starts.
    publish(risk(
        "P",
        "E1",
        "HS-01",
        "hazard_source",
        "blue",
        "no alarm",
    ))
    .await;
    publish(risk(
        "P",
        "E1",
        "HS-02",
        "hazard_source",
        "yellow",
        "low alarm",
    ))
    .await;
    publish(risk(
        "P",
        "E2",
        "HS-01",
        "hazard_source",
        "orange",
        "bypass on a level 1/2 source",
    ))
    .await;
    publish(status("P", "E1", "online")).await;
    publish(status("P", "E2", "offline")).await;

    // Ingest with its screen (the store is not needed for the screen: none runs).
    let http = free_port();
    let conf = dir.path().join("central.toml");
    std::fs::write(
        &conf,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"screen-ingest\"\n[store]\nurl = \"http://127.0.0.1:{}\"\norg = \"o\"\nbucket = \"b\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
            broker.port,
            free_port()
        ),
    )
    .unwrap();
    let _ingest = start_central(&conf, http, &dir.path().join("ingest.log"));
    // No `[store] query` here: the drill-down has no trends, and says how to get them.
    let (code, body) = common::http(
        http,
        "GET",
        "/screen/trend?park=P&enterprise=E1&gateway=GW-1&point=GT-101",
        None,
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("set [store] query"), "{body}");
    let browser = Browser::start(dir.path());
    let (driver_port, sid) = (browser.port, browser.sid.clone());
    let script = |js: &str| browser.script(js);
    // The page's security headers: no inline script or style allowed, no referrer —
    // and the page works under them (Chromium enforces the policy below).
    let head = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://127.0.0.1:{http}/screen"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).to_lowercase();
    for needle in [
        "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'",
        "referrer-policy: no-referrer",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(needle), "{needle} in\n{head}");
    }
    browser.goto(&format!("http://127.0.0.1:{http}/screen"));

    let tiles = || {
        script("return [...document.querySelectorAll('.tile')].map(t => `${t.dataset.enterprise}/${t.dataset.source}=${t.dataset.colour}`).sort()")
    };
    let start = Instant::now();
    while tiles() != json!(["E1/HS-01=blue", "E1/HS-02=yellow", "E2/HS-01=orange"]) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the retained picture never showed: {}",
            tiles()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // E2's gateway is offline: its source is grey with since when, counted as no data —
    // not orange, and never blue.
    let e2 = script(
        "const t = document.querySelector('.tile[data-enterprise=\"E2\"]'); \
         return [t.dataset.state, t.className, t.innerText, \
           ...['red','orange','yellow','blue','grey'].map(c => document.getElementById('n-' + c).textContent)]",
    );
    assert_eq!(e2[0], "offline", "{e2}");
    assert_eq!(e2[1], "tile grey", "{e2}");
    assert!(
        e2[2].as_str().unwrap_or("").contains("离线 offline"),
        "{e2}"
    );
    assert_eq!(
        &e2.as_array().unwrap()[3..],
        [json!("0"), json!("0"), json!("1"), json!("1"), json!("1")],
        "{e2}"
    );
    let text = script("return document.body.innerText")
        .as_str()
        .unwrap_or("")
        .to_string();
    for needle in [
        "重大风险清单",
        "Major-risk list",
        "E2 · HS-01",
        "bypass on a level 1/2 source (orange)",
        "离线网关",
        "E2 · GW-1",
        "实时报警",
    ] {
        assert!(text.contains(needle), "`{needle}` not on the page:\n{text}");
    }

    // The change: E1's HS-01 goes red. The page itself notes when (a MutationObserver on
    // performance.now()), so the WebDriver's polling does not add to the figure.
    let tile = "document.querySelector('.tile[data-enterprise=\"E1\"][data-source=\"HS-01\"]')";
    let t0 = script(&format!(
        "window.__red = null;
         new MutationObserver(() => {{
           const t = {tile};
           if (window.__red === null && t && t.dataset.colour === 'red') window.__red = performance.now();
         }}).observe(document.body, {{subtree: true, childList: true, attributes: true}});
         return performance.now();"
    ))
    .as_f64()
    .unwrap();
    publish(risk(
        "P",
        "E1",
        "HS-01",
        "hazard_source",
        "red",
        "critical alarm on a level 1/2 source",
    ))
    .await;
    let sent = Instant::now();
    let red_at = loop {
        if let Some(t) = script("return window.__red").as_f64() {
            break t;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "the tile never turned red: {}",
            script(&format!("const t = {tile}; return t && t.dataset.colour"))
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let in_page_ms = red_at - t0;
    assert!(
        in_page_ms < 1000.0,
        "red {in_page_ms:.0} ms after the publish"
    );
    let v = script(&format!(
        "const t = {tile}; return [t.dataset.colour, getComputedStyle(t).backgroundColor]"
    ));
    assert_eq!(v, json!(["red", "rgb(215, 38, 61)"]), "painted red");
    assert_eq!(
        script("return document.getElementById('n-red').textContent"),
        "1"
    );
    assert_eq!(
        tiles(),
        json!(["E1/HS-01=red", "E1/HS-02=yellow", "E2/HS-01=orange"]),
        "only that tile changed"
    );

    // v1.5 names, the reason in Chinese, an alarm's value as a person reads it.
    publish((
        "hazgate/v1/P/E1/GW-1/status".into(),
        json!({"seq": 3, "ts": "2026-11-23T08:00:01.000Z", "park": "P", "enterprise": "E1", "gateway": "GW-1",
            "type": "status", "state": "online", "enterprise_name": "示范化工有限公司", "version": "0.1.0",
            "uptime_s": 2, "spool_events": 0, "spool_telemetry": 0, "spool_bytes": 0, "dropped_telemetry": 0})
        .to_string(),
    ))
    .await;
    let (topic, payload) = risk(
        "P",
        "E1",
        "HS-01",
        "hazard_source",
        "red",
        "critical alarm on a level 1/2 source",
    );
    let mut payload: Value = serde_json::from_str(&payload).unwrap();
    payload["risk"]["name"] = json!("丙烯球罐区");
    publish((topic, payload.to_string())).await;
    client
        .publish(
            "hazgate/v1/P/E1/GW-1/alarm",
            QoS::AtLeastOnce,
            false,
            json!({"seq": 4, "ts": "2026-11-23T08:00:02.000Z", "park": "P", "enterprise": "E1", "gateway": "GW-1",
                "type": "alarm", "alarm": {"ts": "2026-11-23T08:00:02.000Z", "alarm_id": "GT-101:hh:1", "point": "GT-101",
                "hazard_source": "HS-01", "alarm": "hh", "class": "critical", "action": "raised",
                "state": "active_unacknowledged", "value": 40.560264587402344, "limit": 40.0, "by": null,
                "bad_quality": false, "shelved": false, "out_of_service": false, "unit": "%LEL"}})
            .to_string(),
        )
        .await
        .unwrap();
    // A live status from a gateway whose clock is 10 min fast: its enterprise says so.
    let fast =
        humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(600));
    client
        .publish(
            "hazgate/v1/P/E1/GW-1/status",
            QoS::AtLeastOnce,
            false,
            json!({"seq": 5, "stream_seq": 5, "ts": fast.to_string(), "park": "P", "enterprise": "E1",
                "gateway": "GW-1", "type": "status", "state": "online", "enterprise_name": "示范化工有限公司",
                "version": "0.1.0", "uptime_s": 3, "spool_events": 0, "spool_telemetry": 0, "spool_bytes": 0,
                "dropped_telemetry": 0})
            .to_string(),
        )
        .await
        .unwrap();
    let want = [
        "时钟偏差 clock +600 s",
        "示范化工有限公司 · HS-01 丙烯球罐区",
        "一、二级重大危险源紧急报警（红） · critical alarm on a level 1/2 source (red)",
        "示范化工有限公司 · HS-01 · GT-101 HH = 40.56 %LEL (限 limit 40 %LEL)",
    ];
    let start = Instant::now();
    loop {
        let text = script("return document.body.innerText")
            .as_str()
            .unwrap_or("")
            .to_string();
        if want.iter().all(|w| text.contains(w)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "missing {:?} in\n{text}",
            want.iter()
                .filter(|w| !text.contains(*w))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Only E1's gateway is off (E2's has the same gateway id in another enterprise).
    assert_eq!(
        script("return [...document.querySelectorAll('.enterprise .clock')].map(c => c.closest('.enterprise').dataset.enterprise)"),
        json!(["E1"])
    );

    // The alarm list (两单): the occurrence unacknowledged, then acknowledged by whom,
    // then gone once back to normal.
    let active = || {
        script("return [...document.querySelectorAll('#active li')].map(l => `${l.dataset.state || ''}|${l.innerText}`)")
    };
    let until = |what: &str, ok: &dyn Fn(&Value) -> bool| {
        let start = Instant::now();
        loop {
            let list = active();
            if ok(&list) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "{what}: {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    until("unacknowledged", &|l| {
        l.as_array().is_some_and(|a| {
            a.len() == 1
                && a[0]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("active_unacknowledged|未确认 unack")
        })
    });
    let alarm_event = |seq: u64, action: &str, state: &str, by: Value| {
        json!({"seq": seq, "ts": "2026-11-23T08:00:03.000Z", "park": "P", "enterprise": "E1", "gateway": "GW-1",
            "type": "alarm", "alarm": {"ts": "2026-11-23T08:00:03.000Z", "alarm_id": "GT-101:hh:1", "point": "GT-101",
            "hazard_source": "HS-01", "alarm": "hh", "class": "critical", "action": action,
            "state": state, "value": 40.1, "limit": 40.0, "by": by,
            "bad_quality": false, "shelved": false, "out_of_service": false, "unit": "%LEL"}})
        .to_string()
    };
    for (seq, action, state, by) in [
        (6, "acknowledged", "active_acknowledged", json!("op-zhang")),
        (7, "cleared", "normal", Value::Null),
    ] {
        client
            .publish(
                "hazgate/v1/P/E1/GW-1/alarm",
                QoS::AtLeastOnce,
                false,
                alarm_event(seq, action, state, by),
            )
            .await
            .unwrap();
        if state == "active_acknowledged" {
            until("acknowledged by op-zhang", &|l| {
                l.as_array().is_some_and(|a| {
                    a.len() == 1 && {
                        let t = a[0].as_str().unwrap_or("");
                        t.starts_with("active_acknowledged|已确认 ack")
                            && t.contains("确认 by op-zhang")
                    }
                })
            });
        }
    }
    until("back to normal: off the list", &|l| {
        l.as_array()
            .is_some_and(|a| a.len() == 1 && a[0].as_str().unwrap_or("").starts_with("|无 none"))
    });

    // A county: a second park appears; the park bar lists both, and choosing one shows
    // only its tiles and counts (and pins the choice in the address: `#park=P2`).
    publish(risk(
        "P2",
        "E9",
        "HS-09",
        "hazard_source",
        "red",
        "critical alarm on a level 1/2 source",
    ))
    .await;
    let bar = || {
        script("return [...document.querySelectorAll('#parks button')].map(b => b.innerText.replace(/\\s+/g, ' '))")
    };
    let start = Instant::now();
    // (E2's orange source is offline: grey, not counted as orange.)
    while bar() != json!(["全部 All (2)红 2", "P红 1", "P2红 1"]) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "park bar: {}",
            bar()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    script("document.querySelector('#parks button[data-park=\"P2\"]').click(); return 0");
    let start = Instant::now();
    while tiles() != json!(["E9/HS-09=red"]) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "P2 alone: {}",
            tiles()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(script("return [location.hash, document.getElementById('n-red').textContent, document.getElementById('n-orange').textContent]"),
        json!(["#park=P2", "1", "0"]));
    script("document.querySelector('#parks button[data-park=\"\"]').click(); return 0");
    let start = Instant::now();
    while tiles().as_array().map_or(0, Vec::len) != 4 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "all parks again: {}",
            tiles()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    browser.screenshot("screen.png");

    // A 3840 × 2160 wall: the same layout at twice the size, and its screenshot.
    wd(
        driver_port,
        "POST",
        &format!("/session/{sid}/window/rect"),
        Some(json!({"width": 3840, "height": 2160})),
    );
    let start = Instant::now();
    while script("return getComputedStyle(document.documentElement).zoom") != json!("2") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not doubled at {}",
            script("return [innerWidth, innerHeight]")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.screenshot("screen-2160p.png");
    let png = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/screen-2160p.png"),
    )
    .unwrap();
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert_eq!(width, 3840, "a 4K screenshot");
    wd(driver_port, "DELETE", &format!("/session/{sid}"), None);
}

/// The page's alarm list, one line per occurrence: `feedback-state|text`.
const LOOP_LIST: &str = "return [...document.querySelectorAll('#active li')].map(l => `${l.dataset.feedback || ''}|${l.innerText}`)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_gives_feedback_on_the_screen_and_the_list_shows_it_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let tokens = dir.path().join("tokens.json");
    let out = Command::new(BIN)
        .args(["token", "--file"])
        .arg(&tokens)
        .args(["add", "op-li", "--role", "operator"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let operator = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // What the centre sends to the gateway, and the gateway's side of it (none runs:
    // the test answers as the gateway would).
    let (sent, sub) = subscriber(broker.port, "hazgate/v1/P/E1/GW-1/cmd/feedback").await;
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new("loop-screen-test", "127.0.0.1", broker.port),
        64,
    );
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let http = free_port();
    let conf = dir.path().join("central.toml");
    std::fs::write(
        &conf,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"loop-screen\"\n[store]\nurl = \"http://127.0.0.1:{}\"\norg = \"o\"\nbucket = \"b\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\ntokens_path = \"{}\"\n[alarm_loop]\njournal_dir = \"{}\"\n",
            broker.port,
            free_port(),
            tokens.display(),
            dir.path().join("alarms").display()
        ),
    )
    .unwrap();
    let _ingest = start_central(&conf, http, &dir.path().join("ingest.log"));
    let browser = Browser::start(dir.path());
    // The token once in the address: a cookie from then on, which the form's request
    // carries.
    browser.goto(&format!("http://127.0.0.1:{http}/screen?token={operator}"));

    // An HH raised 40 minutes ago, never acknowledged: 30 minutes past its deadline.
    let raised = std::time::SystemTime::now() - Duration::from_secs(40 * 60);
    let raised_ms = raised
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let ts = humantime::format_rfc3339_millis(raised).to_string();
    let alarm_id = format!("GT-101:hh:{raised_ms}");
    for (topic, message) in [
        (
            "status",
            json!({"seq": 1, "ts": ts, "park": "P", "enterprise": "E1", "gateway": "GW-1",
            "type": "status", "state": "online", "enterprise_name": "示范化工有限公司", "version": "0.1.0",
            "uptime_s": 2, "spool_events": 0, "spool_telemetry": 0, "spool_bytes": 0, "dropped_telemetry": 0}),
        ),
        (
            "alarm",
            json!({"seq": 2, "ts": ts, "park": "P", "enterprise": "E1", "gateway": "GW-1",
            "type": "alarm", "alarm": {"ts": ts, "alarm_id": alarm_id, "point": "GT-101",
            "hazard_source": "HS-01", "alarm": "hh", "class": "critical", "action": "raised",
            "state": "active_unacknowledged", "value": 52.5, "limit": 40.0, "by": null,
            "bad_quality": false, "shelved": false, "out_of_service": false, "unit": "%LEL"}}),
        ),
    ] {
        client
            .publish(
                format!("hazgate/v1/P/E1/GW-1/{topic}"),
                QoS::AtLeastOnce,
                false,
                message.to_string(),
            )
            .await
            .unwrap();
    }
    let overdue = |l: &Value| {
        l.as_array().is_some_and(|a| {
            a.len() == 1 && {
                let t = a[0].as_str().unwrap_or("");
                t.starts_with("overdue|未确认 unack")
                    && t.contains("示范化工有限公司 · HS-01 · GT-101 HH = 52.5 %LEL")
                    && t.contains("超时未反馈 feedback overdue")
            }
        })
    };
    browser
        .until("the alarm, overdue", LOOP_LIST, overdue)
        .await;
    let bar = "return [...document.querySelectorAll('#loop div')].map(d => d.innerText.replace(/\\s+/g, ' '))";
    browser
        .until("the loop's counters", bar, |v| {
            v.as_array().is_some_and(|a| {
                a.len() == 4
                    && a[0] == "未销警 Not cleared 1"
                    && a[1] == "未反馈 Feedback overdue 1"
                    && a[2] == "在线率 Online 100%"
            })
        })
        .await;

    // The operator clicks the alarm and fills in the form.
    browser.script(&format!(
        "document.querySelector('li[data-alarm-id=\"{alarm_id}\"]').click(); return 0"
    ));
    browser
        .until(
            "the form open",
            "return document.getElementById('fb').open",
            |v| v == true,
        )
        .await;
    browser.screenshot("screen-feedback-form.png");
    browser.script(
        "document.getElementById('fb-cause').value = 'sensor_fault';
         document.getElementById('fb-measures').value = '更换传感器 replaced the sensor';
         document.getElementById('fb-send').click(); return 0",
    );
    browser
        .until("the list shows it, pending", LOOP_LIST, |l| {
            l.as_array().is_some_and(|a| {
                a.len() == 1 && {
                    let t = a[0].as_str().unwrap_or("");
                    t.starts_with("given|")
                        && t.contains("反馈 feedback 仪表故障 sensor fault · op-li")
                        && t.contains("待送达 pending")
                }
            })
        })
        .await;
    assert_eq!(
        browser.script("return document.getElementById('fb').open"),
        false
    );

    // The centre sent it to the gateway under the operator's name; the gateway answers.
    eventually(Duration::from_secs(5), "the feedback command", || {
        !sent.lock().unwrap().is_empty()
    })
    .await;
    let command = sent.lock().unwrap()[0].1.clone();
    assert_eq!(
        (
            &command["by"],
            &command["cause"],
            &command["alarm_id"],
            &command["measures"]
        ),
        (
            &json!("op-li"),
            &json!("sensor_fault"),
            &json!(alarm_id),
            &json!("更换传感器 replaced the sensor")
        ),
        "{command}"
    );
    client
        .publish(
            "hazgate/v1/P/E1/GW-1/cmd/feedback/reply",
            QoS::AtLeastOnce,
            false,
            json!({"seq": 3, "ts": ts, "park": "P", "enterprise": "E1", "gateway": "GW-1",
                "type": "command_reply", "request_id": command["request_id"], "command": "feedback", "ok": true})
            .to_string(),
        )
        .await
        .unwrap();
    browser
        .until("delivered", LOOP_LIST, |l| {
            l.as_array().is_some_and(|a| {
                a.len() == 1 && a[0].as_str().unwrap_or("").contains("企业已收 delivered")
            })
        })
        .await;
    browser
        .until("no longer 未反馈", bar, |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 4 && a[1] == "未反馈 Feedback overdue 0")
        })
        .await;
    browser.screenshot("screen-feedback.png");
    sub.abort();
}

/// A gateway the test plays: online (retained, with a Last Will saying offline) and the
/// retained level of each of its sources.
async fn fake_gateway(
    broker: u16,
    park: &str,
    ent: &str,
    sources: &[(String, &str)],
) -> AsyncClient {
    let base = format!("hazgate/v1/{park}/{ent}/GW-1");
    let status = |state: &str| {
        json!({"seq": 0, "ts": "2026-11-23T08:00:00.000Z", "park": park, "enterprise": ent, "gateway": "GW-1",
            "type": "status", "state": state, "enterprise_name": format!("{ent} 化工"), "version": "0.1.0",
            "uptime_s": 1, "spool_events": 0, "spool_telemetry": 0, "spool_bytes": 0, "dropped_telemetry": 0})
        .to_string()
    };
    let mut o = MqttOptions::new(format!("fake-{park}-{ent}"), "127.0.0.1", broker);
    o.set_last_will(rumqttc::LastWill::new(
        format!("{base}/status"),
        status("offline"),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut el) = AsyncClient::new(o, 64);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
        .publish(
            format!("{base}/status"),
            QoS::AtLeastOnce,
            true,
            status("online"),
        )
        .await
        .unwrap();
    for (id, colour) in sources {
        let (topic, payload) = risk(park, ent, id, "hazard_source", colour, "low alarm");
        client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .unwrap();
    }
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_of_twenty_gateways_shows_every_source_and_a_killed_gateway_turns_grey() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = Broker::start(d);
    // 19 gateways the test plays, in three parks, six sources each, of every colour …
    const COLOURS: [&str; 5] = ["blue", "yellow", "orange", "red", "blue"];
    let mut want = std::collections::BTreeMap::new();
    let mut fakes = Vec::new();
    for g in 0..19 {
        let (park, ent) = (format!("P{}", g % 3 + 1), format!("E{}", g + 2));
        let sources: Vec<(String, &str)> = (0..6)
            .map(|s| (format!("HS-{s}"), COLOURS[(g + s) % 5]))
            .collect();
        for (id, c) in &sources {
            want.insert(format!("{ent}/{id}"), c.to_string());
        }
        fakes.push(fake_gateway(broker.port, &park, &ent, &sources).await);
    }
    // … and one real `hazgate run` (P1/E1, one source, blue), keepalive 5 s.
    let port = free_port();
    let map = json!({"devices": [{"unit": 1, "holding": {"size": 8, "values": [
        {"addr": 0, "type": "f32", "order": "CDAB", "value": 0.0}]}}]});
    let _peer = pymodbus(&map, &PeerAt::Tcp(port), d, &PeerOpts::default());
    let site = one_detector_site(d, &PeerAt::Tcp(port), broker.port, "keepalive_s = 5");
    want.insert("E1/HS-1".into(), "blue".into());
    // P2's plan: a shape for two of its sources, one for an enterprise, one for a
    // source nobody reports (grey, never blue).
    std::fs::write(
        d.join("p2.svg"),
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 100">
          <rect id="a" data-source="E3/HS-0" x="0" y="0" width="90" height="90"/>
          <rect id="b" data-source="E3/HS-2" x="100" y="0" width="90" height="90"/>
          <rect id="c" data-enterprise="E6" x="200" y="0" width="90" height="90"/>
          <rect id="d" data-source="E99/HS-0" x="300" y="0" width="90" height="90"/>
          <script>window.__planScript = true</script></svg>"#,
    )
    .unwrap();
    let http = free_port();
    let conf = d.join("central.toml");
    std::fs::write(
        &conf,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"county\"\n[store]\nurl = \"http://127.0.0.1:{}\"\norg = \"o\"\nbucket = \"b\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n[[screen.plans]]\npark = \"P2\"\nsvg = \"p2.svg\"\n",
            broker.port,
            free_port()
        ),
    )
    .unwrap();
    let check = Command::new(BIN).arg("check").arg(&conf).output().unwrap();
    assert!(check.status.success(), "{check:?}");
    let _ingest = start_central(&conf, http, &d.join("ingest.log"));
    let mut gw = start_gateway(&site, None);
    let browser = Browser::start(d);
    browser.goto(&format!("http://127.0.0.1:{http}/screen"));

    // Every tile, the right colour; the counters add up.
    let tiles = "return Object.fromEntries([...document.querySelectorAll('.tile')].map(t => [`${t.dataset.enterprise}/${t.dataset.source}`, t.dataset.state === 'live' ? t.dataset.colour : 'grey']))";
    let want_tiles = serde_json::to_value(&want).unwrap();
    let start = Instant::now();
    while browser.script(tiles) != want_tiles {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "tiles: {}",
            browser.script(tiles)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(want.len() >= 100, "{} sources", want.len());
    // … and every one of them on the wall, not below its edge.
    assert_eq!(
        browser.script(
            "return [...document.querySelectorAll('.tile')].filter(t => { const r = t.getBoundingClientRect(); \
             return r.width < 10 || r.bottom > innerHeight || r.right > innerWidth; }).length"
        ),
        json!(0),
        "tiles off the screen or too small"
    );
    let count = |c: &str| want.values().filter(|v| *v == c).count().to_string();
    let counters = "return ['red','orange','yellow','blue','grey'].map(c => document.getElementById('n-' + c).textContent)";
    assert_eq!(
        browser.script(counters),
        json!([
            count("red"),
            count("orange"),
            count("yellow"),
            count("blue"),
            "0"
        ])
    );
    assert_eq!(
        browser.script(
            "return [...document.querySelectorAll('#parks button')].map(b => b.dataset.park)"
        ),
        json!(["", "P1", "P2", "P3"])
    );
    browser.screenshot("county-1080p.png");

    // The real gateway killed with -9: its tile turns grey, counted as no data, within
    // 1.5 × its keepalive.
    gw.proc.kill();
    let killed = Instant::now();
    let e1 = "const t = document.querySelector('.tile[data-enterprise=\"E1\"]'); return t && t.dataset.state";
    while browser.script(e1) != json!("offline") {
        assert!(
            killed.elapsed() < Duration::from_millis(7_500),
            "still {} after {:?}",
            browser.script(e1),
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        browser.script(counters)[4],
        "1",
        "the killed gateway's source is no data"
    );

    // P2 chosen: its plan, coloured from the same picture; an unknown shape grey, and
    // the drawing's script never ran.
    browser.script("document.querySelector('#parks button[data-park=\"P2\"]').click(); return 0");
    let shapes = "return ['a','b','c','d'].map(id => { const s = document.querySelector('#plan #' + id); return s && s.getAttribute('data-colour'); })";
    let e6 = browser.script(
        "return document.querySelector('.enterprise[data-enterprise=\"E6\"]').dataset.colour",
    );
    let expect = json!([want["E3/HS-0"], want["E3/HS-2"], e6, "grey"]);
    let start = Instant::now();
    while browser.script(shapes) != expect {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "plan: {} want {expect}",
            browser.script(shapes)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        browser.script(
            "return [document.getElementById('map').hidden, window.__planScript === undefined]"
        ),
        json!([true, true])
    );
    // A change reaches the plan: E3's HS-2 turns red.
    let (topic, payload) = risk(
        "P2",
        "E3",
        "HS-2",
        "hazard_source",
        "red",
        "critical alarm on a level 1/2 source",
    );
    fakes[1]
        .publish(topic, QoS::AtLeastOnce, true, payload)
        .await
        .unwrap();
    let b = "return document.querySelector('#plan #b').getAttribute('data-colour')";
    browser
        .until("the plan's shape red", b, |v| v == "red")
        .await;
    browser.screenshot("county-plan-1080p.png");
    wd(
        browser.port,
        "POST",
        &format!("/session/{}/window/rect", browser.sid),
        Some(json!({"width": 3840, "height": 2160})),
    );
    browser
        .until(
            "doubled",
            "return getComputedStyle(document.documentElement).zoom",
            |z| z == "2",
        )
        .await;
    browser.screenshot("county-plan-2160p.png");
}

/// The drill-down, on a real path (pymodbus detector → gateway → Mosquitto → ingest →
/// VictoriaMetrics): a click on a hazard source's tile shows its points with their last
/// values and a point's trend, both read back from the store; the way back goes to the
/// park. The drill-down's requests: bad ones are refused, a store that is down is a
/// 502 that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sources_tile_opens_its_points_and_a_trend_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = Broker::start(d);
    let mut store = store::Store::start(d);
    let port = free_port();
    let map = json!({"devices": [{"unit": 1, "holding": {"size": 8, "values": [
        {"addr": 0, "type": "f32", "order": "CDAB", "value": 12.5}]}}]});
    let _peer = pymodbus(&map, &PeerAt::Tcp(port), d, &PeerOpts::default());
    let site = one_detector_site(d, &PeerAt::Tcp(port), broker.port, "");
    let web = free_port();
    let conf = d.join("central.toml");
    std::fs::write(
        &conf,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"drill\"\n\
             [store]\nurl = \"{}\"\norg = \"o\"\nbucket = \"b\"\nquery = \"victoriametrics\"\n\
             [http]\nlisten = \"127.0.0.1:{web}\"\n",
            broker.port,
            store.url()
        ),
    )
    .unwrap();
    // The hour before: a leak's rise and fall at GT-1, a reading each 10 s, stored as
    // ingest stores telemetry.
    let now = hazgate::reading::Timestamp::now().0;
    let readings: Vec<Value> = (0..360i64)
        .map(|i| {
            let x = i as f64 / 360.0;
            let v = 3.0 + 32.0 * (-((x - 0.55) * 8.0).powi(2)).exp() + (i % 7) as f64 * 0.3;
            json!({"point": "GT-1", "hazard_source": "HS-1", "device": "GD-1",
                "kind": "combustible_gas", "unit": "%LEL", "quality": "good", "value": v,
                "ts": hazgate::reading::Timestamp(now - (360 - i) * 10_000).to_rfc3339()})
        })
        .collect();
    let msg = json!({"seq": 1, "ts": hazgate::reading::Timestamp(now).to_rfc3339(),
        "park": "P1", "enterprise": "E1", "gateway": "GW-T", "type": "telemetry",
        "readings": readings});
    let history = hazgate::ingest::message::decode(
        "hazgate",
        "hazgate/v1/P1/E1/GW-T/telemetry",
        msg.to_string().as_bytes(),
        1 << 20,
        0,
        &hazgate::ingest::tables::Tables::default(),
    )
    .unwrap()
    .lines;
    let file = d.join("history.lp");
    std::fs::write(&file, history).unwrap();
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()))
        .arg(format!(
            "{}/api/v2/write?org=o&bucket=b&precision=ms",
            store.url()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "204");
    let _ingest = start_central(&conf, web, &d.join("ingest.log"));
    let _gw = start_gateway(&site, None);
    eventually(
        Duration::from_secs(30),
        "GT-1's readings in the store",
        || store.export("reading_value{point=\"GT-1\"}").len() >= 3,
    )
    .await;

    let browser = Browser::start(d);
    browser.goto(&format!("http://127.0.0.1:{web}/screen"));
    browser
        .until(
            "the source's tile",
            "return document.querySelectorAll('.tile[data-source=\"HS-1\"]').length",
            |v| v == 1,
        )
        .await;
    browser.script("document.querySelector('.tile[data-source=\"HS-1\"]').click()");
    let drilled = "const d = document.getElementById('detail'); \
        return {hidden: d.hidden, map: document.getElementById('map').hidden, \
        crumbs: document.getElementById('crumbs').innerText.replace(/\\s+/g, ' '), \
        head: d.querySelector('.head') && d.querySelector('.head').innerText, \
        rows: [...d.querySelectorAll('tr[data-point]')].map(r => r.innerText.replace(/\\s+/g, ' ')), \
        samples: Number((d.querySelector('svg.trend') || {dataset: {}}).dataset.samples || -1), \
        hash: location.hash}";
    let v = browser
        .until("the source's points and GT-1's trend", drilled, |v| {
            v["rows"].as_array().is_some_and(|r| r.len() == 1) && v["samples"].as_i64() > Some(300)
        })
        .await;
    assert_eq!(
        (v["hidden"].as_bool(), v["map"].as_bool()),
        (Some(false), Some(true)),
        "{v}"
    );
    assert_eq!(
        v["rows"][0], "GT-1 可燃气体 combustible_gas 12.5 %LEL 正常 good",
        "{v}"
    );
    assert!(
        v["crumbs"].as_str().unwrap().contains("园区 P1")
            && v["crumbs"].as_str().unwrap().contains("Test enterprise")
            && v["crumbs"]
                .as_str()
                .unwrap()
                .contains("危险源 HS-1 LPG tank farm"),
        "{v}"
    );
    assert!(v["head"].as_str().unwrap().contains("HS-1"), "{v}");
    assert!(
        v["hash"]
            .as_str()
            .unwrap()
            .contains("park=P1&enterprise=E1&gateway=GW-T&source=HS-1"),
        "{v}"
    );
    browser.screenshot("drill-down-1080p.png");

    // Another span: the address says it, and the trend is asked for again.
    browser.script("[...document.querySelectorAll('.ranges button')][2].click()");
    browser
        .until("the 24 h trend", drilled, |v| {
            // 24 h in 144 s steps: the hour of history in about 25 of them.
            v["hash"].as_str().unwrap().contains("minutes=1440")
                && (20..=30).contains(&v["samples"].as_i64().unwrap_or(0))
        })
        .await;
    // Back to the park: the tiles again.
    browser.script("[...document.querySelectorAll('#crumbs button')][1].click()");
    browser
        .until("the park's tiles", drilled, |v| {
            v["hidden"] == true && v["map"] == false && v["hash"] == "#park=P1"
        })
        .await;

    // Requests the drill-down refuses, and a store that is down.
    let q = "park=P1&enterprise=E1&gateway=GW-T";
    for (path, code, says) in [
        (format!("/screen/trend?{q}"), 400, "`point` must be an id"),
        (
            format!("/screen/trend?{q}&point=GT-1&minutes=0"),
            400,
            "`minutes` must be from 1",
        ),
        (
            format!("/screen/points?{q}&source=HS%201"),
            400,
            "`source` must be an id",
        ),
        (
            "/screen/points?park=P1&source=HS-1".to_string(),
            400,
            "missing field",
        ),
    ] {
        let (got, body) = http(web, "GET", &path, None);
        assert_eq!(got, code, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    store.stop();
    let (got, body) = http(web, "GET", &format!("/screen/points?{q}&source=HS-1"), None);
    assert_eq!(got, 502, "{body}");
    assert!(body.contains("the store's query API failed"), "{body}");
    let (_, metrics) = http(web, "GET", "/metrics", None);
    assert!(
        metrics.contains("hazgate_ingest_store_query_failures_total 1"),
        "{metrics}"
    );
}
