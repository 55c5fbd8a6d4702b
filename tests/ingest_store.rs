//! Central ingest against real peers: simulator → gateway → Mosquitto → `hazgate ingest`
//! → VictoriaMetrics (InfluxDB v2 write API), read back through `/api/v1/export`.
//!
//! What a recording subscriber saw on the broker is the ground truth: the store must
//! hold exactly those readings, alarm events and risk levels — no more, no fewer.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{mqtt::*, store::Store, *};

/// Mosquitto for ingest: deep queues for its persistent sessions (nothing dropped while
/// the store is down) and a wider in-flight window (throughput).
const BROKER_CONF: &str = "max_queued_messages 0\nmax_inflight_messages 200";

/// Writes `central.toml` for one ingest instance and starts it.
/// One ingest instance; `alone` when it is the only one of its group (it then counts
/// gaps in the gateways' streams, which a share of a stream cannot).
fn start_ingest(
    dir: &Path,
    name: &str,
    broker: u16,
    store: &Store,
    http: u16,
    alone: bool,
) -> Proc {
    start_ingest_with(dir, name, broker, store, http, alone, "")
}

/// [`start_ingest`] with more sections appended to its `central.toml`.
fn start_ingest_with(
    dir: &Path,
    name: &str,
    broker: u16,
    store: &Store,
    http: u16,
    alone: bool,
    extra: &str,
) -> Proc {
    let conf = dir.join(format!("{name}.toml"));
    std::fs::write(
        &conf,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\nclient_id = \"{name}\"\ngroup = \"test-ingest\"\ncount_seq_gaps = {alone}\n\
             [store]\nurl = \"{}\"\norg = \"park\"\nbucket = \"hazgate\"\ntoken = \"unused\"\nbatch_max_ms = 100\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n{extra}\n",
            store.url()
        ),
    )
    .unwrap();
    let check = Command::new(BIN).arg("check").arg(&conf).output().unwrap();
    assert!(check.status.success(), "{check:?}");
    let child = Command::new(BIN)
        .args(["ingest", "--log-level", "info", "--config"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(http, "ingest", Duration::from_secs(10));
    Proc {
        child,
        name: format!("ingest {name}"),
    }
}

/// GET on ingest's HTTP side: (status, body); (0, "") while it is not listening.
fn http_get(port: u16, path: &str) -> (u16, String) {
    try_http(port, "GET", path, None).unwrap_or_default()
}

fn metric(http: u16, name: &str) -> f64 {
    http_get(http, "/metrics")
        .1
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn ms(ts: &serde_json::Value) -> i64 {
    let t = humantime::parse_rfc3339(ts.as_str().unwrap()).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A value compared to 1 part in 10⁹: the store keeps ~12 significant digits
/// (2.3000000000000003 comes back as 2.3).
#[derive(Debug, Clone, Copy)]
struct Close(f64);

impl PartialEq for Close {
    fn eq(&self, other: &Self) -> bool {
        (self.0 - other.0).abs() <= 1e-9 * self.0.abs().max(other.0.abs()).max(1.0)
    }
}

/// What the store must hold, from what the broker carried for the demo gateway:
/// readings (point, ts) → (value, None for null; quality code); alarm events
/// (point, alarm, action, ts); risk changes (hazard source, ts) → level.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    readings: BTreeMap<(String, i64), (Option<Close>, i64)>,
    alarms: BTreeSet<(String, String, String, i64)>,
    risk: BTreeMap<(String, i64), i64>,
}

/// The quality codes of docs/storage.md, written out here (not taken from the code
/// under test, so a changed code fails this test).
fn quality_code(q: &str) -> i64 {
    match q {
        "good" => 0,
        "comm_failure" => 1,
        "device_exception" => 2,
        "sensor_fault" => 3,
        "stale" => 4,
        other => panic!("quality `{other}` is not in docs/storage.md"),
    }
}

/// The colour levels of docs/storage.md.
fn colour_level(c: &str) -> i64 {
    match c {
        "blue" => 0,
        "yellow" => 1,
        "orange" => 2,
        "red" => 3,
        other => panic!("colour `{other}` is not in docs/storage.md"),
    }
}

/// The point tables the broker carried: table → point id by index.
fn tables(got: &Received) -> BTreeMap<String, BTreeMap<u64, String>> {
    let mut t: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for (_, v) in got.lock().unwrap().iter() {
        if v["type"] == "points" {
            let first = v["first"].as_u64().unwrap();
            let table = t.entry(v["table"].as_str().unwrap().into()).or_default();
            for (i, p) in v["points"].as_array().unwrap().iter().enumerate() {
                table.insert(first + i as u64, p["point"].as_str().unwrap().into());
            }
        }
    }
    t
}

fn value_of(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        x => x.as_f64(),
    }
}

/// Samples read with the table, by this test's own reading of docs/mqtt.md.
fn expected_samples(e: &mut Expected, v: &serde_json::Value, table: &BTreeMap<u64, String>) {
    for scan in v["scans"].as_array().unwrap() {
        let values = scan["values"].as_array().unwrap();
        let index: Vec<u64> = match scan["first"].as_u64() {
            Some(f) => (f..f + values.len() as u64).collect(),
            None => scan["index"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap())
                .collect(),
        };
        for (i, value) in index.iter().zip(values) {
            let fault = scan["faults"]
                .as_array()
                .and_then(|f| f.iter().find(|f| f["index"].as_u64() == Some(*i)));
            let q = fault.map_or(0, |f| quality_code(f["quality"].as_str().unwrap()));
            e.readings.insert(
                (table[i].clone(), ms(&scan["ts"])),
                (value_of(value).map(Close), q),
            );
        }
    }
}

fn expected(got: &Received) -> Expected {
    let mut e = Expected::default();
    let tables = tables(got);
    for (topic, v) in got.lock().unwrap().iter() {
        if !topic.starts_with("hazgate/v1/CP-320500-01/") {
            continue;
        }
        match v["type"].as_str() {
            Some("samples") => {
                let table = &tables[v["table"].as_str().unwrap()];
                expected_samples(&mut e, v, table);
            }
            Some("telemetry") => {
                for r in v["readings"].as_array().unwrap() {
                    let value = match &r["value"] {
                        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
                        x => x.as_f64(),
                    };
                    let q = quality_code(r["quality"].as_str().unwrap());
                    e.readings.insert(
                        (r["point"].as_str().unwrap().into(), ms(&r["ts"])),
                        (value.map(Close), q),
                    );
                }
            }
            Some("alarm") => {
                let a = &v["alarm"];
                e.alarms.insert((
                    a["point"].as_str().unwrap().into(),
                    a["alarm"].as_str().unwrap().into(),
                    a["action"].as_str().unwrap().into(),
                    ms(&a["ts"]),
                ));
            }
            // The event stream and the restatements (snapshots), not the retained
            // per-source copies of changes; never a retained replay.
            Some("risk")
                if v[RETAINED] != true
                    && (topic.ends_with("/risk") || v["risk"]["snapshot"] == true) =>
            {
                let r = &v["risk"];
                let id = r["id"].as_str().unwrap_or("enterprise");
                e.risk.insert(
                    (id.into(), ms(&r["ts"])),
                    colour_level(r["to"].as_str().unwrap()),
                );
            }
            _ => {}
        }
    }
    e
}

fn stored(store: &Store) -> Expected {
    let mut e = Expected::default();
    let gw = "gateway=\"GW-01\"";
    let quality = store.export(&format!("{{__name__=\"reading_quality\",{gw}}}"));
    let values = store.export(&format!("{{__name__=\"reading_value\",{gw}}}"));
    let value_of: BTreeMap<(String, i64), f64> = values
        .into_iter()
        .map(|((l, t), x)| ((l["point"].clone(), t), x))
        .collect();
    for ((l, t), q) in quality {
        let key = (l["point"].clone(), t);
        let v = value_of.get(&key).copied().map(Close);
        e.readings.insert(key, (v, q as i64));
    }
    for ((l, t), _) in store.export(&format!("{{__name__=\"alarm_seq\",{gw}}}")) {
        e.alarms.insert((
            l["point"].clone(),
            l["alarm"].clone(),
            l["action"].clone(),
            t,
        ));
    }
    for ((l, t), level) in store.export(&format!("{{__name__=\"risk_level\",{gw}}}")) {
        e.risk.insert((l["hazard_source"].clone(), t), level as i64);
    }
    e
}

/// Up to five keys of `a` that `b` lacks (for a readable failure).
fn first_keys_not_in<K: Ord + Clone, V>(a: &BTreeMap<K, V>, b: &BTreeMap<K, V>) -> Vec<K> {
    a.keys()
        .filter(|k| !b.contains_key(*k))
        .take(5)
        .cloned()
        .collect()
}

/// Waits until the store holds exactly what the broker carried.
async fn assert_stored_exactly(store: &Store, got: &Received) {
    let want = expected(got);
    assert!(
        want.readings.len() > 100 && !want.alarms.is_empty() && !want.risk.is_empty(),
        "the scenario produced readings, alarms and risk changes: {} / {} / {}",
        want.readings.len(),
        want.alarms.len(),
        want.risk.len()
    );
    let start = Instant::now();
    loop {
        let have = stored(store);
        if have == want {
            return;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let missing = first_keys_not_in(&want.readings, &have.readings);
            let extra = first_keys_not_in(&have.readings, &want.readings);
            let differ: Vec<_> = want
                .readings
                .iter()
                .filter(|(k, v)| have.readings.get(*k).is_some_and(|h| h != *v))
                .take(5)
                .collect();
            panic!(
                "store differs from the broker: readings {} vs {} (missing e.g. {missing:?}, extra {extra:?}, differing {differ:?}); alarms {:?} vs {:?}; risk {:?} vs {:?}",
                want.readings.len(),
                have.readings.len(),
                want.alarms,
                have.alarms,
                want.risk,
                have.risk
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Broker, store, one ingest, and the demo gateway with the bypass scenario (BP-101 on
/// after 3 s: a high alarm, HS-01 orange).
struct Rig {
    dir: tempfile::TempDir,
    broker: Broker,
    store: Store,
    got: Received,
    sub: tokio::task::JoinHandle<()>,
    site: PathBuf,
    tty_b: PathBuf,
    _pty: PtyPair,
}

async fn rig() -> Rig {
    rig_with("").await
}

/// A rig whose site file's `[uplink]` has `extra` lines.
async fn rig_with(extra: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with(dir.path(), BROKER_CONF);
    let store = Store::start(dir.path());
    // Only the demo gateway's topics: the garbage (one message is 2 MiB) goes elsewhere.
    let (got, sub) = subscriber(broker.port, "hazgate/v1/CP-320500-01/#").await;
    let pty = socat_pair(dir.path());
    let site = demo_site_with_uplink(dir.path(), free_port(), &pty.a, broker.port, extra);
    Rig {
        tty_b: pty.b.clone(),
        _pty: pty,
        dir,
        broker,
        store,
        got,
        sub,
        site,
    }
}

impl Rig {
    /// One ingest instance of the test group, writing to the rig's store; and its
    /// HTTP port.
    fn ingest(&self, name: &str) -> (Proc, u16) {
        let http = free_port();
        let p = start_ingest(
            self.dir.path(),
            name,
            self.broker.port,
            &self.store,
            http,
            true,
        );
        (p, http)
    }

    fn simulate(&self) -> Proc {
        start_simulator(
            &self.site,
            &self.tty_b,
            &[
                "--scenario",
                "bypass",
                "--target",
                "BP-101",
                "--start-after",
                "3",
            ],
        )
    }

    /// Runs the gateway: once it is online, `during`; then `secs` of the scenario; then
    /// a clean stop (its last status: offline).
    async fn gateway_for(&self, secs: u64, during: impl AsyncFnOnce()) {
        let mut gw = start_gateway(&self.site, None);
        wait_online(&self.got).await;
        during().await;
        // The scenario's length is what is tested, not a wait for something.
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop_gateway(&mut gw, &self.got).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_the_store_holds_exactly_what_the_gateway_published_and_garbage_is_dead_lettered(
) {
    let rig = rig().await;
    // A second recorder, on the dead-letter topic only.
    let (letters, letters_sub) =
        subscriber_as(rig.broker.port, "hazgate-ingest/dead-letter", "dl-recorder").await;
    let (_ingest, http) = rig.ingest("ingest-1");
    let _sim = rig.simulate();
    let port = rig.broker.port;
    rig.gateway_for(8, async || {
        // Garbage on gateway topics, among the real stream: each is refused with its
        // cause, and ingestion goes on.
        let (client, mut el) = rumqttc::AsyncClient::new(
            {
                let mut o = rumqttc::MqttOptions::new("garbage", "127.0.0.1", port);
                o.set_max_packet_size(8 << 20, 8 << 20);
                o
            },
            16,
        );
        tokio::spawn(async move { while el.poll().await.is_ok() {} });
        let t = "hazgate/v1/P-X/E-X/G-X";
        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20));
        for (topic, payload) in [
            (format!("{t}/telemetry"), "not json".to_string()),
            (
                format!("{t}/alarm"),
                r#"{"seq":1,"type":"alarm"}"#.to_string(),
            ),
            (
                format!("{t}/risk"),
                r#"{"seq":1,"type":"telemetry"}"#.to_string(),
            ),
            (format!("{t}/status"), huge),
        ] {
            client
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
    })
    .await;
    assert_stored_exactly(&rig.store, &rig.got).await;
    // Every source's level is in the store — also the three that stayed blue throughout
    // and never changed — at start-up and again after an integrity period, so "the
    // colour of every source now" is one query.
    let levels = rig
        .store
        .export("{__name__=\"risk_level\",gateway=\"GW-01\"}");
    for source in ["HS-01", "HS-02", "HS-03", "HS-04", "enterprise"] {
        let points: Vec<f64> = levels
            .iter()
            .filter(|((l, _), _)| l.get("hazard_source").map(String::as_str) == Some(source))
            .map(|(_, v)| *v)
            .collect();
        assert!(points.len() >= 2, "{source}: {points:?}");
        if source != "HS-01" && source != "enterprise" {
            assert!(
                points.iter().all(|v| *v == 0.0),
                "{source} stayed blue: {points:?}"
            );
        }
    }
    // Integrity snapshots every 5 s send status and levels ahead of older telemetry:
    // with stream_seq that is no loss.
    assert_eq!(
        metric(http, "hazgate_ingest_seq_gaps_total"),
        0.0,
        "no false loss in steady state"
    );

    // The clean stop's offline status becomes the gateway's latest state in the store.
    let status = || {
        rig.store
            .export("{__name__=\"gateway_status_online\",gateway=\"GW-01\"}")
    };
    let offline_last = || {
        let s = status();
        s.iter()
            .max_by_key(|((_, t), _)| *t)
            .is_some_and(|(_, v)| *v == 0.0)
    };
    eventually(Duration::from_secs(20), "offline stored last", offline_last).await;
    let status = status();
    assert!(status.values().any(|v| *v == 1.0), "online before");

    // Dead letters: one per garbage message, each with its cause, counted.
    let causes: BTreeSet<String> = letters
        .lock()
        .unwrap()
        .iter()
        .map(|(_, v)| v["cause"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        causes,
        ["not_json", "schema_invalid", "too_large", "wrong_type"]
            .map(String::from)
            .into(),
    );
    assert_eq!(metric(http, "hazgate_ingest_dead_letters_total"), 4.0);
    assert!(metric(http, "hazgate_ingest_points_written_total") > 100.0);
    let log = std::fs::read_to_string(rig.dir.path().join("ingest-1.log")).unwrap();
    assert_eq!(
        log.matches("dead-lettered").count(),
        4,
        "each cause logged once: {log}"
    );
    letters_sub.abort();
    rig.sub.abort();
}

/// The same exactness with compact telemetry (v1.4): the store holds every reading the
/// samples carried, named by the point table the gateway published, and nothing is
/// dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_are_stored_exactly_as_the_gateway_published_them() {
    let rig = rig_with("telemetry = \"samples\"").await;
    let (_ingest, http) = rig.ingest("ingest-1");
    let _sim = rig.simulate();
    rig.gateway_for(8, async || {}).await;
    let types: BTreeSet<String> = rig
        .got
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, v)| v["type"].as_str().map(String::from))
        .collect();
    assert!(
        types.contains("samples") && types.contains("points") && !types.contains("telemetry"),
        "{types:?}"
    );
    assert_stored_exactly(&rig.store, &rig.got).await;
    assert_eq!(metric(http, "hazgate_ingest_dead_letters_total"), 0.0);
    assert_eq!(metric(http, "hazgate_ingest_seq_gaps_total"), 0.0);
    rig.sub.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_of_30_s_loses_nothing() {
    let outage = std::env::var("HAZGATE_TEST_STORE_OUTAGE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30u64);
    let mut rig = rig().await;
    let (_ingest, http) = rig.ingest("ingest-1");
    let _sim = rig.simulate();
    let mut gw = start_gateway(&rig.site, None);
    let health = |http: u16| -> (u16, serde_json::Value) {
        let (code, body) = http_get(http, "/healthz");
        (code, serde_json::from_str(&body).unwrap_or_default())
    };
    eventually(
        Duration::from_secs(20),
        "ingest healthy and storing",
        || health(http).0 == 200 && metric(http, "hazgate_ingest_messages_total") > 0.0,
    )
    .await;
    let (_, body) = health(http);
    assert_eq!(
        body,
        serde_json::json!({"status": "ok", "mqtt_connected": true, "store_ok": true,
            "unacknowledged_messages": body["unacknowledged_messages"],
            "gateway_clock_offset_s": body["gateway_clock_offset_s"]}),
        "{body}"
    );
    rig.store.stop();
    // The outage itself is the scenario: its length is what is tested.
    tokio::time::sleep(Duration::from_secs(outage)).await;
    let (code, body) = health(http);
    assert_eq!(code, 503, "unhealthy while the store is down: {body}");
    assert_eq!(
        (&body["status"], &body["store_ok"], &body["mqtt_connected"]),
        (
            &serde_json::json!("degraded"),
            &serde_json::json!(false),
            &serde_json::json!(true)
        ),
        "{body}"
    );
    rig.store.restart();
    eventually(
        Duration::from_secs(30),
        "healthy again after the store is back",
        || health(http).0 == 200,
    )
    .await;
    assert_eq!(health(http).1["store_ok"], true);
    stop_gateway(&mut gw, &rig.got).await;
    assert_stored_exactly(&rig.store, &rig.got).await;
    assert!(metric(http, "hazgate_ingest_write_retries_total") >= 1.0);
    rig.sub.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_stream_and_a_killed_one_loses_nothing() {
    let mut rig = rig().await;
    let (http_a, http_b) = (free_port(), free_port());
    let _a = start_ingest(
        rig.dir.path(),
        "ingest-a",
        rig.broker.port,
        &rig.store,
        http_a,
        false,
    );
    let mut b = start_ingest(
        rig.dir.path(),
        "ingest-b",
        rig.broker.port,
        &rig.store,
        http_b,
        false,
    );
    let _sim = rig.simulate();
    let mut gw = start_gateway(&rig.site, None);
    eventually(Duration::from_secs(20), "both instances storing", || {
        metric(http_a, "hazgate_ingest_messages_total") > 0.0
            && metric(http_b, "hazgate_ingest_messages_total") > 0.0
    })
    .await;
    let before_kill = metric(http_b, "hazgate_ingest_messages_total");
    // With the store briefly down, B surely holds received, unstored messages when it
    // is killed (-9). They wait in its persistent session and come again when it is
    // back (as a supervisor restarts it).
    rig.store.stop();
    let held = Instant::now();
    while metric(http_b, "hazgate_ingest_write_retries_total") < 1.0 {
        assert!(
            held.elapsed() < Duration::from_secs(15),
            "B never held a batch"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.child.kill().unwrap();
    let _ = b.child.wait();
    rig.store.restart();
    let _b2 = start_ingest(
        rig.dir.path(),
        "ingest-b",
        rig.broker.port,
        &rig.store,
        http_b,
        false,
    );
    eventually(
        Duration::from_secs(20),
        "B back and storing, the bypass alarm sent",
        || {
            metric(http_b, "hazgate_ingest_messages_total") > 0.0
                && rig
                    .got
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|(_, v)| v["type"] == "alarm")
        },
    )
    .await;
    stop_gateway(&mut gw, &rig.got).await;
    assert_stored_exactly(&rig.store, &rig.got).await;
    let a = metric(http_a, "hazgate_ingest_messages_total");
    assert!(
        a > 0.0 && before_kill > 0.0,
        "both instances took a share: A {a}, B {before_kill} before the kill"
    );
    rig.sub.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_and_metrics_need_a_token_and_a_browser_keeps_it_in_a_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let store = Store::start(dir.path());
    let http = free_port();
    let tokens = dir.path().join("tokens.json");
    let out = Command::new(BIN)
        .args(["token", "--file"])
        .arg(&tokens)
        .args(["add", "wall-1", "--role", "viewer"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let conf = dir.path().join("central.toml");
    std::fs::write(
        &conf,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"guarded\"\n\
             [store]\nurl = \"{}\"\norg = \"park\"\nbucket = \"hazgate\"\ntoken = \"unused\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\ntokens_path = \"{}\"\n\
             # Behind a reverse proxy on this machine every client is loopback: no free pass.\n\
             loopback_open = false\n",
            broker.port,
            store.url(),
            tokens.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("ingest.log");
    let _ingest = Proc {
        child: Command::new(BIN)
            .args(["ingest", "--config"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        name: "ingest".into(),
    };
    wait_for_port(http, "ingest", Duration::from_secs(10));
    // Health stays open for load balancers; the rest needs the token.
    assert_eq!(http_get(http, "/healthz").0, 200);
    assert_eq!(http_get(http, "/screen").0, 401);
    assert_eq!(http_get(http, "/metrics").0, 401);
    assert_eq!(http_get(http, "/screen/events").0, 401);
    let (code, body) = try_http_as(http, "GET", "/metrics", None, Some(&token)).unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        try_http_as(http, "GET", "/metrics", None, Some("hzg_bad"))
            .unwrap()
            .0,
        401
    );
    // A browser brings it once in the address; it becomes an HttpOnly cookie and the
    // address loses it.
    let head = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://127.0.0.1:{http}/screen?token={token}"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).to_string();
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    assert!(
        head.to_lowercase().contains("location: /screen\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("hazgate_token={token}; HttpOnly; SameSite=Strict")),
        "{head}"
    );
    let page = Command::new("curl")
        .args(["-s", "-w", "%{http_code}", "-H"])
        .arg(format!("Cookie: hazgate_token={token}"))
        .arg(format!("http://127.0.0.1:{http}/screen"))
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout).to_string();
    assert!(
        page.ends_with("200") && page.contains("/screen/screen.js"),
        "{page}"
    );
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains(&token[4..]),
        "the token in a log"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A live status of gateway P/E/FAST, its clock `offset_ms` off.
fn status_off_by(seq: u64, offset_ms: i64) -> String {
    let ts = humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + Duration::from_millis((now_ms() + offset_ms) as u64),
    );
    serde_json::json!({"seq": seq, "stream_seq": seq, "ts": ts.to_string(), "park": "P", "enterprise": "E", "gateway": "FAST",
        "type": "status", "state": "online", "version": "0.1.0", "uptime_s": seq, "spool_events": 0,
        "spool_telemetry": 0, "spool_bytes": 0, "dropped_telemetry": 0})
    .to_string()
}

/// A broker, a store, a port for ingest's HTTP side and a client that publishes as
/// the gateway with the fast clock.
fn fast_clock_rig() -> (tempfile::TempDir, Broker, Store, u16, rumqttc::AsyncClient) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let store = Store::start(dir.path());
    let (client, mut el) = rumqttc::AsyncClient::new(
        rumqttc::MqttOptions::new("fast-clock", "127.0.0.1", broker.port),
        16,
    );
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    (dir, broker, store, free_port(), client)
}

/// Publishes live status `seq` of P/E/FAST, its clock 10 min fast.
async fn publish_fast(client: &rumqttc::AsyncClient, seq: u64) {
    client
        .publish(
            "hazgate/v1/P/E/FAST/status",
            rumqttc::QoS::AtLeastOnce,
            false,
            status_off_by(seq, 600_000),
        )
        .await
        .unwrap();
}

/// Where configured (`[clock] restamp = true`), a gateway 10 min fast has its data
/// stored at the centre's time once its offset is measured, not 10 min in the future.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_clock_off_by_ten_minutes_is_restamped_where_configured() {
    let (dir, broker, store, http, client) = fast_clock_rig();
    let extra = "[clock]\ntolerance_s = 60\nrestamp = true";
    let _ingest = start_ingest_with(
        dir.path(),
        "restamp",
        broker.port,
        &store,
        http,
        true,
        extra,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish_fast(&client, 1).await;
    eventually(Duration::from_secs(10), "the offset measured", || {
        let (_, body) = http_get(http, "/healthz");
        serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()
            ["gateway_clock_offset_s"]["P/E/FAST"]
            .is_number()
    })
    .await;
    let sent = now_ms();
    publish_fast(&client, 2).await;
    let stored = || {
        store
            .export("{__name__=\"gateway_status_seq\",gateway=\"FAST\"}")
            .into_iter()
            .find(|(_, v)| *v == 2.0)
            .map(|((_, t), _)| t)
    };
    eventually(Duration::from_secs(20), "status 2 stored", || {
        stored().is_some()
    })
    .await;
    let at = stored().unwrap();
    assert!(
        (at - sent).abs() < 5_000,
        "stored at the centre's time ({sent}), not the gateway's: {at} ({} s off)",
        (at - sent) / 1000
    );
    assert!(metric(http, "hazgate_ingest_restamped_messages_total") >= 1.0);
}

/// Clock truth: a gateway whose clock runs 10 min fast (as one without an RTC battery
/// or NTP does) is measured from its live status messages — `/healthz`, the metric and
/// one warning — while a retained status (stamped long ago) measures nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_clock_off_by_ten_minutes_is_measured_and_reported() {
    let (dir, broker, store, http, client) = fast_clock_rig();
    // A retained status of another gateway, 2 days old, there before ingest starts: a
    // replay, not a measurement.
    client
        .publish(
            "hazgate/v1/P/E/OLD/status",
            rumqttc::QoS::AtLeastOnce,
            true,
            status_off_by(1, -2 * 86_400_000).replace("\"FAST\"", "\"OLD\""),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ingest = start_ingest(dir.path(), "clock", broker.port, &store, http, true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for seq in 1..=3 {
        publish_fast(&client, seq).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let offset = || {
        let (_, body) = http_get(http, "/healthz");
        serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()
            ["gateway_clock_offset_s"]
            .clone()
    };
    eventually(Duration::from_secs(10), "the offset measured", || {
        offset()["P/E/FAST"].is_number()
    })
    .await;
    let measured = offset()["P/E/FAST"].as_f64().unwrap();
    assert!((595.0..=600.5).contains(&measured), "{measured}");
    assert!(
        offset().get("P/E/OLD").is_none(),
        "a retained status measures nothing: {}",
        offset()
    );
    let gauge = metric(
        http,
        "hazgate_ingest_gateway_clock_offset_seconds{park=\"P\",enterprise=\"E\",gateway=\"FAST\"}",
    );
    assert!((595.0..=600.5).contains(&gauge), "{gauge}");
    let log = std::fs::read_to_string(dir.path().join("clock.log")).unwrap();
    assert_eq!(log.matches("gateway clock off").count(), 1, "{log}");
}

/// A gateway killed with `-9` leaves no clean goodbye: its Last Will, published by the
/// broker 1.5 × its keepalive later, turns every one of its sources grey (offline) on
/// the screen — never left in their last colour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_with_9_turns_its_sources_grey_within_one_and_a_half_keepalives() {
    const KEEPALIVE_S: f64 = 5.0;
    let rig = rig_with("keepalive_s = 5").await;
    let (_ingest, http) = rig.ingest("ingest-1");
    let _sim = rig.simulate();
    // The screen's current picture: the first event of its stream.
    let picture = || -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", "-N", "--max-time", "1"])
            .arg(format!("http://127.0.0.1:{http}/screen/events"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .and_then(|d| serde_json::from_str(d.trim()).ok())
            .unwrap_or_default()
    };
    let states = |p: &serde_json::Value| -> Vec<String> {
        p["enterprises"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["gateway"] == "GW-01")
            .flat_map(|e| e["sources"].as_array().cloned().unwrap_or_default())
            .map(|s| {
                format!(
                    "{}={}",
                    s["id"].as_str().unwrap_or("?"),
                    s["state"].as_str().unwrap_or("?")
                )
            })
            .collect()
    };
    let mut gw = start_gateway(&rig.site, None);
    wait_online(&rig.got).await;
    let live = ["HS-01=live", "HS-02=live", "HS-03=live", "HS-04=live"];
    eventually(
        Duration::from_secs(20),
        "every source live on the screen",
        || states(&picture()) == live,
    )
    .await;
    gw.kill();
    let killed = Instant::now();
    let offline = [
        "HS-01=offline",
        "HS-02=offline",
        "HS-03=offline",
        "HS-04=offline",
    ];
    eventually(
        Duration::from_secs(20),
        "every source offline on the screen",
        || states(&picture()) == offline,
    )
    .await;
    // The broker waits 1.5 keepalives; a second more for the screen (and curl's polling).
    let took = killed.elapsed().as_secs_f64();
    assert!(
        took <= 1.5 * KEEPALIVE_S + 2.0,
        "grey {took:.1} s after kill -9"
    );
    rig.sub.abort();
}
