//! MQTT-side helpers: a Mosquitto broker of the test's own, a recording subscriber, and
//! the demo site's simulator and gateway publishing to it.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use super::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_hazgate");

/// A Mosquitto broker on a free port with a config of its own, persistent, so a
/// subscriber's queued messages survive the broker's restart.
pub struct Broker {
    pub port: u16,
    dir: PathBuf,
    /// Extra lines for mosquitto.conf.
    extra: String,
    proc: Option<Proc>,
}

impl Broker {
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, "")
    }

    /// On a given port (one a gateway was already told to use).
    pub fn start_on(dir: &Path, port: u16) -> Self {
        let mut b = Broker {
            port,
            dir: dir.to_path_buf(),
            extra: String::new(),
            proc: None,
        };
        b.restart();
        b
    }

    /// With extra mosquitto.conf lines (e.g. `max_inflight_messages 200`).
    pub fn start_with(dir: &Path, extra: &str) -> Self {
        let mut b = Broker {
            port: free_port(),
            dir: dir.to_path_buf(),
            extra: extra.to_string(),
            proc: None,
        };
        b.restart();
        b
    }

    pub fn restart(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest file {}/mosquitto.log\n{}\n",
                self.port,
                self.dir.display(),
                self.dir.display(),
                self.extra
            ),
        )
        .unwrap();
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto: run tests/setup-peers.sh first");
        self.proc = Some(Proc {
            child,
            name: "mosquitto".into(),
        });
        wait_for_port(self.port, "mosquitto", Duration::from_secs(10));
    }

    /// A graceful stop (SIGTERM): the broker saves its persistent sessions.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.terminate();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Messages received, by topic, in arrival order: (topic, payload JSON). A message the
/// broker delivered from its retained store carries [`RETAINED`]: true.
pub type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// The key the recorder adds to a retained delivery.
pub const RETAINED: &str = "_retained";

/// A recorded message without the recorder's [`RETAINED`] marker.
pub fn without_marker(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove(RETAINED);
    }
    v
}

/// Each stream (telemetry; events = everything else) arrives in order: a consumer that
/// reads `stream_seq` sees no reordering, and — where nothing was dropped — no gap.
/// Repeats (at-least-once resends) and retained replays are skipped, as a consumer does.
pub fn assert_streams_in_order(got: &Received, telemetry_may_drop: bool) {
    let mut last: std::collections::BTreeMap<bool, u64> = Default::default();
    for (topic, v) in got.lock().unwrap().iter() {
        let Some(n) = v["stream_seq"].as_u64() else {
            continue; // the Last Will
        };
        if v[RETAINED] == true {
            continue;
        }
        let telemetry = v["type"] == "telemetry";
        let prev = last.entry(telemetry).or_insert(n - 1);
        if n <= *prev {
            continue; // a resend
        }
        if !(telemetry && telemetry_may_drop) {
            assert_eq!(n, *prev + 1, "stream gap before {topic} {v}");
        }
        *prev = n;
    }
    assert!(last.len() == 2, "both streams seen: {last:?}");
}

/// A persistent-session QoS 1 subscriber that reconnects by itself; returns once the
/// broker has acknowledged the subscription (so nothing published after is missed).
pub async fn subscriber(port: u16, filter: &str) -> (Received, tokio::task::JoinHandle<()>) {
    subscriber_as(port, filter, "hazgate-test-subscriber").await
}

/// [`subscriber`] with a client id of its own (several on one broker).
pub async fn subscriber_as(
    port: u16,
    filter: &str,
    client_id: &str,
) -> (Received, tokio::task::JoinHandle<()>) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let filter = filter.to_string();
    let client_id = client_id.to_string();
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready);
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_clean_session(false);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = AsyncClient::new(o, 64);
        client.subscribe(&filter, QoS::AtLeastOnce).await.unwrap();
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let mut v =
                        serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                    // A retained copy replayed on (re)subscribing is not part of the stream.
                    if p.retain {
                        if let Some(o) = v.as_object_mut() {
                            o.insert(RETAINED.into(), true.into());
                        }
                    }
                    sink.lock().unwrap().push((p.topic.clone(), v));
                }
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(&filter, QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(_) => {}
                // Reconnect pacing of a test client (the broker is restarted on purpose).
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed)
        .await
        .expect("the broker acknowledged the subscription within 10 s")
        .expect("subscriber task alive");
    (got, task)
}

