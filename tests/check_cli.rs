//! `hazgate check` on good and bad site files: every bad case names its field.

use std::{path::Path, process::Command};

const BASE: &str = r#"
[gateway]
park_id = "P1"
enterprise_id = "E1"
enterprise_name = "Check Co."
gateway_id = "GW-1"

[[gases]]
name = "vcm"
formula = "C2H3Cl"
molar_mass = 62.50
lel_vol_pct = 3.6
oel_mg_m3 = 10.0
oel_basis = "pc_twa"
source = "GBZ 2.1-2019 Table 1"

[[channels]]
id = "tcp"
kind = "tcp"
host = "127.0.0.1"
port = 15020

  [[channels.devices]]
  id = "D1"
  unit_id = 1

[[channels]]
id = "bus"
kind = "rtu"
path = "/dev/ttyS1"
baud = 9600

  [[channels.devices]]
  id = "D2"
  unit_id = 5

[[hazard_sources]]
id = "HS-1"
name = "Tank farm"
kind = "tank_farm"
level = 1

  [[hazard_sources.points]]
  id = "GT-101"
  kind = "combustible_gas"
  device = "D1"
  table = "holding"
  address = 0
  data_type = "f32"
  word_order = "CDAB"

  [[hazard_sources.points]]
  id = "GT-102"
  kind = "combustible_gas"
  device = "D1"
  table = "holding"
  address = 2
  data_type = "f32"

  [[hazard_sources.points]]
  id = "AT-201"
  kind = "toxic_gas"
  gas = "cl2"
  device = "D2"
  table = "holding"
  address = 0
  data_type = "u16"
  scale = 0.01
"#;

