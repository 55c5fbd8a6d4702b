//! Point tables from spreadsheets: a realistic 500-row register map as CSV (UTF-8 and
//! GBK, per hazard source and site-wide) compiles to exactly the points of its TOML
//! equivalent, and polls a pymodbus peer to exactly the same readings; a bad row is
//! named by file, line and column; `hazgate points export` reads back to the same site.

mod common;

use std::{fmt::Write as _, path::Path, process::Command};

use common::{free_port, pymodbus, PeerAt, PeerOpts, GATEWAY_TOML};
use hazgate::model::{load_site, Site, SiteSource};
use serde_json::json;

/// One point of the generated map.
struct Row {
    source: &'static str,
    id: String,
    name: String,
    kind: &'static str,
    gas: &'static str,
    device: String,
    table: &'static str,
    address: u16,
    data_type: &'static str,
    word_order: &'static str,
    scale: Option<f64>,
    ranges: Option<([f64; 2], [f64; 2])>,
    unit: &'static str,
    alarms: Option<(f64, f64)>,
}

/// 5 devices × 100 points: combustible (f32 CDAB), toxic (u16 × 0.1, input registers),
/// tank levels (4–20 mA counts to metres, with alarms), SIS trips (discrete inputs) and
/// interlock bypasses (coils), with Chinese names.
fn rows() -> Vec<Row> {
    (0..500u16)
        .map(|i| {
            let (d, j) = (i / 100 + 1, i % 100);
            let source = match d {
                1 | 2 => "HS-1",
                3 => "HS-2",
                _ => "HS-3",
            };
            let base = Row {
                source,
                id: format!("P-{d}-{j:03}"),
                name: String::new(),
                kind: "",
                gas: "",
                device: format!("D{d}"),
                table: "",
                address: 0,
                data_type: "",
                word_order: "",
                scale: None,
                ranges: None,
                unit: "",
                alarms: None,
            };
            match j % 5 {
                0 => Row {
                    name: format!("储罐区可燃气体探测器 {j}"),
                    kind: "combustible_gas",
                    gas: "propylene",
                    table: "holding",
                    address: 2 * j,
                    data_type: "f32",
                    word_order: "CDAB",
                    alarms: (j % 10 == 0).then_some((18.0, 35.0)),
                    ..base
                },
                1 => Row {
                    name: format!("液氨罐区有毒气体 {j}"),
                    kind: "toxic_gas",
                    gas: "nh3",
                    table: "input",
                    address: j,
                    data_type: "u16",
                    scale: Some(0.1),
                    ..base
                },
                2 => Row {
                    name: format!("储罐液位 {j}"),
                    kind: "level",
                    table: "holding",
                    address: 200 + j,
                    data_type: "u16",
                    ranges: Some(([4000.0, 20000.0], [0.0, 20.0])),
                    unit: "m",
                    alarms: Some((18.0, 19.0)),
                    ..base
                },
                3 => Row {
                    name: format!("SIS 联锁停车 {j}"),
                    kind: "sis_trip",
                    table: "discrete_input",
                    address: j,
                    data_type: "bool",
                    ..base
                },
                _ => Row {
                    name: format!("联锁旁路 {j}"),
                    kind: "interlock_bypass",
                    table: "coil",
                    address: j,
                    data_type: "bool",
                    ..base
                },
            }
        })
        .collect()
}

fn header(port: u16) -> String {
    let mut s = format!("{GATEWAY_TOML}\n[[channels]]\nid = \"tcp\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n");
    for d in 1..=5 {
        let _ = write!(s, "\n  [[channels.devices]]\n  id = \"D{d}\"\n  unit_id = {d}\n  timeout_ms = 400\n  retries = 0\n");
    }
    s
}

fn source_toml(id: &str, csv: Option<&str>, encoding: Option<&str>) -> String {
    let mut s = format!("\n[[hazard_sources]]\nid = \"{id}\"\nname = \"{id} 罐区\"\nkind = \"tank_farm\"\nlevel = 2\n");
    if let Some(csv) = csv {
        let _ = writeln!(s, "points_csv = \"{csv}\"");
    }
    if let Some(e) = encoding {
        let _ = writeln!(s, "points_encoding = \"{e}\"");
    }
    s
}

fn point_toml(r: &Row) -> String {
    let mut s = format!(
        "\n  [[hazard_sources.points]]\n  id = \"{}\"\n  name = \"{}\"\n  kind = \"{}\"\n  device = \"{}\"\n  table = \"{}\"\n  address = {}\n  data_type = \"{}\"\n",
        r.id, r.name, r.kind, r.device, r.table, r.address, r.data_type
    );
    if !r.gas.is_empty() {
        let _ = writeln!(s, "  gas = \"{}\"", r.gas);
    }
    if !r.word_order.is_empty() {
        let _ = writeln!(s, "  word_order = \"{}\"", r.word_order);
    }
    if let Some(x) = r.scale {
        let _ = writeln!(s, "  scale = {x}");
    }
    if let Some((raw, eng)) = r.ranges {
        let _ = writeln!(
            s,
            "  raw_range = [{:?}, {:?}]\n  eng_range = [{:?}, {:?}]",
            raw[0], raw[1], eng[0], eng[1]
        );
    }
    if !r.unit.is_empty() {
        let _ = writeln!(s, "  unit = \"{}\"", r.unit);
    }
    if let Some((h, hh)) = r.alarms {
        let _ = writeln!(s, "  alarms = {{ h = {h:?}, hh = {hh:?} }}");
    }
    s
}

