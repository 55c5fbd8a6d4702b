//! `hazgate tune` (docs/tune.md) over recorded histories: one the simulator records
//! with an injected clock (three days: noise, a slow leak, a detector chattering near
//! its limit, a level standing in alarm, a sensor fault), and one `hazgate run`
//! records against a pymodbus detector. A replay with the settings that were live
//! reproduces what the live judge did; tune finds the chattering and the standing
//! alarm, a wider deadband ends the chattering, a higher HH misses the leak's HH, a
//! candidate beyond GB/T 50493 is refused with its clause; the report opens offline in
//! headless Chromium.

mod common;

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use common::{
    mqtt::*,
    store::{central_toml, http_get, influxdb, Store},
    *,
};
use hazgate::reading::Timestamp;
use hazgate::{
    ingest::{message::decode, tables::Tables},
    model::{history::HistoryConfig, load_site, SiteSource, DEMO_SITE_TOML},
    sim::{Scenario, ScenarioKind, Timing},
    tune::record::{self, Pattern, Plan},
};
use serde_json::Value;

const H: i64 = 3_600_000;
/// 2026-11-02T00:00:00Z.
const START: i64 = 1_793_577_600_000;

fn tune(site: &Path, args: &[&str]) -> (i32, String, Value, String) {
    let dir = site.parent().unwrap();
    let json = dir.join("report.json");
    let html = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .args(["tune", "--config"])
        .arg(site)
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 2),
        "{out:?}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    (out.status.code().unwrap(), stdout, report, page)
}

/// The figures of one alarm in a run's KPIs.
fn alarm<'a>(kpis: &'a Value, point: &str, kind: &str) -> &'a Value {
    kpis["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["point"] == point && a["alarm"] == kind)
        .unwrap_or_else(|| panic!("no {point} {kind} in {kpis}"))
}