fn run_check(dir: &Path, name: &str, toml: &str, env: &[(&str, &str)]) -> (bool, String) {
    let path = dir.join(name);
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hazgate"));
    cmd.arg("check").arg(&path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_base_and_the_demo_site_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = run_check(dir.path(), "base.toml", BASE, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("ok (1 hazard sources, 2 channels, 2 devices, 3 points)"),
        "{out}"
    );
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/demo-site.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .arg("check")
        .arg(&demo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("4 hazard sources, 2 channels, 9 devices, 50 points"),
        "{stdout}"
    );
}

/// (what, edit of BASE as (from, to), expected text naming the field).
const BAD: &[(&str, (&str, &str), &str)] = &[
    ("unknown key", ("  address = 2\n", "  adress = 2\n"), "bad.toml: hazard_sources[0].points[1].adress: unknown field `adress`, expected one of `id`"),
    ("overlap", ("  address = 2\n", "  address = 1\n"), "bad.toml: hazard_sources[0].points[1].address: overlaps point GT-101"),
    ("level out of range", ("level = 1", "level = 5"), "bad.toml: hazard_sources[0].level: major-hazard level must be 1"),
    ("unknown device", ("  device = \"D2\"", "  device = \"D9\""), "hazard_sources[0].points[2].device: no device `D9`"),
    ("bad word order", ("word_order = \"CDAB\"", "word_order = \"ACBD\""), "hazard_sources[0].points[0].word_order: unknown value `ACBD`; expected one of `ABCD`, `BADC`, `CDAB`, `DCBA`"),
    ("toxic without gas", ("  gas = \"cl2\"\n", ""), "hazard_sources[0].points[2].gas: a toxic gas detector needs its gas"),
    ("unknown gas", ("gas = \"cl2\"", "gas = \"chlorine-ish\""), "hazard_sources[0].points[2].gas: unknown gas `chlorine-ish`; known: methane, propane,"),
    ("combustible in ppm", ("  data_type = \"f32\"\n  word_order", "  data_type = \"f32\"\n  unit = \"ppm\"\n  word_order"), "hazard_sources[0].points[0].unit: a combustible gas detector reads %LEL"),
    ("rtu broadcast address", ("unit_id = 5", "unit_id = 0"), "channels[1].devices[0].unit_id: RTU slave address must be 1..=247"),
    ("path on tcp", ("port = 15020", "port = 15020\npath = \"/dev/x\""), "channels[0].path: only for rtu channels"),
    ("tcp without port", ("port = 15020", ""), "channels[0].port: required"),
    ("rtu without baud", ("baud = 9600", ""), "channels[1].baud: required"),
    ("bool in register without bit", ("  kind = \"toxic_gas\"\n  gas = \"cl2\"\n  device = \"D2\"\n  table = \"holding\"\n  address = 0\n  data_type = \"u16\"\n  scale = 0.01", "  kind = \"sis_trip\"\n  device = \"D2\"\n  table = \"holding\"\n  address = 0"), "hazard_sources[0].points[2].bit: a bool in a register needs the bit index"),
    ("scale and range", ("scale = 0.01", "scale = 0.01\n  raw_range = [0.0, 1000.0]\n  eng_range = [0.0, 10.0]"), "hazard_sources[0].points[2].scale: use scale/offset or raw_range/eng_range, not both"),
    ("api open to the network without TLS", ("gateway_id = \"GW-1\"\n", "gateway_id = \"GW-1\"\n[api]\nlisten = \"0.0.0.0:8088\"\n"), "bad.toml: api.listen: `0.0.0.0:8088` is reachable from the network, and the API's tokens would cross it in clear: set api.cert_file and api.key_file (TLS)"),
    ("history kept a week", ("gateway_id = \"GW-1\"\n", "gateway_id = \"GW-1\"\n[history]\npath = \"/var/lib/hazgate/history\"\nmax_age_days = 7\n"), "bad.toml: history.max_age_days: 7: at least 30 — major-hazard monitoring data is kept 30 days or more (原国家安全监管总局第40号令)"),
    ("history without a path", ("gateway_id = \"GW-1\"\n", "gateway_id = \"GW-1\"\n[history]\nmax_mib = 64\n"), "bad.toml: history.path: required, and missing"),
    ("api cert without key", ("gateway_id = \"GW-1\"\n", "gateway_id = \"GW-1\"\n[api]\ncert_file = \"/etc/hazgate/api.pem\"\n"), "bad.toml: api.cert_file: cert_file and key_file go together"),
    ("too many decimals", ("scale = 0.01", "scale = 0.01\n  decimals = 12"), "hazard_sources[0].points[2].decimals: must be 0–9, got 12"),
    ("loop without range", ("scale = 0.01", "scale = 0.01\n  loop_current = { fault_below_ma = 3.8, fault_above_ma = 20.5 }"), "hazard_sources[0].points[2].loop_current: needs raw_range"),
    ("duplicate point", ("id = \"GT-102\"", "id = \"GT-101\""), "hazard_sources[0].points[1].id: duplicate point id `GT-101` (first at hazard_sources[0].points[0])"),
    ("float in a coil", ("  table = \"holding\"\n  address = 2", "  table = \"coil\"\n  address = 2"), "hazard_sources[0].points[1].data_type: Coil table holds single bits"),
    ("missing gateway field", ("park_id = \"P1\"\n", ""), "bad.toml: gateway.park_id: required, and missing"),
    ("slash in an id", ("id = \"HS-1\"", "id = \"HS/1\""), "hazard_sources[0].id: `HS/1` contains `/`"),
    ("duplicate unit id", ("  id = \"D2\"\n  unit_id = 5", "  id = \"D2\"\n  unit_id = 5\n\n  [[channels.devices]]\n  id = \"D3\"\n  unit_id = 5"), "channels[1].devices[1].unit_id: unit id 5 already used by channels[1].devices[0]"),
    ("toml syntax", ("level = 1", "level = = 1"), "bad.toml:"),
    // GB/T 50493-2019 guardrails on alarm settings.
    ("combustible first-level above 25 %LEL", ("  word_order = \"CDAB\"", "  word_order = \"CDAB\"\n  alarms = { h = 30.0 }"),
        "hazard_sources[0].points[0].alarms.h: point GT-101: first-level alarm 30 %LEL is above the 25 %LEL ceiling of GB/T 50493-2019 5.5.2"),
    ("combustible second-level above 50 %LEL", ("  word_order = \"CDAB\"", "  word_order = \"CDAB\"\n  alarms = { hh = 60.0 }"),
        "hazard_sources[0].points[0].alarms.hh: point GT-101: second-level alarm 60 %LEL is above the 50 %LEL ceiling"),
    ("toxic second-level above 200 %OEL", ("  scale = 0.01", "  scale = 0.01\n  alarms = { hh = 1.0 }"),
        "hazard_sources[0].points[2].alarms.hh: point AT-201: second-level alarm 1 ppm is above 200 %OEL of cl2"),
    ("first level not below second", ("  word_order = \"CDAB\"", "  word_order = \"CDAB\"\n  alarms = { h = 20.0, hh = 15.0 }"),
        "hazard_sources[0].points[0].alarms.hh: point GT-101: hh = 15 must be above h = 20"),
    ("site default breaks the standard", ("[[channels]]\nid = \"tcp\"", "[alarm_defaults.combustible_gas]\nh = 26.0\n\n[[channels]]\nid = \"tcp\""),
        "bad.toml: alarm_defaults.combustible_gas.h: first-level alarm 26 %LEL is above the 25 %LEL ceiling of GB/T 50493-2019 5.5.2 (applies to every combustible_gas point without its own `h`)"),
    ("source default breaks the standard", ("level = 1\n", "level = 1\nalarm_defaults.combustible_gas = { hh = 55.0 }\n"),
        "bad.toml: hazard_sources[0].alarm_defaults.combustible_gas.hh: second-level alarm 55 %LEL is above the 50 %LEL ceiling"),
    ("default out of order with a built-in", ("[[channels]]\nid = \"tcp\"", "[alarm_defaults.combustible_gas]\nh = 24.0\nhh = 22.0\n\n[[channels]]\nid = \"tcp\""),
        "bad.toml: alarm_defaults.combustible_gas.hh: hh = 22 must be above h = 24"),
    ("misspelt defaults kind", ("[[channels]]\nid = \"tcp\"", "[alarm_defaults.combustible]\nh = 20.0\n\n[[channels]]\nid = \"tcp\""),
        "bad.toml: alarm_defaults: unknown value `combustible`; expected one of `combustible_gas`, `toxic_gas`"),
    ("text in a defaults number", ("[[channels]]\nid = \"tcp\"", "[alarm_defaults.combustible_gas]\nh = \"twenty\"\n\n[[channels]]\nid = \"tcp\""),
        "bad.toml: alarm_defaults.combustible_gas.h: expected a number, got the text \"twenty\""),
    ("address beyond 16 bits", ("  address = 2\n", "  address = 70000\n"),
        "bad.toml: hazard_sources[0].points[1].address: 70000 is out of range: must be 0–65535"),
    ("negative unit id", ("unit_id = 5", "unit_id = -1"),
        "bad.toml: channels[1].devices[0].unit_id: -1 is negative: must be a whole number ≥ 0"),
    ("misspelt parity", ("baud = 9600", "baud = 9600\nparity = \"od\""),
        "bad.toml: channels[1].parity: unknown value `od`; expected one of `none`, `even`, `odd`"),
    ("missing device id", ("  id = \"D1\"\n", ""),
        "bad.toml: channels[0].devices[0].id: required, and missing"),
    ("unknown alarm field", ("  word_order = \"CDAB\"", "  word_order = \"CDAB\"\n  alarms = { hi = 20.0 }"),
        "hazard_sources[0].points[0].alarms.hi: unknown field `hi`"),
    // Wiring mistakes that are certainly wrong.
    ("two channels on one serial port", ("  id = \"D2\"\n  unit_id = 5\n", "  id = \"D2\"\n  unit_id = 5\n\n[[channels]]\nid = \"bus2\"\nkind = \"rtu\"\npath = \"/dev/ttyS1\"\nbaud = 9600\n"),
        "bad.toml: channels[2].path: `/dev/ttyS1` is already channels[1]'s: two channels on one serial port garble each other's frames; put the devices under one channel"),
    ("one server in two framings", ("  id = \"D2\"\n  unit_id = 5\n", "  id = \"D2\"\n  unit_id = 5\n\n[[channels]]\nid = \"tcp2\"\nkind = \"rtu_over_tcp\"\nhost = \"127.0.0.1\"\nport = 15020\n"),
        "bad.toml: channels[2].kind: 127.0.0.1:15020 is channels[0]'s as `tcp`: one server speaks one framing"),
    ("frames closer than 3.5 characters", ("baud = 9600", "baud = 9600\ninter_frame_delay_ms = 2"),
        "bad.toml: channels[1].inter_frame_delay_ms: 2 ms is below 3.5 character times at 9600 baud (3.65 ms): frames would run together; set 4 or more, or leave it out"),
    // Any gas: [[gases]] adds or replaces, and the guardrails apply the same way.
    ("custom gas above its own OEL", ("gas = \"cl2\"", "gas = \"vcm\"\n  alarms = { h = 5.0, hh = 7.0 }"),
        "hazard_sources[0].points[2].alarms.h: point AT-201: first-level alarm 5 ppm is above 100 %OEL of vcm (3.912 ppm), the ceiling of GB/T 50493-2019 5.5.2"),
    ("custom gas without the limit's basis", ("[[channels]]\nid = \"tcp\"", "[[gases]]\nname = \"eo\"\nformula = \"C2H4O\"\nmolar_mass = 44.05\noel_mg_m3 = 2.0\nsource = \"GBZ 2.1-2019\"\n\n[[channels]]\nid = \"tcp\""),
        "bad.toml: gases[1].oel_basis: which GBZ 2.1 limit oel_mg_m3 is: `mac`, `pc_stel` or `pc_twa`"),
    ("custom gas without its source", ("source = \"GBZ 2.1-2019 Table 1\"", "source = \"\""),
        "bad.toml: gases[0].source: say where the figures come from"),
    ("risk rule with a bad level", ("[[channels]]\nid = \"tcp\"", "[risk]\nrules = [{ colour = \"red\", class = \"low\", levels = [7], description = \"x\" }]\n\n[[channels]]\nid = \"tcp\""),
        "risk.rules[0].levels: levels are 1..=4, got 7"),
];

#[test]
fn each_bad_config_names_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (what, (from, to), expected) in BAD {
        assert!(BASE.contains(from), "case {what}: BASE lacks {from:?}");
        let toml = BASE.replacen(from, to, 1);
        let (ok, out) = run_check(dir.path(), "bad.toml", &toml, &[]);
        if ok || !out.contains(expected) {
            failures.push(format!(
                "{what}: exit ok={ok}, expected `{expected}` in:\n{out}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let toml =
        BASE.replacen("level = 1", "level = 0", 1)
            .replacen("unit_id = 5", "unit_id = 250", 1);
    let (ok, out) = run_check(dir.path(), "two.toml", &toml, &[]);
    assert!(!ok);
    assert!(out.contains("two.toml: hazard_sources[0].level"), "{out}");
    assert!(
        out.contains("two.toml: channels[1].devices[0].unit_id"),
        "{out}"
    );
}

#[test]
fn environment_overrides_are_applied_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = run_check(
        dir.path(),
        "env.toml",
        BASE,
        &[("HAZGATE__GATEWAY__GATEWAY_ID", "GW 2")],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("gateway.gateway_id: `GW 2` contains ` `"),
        "{out}"
    );
    let (ok, out) = run_check(
        dir.path(),
        "env.toml",
        BASE,
        &[("HAZGATE__GATEWAY__GATEWAY_ID", "GW-2")],
    );
    assert!(ok, "{out}");
}

/// (what, edit of BASE as (from, to), the warning): suspicious, so `check` passes and
/// says why and what to do.
const SUSPICIOUS: &[(&str, (&str, &str), &str)] = &[
    ("Modicon address", ("  address = 2\n", "  address = 40101\n"),
        "bad.toml: warning: hazard_sources[0].points[1].address: 40101 looks like Modicon numbering (4xxxx, counted from 40001): the protocol address is probably 100;"),
    ("Modicon address of the other table", ("  table = \"holding\"\n  address = 2", "  table = \"input\"\n  address = 40003"),
        "bad.toml: warning: hazard_sources[0].points[1].address: 40003 looks like Modicon numbering (4xxxx, counted from 40001): the protocol address is probably 2 — and 4xxxx is the holding table, not input"),
    ("unit id 0 behind TCP", ("unit_id = 1", "unit_id = 0"),
        "bad.toml: warning: channels[0].devices[0].unit_id: unit id 0 is broadcast, and nothing answers a read"),
    ("timeout beyond the poll", ("unit_id = 1", "unit_id = 1\n  poll_interval_ms = 1000\n  timeout_ms = 600\n  retries = 1"),
        "bad.toml: warning: channels[0].devices[0].timeout_ms: timeout_ms × (retries + 1) = 1200 ms is longer than poll_interval_ms = 1000 ms"),
    ("gas detector polled slowly", ("unit_id = 1", "unit_id = 1\n  poll_interval_ms = 5000\n  max_backoff_ms = 60000"),
        "bad.toml: warning: channels[0].devices[0].poll_interval_ms: gas detector GT-101 is polled every 5000 ms: a leak reaches the judge up to that late; poll gas detectors every 2000 ms or faster"),
    ("second connection to one server", ("  id = \"D2\"\n  unit_id = 5\n", "  id = \"D2\"\n  unit_id = 5\n\n[[channels]]\nid = \"tcp2\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 15020\n"),
        "bad.toml: warning: channels[2].host: 127.0.0.1:15020 is also channels[0]: a second connection to one server"),
];

#[test]
fn each_suspicious_setting_is_a_warning_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (_, clean) = run_check(dir.path(), "bad.toml", BASE, &[]);
    assert!(!clean.contains("warning"), "{clean}");
    let mut failures = Vec::new();
    for (what, (from, to), expected) in SUSPICIOUS {
        assert!(BASE.contains(from), "case {what}: BASE lacks {from:?}");
        let toml = BASE.replacen(from, to, 1);
        let (ok, out) = run_check(dir.path(), "bad.toml", &toml, &[]);
        if !ok || !out.contains(expected) {
            failures.push(format!(
                "{what}: exit ok={ok}, expected `{expected}` in:\n{out}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A site file in GBK is refused where it stops being UTF-8, not read as mojibake.
#[test]
fn a_file_not_in_utf8_is_refused_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gbk.toml");
    // "示范" in GBK, where the enterprise name is.
    let mut bytes = BASE.replacen("Check Co.", "@@", 1).into_bytes();
    let at = bytes.windows(2).position(|w| w == b"@@").unwrap();
    bytes.splice(at..at + 2, [0xca, 0xbe, 0xb7, 0xb6]);
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        // CA BE happens to be a valid UTF-8 pair; B7 is where decoding fails.
        err.contains(&format!(
            "gbk.toml: (file): not UTF-8 at byte {} (line 5): save the file as UTF-8",
            at + 2
        )),
        "at {at}: {err}"
    );
}

/// `hazgate gases` prints the built-in table; with a site file, its own entries too.
#[test]
fn the_gas_table_is_printed_with_the_sites_own() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.toml");
    std::fs::write(&site, BASE).unwrap();
    let gases = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
            .arg("gases")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let built_in = gases(&[]);
    for row in [
        "vinyl_chloride",
        "ethylene_oxide",
        "hcl ",
        "hf ",
        "acrylonitrile",
        "toluene",
    ] {
        assert!(built_in.contains(row), "{row} in {built_in}");
    }
    assert!(built_in.contains("7.5 MAC"), "{built_in}");
    assert!(!built_in.contains("vcm"), "{built_in}");
    let with_site = gases(&["--config".as_ref(), site.as_os_str()]);
    assert!(with_site.contains("vcm "), "{with_site}");
    assert!(with_site.contains("10 PC-TWA"), "{with_site}");
}

/// A site's entry of a built-in name replaces it, for the guardrails too: 0.5 ppm of
/// chlorine is above the built-in 0.34 ppm ceiling, and within the site's own figure.
#[test]
fn a_sites_gas_replaces_the_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let alarms = BASE.replacen(
        "gas = \"cl2\"",
        "gas = \"cl2\"\n  alarms = { h = 0.5, hh = 0.6 }",
        1,
    );
    let (ok, out) = run_check(dir.path(), "site.toml", &alarms, &[]);
    assert!(
        !ok && out.contains("above 100 %OEL of cl2 (0.34 ppm)"),
        "{out}"
    );
    let replaced = alarms.replacen("name = \"vcm\"", "name = \"cl2\"", 1);
    let (ok, out) = run_check(dir.path(), "site.toml", &replaced, &[]);
    assert!(ok, "{out}");
}

/// A setting inherited by many points is one problem, reported once.
#[test]
fn a_bad_default_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let toml = BASE.replacen(
        "[[channels]]\nid = \"tcp\"",
        "[alarm_defaults.combustible_gas]\nh = 30.0\n\n[[channels]]\nid = \"tcp\"",
        1,
    );
    let (ok, out) = run_check(dir.path(), "once.toml", &toml, &[]);
    assert!(!ok);
    assert_eq!(out.matches("first-level alarm 30 %LEL").count(), 1, "{out}");
    assert!(!out.contains("points[0]"), "{out}");
}

/// An environment variable's mistake is the variable's, not the file's.
#[test]
fn an_environment_mistake_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, expected) in [
        (
            "HAZGATE__GATEWAY__STALE",
            "3",
            "environment variable HAZGATE__GATEWAY__STALE: gateway.stale: unknown field `stale`",
        ),
        (
            "HAZGATE__ACQUISITION__STALE_AFTER_PERIODS",
            "abc",
            "environment variable HAZGATE__ACQUISITION__STALE_AFTER_PERIODS: acquisition.stale_after_periods: expected a whole number",
        ),
    ] {
        let (ok, out) = run_check(dir.path(), "env.toml", BASE, &[(var, value)]);
        assert!(!ok, "{var}: {out}");
        assert!(out.contains(expected), "{var}: {out}");
        assert!(!out.contains("env.toml"), "{var}: blames the file: {out}");
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .args(["check", "/nonexistent/site.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/site.toml"));
}

#[test]
fn the_central_ingest_file_is_checked_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/central.toml"),
    )
    .unwrap();
    let (ok, out) = run_check(dir.path(), "central.toml", &good, &[]);
    assert!(ok, "{out}");
    // (change, expected message)
    let cases = [
        (
            good.replace("http://127.0.0.1:8428", "http://127.0.0.1:8428/influx"),
            "central.toml: store.url: `http://127.0.0.1:8428/influx`: no path allowed",
        ),
        (
            good.replace("client_id = \"hazgate-ingest-1\"", "client_id = \"\""),
            "central.toml: mqtt.client_id: must be set",
        ),
        (
            good.replace("batch_max_ms = 200", "batch_max_ms = \"soon\""),
            "central.toml: store.batch_max_ms: expected a whole number, got the text \"soon\"",
        ),
        (
            good.replace("keepalive_s = 30", "keepalive = 30"),
            "unknown field `keepalive`",
        ),
    ];
    for (text, expected) in cases {
        let (ok, out) = run_check(dir.path(), "central.toml", &text, &[]);
        assert!(
            !ok && out.contains(expected),
            "expected `{expected}` in: {out}"
        );
    }
    // An environment override wins over the file.
    let (ok, out) = run_check(
        dir.path(),
        "central.toml",
        &good.replace("listen = \"127.0.0.1:8090\"", "listen = \"$PORT\""),
        &[("HAZGATE__HTTP__LISTEN", "127.0.0.1:9000")],
    );
    assert!(ok, "environment override: {out}");
}
