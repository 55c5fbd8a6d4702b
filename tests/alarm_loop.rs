//! The alarm-handling loop (预警处置反馈) end to end, with real processes: a pymodbus
//! detector, `hazgate run`, Mosquitto, `hazgate ingest` (with VictoriaMetrics) and
//! `hazgate report`. An alarm raised at the enterprise reaches the centre's ledger;
//! an operator's feedback is checked, recorded under the token's name and reaches the
//! gateway's audit log; what happens while the centre is down (an acknowledgement, the
//! clear) reaches the ledger when it is back; the monthly report counts it all.

mod common;

use std::{path::Path, process::Command, time::Duration};

use common::{
    mqtt::*,
    store::{central_toml, Store},
    *,
};
use hazgate::reading::Timestamp;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{json, Value};

fn token(tokens: &Path, name: &str, role: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "--file"])
        .arg(tokens)
        .args(["add", name, "--role", role])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The ledger as `/screen/loop` gives it.
fn ledger(http: u16, as_token: &str) -> Value {
    let (code, body) = http_as(http, "GET", "/screen/loop", None, as_token);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn occurrence(l: &Value, alarm: &str) -> Option<Value> {
    l["occurrences"]
        .as_array()?
        .iter()
        .find(|o| o["alarm"] == alarm)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_reaches_the_gateways_audit_log_and_the_loop_survives_the_centre_being_down() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = Broker::start_with(d, "max_queued_messages 0");
    let store = Store::start(d);
    let port = free_port();
    let (_peer, control) = detector(d, &PeerAt::Tcp(port), 60.0);
    let site = one_detector_site(d, &PeerAt::Tcp(port), broker.port, "");
    let tokens = d.join("tokens.json");
    let operator = token(&tokens, "op-li", "operator");
    let viewer = token(&tokens, "wall-1", "viewer");
    let http = free_port();
    let conf = central_toml(d, broker.port, &store, http);
    let (got, sub) = subscriber(broker.port, "hazgate/#").await;
    let mut central = start_central(&conf, http, &d.join("ingest-1.log"));
    let mut gw = start_gateway(&site, None);

    // The detector reads 60 %LEL: HH is raised, and the centre's ledger has it.
    let mut hh = None;
    eventually(Duration::from_secs(30), "HH in the centre's ledger", || {
        hh = occurrence(&ledger(http, &viewer), "hh");
        hh.is_some()
    })
    .await;
    let hh = hh.unwrap();
    let (gateway, alarm_id) = (
        hh["gateway"].as_str().unwrap(),
        hh["alarm_id"].as_str().unwrap(),
    );
    assert_eq!(hh["state"], "active_unacknowledged");
    assert_eq!(hh["class"], "critical");
    let feedback = |cause: &str| {
        json!({"gateway": gateway, "alarm_id": alarm_id, "cause": cause,
            "measures": "关闭切断阀，现场检测 closed the shut-off valve", "text": "法兰垫片泄漏 flange gasket leak"})
        .to_string()
    };

    // Feedback must say who: loopback access without a token reads but may not give
    // it, nor may a viewer; an unknown cause is refused with the list.
    let body = feedback("real_leak");
    let anonymous = common::http(http, "POST", "/screen/feedback", Some(&body));
    assert_eq!(anonymous.0, 403, "{anonymous:?}");
    let by_viewer = http_as(http, "POST", "/screen/feedback", Some(&body), &viewer);
    assert_eq!(by_viewer.0, 403, "{by_viewer:?}");
    let unknown = http_as(
        http,
        "POST",
        "/screen/feedback",
        Some(&feedback("aliens")),
        &operator,
    );
    assert_eq!(unknown.0, 400, "{unknown:?}");
    assert!(
        unknown.1.contains("real_leak, process_upset"),
        "{}",
        unknown.1
    );
    let (code, given) = http_as(http, "POST", "/screen/feedback", Some(&body), &operator);
    assert_eq!(code, 200, "{given}");
    let given: Value = serde_json::from_str(&given).unwrap();
    assert_eq!(
        given["feedback"]["by"], "op-li",
        "the token's name, not the body's"
    );
    let again = http_as(http, "POST", "/screen/feedback", Some(&body), &operator);
    assert_eq!(again.0, 409, "{again:?}");
    // Bad input is refused with the reason, and nothing of it is kept.
    let stale = body.replace(alarm_id, "GT-1:hh:1000");
    let stale = http_as(http, "POST", "/screen/feedback", Some(&stale), &operator);
    assert_eq!(
        stale.0, 404,
        "an occurrence the centre never saw: {stale:?}"
    );
    let long = json!({"gateway": gateway, "alarm_id": alarm_id, "cause": "real_leak", "text": "漏".repeat(501)});
    let long = http_as(
        http,
        "POST",
        "/screen/feedback",
        Some(&long.to_string()),
        &operator,
    );
    assert_eq!(long.0, 400, "{long:?}");
    let not_json = http_as(
        http,
        "POST",
        "/screen/feedback",
        Some("{\"gateway\": 1}"),
        &operator,
    );
    assert_eq!(not_json.0, 400, "{not_json:?}");
    let journal: String = std::fs::read_dir(d.join("alarms"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect();
    let kept: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("\"entry\":\"feedback\""))
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "only the accepted feedback is journaled: {kept:?}"
    );
    assert!(
        kept[0].contains("\"by\":\"op-li\"") && kept[0].contains("real_leak"),
        "{kept:?}"
    );

    // The gateway has it in its audit log, and the centre knows it was accepted.
    let audit = d.join("audit.jsonl");
    eventually(
        Duration::from_secs(20),
        "the feedback in the gateway's audit log",
        || {
            std::fs::read_to_string(&audit)
                .unwrap_or_default()
                .lines()
                .any(|l| {
                    let e: Value = serde_json::from_str(l).unwrap();
                    e["command"] == "feedback"
                        && e["ok"] == true
                        && e["by"] == "op-li"
                        && e["request"].as_str().unwrap().contains(alarm_id)
                })
        },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the gateway's answer recorded",
        || {
            occurrence(&ledger(http, &viewer), "hh")
                .is_some_and(|o| o["feedback"]["delivery"]["state"] == "accepted")
        },
    )
    .await;

    // The dashboards' history: the counters in the store, per enterprise and park —
    // what the ledger counts standing (H and HH, not cleared), the feedback time, the
    // gateway online.
    let standing = ledger(http, &viewer)["counts"][0]["not_cleared"]
        .as_f64()
        .unwrap();
    assert!(standing >= 1.0, "HH stands");
    let newest = |field: &str, scope: &str| {
        store
            .export(&format!("alarm_loop_{field}{{scope=\"{scope}\"}}"))
            .into_iter()
            .max_by_key(|((_, t), _)| *t)
            .map(|(_, v)| v)
    };
    eventually(
        Duration::from_secs(15),
        "the loop's counters in the store",
        || {
            newest("not_cleared", "enterprise") == Some(standing)
                && newest("not_cleared", "park") == Some(standing)
                && newest("online_pct", "enterprise") == Some(100.0)
                && newest("feedback_p50_min", "enterprise").is_some_and(|m| m < 5.0)
        },
    )
    .await;

    let health = || -> (u16, Value) {
        let (code, body) = try_http(http, "GET", "/healthz", None).unwrap_or_default();
        (code, serde_json::from_str(&body).unwrap_or_default())
    };
    assert_eq!(health().1["alarm_journal_ok"], true);

    // The journal breaks (its month's file cannot be opened): the acknowledgement
    // that comes next is not kept — loudly — and not acknowledged to the broker.
    let month_file = std::fs::read_dir(d.join("alarms"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let aside = month_file.with_extension("aside");
    std::fs::rename(&month_file, &aside).unwrap();
    std::fs::create_dir(&month_file).unwrap();
    let (client, mut el) =
        AsyncClient::new(MqttOptions::new("loop-test", "127.0.0.1", broker.port), 16);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
        .publish(
            format!("hazgate/v1/{gateway}/cmd/ack"),
            QoS::AtLeastOnce,
            false,
            json!({"by": "op-zhao", "point": "GT-1"}).to_string(),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "/healthz says the journal failed",
        || {
            let (code, body) = health();
            code == 503 && body["alarm_journal_ok"] == false
        },
    )
    .await;
    let (_, metrics) = http_as(http, "GET", "/metrics", None, &viewer);
    assert!(
        metrics.contains("hazgate_ingest_alarm_journal_failures_total"),
        "{metrics}"
    );

    // The centre goes down; the journal is mended; meanwhile the alarm clears.
    central.kill();
    std::fs::remove_dir(&month_file).unwrap();
    std::fs::rename(&aside, &month_file).unwrap();
    set_detector(&control, 0.0);
    eventually(
        Duration::from_secs(30),
        "HH acknowledged and cleared at the gateway",
        || {
            got.lock().unwrap().iter().any(|(_, v)| {
                v["type"] == "alarm"
                    && v["alarm"]["alarm_id"] == alarm_id
                    && v["alarm"]["state"] == "normal"
            })
        },
    )
    .await;

    // Back up: the broker kept what the centre missed or could not keep (the
    // acknowledgement), and the journal what it had.
    let _central = start_central(&conf, http, &d.join("ingest-2.log"));
    eventually(
        Duration::from_secs(20),
        "the clear and the acknowledgement reach the ledger",
        || {
            let l = ledger(http, &viewer);
            let h = occurrence(&l, "h");
            occurrence(&l, "hh").is_none()
                && h.is_some_and(|h| {
                    !h["cleared"].is_null() && h["acknowledged"]["by"] == "op-zhao"
                })
                && l["counts"][0]["not_cleared"] == 0
        },
    )
    .await;
    stop_gateway(&mut gw, &got).await;
    sub.abort();

    // The month's report, from the journal alone.
    let month: String = Timestamp(Timestamp::now().0 + 8 * 3_600_000)
        .to_rfc3339()
        .chars()
        .take(7)
        .collect();
    let out = Command::new(BIN)
        .args(["report", "--month", &month, "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert!(
        rows[0].starts_with("park,enterprise,enterprise_name,raised,cleared,not_cleared_at_end"),
        "{csv}"
    );
    let enterprise: Vec<&str> = rows[1].split(',').collect();
    // raised, cleared, not cleared at the end, …, with feedback, late or missing.
    assert_eq!(&enterprise[3..6], ["2", "2", "0"], "{csv}");
    assert_eq!(&enterprise[7..9], ["1", "0"], "{csv}");
    let online: f64 = enterprise[11].parse().unwrap();
    assert!(
        online > 50.0,
        "online while it ran, not counted ahead: {csv}"
    );
}

/// A centre started for the first time while an alarm stands at a gateway (contract
/// v1.6): the gateway's retained list of standing alarms gives it the occurrence at
/// once — not at the alarm's next event — with its raise time; and when the alarm
/// ends, the occurrence is cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_centre_started_during_an_alarm_learns_of_it_from_the_retained_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = Broker::start(d);
    let store = Store::start(d);
    let port = free_port();
    let (_peer, control) = detector(d, &PeerAt::Tcp(port), 60.0);
    let site = one_detector_site(d, &PeerAt::Tcp(port), broker.port, "");
    let (got, sub) = subscriber(broker.port, "hazgate/v1/P1/E1/GW-T/alarms").await;
    let _gw = start_gateway(&site, None);
    // The leak is on before any centre exists: the broker holds the gateway's list.
    let mut raised = String::new();
    eventually(Duration::from_secs(30), "HH in the retained list", || {
        let got = got.lock().unwrap();
        let Some((_, last)) = got.last() else {
            return false;
        };
        let hh = last["alarms"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["alarm"] == "hh"));
        if let Some(hh) = hh {
            raised = hh["alarm_id"].as_str().unwrap().to_string();
        }
        hh.is_some()
    })
    .await;
    sub.abort();
    // Nothing moves at the gateway from here until the centre has the alarm.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tokens = d.join("tokens.json");
    let viewer = token(&tokens, "wall-1", "viewer");
    let http = free_port();
    let conf = central_toml(d, broker.port, &store, http);
    let _central = start_central(&conf, http, &d.join("ingest.log"));
    let mut hh = None;
    eventually(
        Duration::from_secs(10),
        "HH in a new centre's ledger",
        || {
            hh = occurrence(&ledger(http, &viewer), "hh");
            hh.is_some()
        },
    )
    .await;
    let hh = hh.unwrap();
    assert_eq!(hh["alarm_id"], raised.as_str(), "{hh}");
    assert_eq!(hh["state"], "active_unacknowledged", "{hh}");
    let raised_ms: i64 = raised.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        hh["raised"],
        Timestamp(raised_ms).to_rfc3339(),
        "raised when the gateway raised it, not when the centre heard"
    );
    assert_eq!(hh["unit"], "%LEL", "{hh}");

    // The leak ends: the occurrence is cleared (销警).
    set_detector(&control, 0.0);
    eventually(Duration::from_secs(30), "HH back to normal", || {
        occurrence(&ledger(http, &viewer), "hh")
            .is_some_and(|o| o["cleared"].is_string() || o["state"] == "returned_unacknowledged")
    })
    .await;
}