#[test]
fn tune_finds_bad_actors_and_what_a_candidate_would_miss() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let history = d.join("history");
    let toml = format!(
        "{DEMO_SITE_TOML}\n[history]\npath = \"{}\"\ncommit_s = 60\nsnapshot_s = 600\ndeadband_pct = 2\n",
        history.display()
    );
    let site_path = d.join("site.toml");
    std::fs::write(&site_path, &toml).unwrap();
    let site = Arc::new(
        load_site(SiteSource::Text {
            name: "site.toml",
            toml: &toml,
        })
        .unwrap(),
    );
    let cfg: HistoryConfig = site.history.clone().unwrap();
    let at = |id: &str| site.point_by_id(id).unwrap().index;
    let gt102 = site.point_by_id("GT-102").unwrap();
    let h102 = gt102.alarms.h.unwrap();
    assert_eq!(
        gt102.alarms.deadband, 1.0,
        "the chatter below is set for it"
    );
    // The leak on GT-101 ramps towards 60 %LEL over 2 h and ends after 1.6 h: a peak
    // of ≈ 48 %LEL, past HH (40) and below the 50 %LEL ceiling of an HH.
    let scenario = Scenario::bind(
        &site,
        ScenarioKind::GasLeak,
        Timing {
            start_after: Duration::from_secs(26 * 3600),
            ramp: Duration::from_secs(2 * 3600),
            recover_after: Some(Duration::from_secs(5760)),
        },
        Some("GT-101"),
    )
    .unwrap();
    let plan = Plan {
        scenario,
        patterns: vec![
            // ±1 %LEL of noise around 0.3 below H: raised above H, cleared below H − 1.
            Pattern::Chatter {
                point: at("GT-102"),
                from: 50 * H,
                to: 51 * H,
                around: h102 - 0.3,
                amplitude: 1.0,
            },
            // LT-101 above its H (85 %) and below HH for 38 h: a standing alarm.
            Pattern::Hold {
                point: at("LT-101"),
                from: 2 * H,
                to: 40 * H,
                value: 90.0,
            },
            Pattern::Fault {
                point: at("GT-103"),
                from: 60 * H,
                to: 60 * H + 600_000,
            },
        ],
        start: START,
        duration_ms: 72 * H,
        poll_ms: 5_000,
        seed: 7,
    };
    let live = record::record(&site, &plan, &cfg).unwrap();
    assert!(!live.is_empty());

    std::fs::write(
        d.join("hh-above-peak.toml"),
        "name = \"HH above the leak\"\n[[points]]\nid = \"GT-101\"\nalarms = { hh = 49.5 }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("beyond.toml"),
        "[[points]]\nid = \"GT-101\"\nalarms = { h = 30 }\n",
    )
    .unwrap();
    let from = (START + H).to_string();
    let to = (START + 72 * H).to_string();
    let cand = |f: &str| d.join(f).display().to_string();
    let (code, stdout, r, page) = tune(
        &site_path,
        &[
            "--from",
            &from,
            "--to",
            &to,
            "--tolerance-ms",
            "5000",
            "--set",
            "GT-102.deadband=3",
            "--candidate",
            &cand("hh-above-peak.toml"),
            "--candidate",
            &cand("beyond.toml"),
        ],
    );
    assert_eq!(code, 2, "a refused candidate is an exit code: {stdout}");

    // The replay with the settings then in force reproduces what the live judge did.
    let f = &r["fidelity"];
    assert!(f["live"].as_u64().unwrap() >= 10, "{f}");
    assert_eq!(f["matched"], f["live"], "every live change reproduced: {f}");
    assert_eq!(f["replayed"], f["live"], "and no other: {f}");

    // Today: GT-102's H chatters, LT-101's H stands for over 24 h, GT-103 faulted.
    let today = &r["today"]["kpis"];
    let chatter = alarm(today, "GT-102", "h");
    assert!(chatter["chattering"].as_u64().unwrap() >= 10, "{chatter}");
    assert_eq!(alarm(today, "LT-101", "h")["standing"], 1);
    assert_eq!(alarm(today, "GT-103", "fault")["raised"], 1);
    assert_eq!(
        today["site"]["top"][0][0], "GT-102",
        "the worst actor first"
    );
    assert!(
        r["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["point"] == "GT-102" && s["field"] == "deadband"),
        "a deadband suggested from the noise: {}",
        r["suggestions"]
    );

    // The wider deadband: one raise through the chattering hour, none chattering,
    // and nothing missed (the H it raised once stands through the hour).
    let wide = &r["candidates"][0];
    let k = &wide["run"]["kpis"];
    assert_eq!(alarm(k, "GT-102", "h")["chattering"], 0, "{}", wide["name"]);
    assert_eq!(alarm(k, "GT-102", "h")["raised"], 1);
    let missed = wide["missed"].as_array().unwrap();
    assert!(
        missed
            .iter()
            .all(|m| m["point"] == "GT-102" && m["alarm"] == "h"),
        "only the chatter's re-raises are missed: {missed:?}"
    );

    // HH above the leak's peak: its HH is missed, and said first.
    let high = &r["candidates"][1];
    assert!(high["refused"].is_null());
    let first = &high["missed"][0];
    assert_eq!(
        (&first["point"], &first["alarm"], &first["candidate_raised"]),
        (&"GT-101".into(), &"hh".into(), &Value::Null),
        "{}",
        high["missed"]
    );
    assert!(stdout.contains("MISSED by HH above the leak"), "{stdout}");
    assert!(stdout.contains("GT-101 HH (critical)"), "{stdout}");

    // Beyond the guardrails: refused with the clause.
    let beyond = &r["candidates"][2];
    let why = beyond["refused"].as_str().unwrap();
    assert!(why.contains("GB/T 50493-2019 5.5.2"), "{why}");
    assert!(beyond["run"].is_null());

    assert!(page.contains("Missed or late under HH above the leak"));
    assert!(page.contains("Refused: beyond"));
    assert!(!page.contains("<script"), "no script: it opens offline");
    screenshot(&d.join("report.html"), "tune-report.png");
}

/// Opens the report in headless Chromium and keeps a screenshot in
/// `target/screenshots/` for a person to look at.
fn screenshot(html: &Path, name: &str) {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let png = out.join(name);
    let _ = std::fs::remove_file(&png);
    let profile = html.parent().unwrap().join("chromium-profile");
    let status = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--window-size=1000,2600")
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "a picture"
    );
}