const COLUMNS: &str =
    "id,name,kind,gas,device,table,address,data_type,word_order,scale,raw_min,raw_max,eng_min,eng_max,unit,h,hh";

fn csv_line(r: &Row, with_source: bool) -> String {
    let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    let (raw, eng) = r.ranges.unzip();
    format!(
        "{}{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
        if with_source {
            format!("{},", r.source)
        } else {
            String::new()
        },
        r.id,
        r.name,
        r.kind,
        r.gas,
        r.device,
        r.table,
        r.address,
        r.data_type,
        r.word_order,
        opt(r.scale),
        opt(raw.map(|x| x[0])),
        opt(raw.map(|x| x[1])),
        opt(eng.map(|x| x[0])),
        opt(eng.map(|x| x[1])),
        r.unit,
        opt(r.alarms.map(|a| a.0)),
        opt(r.alarms.map(|a| a.1)),
    )
}

fn all_inline(port: u16) -> String {
    let rows = rows();
    let mut s = header(port);
    for hs in ["HS-1", "HS-2", "HS-3"] {
        s += &source_toml(hs, None, None);
        for r in rows.iter().filter(|r| r.source == hs) {
            s += &point_toml(r);
        }
    }
    s
}

/// HS-1 and HS-2 from tables of their own (HS-1's in `encoding`), HS-3 from the
/// site-wide table.
fn from_tables(dir: &Path, port: u16, gbk: bool) -> String {
    let rows = rows();
    let per_source = |hs: &str, file: &str, encode: bool| {
        let mut text = format!("{COLUMNS}\n");
        for r in rows.iter().filter(|r| r.source == hs) {
            text += &csv_line(r, false);
        }
        let bytes = if encode {
            let (b, _, bad) = encoding_rs::GBK.encode(&text);
            assert!(!bad);
            b.into_owned()
        } else {
            text.into_bytes()
        };
        std::fs::write(dir.join(file), bytes).unwrap();
    };
    per_source("HS-1", "hs1.csv", gbk);
    per_source("HS-2", "hs2.csv", false);
    let mut site_wide = format!("\u{feff}hazard_source,{COLUMNS}\n");
    for r in rows.iter().filter(|r| r.source == "HS-3") {
        site_wide += &csv_line(r, true);
    }
    std::fs::write(dir.join("site-points.csv"), site_wide).unwrap();
    format!(
        "points_csv = \"site-points.csv\"\n{}{}{}{}",
        header(port),
        source_toml("HS-1", Some("hs1.csv"), gbk.then_some("gbk")),
        source_toml("HS-2", Some("hs2.csv"), None),
        source_toml("HS-3", None, None)
    )
}

fn load(dir: &Path, name: &str, toml: &str) -> Result<Site, String> {
    let path = dir.join(name);
    std::fs::write(&path, toml).unwrap();
    load_site(SiteSource::Path(&path)).map_err(|e| e.to_string())
}

/// Point by point, every compiled field.
fn assert_same_points(a: &Site, b: &Site) {
    assert_eq!(a.points.len(), 500);
    assert_eq!(a.points.len(), b.points.len());
    for (x, y) in a.points.iter().zip(&b.points) {
        assert_eq!(format!("{x:?}"), format!("{y:?}"), "point {}", x.id);
    }
}

#[test]
fn a_500_row_table_compiles_to_its_toml_equivalent_in_utf8_and_gbk() {
    let dir = tempfile::tempdir().unwrap();
    let inline = load(dir.path(), "inline.toml", &all_inline(502)).unwrap();
    for gbk in [false, true] {
        let tabled = load(
            dir.path(),
            "tabled.toml",
            &from_tables(dir.path(), 502, gbk),
        )
        .unwrap();
        assert_same_points(&inline, &tabled);
        assert!(
            tabled.points[0].name.starts_with("储罐区可燃气体探测器"),
            "{}",
            tabled.points[0].name
        );
    }
}

#[test]
fn a_gbk_table_read_as_utf8_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let toml = from_tables(dir.path(), 502, true).replace("points_encoding = \"gbk\"\n", "");
    let err = load(dir.path(), "tabled.toml", &toml).unwrap_err();
    assert!(
        err.contains("not UTF-8 at byte")
            && err.contains("(line 2)")
            && err.contains("set points_encoding = \"gbk\""),
        "{err}"
    );
}