/// Stops a gateway cleanly (SIGTERM), asserts it exited with success and logged no
/// panic, and waits until its goodbye — `status` offline with a seq, not the Last
/// Will — has reached `got`.
pub async fn stop_gateway(gw: &mut Gateway, got: &Received) {
    let status = gw.terminate().expect("SIGTERM the gateway");
    assert!(status.success(), "the gateway exited with {status}");
    assert_no_panic(&gw.log);
    eventually(
        Duration::from_secs(10),
        "the gateway's offline status",
        || {
            got.lock()
                .unwrap()
                .iter()
                .rev()
                .any(|(t, v)| t.ends_with("/status") && v["state"] == "offline" && v["seq"] != 0)
        },
    )
    .await;
}

/// The demo site on its own ports, publishing to `broker`; `extra` adds `[uplink]` lines.
pub fn demo_site_with_uplink(
    dir: &Path,
    modbus_port: u16,
    tty: &Path,
    broker: u16,
    extra: &str,
) -> PathBuf {
    let text = std::fs::read_to_string(root().join("firmware-config/demo-site.toml")).unwrap();
    let text = text
        .replace("port = 15020", &format!("port = {modbus_port}"))
        .replace("/tmp/hazgate/ttyA", &tty.display().to_string());
    let text = format!(
        "{text}\n[uplink]\nhost = \"127.0.0.1\"\nport = {broker}\nspool_path = \"{}\"\naudit_path = \"{}\"\nintegrity_period_s = 5\n{extra}\n",
        dir.join("spool.redb").display(),
        dir.join("audit.jsonl").display()
    );
    let path = dir.join("site.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `hazgate simulate` for a site, its RTU channel on `tty_b`, with extra arguments.
pub fn start_simulator(site: &Path, tty_b: &Path, extra: &[&str]) -> Proc {
    let child = Command::new(BIN)
        .arg("simulate")
        .args(extra)
        .arg("--config")
        .arg(site)
        .arg("--serve")
        .arg(format!("rs485-1={}", tty_b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc {
        child,
        name: "simulate".into(),
    }
}

/// `hazgate run` with the local API on 127.0.0.1:`api` (info log to `log`), once the
/// API listens.
pub fn start_gateway_with_api(site: &Path, api: u16, log: &Path) -> Gateway {
    let child = Command::new(BIN)
        .args(["run", "--api", &format!("127.0.0.1:{api}"), "--config"])
        .arg(site)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap();
    let gw = Gateway {
        proc: Proc {
            child,
            name: "hazgate run".into(),
        },
        log: log.to_path_buf(),
    };
    wait_for_port(api, "the gateway's local API", Duration::from_secs(20));
    gw
}

/// Waits until the gateway has said it is online (and so has subscribed to its
/// commands: the subscription goes out before anything else).
pub async fn wait_online(got: &Received) {
    eventually(Duration::from_secs(20), "the gateway online", || {
        got.lock()
            .unwrap()
            .iter()
            .any(|(t, v)| t.ends_with("/status") && v["state"] == "online")
    })
    .await;
}

/// A running `hazgate run` and where its log goes (scanned for panics at its stop).
pub struct Gateway {
    pub proc: Proc,
    pub log: PathBuf,
}

impl std::ops::Deref for Gateway {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl std::ops::DerefMut for Gateway {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// `hazgate run` without the local API, its log to `log` (or to a file of its own
/// beside the site file).
pub fn start_gateway(site: &Path, log: Option<&Path>) -> Gateway {
    let log = log
        .map(Path::to_path_buf)
        .unwrap_or_else(|| site.with_file_name(format!("gateway-{}.log", free_port())));
    let child = Command::new(BIN)
        .args(["run", "--api", "off", "--log-level", "warn", "--config"])
        .arg(site)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    Gateway {
        proc: Proc {
            child,
            name: "hazgate run".into(),
        },
        log,
    }
}

/// The retained messages under `filter` as a new subscriber gets them, by topic. Waits
/// for a marker published after the subscription (the broker sends retained messages
/// on subscribing, before anything published later), not for a fixed time.
pub async fn retained(
    port: u16,
    filter: &str,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let marker = format!("hazgate-test/marker/{}", free_port());
    let mut o = MqttOptions::new(
        format!("hazgate-retained-{}", free_port()),
        "127.0.0.1",
        port,
    );
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 16);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    client.subscribe(&marker, QoS::AtLeastOnce).await.unwrap();
    let mut got = std::collections::BTreeMap::new();
    let mut subacks = 0;
    let collect = async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subacks += 1;
                    if subacks == 2 {
                        client
                            .publish(&marker, QoS::AtLeastOnce, false, "{}")
                            .await
                            .unwrap();
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == marker => break,
                Ok(Event::Incoming(Packet::Publish(p))) if p.retain => {
                    let v = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                    got.insert(p.topic.clone(), v);
                }
                Ok(_) => {}
                Err(e) => panic!("retained-message subscriber: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("the marker came back within 10 s");
    let _ = client.disconnect().await;
    got
}

/// The colour retained for a scope (`HS-01`, `enterprise`) as a new subscriber finds it.
pub async fn retained_colour(port: u16, scope: &str) -> Option<serde_json::Value> {
    let topic_end = format!("/risk/{scope}");
    retained(port, "hazgate/#")
        .await
        .into_iter()
        .find(|(t, _)| t.ends_with(&topic_end))
        .map(|(_, v)| v["risk"]["to"].clone())
}

/// What a new subscriber finds retained on a gateway's `status` and `risk/…` topics is
/// what the recording subscriber last received on each of them: the centre's picture
/// after a restart is the gateway's latest word, not an older one.
pub async fn assert_retained_is_latest(port: u16, got: &Received) {
    let retained = retained(port, "hazgate/#").await;
    let arrivals = got.lock().unwrap().clone();
    assert!(
        retained.keys().any(|t| t.ends_with("/status")),
        "a retained status: {retained:?}"
    );
    for (topic, v) in &retained {
        if !(topic.ends_with("/status") || topic.contains("/risk/") || topic.ends_with("/alarms")) {
            continue;
        }
        let last = arrivals
            .iter()
            .rev()
            .find(|(t, _)| t == topic)
            .map(|(_, v)| without_marker(v));
        assert_eq!(
            Some(v.clone()),
            last,
            "retained {topic} is not the last message sent on it"
        );
    }
}

/// Every message validates against the JSON Schema of its `type`.
pub fn assert_schemas(arrivals: &[(String, serde_json::Value)]) {
    let dir_schema = root().join("docs/schema");
    let load = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir_schema.join(name)).unwrap()).unwrap();
        jsonschema::validator_for(&v).unwrap()
    };
    let validators: std::collections::BTreeMap<&str, jsonschema::Validator> = [
        ("telemetry", "telemetry.json"),
        ("alarm", "alarm.json"),
        ("risk", "risk.json"),
        ("special_operation", "special-operation.json"),
        ("status", "status.json"),
        ("command_reply", "command-reply.json"),
        ("thresholds", "thresholds.json"),
        ("active_alarms", "active-alarms.json"),
    ]
    .into_iter()
    .map(|(t, f)| (t, load(f)))
    .collect();
    for (topic, msg) in arrivals {
        let msg = &without_marker(msg);
        let ty = msg["type"]
            .as_str()
            .unwrap_or_else(|| panic!("no type on {topic}: {msg}"));
        let errors: Vec<String> = validators[ty]
            .iter_errors(msg)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{topic}: {msg}: {errors:?}");
    }
}

/// A site of one combustible detector GT-1 (f32, CDAB, holding 0 of unit 1, range
/// 0–100 %LEL) on a level-1 LPG tank farm HS-1, polled every 500 ms, publishing to
/// `broker`; `extra` adds lines (e.g. to `[uplink]`, which comes last).
pub fn one_detector_site(dir: &Path, at: &PeerAt, broker: u16, extra: &str) -> PathBuf {
    let toml = format!(
        r#"{GATEWAY_TOML}
{channel}
[[channels.devices]]
id = "GD-1"
unit_id = 1
poll_interval_ms = 500
timeout_ms = 1000

[[hazard_sources]]
id = "HS-1"
name = "LPG tank farm"
kind = "tank_farm"
level = 1
  [[hazard_sources.points]]
  id = "GT-1"
  kind = "combustible_gas"
  gas = "propane"
  device = "GD-1"
  table = "holding"
  address = 0
  data_type = "f32"
  word_order = "CDAB"
  valid_range = [0.0, 100.0]

[uplink]
host = "127.0.0.1"
port = {broker}
spool_path = "{d}/spool.redb"
audit_path = "{d}/audit.jsonl"
integrity_period_s = 5
{extra}
"#,
        channel = channel_toml("c", at),
        d = dir.display()
    );
    let path = dir.join("site.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// A pymodbus detector reading `value` %LEL, changeable through `control`.
pub fn detector(dir: &Path, at: &PeerAt, value: f64) -> (Proc, PathBuf) {
    let control = dir.join("control.json");
    let map = serde_json::json!({"devices": [{"unit": 1, "holding": {"size": 8, "values": [
        {"addr": 0, "type": "f32", "order": "CDAB", "value": value}]}}]});
    let opts = PeerOpts {
        control: Some(control.clone()),
        ..Default::default()
    };
    (pymodbus(&map, at, dir, &opts), control)
}

/// Sets the detector of [`detector`] to `value` %LEL.
pub fn set_detector(control: &Path, value: f64) {
    std::fs::write(
        control,
        serde_json::json!([{"unit": 1, "table": "holding", "addr": 0, "type": "f32", "order": "CDAB", "value": value}])
            .to_string(),
    )
    .unwrap();
}