/// `hazgate run` against a pymodbus detector with its history (a deadband of 5 %LEL,
/// whose crossings inside it must be kept all the same) and its local API, publishing
/// to `broker`; the detector goes up through H (20) and HH (40), down, and around H.
/// The gateway, its API port and peer, and the period; an engineer's token in
/// `eng.token`.
async fn leak(
    d: &Path,
    broker: u16,
    uplink: &str,
) -> (std::path::PathBuf, u16, Gateway, Proc, i64, i64) {
    let port = free_port();
    let (peer, control) = detector(d, &PeerAt::Tcp(port), 3.0);
    let history = d.join("history");
    let site = one_detector_site(
        d,
        &PeerAt::Tcp(port),
        broker,
        &format!(
            "{uplink}\n[history]\npath = \"{}\"\ncommit_s = 1\nsnapshot_s = 60\ndeadband_pct = 5\n",
            history.display()
        ),
    );
    std::fs::write(d.join("eng.token"), engineer(&site)).unwrap();
    let api = free_port();
    let start = Timestamp::now().0;
    let gw = start_gateway_with_api(&site, api, &d.join("gw.log"));
    for v in [
        3.0, 21.0, 22.5, 41.0, 43.0, 19.5, 21.0, 18.5, 21.0, 18.0, 3.0,
    ] {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        set_detector(&control, v);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    (site, api, gw, peer, start, Timestamp::now().0)
}

/// The arguments replaying the period from `from` to `to`, with no warm-up.
fn period<'a>(from: &'a str, to: &'a str) -> [&'a str; 6] {
    ["--from", from, "--to", to, "--warmup-s", "0"]
}