/// (what, a change of the HS-2 table as (from, to), expected message).
#[test]
fn a_bad_row_is_named_by_file_line_and_column() {
    let cases = [
        ("type", ("P-3-001,液氨罐区有毒气体 1,toxic_gas,nh3,D3,input,1,", "P-3-001,液氨罐区有毒气体 1,toxic_gas,nh3,D3,input,70000,"),
            "hs2.csv:3: column `address`: `70000` is not a whole number 0–65535"),
        ("choice", ("P-3-001,液氨罐区有毒气体 1,toxic_gas,nh3,D3,input", "P-3-001,液氨罐区有毒气体 1,toxic_gas,nh3,D3,inputs"),
            "hs2.csv:3: column `table`: unknown value `inputs`; expected one of `coil`, `discrete_input`, `holding`, `input`"),
        ("compiled", ("P-3-001,液氨罐区有毒气体 1,toxic_gas,nh3,D3", "P-3-001,液氨罐区有毒气体 1,toxic_gas,nh3,D9"),
            "hs2.csv:3: column `device`: no device `D9`"),
        ("guardrail", ("P-3-000,储罐区可燃气体探测器 0,combustible_gas,propylene,D3,holding,0,f32,CDAB,,,,,,,18,35", "P-3-000,储罐区可燃气体探测器 0,combustible_gas,propylene,D3,holding,0,f32,CDAB,,,,,,,30,35"),
            "hs2.csv:2: column `h`: point P-3-000: first-level alarm 30 %LEL is above the 25 %LEL ceiling of GB/T 50493-2019 5.5.2"),
        ("half a range", ("4000,20000,0,20,m", "4000,,0,20,m"),
            "hs2.csv:4: columns `raw_min` / `raw_max`: give both or neither"),
        ("unknown column", ("id,name,kind", "id,nmae,kind"),
            "hs2.csv:1"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let toml = from_tables(dir.path(), 502, false);
    let good = std::fs::read_to_string(dir.path().join("hs2.csv")).unwrap();
    let mut failures = Vec::new();
    for (what, (from, to), expected) in cases {
        assert!(good.contains(from), "{what}: table lacks {from}");
        std::fs::write(dir.path().join("hs2.csv"), good.replacen(from, to, 1)).unwrap();
        match load(dir.path(), "tabled.toml", &toml) {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(e) if !e.contains(expected) => {
                failures.push(format!("{what}: expected `{expected}` in\n{e}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn export_reads_back_to_the_same_points() {
    let dir = tempfile::tempdir().unwrap();
    let inline_toml = all_inline(502);
    let inline = load(dir.path(), "inline.toml", &inline_toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .args(["points", "export", "--config"])
        .arg(dir.path().join("inline.toml"))
        .arg("--out")
        .arg(dir.path().join("exported.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let site_wide = format!(
        "points_csv = \"exported.csv\"\n{}{}{}{}",
        header(502),
        source_toml("HS-1", None, None),
        source_toml("HS-2", None, None),
        source_toml("HS-3", None, None)
    );
    let back = load(dir.path(), "back.toml", &site_wide).unwrap();
    assert_same_points(&inline, &back);
}

/// Both sites polled once against the same pymodbus peer give the same readings.
#[test]
fn the_table_and_the_toml_poll_the_same_readings_from_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let devices: Vec<_> = (1..=5u16)
        .map(|d| {
            let holding: Vec<_> = (0..100u16)
                .filter(|j| j % 5 == 0)
                .map(|j| json!({"addr": 2 * j, "type": "f32", "order": "CDAB", "value": f64::from(j + d) * 0.25}))
                .chain((0..100u16).filter(|j| j % 5 == 2).map(|j| json!({"addr": 200 + j, "type": "raw", "value": [4000 + 100 * (j + d)]})))
                .collect();
            let input: Vec<_> = (0..100u16)
                .filter(|j| j % 5 == 1)
                .map(|j| json!({"addr": j, "type": "raw", "value": [3 * j + d]}))
                .collect();
            let discrete: Vec<u16> = (0..100).filter(|j| j % 5 == 3 && (j + d) % 2 == 0).collect();
            let coils: Vec<u16> = (0..100).filter(|j| j % 5 == 4 && (j + d) % 3 == 0).collect();
            json!({"unit": d, "holding": {"size": 300, "values": holding}, "input": {"size": 100, "values": input},
                   "discrete": {"size": 100, "set": discrete}, "coils": {"size": 100, "set": coils}})
        })
        .collect();
    let _peer = pymodbus(
        &json!({"devices": devices}),
        &PeerAt::Tcp(port),
        dir.path(),
        &PeerOpts::default(),
    );
    std::fs::write(dir.path().join("inline.toml"), all_inline(port)).unwrap();
    std::fs::write(
        dir.path().join("tabled.toml"),
        from_tables(dir.path(), port, true),
    )
    .unwrap();
    let poll = |name: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
            .args(["poll", "--json", "--config"])
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("ts");
                v
            })
            .collect();
        lines.sort_by(|a, b| a["point"].as_str().cmp(&b["point"].as_str()));
        lines
    };
    let inline = poll("inline.toml");
    let tabled = poll("tabled.toml");
    assert_eq!(inline.len(), 500);
    let good = inline.iter().filter(|l| l["quality"] == "good").count();
    assert_eq!(good, 500, "every point read: {inline:?}");
    assert_eq!(inline, tabled);
}
