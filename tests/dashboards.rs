//! The Grafana dashboards in `dashboards/`: every JSON parses and uses only the
//! provisioned datasource; and every panel's InfluxQL query returns rows on real data —
//! a scripted scenario (gas leak, special operation, threshold change, clean stop) run
//! through simulator → gateway → Mosquitto, mapped by ingest's own code and loaded into
//! Debian's InfluxDB 1.6 through its v1 `/write` API.

mod common;

use std::{process::Command, time::Duration};

use common::{mqtt::*, store::influxdb, *};
use hazgate::{
    contract::topic::Topic,
    ingest::{
        alarm_loop::AlarmLoop, ledger::FeedbackRequest, message::decode, points::loop_counts,
        tables::Tables,
    },
    model::alarm_loop::AlarmLoopConfig,
    reading::Timestamp,
};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::Value;

const DASHBOARDS: [&str; 3] = [
    "park-overview.json",
    "hazard-source.json",
    "gateway-health.json",
];
const BASE: &str = "hazgate/v1/CP-320500-01/91320500MA1DEMO01X/GW-01";

fn dashboard(name: &str) -> Value {
    let path = root().join("dashboards").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every (dashboard, panel title, query) — panels' targets and template variables.
fn queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for name in DASHBOARDS {
        let d = dashboard(name);
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                out.push((
                    name.to_string(),
                    p["title"].as_str().unwrap().to_string(),
                    t["query"].as_str().unwrap().to_string(),
                ));
            }
        }
        for v in d["templating"]["list"].as_array().unwrap() {
            out.push((
                name.to_string(),
                format!("variable ${}", v["name"].as_str().unwrap()),
                v["query"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn every_dashboard_parses_and_uses_only_the_provisioned_datasource() {
    let provisioning =
        std::fs::read_to_string(root().join("dashboards/provisioning/datasources/hazgate.yaml"))
            .unwrap();
    let uids: Vec<&str> = provisioning
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uid:"))
        .map(str::trim)
        .collect();
    assert_eq!(uids, ["hazgate-influx"], "one provisioned datasource");
    let providers =
        std::fs::read_to_string(root().join("dashboards/provisioning/dashboards/hazgate.yaml"))
            .unwrap();
    assert!(providers.contains("type: file") && providers.contains("path:"));
    let mut seen_uids = std::collections::BTreeSet::new();
    for name in DASHBOARDS {
        let d = dashboard(name);
        assert!(
            seen_uids.insert(d["uid"].as_str().unwrap().to_string()),
            "{name}: unique uid"
        );
        let mut refs = Vec::new();
        collect_datasources(&d, &mut refs);
        assert!(!refs.is_empty(), "{name} names its datasource");
        for r in refs {
            assert_eq!(
                (r["type"].as_str(), r["uid"].as_str()),
                (Some("influxdb"), Some("hazgate-influx")),
                "{name}: {r}"
            );
        }
        for p in d["panels"].as_array().unwrap() {
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {} has queries", p["title"]);
            for t in targets {
                assert_eq!(t["rawQuery"], true, "{name}: raw InfluxQL");
                assert!(t["query"].as_str().is_some_and(|q| q.starts_with("SELECT")));
            }
        }
    }
}

fn collect_datasources<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "datasource" {
                    out.push(x);
                } else {
                    collect_datasources(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_datasources(x, out)),
        _ => {}
    }
}

fn influx(port: u16, args: &[&str]) -> Value {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-G"])
        .arg(format!("http://127.0.0.1:{port}/query"))
        .args(args.iter().flat_map(|a| ["--data-urlencode", *a]))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_rows_on_scenario_data_in_influxdb_1_6() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let (got, sub) = subscriber(broker.port, "hazgate/v1/CP-320500-01/#").await;
    let pty = socat_pair(dir.path());
    let site = demo_site_with_uplink(dir.path(), free_port(), &pty.a, broker.port, "");
    // A combustible detector ramps to 60 %LEL in 6 s: H then HH, its source's colour up.
    let _sim = start_simulator(
        &site,
        &pty.b,
        &[
            "--scenario",
            "gas-leak",
            "--start-after",
            "2",
            "--ramp",
            "6",
        ],
    );
    let log = dir.path().join("gw.log");
    let mut gw = start_gateway(&site, Some(&log));
    wait_online(&got).await;
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new("dash-operator", "127.0.0.1", broker.port),
        16,
    );
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    for (name, payload) in [
        (
            "special-operation",
            r#"{"request_id":"d1","by":"safety-li","hazard_source":"HS-01","active":true,"kind":"hot_work"}"#,
        ),
        (
            "thresholds",
            r#"{"request_id":"d2","by":"eng-wu","changes":[{"point":"GT-102","set":{"h":18}}]}"#,
        ),
    ] {
        client
            .publish(
                format!("{BASE}/cmd/{name}"),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }
    // Until both commands are answered and the leak has reached its second level.
    eventually(
        Duration::from_secs(30),
        "both replies and the HH alarm",
        || {
            let got = got.lock().unwrap();
            let replied = |id: &str| {
                got.iter()
                    .any(|(t, v)| t.ends_with("/reply") && v["request_id"] == id && v["ok"] == true)
            };
            let hh = got.iter().any(|(_, v)| {
                v["type"] == "alarm"
                    && v["alarm"]["alarm"] == "hh"
                    && v["alarm"]["action"] == "raised"
            });
            replied("d1") && replied("d2") && hh
        },
    )
    .await;
    // An operator acknowledges the leak's alarms: the alarm history shows by whom.
    client
        .publish(
            format!("{BASE}/cmd/ack"),
            QoS::AtLeastOnce,
            false,
            r#"{"request_id":"d3","by":"op-li","point":"GT-101"}"#,
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(20), "the acknowledgement", || {
        got.lock().unwrap().iter().any(|(_, v)| {
            v["type"] == "alarm"
                && v["alarm"]["action"] == "acknowledged"
                && v["alarm"]["by"] == "op-li"
        })
    })
    .await;
    stop_gateway(&mut gw, &got).await;
    sub.abort();

    // What ingest would write, through ingest's own mapping, as v1 line protocol.
    let mut lines = Vec::new();
    let mut types = std::collections::BTreeSet::new();
    for (topic, v) in got.lock().unwrap().iter() {
        let Ok(d) = decode(
            "hazgate",
            topic,
            v.to_string().as_bytes(),
            1 << 20,
            0,
            &Tables::default(),
        ) else {
            continue; // retained per-source copies and replies are not ingested
        };
        types.insert(d.message_type);
        lines.extend_from_slice(&d.lines);
    }
    // The alarm loop's counters, as the centre's loop computes them from the same
    // messages and writes them every `store_every_s`.
    let cfg: AlarmLoopConfig = toml::from_str(&format!(
        "journal_dir = {:?}",
        dir.path().join("alarms").display().to_string()
    ))
    .unwrap();
    let alarm_loop = AlarmLoop::open(&cfg, "hazgate").unwrap();
    for (topic, v) in got.lock().unwrap().iter() {
        if let Some(t) = Topic::parse("hazgate", topic) {
            alarm_loop.observe(&t.gateway, t.stream, v).unwrap();
        }
    }
    // Feedback on the HH occurrence, as the screen gives it: feedback time p50 / p90.
    let hh = alarm_loop
        .listed(Timestamp::now())
        .into_iter()
        .find(|o| o.alarm_id.contains(":hh:"))
        .expect("the HH occurrence in the ledger");
    alarm_loop
        .feedback(
            &FeedbackRequest {
                gateway: hh.gateway.clone(),
                alarm_id: hh.alarm_id.clone(),
                cause: "real_leak".into(),
                measures: String::new(),
                text: String::new(),
            },
            "op-li",
        )
        .unwrap();
    let now = Timestamp::now();
    let counts = alarm_loop.counts(now);
    assert!(
        counts.iter().any(|c| c.not_cleared > 0),
        "the leak's alarms stand: {counts:?}"
    );
    lines.extend_from_slice(&loop_counts(&counts, now.0));
    for t in [
        "telemetry",
        "alarm",
        "risk",
        "status",
        "special_operation",
        "thresholds",
    ] {
        assert!(
            types.contains(t),
            "the scenario produced {t} messages: {types:?}"
        );
    }
    let (_influx, port) = influxdb(dir.path());
    assert!(influx(port, &["q=CREATE DATABASE hazgate"])["results"][0]["error"].is_null());
    let body = dir.path().join("points.lp");
    std::fs::write(&body, &lines).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code}", "-XPOST"])
        .arg(format!(
            "http://127.0.0.1:{port}/write?db=hazgate&precision=ms"
        ))
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "204",
        "v1 /write accepted the points"
    );

    // Grafana's macros and the template variables, as Grafana would fill them in.
    let enterprise = "91320500MA1DEMO01X";
    let mut failures = Vec::new();
    let all = queries();
    assert!(all.len() >= 15, "{} queries", all.len());
    for (dash, title, q) in &all {
        let q = q
            .replace("$timeFilter", "time > now() - 1h")
            .replace("$__interval", "1s")
            .replace("$enterprise", enterprise)
            .replace("$hazard_source", "HS-01");
        let r = influx(port, &["db=hazgate", &format!("q={q}")]);
        let res = &r["results"][0];
        let rows: usize = res["series"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|x| x["values"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
        // A column named in the query that no row fills is a field the store does not
        // have (a misspelt or unwritten field): Grafana would show it empty.
        let empty: Vec<String> = res["series"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|x| {
                let columns = x["columns"].as_array().cloned().unwrap_or_default();
                let values = x["values"].as_array().cloned().unwrap_or_default();
                columns
                    .into_iter()
                    .enumerate()
                    .filter(move |(i, _)| values.iter().all(|row| row[*i].is_null()))
                    .map(|(_, c)| c.as_str().unwrap_or_default().to_string())
            })
            .collect();
        if !res["error"].is_null() || rows == 0 || !empty.is_empty() {
            failures.push(format!(
                "{dash} / {title}: {rows} rows, never filled: {empty:?}, {r}\n  {q}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "panels without rows or with columns never filled:\n{}",
        failures.join("\n")
    );
}