/// An engineer's API token for the site.
fn engineer(site: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .args(["token", "--config"])
        .arg(site)
        .args(["add", "eng-li", "--role", "engineer"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A history `hazgate run` records against a pymodbus detector replays to the same
/// alarms and colours, read from the gateway's files while it runs and from a JSON-lines
/// export; the candidate chosen is applied through the local API with the report's id
/// in the audit line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_history_replays_to_what_the_live_judge_did_and_the_chosen_change_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = Broker::start(d);
    let (site, api, _gw, _peer, start, to) = leak(d, broker.port, "").await;
    let eng = std::fs::read_to_string(d.join("eng.token")).unwrap();
    let (from, to) = (start.to_string(), to.to_string());
    let period = period(&from, &to);
    let common = period.as_slice();

    // From the gateway's own files, while it writes them.
    let mut args = common.to_vec();
    args.extend(["--set", "GT-1.deadband=2", "--emit-command"]);
    let cmd = d.join("cmd.json");
    let cmd_s = cmd.display().to_string();
    args.push(&cmd_s);
    let (code, stdout, r, _) = tune(&site, &args);
    assert_eq!(code, 0, "{stdout}");
    let f = &r["fidelity"];
    assert!(
        f["live"].as_u64().unwrap() >= 8,
        "raises, clears and colours: {f}"
    );
    assert_eq!(f["matched"], f["live"], "{f}");
    assert_eq!(f["replayed"], f["live"], "{f}");
    let h = alarm(&r["today"]["kpis"], "GT-1", "h");
    // 19.5 is inside H's deadband (clears below 19): raised at 21, again after 18.5.
    assert_eq!(h["raised"], 2, "{h}");

    // From an export of it: the same.
    let export = d.join("export.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .args([
            "export", "--format", "jsonl", "--from", &from, "--to", &to, "--out",
        ])
        .arg(&export)
        .arg("--config")
        .arg(&site)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Read back (as `--input` reads it), the export is the history, reading for reading.
    let model = hazgate::app::load(&site).unwrap();
    let (imported, _) = hazgate::app::export::read_jsonl(&model, &export).unwrap();
    let (stored, _) = hazgate::history::store::readings(
        &d.join("history"),
        from.parse().unwrap(),
        to.parse().unwrap(),
        |_| true,
    )
    .unwrap();
    assert!(stored.len() >= 8, "the crossings kept: {}", stored.len());
    assert_eq!(imported, stored, "export → import gives the history back");
    let mut args = common.to_vec();
    let export_s = export.display().to_string();
    args.extend(["--input", &export_s]);
    let (_, _, again, _) = tune(&site, &args);
    assert_eq!(
        again["fidelity"], r["fidelity"],
        "an export replays as the history does"
    );
    assert_eq!(again["today"]["kpis"], r["today"]["kpis"]);

    // The chosen candidate, applied by an engineer: the report's id in the audit line.
    let body = std::fs::read_to_string(&cmd).unwrap();
    let id = r["id"].as_str().unwrap();
    assert!(body.contains(id), "{body}");
    let (status, answer) = http_as(
        api,
        "POST",
        "/api/v1/commands/thresholds",
        Some(&body),
        &eng,
    );
    assert_eq!(status, 200, "{answer}");
    let audit = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let line: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(line["command"], "thresholds");
    assert_eq!(line["ok"], true, "{line}");
    assert_eq!(line["by"], "eng-li");
    assert_eq!(line["tune_report"], id, "{line}");
    let (_, now) = http(api, "GET", "/api/v1/thresholds", None);
    assert!(now.contains("\"deadband\":2.0"), "{now}");
}

/// The centre's store as the history: what `hazgate ingest` wrote to VictoriaMetrics,
/// and the same messages through ingest's mapping into InfluxDB 1.6, replay to the
/// alarms and colours the gateway's own history does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_centres_store_replays_as_the_gateways_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = Broker::start(d);
    let store = Store::start(d);
    let http = free_port();
    let conf = central_toml(d, broker.port, &store, http);
    let _central = start_central(&conf, http, &d.join("ingest.log"));
    let (got, sub) = subscriber(broker.port, "hazgate/v1/#").await;
    // Every change published, as the history keeps every crossing.
    let (site, _api, mut gw, _peer, start, to) =
        leak(d, broker.port, "publish_deadband_pct = 0").await;
    stop_gateway(&mut gw, &got).await;
    sub.abort();
    let (from, to) = (start.to_string(), to.to_string());
    let period = period(&from, &to);
    let common = period.as_slice();
    let (_, _, local, _) = tune(&site, common);

    // VictoriaMetrics, written by `hazgate ingest`.
    let mut stored = 0;
    for _ in 0..100 {
        let _ = http_get(store.port, "/internal/force_flush");
        let series = store.export("{__name__=\"reading_value\",point=\"GT-1\"}");
        stored = series.keys().filter(|(_, t)| (start..).contains(t)).count();
        if stored >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stored >= 10, "ingest stored the readings: {stored}");
    let url = store.url();
    let mut args = common.to_vec();
    args.extend(["--victoriametrics", url.as_str()]);
    let (_, out, vm, _) = tune(&site, &args);
    assert!(
        vm["fidelity"].is_null(),
        "the store keeps no events to check against"
    );
    assert_eq!(
        vm["today"]["kpis"]["alarms"], local["today"]["kpis"]["alarms"],
        "{out}"
    );
    assert_eq!(
        vm["today"]["kpis"]["colours"],
        local["today"]["kpis"]["colours"]
    );
    assert!(local["today"]["kpis"]["alarms"].as_array().unwrap().len() >= 2);

    // InfluxDB 1.6: the same messages through ingest's mapping, by its v1 write API.
    let mut lines = Vec::new();
    for (topic, v) in got.lock().unwrap().iter() {
        if let Ok(m) = decode(
            "hazgate",
            topic,
            v.to_string().as_bytes(),
            1 << 20,
            0,
            &Tables::default(),
        ) {
            lines.extend_from_slice(&m.lines);
        }
    }
    let (_influx, port) = influxdb(d);
    let influx = format!("http://127.0.0.1:{port}");
    for (path, body) in [
        ("/query?q=CREATE+DATABASE+hazgate", Vec::new()),
        ("/write?db=hazgate&precision=ms", lines),
    ] {
        let file = d.join("body");
        std::fs::write(&file, body).unwrap();
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-XPOST"])
            .arg(format!("{influx}{path}"))
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .output()
            .unwrap();
        assert!(out.stdout.starts_with(b"20"), "{path}: {out:?}");
    }
    let mut args = common.to_vec();
    args.extend(["--influxql", influx.as_str(), "--database", "hazgate"]);
    let (_, out, ifx, _) = tune(&site, &args);
    assert_eq!(
        ifx["today"]["kpis"]["alarms"], local["today"]["kpis"]["alarms"],
        "{out}"
    );
    assert_eq!(
        ifx["today"]["kpis"]["colours"],
        local["today"]["kpis"]["colours"]
    );
}
