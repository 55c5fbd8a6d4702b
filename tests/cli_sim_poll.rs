//! The binary end to end: `hazgate simulate` serving the demo site (TCP + RTU over a
//! socat pty pair), `hazgate poll` reading it, and `hazgate demo`.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_hazgate");

/// The demo site pointed at a free TCP port and a pty path.
fn local_demo_site(dir: &Path, port: u16, tty: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("firmware-config/demo-site.toml")).unwrap();
    assert!(text.contains("port = 15020") && text.contains("path = \"/tmp/hazgate/ttyA\""));
    let text = text
        .replace("port = 15020", &format!("port = {port}"))
        .replace("/tmp/hazgate/ttyA", &tty.display().to_string());
    let path = dir.join("site.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_simulator(site: &Path, tty_b: &Path, extra: &[&str]) -> Proc {
    let child = Command::new(BIN)
        .args(["simulate", "--config"])
        .arg(site)
        .arg("--serve")
        .arg(format!("rs485-1={}", tty_b.display()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc {
        child,
        name: "hazgate simulate".into(),
    }
}

/// The demo site served by `hazgate simulate` on a free TCP port and a socat pty pair.
/// Fields drop in order: simulator, pty pair, then the directory.
struct Rig {
    _sim: Proc,
    _pty: PtyPair,
    site: PathBuf,
    dir: tempfile::TempDir,
}

fn rig(sim_args: &[&str]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let pty = socat_pair(dir.path());
    let site = local_demo_site(dir.path(), free_port(), &pty.a);
    let sim = start_simulator(&site, &pty.b, sim_args);
    Rig {
        _sim: sim,
        _pty: pty,
        site,
        dir,
    }
}

/// Makes an API token for `name` with `role` beside `site`; returns it.
fn token(site: &Path, name: &str, role: &str) -> String {
    let out = Command::new(BIN)
        .args(["token", "--config"])
        .arg(site)
        .args(["add", name, "--role", role])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `hazgate poll --json` until the simulator answers (it may still be binding).
fn poll_json(site: &Path, device: Option<&str>) -> (bool, Vec<serde_json::Value>) {
    let start = Instant::now();
    loop {
        let mut cmd = Command::new(BIN);
        cmd.args(["poll", "--json", "--config"]).arg(site);
        if let Some(d) = device {
            cmd.args(["--device", d]);
        }
        let out = cmd.output().unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect();
        let connected = lines.iter().any(|l| l["quality"] != "comm_failure");
        if connected || start.elapsed() > Duration::from_secs(15) {
            return (out.status.success(), lines);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn poll_reads_the_simulated_demo_site_over_tcp_and_rtu() {
    let rig = rig(&[]);
    let site = rig.site.clone();
    // The simulator binds its channels one after another: poll again (for up to 15 s)
    // until a poll finds every channel served.
    let started = Instant::now();
    let (ok, lines) = loop {
        let (ok, lines) = poll_json(&site, None);
        let all_served = lines.iter().all(|l| l["quality"] != "comm_failure");
        if all_served || started.elapsed() > Duration::from_secs(15) {
            break (ok, lines);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(lines.len(), 50, "one line per point");
    let bad: Vec<_> = lines.iter().filter(|l| l["quality"] != "good").collect();
    assert!(bad.is_empty() && ok, "all points good, exit 0: {bad:?}");
    for l in &lines {
        for key in [
            "point",
            "hazard_source",
            "value",
            "unit",
            "quality",
            "ts",
            "raw",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }
    // An RTU detector (Cl2, u16 × 0.01 ppm) and a TCP float (CDAB) are both present.
    let at201 = lines.iter().find(|l| l["point"] == "AT-201").unwrap();
    assert_eq!(at201["hazard_source"], "HS-02");
    assert_eq!(at201["unit"], "ppm");
    assert!(
        at201["value"].as_f64().unwrap() < 0.34,
        "steady chlorine is below its OEL: {at201}"
    );
    let gt101 = lines.iter().find(|l| l["point"] == "GT-101").unwrap();
    assert_eq!(
        gt101["raw"].as_array().unwrap().len(),
        2,
        "an f32 has two raw registers"
    );
}

#[test]
fn poll_exits_non_zero_when_a_device_answers_with_an_exception() {
    let rig = rig(&[
        "--scenario",
        "exception",
        "--target",
        "NH3-CTL",
        "--start-after",
        "0",
    ]);
    let site = rig.site.clone();
    let (ok, lines) = poll_json(&site, Some("NH3-CTL"));
    assert!(!ok, "exit code must be non-zero");
    assert_eq!(lines.len(), 4);
    for l in &lines {
        assert_eq!(l["quality"], "device_exception", "{l}");
        assert_eq!(l["exception"], 2, "{l}");
        assert!(l["value"].is_null(), "{l}");
    }
}

#[test]
fn demo_shows_live_values_for_every_point() {
    let out = Command::new(BIN)
        .args(["demo", "--duration", "4", "--refresh", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.rsplit("----").nth(1).expect("at least one frame");
    for id in [
        "GT-101", "AT-201", "AT-301", "AT-401", "LT-101", "XS-101", "BP-101",
    ] {
        let line = last
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("{id} missing:\n{last}"));
        assert!(line.trim_end().ends_with("good"), "{id} not good: {line}");
    }
    assert_eq!(
        last.matches(" good").count(),
        50,
        "every point live and good:\n{last}"
    );
}

#[test]
fn demo_detector_fault_scenario_flags_sensor_fault() {
    let out = Command::new(BIN)
        .args([
            "demo",
            "--duration",
            "3",
            "--scenario",
            "detector-fault",
            "--start-after",
            "0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.rsplit("----").nth(1).unwrap();
    // The 4–20 mA detector's loop drops to 2 mA: sensor_fault, no value.
    let line = last
        .lines()
        .find(|l| l.trim_start().starts_with("GT-301 "))
        .unwrap();
    assert!(
        line.contains("sensor_fault") && line.contains(" - "),
        "{line}"
    );
    let ok = last
        .lines()
        .find(|l| l.trim_start().starts_with("GT-101 "))
        .unwrap();
    assert!(ok.trim_end().ends_with("good"), "{ok}");
}

#[test]
fn run_polls_and_shuts_down_cleanly_on_sigterm() {
    let rig = rig(&[]);
    let site = rig.site.clone();
    let _ = poll_json(&site, None); // the simulator is up
    let log = rig.dir.path().join("run.log");
    let mut gw = Command::new(BIN)
        .args([
            "run",
            "--stats-interval",
            "1",
            "--log-format",
            "json",
            "--api",
            &format!("127.0.0.1:{}", free_port()),
            "--config",
        ])
        .arg(&site)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Running until a statistics line shows every point read.
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .any(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|j| {
                j["fields"]["message"] == "acquisition stats"
                    && j["fields"]["good_readings"].as_u64() >= Some(50)
            })
        })
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no statistics line with every point read"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-TERM", &gw.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = gw.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "hazgate run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let stats: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["fields"]["message"] == "acquisition stats")
        .collect();
    let last = stats
        .last()
        .unwrap_or_else(|| panic!("no stats lines in:\n{text}"));
    assert!(
        last["fields"]["good_readings"].as_u64().unwrap() >= 50,
        "{last}"
    );
    assert_eq!(last["fields"]["polls_failed"], 0, "{last}");
    assert!(
        text.contains("shutdown requested") && text.contains("hazgate stopped"),
        "{text}"
    );
    assert_no_panic(&log);
}

#[test]
fn healthz_says_degraded_while_a_device_is_silent_and_ok_once_it_answers_again() {
    // GDS-A stops answering 2 s in and answers again 10 s later.
    let rig = rig(&[
        "--scenario",
        "dead-device",
        "--target",
        "GDS-A",
        "--start-after",
        "2",
        "--recover-after",
        "10",
    ]);
    let _ = poll_json(&rig.site, None);
    let api = free_port();
    let log = rig.dir.path().join("health.log");
    let mut gw = mqtt::start_gateway_with_api(&rig.site, api, &log);
    let health = || -> Option<(u16, serde_json::Value)> {
        let (code, body) = try_http(api, "GET", "/healthz", None).ok()?;
        Some((code, serde_json::from_str(&body).ok()?))
    };
    let wait = |what: &str, f: &dyn Fn(&serde_json::Value) -> bool| {
        let start = Instant::now();
        loop {
            if let Some((code, v)) = health() {
                assert_eq!(code, 200, "{v}");
                if f(&v) {
                    return v;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "/healthz never said {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let v = wait("degraded", &|v| v["status"] == "degraded");
    assert_eq!(v["devices_down"], serde_json::json!(["GDS-A"]), "{v}");
    assert!(v["devices_total"].as_u64() > Some(1), "{v}");
    let v = wait("ok again", &|v| v["status"] == "ok");
    assert_eq!(v["devices_down"], serde_json::json!([]), "{v}");
    let status = gw.terminate().unwrap();
    assert!(status.success(), "{status}");
    assert_no_panic(&log);
}

/// The colour tag of HS-01 in each frame of a non-TTY demo run.
fn hs01_colours(text: &str) -> Vec<String> {
    let mut seq: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("] HS-01 "))
        .map(|l| l[1..l.find(']').unwrap()].to_string())
        .collect();
    seq.dedup();
    seq
}

#[test]
fn demo_gas_leak_walks_a_source_up_and_back_down_after_the_hold() {
    let out = Command::new(BIN)
        .args([
            "demo",
            "--scenario",
            "gas-leak",
            "--target",
            "GT-101",
            "--start-after",
            "1",
            "--ramp",
            "6",
        ])
        .args([
            "--recover-after",
            "9",
            "--hold",
            "4",
            "--duration",
            "18",
            "--refresh",
            "0.5",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        hs01_colours(&text),
        ["BLUE 蓝", "ORANGE 橙", "RED 红", "BLUE 蓝"],
        "{text}"
    );
    assert!(
        text.contains("GT-101 H Raised") && text.contains("GT-101 HH Raised"),
        "event feed shows both levels"
    );
}

#[test]
fn local_api_serves_state_alarms_commands_health_and_metrics() {
    // A bypass switched on at once: a high alarm on the level-1 tank farm → orange.
    let rig = rig(&[
        "--scenario",
        "bypass",
        "--target",
        "BP-101",
        "--start-after",
        "0",
    ]);
    let site = rig.site.clone();
    let _ = poll_json(&site, None);
    let op = token(&site, "op-zhang", "operator");
    let safety = token(&site, "safety-li", "operator");
    let api = free_port();
    let child = Command::new(BIN)
        .args([
            "run",
            "--log-level",
            "warn",
            "--api",
            &format!("127.0.0.1:{api}"),
            "--config",
        ])
        .arg(&site)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _gw = Proc {
        child,
        name: "hazgate run".into(),
    };

    let start = Instant::now();
    let state = loop {
        if let Ok(s) = try_http(api, "GET", "/api/v1/state", None) {
            let v: serde_json::Value = serde_json::from_str(&s.1).unwrap_or_default();
            if v["hazard_sources"][0]["colour"] == "orange" {
                break v;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "HS-01 never turned orange"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(state["enterprise"]["colour"], "orange");
    assert_eq!(
        state["hazard_sources"][0]["reasons"][0]["rule"],
        "high alarm on a level 1/2 source"
    );
    assert_eq!(
        state["hazard_sources"][0]["reasons"][0]["alarms"][0],
        "BP-101:discrete"
    );
    assert_eq!(state["hazard_sources"][1]["colour"], "blue");

    let (code, alarms) = http(api, "GET", "/api/v1/alarms", None);
    assert_eq!(code, 200);
    let alarms: serde_json::Value = serde_json::from_str(&alarms).unwrap();
    let bp = alarms
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["point"] == "BP-101")
        .unwrap();
    assert_eq!(
        (bp["state"].as_str(), bp["class"].as_str()),
        (Some("active_unacknowledged"), Some("high"))
    );

    // Acknowledge it; a special operation on HS-03 raises its floor to yellow.
    let (code, body) = http_as(
        api,
        "POST",
        "/api/v1/commands/ack",
        Some(r#"{"point":"BP-101"}"#),
        &op,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_as(
        api,
        "POST",
        "/api/v1/commands/special-operation",
        Some(r#"{"hazard_source":"HS-03","active":true,"kind":"hot_work"}"#),
        &safety,
    );
    assert_eq!(code, 200, "{body}");
    let (_, state) = http(api, "GET", "/api/v1/state", None);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["hazard_sources"][2]["colour"], "yellow");
    assert_eq!(
        state["hazard_sources"][2]["special_operation"]["by"],
        "safety-li"
    );
    let (_, alarms) = http(api, "GET", "/api/v1/alarms", None);
    assert!(
        alarms.contains("\"acknowledged_by\":\"op-zhang\""),
        "{alarms}"
    );

    // Bad commands are answered with a precise error and change nothing.
    let (code, body) = http_as(
        api,
        "POST",
        "/api/v1/commands/ack",
        Some(r#"{"point":"NOPE"}"#),
        &op,
    );
    assert_eq!(
        (code, body.contains("no point `NOPE`")),
        (400, true),
        "{body}"
    );
    let (code, body) = http_as(api, "POST", "/api/v1/commands/ack", Some("not json"), &op);
    assert_eq!(
        (code, body.contains("not a JSON object")),
        (400, true),
        "{body}"
    );

    let (code, health) = http(api, "GET", "/healthz", None);
    assert_eq!(code, 200);
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let (code, metrics) = http(api, "GET", "/metrics", None);
    assert_eq!(code, 200);
    for needle in [
        "hazgate_polls_total{",
        "result=\"ok\"",
        "hazgate_alarms{state=\"active_acknowledged\"} 1",
        "hazgate_risk_level{hazard_source=\"HS-01\"} 2",
    ] {
        assert!(metrics.contains(needle), "{needle} missing in:\n{metrics}");
    }
}

#[test]
fn sighup_refuses_a_bad_file_and_reloads_a_good_one() {
    reload_case(Trigger::Hangup);
}

#[test]
fn a_changed_site_file_is_checked_and_reloaded_without_a_signal() {
    reload_case(Trigger::FileWatch);
}

enum Trigger {
    /// `--no-watch`, then SIGHUP after each write.
    Hangup,
    /// Watching the file: writing it is enough (the good one arrives by rename, as an
    /// editor or a deployment tool saves).
    FileWatch,
}

fn reload_case(trigger: Trigger) {
    let rig = rig(&[]);
    let _ = poll_json(&rig.site, None);
    let good = std::fs::read_to_string(&rig.site).unwrap();
    let api = free_port();
    let log = rig.dir.path().join("reload.log");
    let child = Command::new(BIN)
        .args([
            "run",
            "--log-level",
            "info",
            "--api",
            &format!("127.0.0.1:{api}"),
            "--config",
        ])
        .arg(&rig.site)
        .args(matches!(trigger, Trigger::Hangup).then_some("--no-watch"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let gw = Proc {
        child,
        name: "hazgate run".into(),
    };
    let name = || -> Option<String> {
        let (code, body) = try_http(api, "GET", "/api/v1/state", None).ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200).then(|| v["enterprise_name"].as_str().unwrap_or("").to_string())
    };
    let wait_for = |want: &str| {
        let start = Instant::now();
        while name().as_deref() != Some(want) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "enterprise name never became {want:?}; log:\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for("Demo Chemical Co., Ltd. 示范化工有限公司");
    let hup = || {
        if matches!(trigger, Trigger::Hangup) {
            assert!(Command::new("kill")
                .args(["-HUP", &gw.child.id().to_string()])
                .status()
                .unwrap()
                .success())
        }
    };

    // The first-level limit in force for GT-101.
    let limit = || -> f64 {
        let (code, body) = http(api, "GET", "/api/v1/thresholds", None);
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["GT-101"]["h"]
            .as_f64()
            .unwrap_or_else(|| panic!("GT-101.h in {body}"))
    };
    assert_eq!(limit(), 20.0);
    let h20 = "h = 20.0                                 # 一级报警 first-level, %LEL";
    // A file breaking a guardrail (and renaming the enterprise) is refused whole; the
    // running configuration stays.
    std::fs::write(
        &rig.site,
        good.replace(h20, "h = 30.0").replace(
            "Demo Chemical Co., Ltd. 示范化工有限公司",
            "Refused Chemical Co.",
        ),
    )
    .unwrap();
    hup();
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("reload refused")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no refusal logged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("above the 25 %LEL ceiling"),
        "the refusal says why"
    );
    assert_eq!(
        name().as_deref(),
        Some("Demo Chemical Co., Ltd. 示范化工有限公司"),
        "still serving the old file"
    );
    assert_eq!(limit(), 20.0, "the refused limit is not in force");

    // A good file is applied.
    let staged = rig.dir.path().join("site.toml.new");
    std::fs::write(
        &staged,
        good.replace(h20, "h = 18.0").replace(
            "Demo Chemical Co., Ltd. 示范化工有限公司",
            "Renamed Chemical Co.",
        ),
    )
    .unwrap();
    std::fs::rename(&staged, &rig.site).unwrap();
    hup();
    wait_for("Renamed Chemical Co.");
    assert_eq!(limit(), 18.0, "the new limit is in force");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("configuration reloaded"));
    let cause = match trigger {
        Trigger::Hangup => "cause=Hangup",
        Trigger::FileWatch => "cause=FileChanged",
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.matches(cause).count() >= 2,
        "both reloads by {cause}:\n{text}"
    );
}

#[test]
fn local_api_writes_need_a_token_whose_role_allows_them_and_each_is_audited() {
    let rig = rig(&[]);
    let site = rig.site.clone();
    let _ = poll_json(&site, None);
    let viewer = token(&site, "viewer-1", "viewer");
    let op = token(&site, "op-zhang", "operator");
    let eng = token(&site, "eng-wu", "engineer");
    let api = free_port();
    let log = rig.dir.path().join("api.log");
    let mut gw = mqtt::start_gateway_with_api(&site, api, &log);
    let post = |name: &str, body: &str, token: Option<&str>| {
        try_http_as(
            api,
            "POST",
            &format!("/api/v1/commands/{name}"),
            Some(body),
            token,
        )
        .unwrap()
    };
    // Reads on loopback need no token.
    assert_eq!(http(api, "GET", "/api/v1/state", None).0, 200);
    // Writes do: none, or a wrong one → 401.
    let (code, body) = post("ack", r#"{"point":"GT-101"}"#, None);
    assert_eq!(
        (code, body.contains("bearer token is needed")),
        (401, true),
        "{body}"
    );
    let (code, body) = post("ack", r#"{"point":"GT-101"}"#, Some("hzg_0000"));
    assert_eq!(
        (code, body.contains("not recognised")),
        (401, true),
        "{body}"
    );
    // A role that does not allow the command → 403, and audited.
    let (code, body) = post("ack", r#"{"point":"GT-101"}"#, Some(&viewer));
    assert_eq!(
        (
            code,
            body.contains("`viewer-1` is a viewer token; ack needs operator")
        ),
        (403, true),
        "{body}"
    );
    let thresholds = r#"{"request_id":"t-1","changes":[{"point":"GT-101","set":{"h":18}}]}"#;
    let (code, _) = post("thresholds", thresholds, Some(&op));
    assert_eq!(code, 403, "an operator may not change thresholds");
    // Allowed → applied, `by` is the token's name whatever the body says.
    let (code, body) = post(
        "shelve",
        r#"{"request_id":"s-1","point":"GT-102","alarm":"h","duration_s":600,"by":"someone-else"}"#,
        Some(&op),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = post("thresholds", thresholds, Some(&eng));
    assert_eq!(code, 200, "{body}");
    let (_, body) = http(api, "GET", "/api/v1/thresholds", None);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["GT-101"]["h"], 18.0, "in force");
    // Special operations name a kind of GB 30871-2022.
    let (code, body) = post(
        "special-operation",
        r#"{"hazard_source":"HS-01","active":true,"kind":"dancing"}"#,
        Some(&op),
    );
    assert_eq!(
        (code, body.contains("hot_work, confined_space")),
        (400, true),
        "{body}"
    );
    // Over 16 KiB → 413, unread.
    let huge = format!(r#"{{"point":"{}"}}"#, "x".repeat(20_000));
    assert_eq!(post("ack", &huge, Some(&op)).0, 413);
    // Unknown command → 404 with the known ones.
    let (code, body) = post("reboot", "{}", Some(&eng));
    assert_eq!(
        (code, body.contains("known: ack, shelve")),
        (404, true),
        "{body}"
    );

    // A client that sends half a request head holds nothing: others are served, and the
    // server closes it after its header timeout.
    use std::io::{Read, Write};
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", api)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert_eq!(
        http(api, "GET", "/healthz", None).0,
        200,
        "served meanwhile"
    );
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "the server closed the slow connection: {closed:?}"
    );

    // Revoked: refused from the next request on.
    let out = Command::new(BIN)
        .args(["token", "--config"])
        .arg(&site)
        .args(["revoke", "op-zhang"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(post("ack", r#"{"point":"GT-101"}"#, Some(&op)).0, 401);

    // The audit log: every command that reached the judge's door, with its channel and
    // the token's name.
    let audit = std::fs::read_to_string(format!("{}.audit.jsonl", site.display())).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(String, String, bool)> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["channel"], "local_api", "{l}");
            (
                l["command"].as_str().unwrap().to_string(),
                l["by"].as_str().unwrap().to_string(),
                l["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    let s = |c: &str, b: &str, ok: bool| (c.to_string(), b.to_string(), ok);
    assert_eq!(
        summary,
        vec![
            s("ack", "viewer-1", false),
            s("thresholds", "op-zhang", false),
            s("shelve", "op-zhang", true),
            s("thresholds", "eng-wu", true),
            s("special-operation", "op-zhang", false),
        ]
    );
    assert!(
        lines[2]["changes"]
            .to_string()
            .contains("\"by\":\"op-zhang\""),
        "{}",
        lines[2]
    );
    let status = gw.terminate().unwrap();
    assert!(status.success(), "{status}");
    assert_no_panic(&log);
    let text = std::fs::read_to_string(&log).unwrap();
    for t in [&viewer, &op, &eng] {
        assert!(!text.contains(&t[4..]), "a token in the log");
    }
}

#[test]
fn an_api_the_network_can_reach_needs_tls() {
    let rig = rig(&[]);
    let out = Command::new(BIN)
        .args([
            "run",
            "--api",
            &format!("0.0.0.0:{}", free_port()),
            "--config",
        ])
        .arg(&rig.site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("reachable from the network") && err.contains("api.cert_file"),
        "{err}"
    );
}

#[test]
fn the_api_serves_tls_when_the_network_can_reach_it() {
    let rig = rig(&[]);
    let d = rig.dir.path();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(d.join("api.key"))
        .arg("-out")
        .arg(d.join("api.pem"))
        .output()
        .expect("openssl: run tests/setup-peers.sh");
    assert!(made.status.success(), "{made:?}");
    let port = free_port();
    let text = std::fs::read_to_string(&rig.site).unwrap();
    std::fs::write(
        &rig.site,
        format!(
            "{text}\n[api]\nlisten = \"0.0.0.0:{port}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            d.join("api.pem").display(),
            d.join("api.key").display()
        ),
    )
    .unwrap();
    let check = Command::new(BIN)
        .arg("check")
        .arg(&rig.site)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "TLS makes the address acceptable: {check:?}"
    );
    let log = d.join("tls.log");
    let mut gw = Proc {
        child: Command::new(BIN)
            .args(["run", "--config"])
            .arg(&rig.site)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
        name: "hazgate run".into(),
    };
    wait_for_port(port, "the TLS API", Duration::from_secs(20));
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--cacert"])
        .arg(d.join("api.pem"))
        .arg(format!("https://localhost:{port}/healthz"))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("\"status\""), "healthz over TLS: {out:?}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = try_http(port, "GET", "/healthz", None);
    assert!(
        plain.map_or(true, |(code, _)| code == 0),
        "no plain HTTP on a TLS port"
    );
    let status = gw.terminate().unwrap();
    assert!(status.success(), "{status}");
    assert_no_panic(&log);
}

/// `poll` as a commissioning engineer reads it against a vendor's register map: table,
/// the register as the vendor numbers it and the zero-based address, raw in decimal
/// and hex; an unknown `--device` lists the devices; `--watch` redraws every second
/// with what changed highlighted.
#[test]
fn poll_names_registers_lists_devices_and_watches() {
    let rig = rig(&[
        "--scenario",
        "gas-leak",
        "--target",
        "GT-101",
        "--start-after",
        "0",
    ]);
    let site = rig.site.clone();
    let (_, lines) = poll_json(&site, Some("GDS-A"));
    let gt101 = lines.iter().find(|l| l["point"] == "GT-101").unwrap();
    assert_eq!(
        (&gt101["table"], &gt101["address"], &gt101["register"]),
        (&json!("holding"), &json!(0), &json!("40001")),
        "{gt101}"
    );

    let out = Command::new(BIN)
        .args(["poll", "--device", "GDS-A", "--config"])
        .arg(&site)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "POINT", "SOURCE", "DEVICE", "TABLE", "REG", "ADDR", "VALUE", "UNIT", "QUALITY", "RAW",
            "RAW", "(hex)"
        ],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("GT-101 "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[3..6], ["holding", "40001", "0"], "{row:?}");
    // An f32: two registers, in decimal then in hex.
    let (decimal, hex) = (&row[row.len() - 4..row.len() - 2], &row[row.len() - 2..]);
    for (d, h) in decimal.iter().zip(hex) {
        assert_eq!(format!("{:04X}", d.parse::<u16>().unwrap()), *h, "{row:?}");
    }

    let out = Command::new(BIN)
        .args(["poll", "--device", "NOPE", "--config"])
        .arg(&site)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("no device `NOPE`")
            && err.contains("its devices: GDS-A, SIS-1, PLC-1, CL2-11"),
        "{err}"
    );

    let mut watch = Command::new(BIN)
        .args(["poll", "--watch", "--device", "GDS-A", "--config"])
        .arg(&site)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    let _ = terminate(&mut watch);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut watch.stdout.take().unwrap(), &mut text).unwrap();
    let frames: Vec<&str> = text
        .split("\x1b[2J\x1b[H")
        .filter(|f| !f.is_empty())
        .collect();
    assert!(frames.len() >= 3, "a frame a second: {}", frames.len());
    assert!(
        !frames[0].contains("\x1b[7m"),
        "nothing changed before the first frame"
    );
    let leaking = frames[1..]
        .iter()
        .any(|f| f.lines().any(|l| l.starts_with("\x1b[7mGT-101 ")));
    assert!(
        leaking,
        "the leaking detector's row highlighted: {:?}",
        frames.last()
    );
}

/// In an 80 × 40 terminal (a tmux pane) the demo's frame fits: the header, the
/// scenario's sentence, the enterprise's colour and the source the scenario acts on are
/// on screen, nothing wraps, and the frame leaves the last row free.
#[test]
fn the_demo_frame_fits_an_80_by_40_terminal() {
    let session = format!("hazgate-demo-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &session])
            .args(args)
            .output()
            .expect("tmux (tests/setup-peers.sh installs it)")
    };
    let demo = format!("{BIN} demo --scenario gas-leak --start-after 1 --ramp 2 --duration 30");
    let out = tmux(&[
        "new-session",
        "-d",
        "-s",
        "demo",
        "-x",
        "80",
        "-y",
        "40",
        &demo,
    ]);
    assert!(out.status.success(), "{out:?}");
    let started = Instant::now();
    let screen = loop {
        std::thread::sleep(Duration::from_millis(500));
        let pane = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "demo"]).stdout)
            .to_string();
        let red = pane
            .lines()
            .any(|l| l.trim_start().starts_with("RED 红  HS-01"));
        if red || started.elapsed() > Duration::from_secs(20) {
            break pane;
        }
    };
    let _ = tmux(&["kill-server"]);
    let lines: Vec<&str> = screen.trim_end().lines().collect();
    assert!(lines[0].starts_with("hazgate demo 20"), "{screen}");
    assert!(
        lines[1]
            .starts_with("scenario gas-leak: from 1 s, detector GT-101 ramps to 60 %LEL at HS-01"),
        "{screen}"
    );
    assert!(
        lines[2].starts_with("enterprise  RED 红  alarms:"),
        "{screen}"
    );
    assert!(
        lines.iter().any(|l| l
            .trim_start()
            .starts_with("RED 红  HS-01 L1 — critical alarm")),
        "HS-01 red with its reason:\n{screen}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("  HS-01 GT-101 ")),
        "{screen}"
    );
    assert!(lines.iter().any(|l| l.starts_with("events")), "{screen}");
    assert!(
        lines.len() <= 39,
        "the last row stays free: {} lines\n{screen}",
        lines.len()
    );
}

/// README's commissioning steps, run as written (bar the two that run until Ctrl-C)
/// with the built binary on PATH: the simulated site polls all good.
#[test]
fn readme_commissioning_steps_work_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("<!-- commissioning:begin -->")
        .nth(1)
        .and_then(|r| r.split("<!-- commissioning:end -->").next())
        .expect("README marks its commissioning steps");
    let steps: Vec<&str> = block
        .lines()
        .filter(|l| !l.starts_with("```") && !l.contains("Ctrl-C"))
        .collect();
    assert!(
        steps.iter().any(|l| l.starts_with("hazgate poll")),
        "{block}"
    );
    let script = format!(
        "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n{}\n",
        steps.join("\n")
    );
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(root())
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("site.toml: ok (4 hazard sources, 2 channels, 9 devices, 50 points)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("50 points, 50 good, 0 not good"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("{\"point\""))
            .count(),
        50,
        "{stdout}"
    );
}
