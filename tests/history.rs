//! The gateway's history (`[history]`, docs/history.md) with real processes: a pymodbus
//! detector, `hazgate run` with its local API, Mosquitto. What it read and decided is
//! exported while it runs — CSV, JSON lines, line protocol — and served on the API; a
//! `kill -9` loses at most the window being written; a full disk stops the history,
//! loudly, and nothing else, and the history goes on once there is room.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::{mqtt::*, *};
use hazgate::reading::Timestamp;
use serde_json::Value;

/// The one-detector site with its history in `history`: a commit and a snapshot a second.
fn history_site(d: &Path, port: u16, broker: u16, history: &Path) -> PathBuf {
    one_detector_site(
        d,
        &PeerAt::Tcp(port),
        broker,
        &format!(
            "[history]\npath = \"{}\"\ncommit_s = 1\nsnapshot_s = 1\n",
            history.display()
        ),
    )
}

/// Writes `path` until the disk it is on is full; the file, still open (its space is
/// freed once it is removed *and* closed).
fn fill(path: &Path) -> std::fs::File {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    while f.write_all(&[0u8; 1024]).is_ok() {}
    f
}

fn export(site: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hazgate"))
        .args(["export", "--config"])
        .arg(site)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// (ms, value) of GT-1 in a CSV export.
fn csv_values(csv: &str) -> Vec<(i64, f64)> {
    csv.trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let t = humantime::parse_rfc3339(f[0]).ok()?;
            let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
            Some((ms, f[4].parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_exported_and_served_while_running_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = Broker::start(d);
    let port = free_port();
    let (_peer, control) = detector(d, &PeerAt::Tcp(port), 12.5);
    let history = d.join("history");
    let site = history_site(d, port, broker.port, &history);
    let api = free_port();
    let start = Timestamp::now().0;
    let mut gw = start_gateway_with_api(&site, api, &d.join("gw.log"));

    // A leak: 12.5 → 60 %LEL (HH) → 0.
    tokio::time::sleep(Duration::from_secs(2)).await;
    set_detector(&control, 60.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    set_detector(&control, 0.0);
    let from = start.to_string();
    eventually(
        Duration::from_secs(20),
        "the leak's readings exported",
        || {
            let v = csv_values(&export(&site, &["--from", &from]));
            v.iter().any(|(_, x)| *x == 60.0) && v.last().is_some_and(|(_, x)| *x == 0.0)
        },
    )
    .await;
    let csv = export(&site, &["--from", &from, "--point", "GT-1"]);
    assert!(
        csv.starts_with("\u{feff}time,point,hazard_source,kind,value,unit,quality,range\n"),
        "{csv}"
    );
    assert!(
        csv.contains(",GT-1,HS-1,combustible_gas,60,%LEL,good,"),
        "{csv}"
    );
    let values = csv_values(&csv);
    assert!(values.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");

    // JSON lines: the readings and the judge's events in one time order.
    let jsonl = export(&site, &["--from", &from, "--format", "jsonl"]);
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["type"] == "reading" && l["value"] == 60.0));
    let hh = lines
        .iter()
        .find(|l| l["type"] == "alarm" && l["alarm"] == "hh" && l["action"] == "raised")
        .unwrap_or_else(|| panic!("HH raised in the export: {jsonl}"));
    assert_eq!(hh["point"], "GT-1");
    assert!(
        lines.iter().any(|l| l["type"] == "risk"),
        "the colour changes"
    );

    // Line protocol: the store schema's `reading`.
    let lp = export(&site, &["--from", &from, "--format", "line-protocol"]);
    let first = lp.lines().next().unwrap();
    assert!(
        first.starts_with("reading,device=GD-1,enterprise=E1,gateway=GW-T,hazard_source=HS-1,kind=combustible_gas,park=P1,point=GT-1,unit=%LEL "),
        "{first}"
    );
    assert!(lp.lines().any(|l| l.contains("value=60 ")), "{lp}");

    // The local API serves a point's trend.
    let (code, body) = http(
        api,
        "GET",
        &format!("/api/v1/history?point=GT-1&from={from}"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["unit"], "%LEL");
    let samples = v["samples"].as_array().unwrap();
    assert!(
        samples.iter().any(|s| s[1] == 60.0 && s[2] == "good"),
        "{body}"
    );
    for (path, code, says) in [
        ("/api/v1/history?point=NOPE", 400, "no point `NOPE`"),
        (
            "/api/v1/history?point=GT-1&from=yesterday",
            400,
            "neither RFC 3339",
        ),
        ("/api/v1/history?point=GT-1&from=2000&to=1000", 400, "after"),
    ] {
        let (got, body) = http(api, "GET", path, None);
        assert_eq!(got, code, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    let (_, health) = http(api, "GET", "/healthz", None);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["history_ok"], true, "{health}");

    // kill -9: what was committed before it is all there. The newest kept is at most
    // a snapshot period (1 s: the value stands still), the window being written (1 s)
    // and a poll (0.5 s) old, and some scheduling.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed = Timestamp::now().0;
    gw.kill();
    let kept = csv_values(&export(&site, &["--from", &from]));
    let newest = kept.last().unwrap().0;
    assert!(
        killed - newest <= 3_500,
        "readings up to {} ms before the kill",
        killed - newest
    );
    // Started again: a new segment; the old one reads on, damage reported if torn.
    let _gw = start_gateway_with_api(&site, api, &d.join("gw2.log"));
    eventually(
        Duration::from_secs(20),
        "readings after the restart",
        || {
            csv_values(&export(&site, &["--from", &from]))
                .iter()
                .any(|(t, _)| *t > killed)
        },
    )
    .await;
    let again = csv_values(&export(
        &site,
        &["--from", &from, "--to", &killed.to_string()],
    ));
    assert_eq!(
        again, kept,
        "what was kept before the kill reads the same after it"
    );
}

/// A tmpfs of a few KiB for the history: it fills.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: &Path, kib: u32) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs, as root (CI runs as root): {out:?}"
        );
        Self(path.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_history_loudly_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let broker = Broker::start(d);
    let (got, _sub) = subscriber(broker.port, "hazgate/#").await;
    let port = free_port();
    let (_peer, control) = detector(d, &PeerAt::Tcp(port), 12.5);
    let history = d.join("history");
    let disk = SmallDisk::mount(&history, 64);
    // All of it taken already: written until the disk says it is full.
    let filler = history.join("filler");
    fill(&filler);
    let site = history_site(d, port, broker.port, &history);
    let api = free_port();
    let _gw = start_gateway_with_api(&site, api, &d.join("gw.log"));
    let health = || -> Value {
        let (_, body) = http(api, "GET", "/healthz", None);
        serde_json::from_str(&body).unwrap()
    };
    eventually(
        Duration::from_secs(30),
        "the history failing on /healthz",
        || {
            let h = health();
            h["history_ok"] == false && h["status"] == "degraded"
        },
    )
    .await;
    let h = health();
    assert!(
        h["history_error"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{h}"
    );
    let (_, metrics) = http(api, "GET", "/metrics", None);
    assert!(
        metrics.contains("hazgate_history_write_failures_total"),
        "{metrics}"
    );
    assert!(metrics.contains("hazgate_history_ok 0"), "{metrics}");
    // Several more windows fail (1 s each): still one line in the log.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = std::fs::read_to_string(d.join("gw.log")).unwrap();
    assert_eq!(
        log.matches("history write failed").count(),
        1,
        "logged once, not every window: {log}"
    );

    // The centre hears of it on the gateway's status.
    eventually(
        Duration::from_secs(20),
        "history_error on the status",
        || {
            got.lock().unwrap().iter().any(|(t, v)| {
                t.ends_with("/status")
                    && v["history_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("No space left"))
            })
        },
    )
    .await;
    // Nothing else stops: the alarm still goes up to the centre.
    set_detector(&control, 60.0);
    eventually(Duration::from_secs(20), "HH at the broker", || {
        got.lock()
            .unwrap()
            .iter()
            .any(|(_, v)| v["type"] == "alarm" && v["alarm"]["alarm"] == "hh")
    })
    .await;

    // Room again: the history goes on by itself.
    std::fs::remove_file(&filler).unwrap();
    eventually(Duration::from_secs(20), "the history written again", || {
        health()["history_ok"] == true
    })
    .await;
    assert!(std::fs::read_to_string(d.join("gw.log"))
        .unwrap()
        .contains("history written again"));
    drop(disk);
}

/// A write cut short by a full disk leaves a torn frame: nothing is appended after it
/// (a reader stops at a tear), so what is written once there is room reads back.
#[test]
fn after_a_write_cut_short_the_history_goes_on_in_a_new_segment() {
    use hazgate::{
        history::store::{readings, HistoryWriter},
        model::{history::HistoryConfig, PointIndex},
        reading::{Quality, RangeFlag, Raw, Reading, Value},
    };
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let _disk = SmallDisk::mount(&history, 64);
    let cfg: HistoryConfig =
        toml::from_str(&format!("path = {:?}", history.display().to_string())).unwrap();
    let mut w = HistoryWriter::open(&cfg).unwrap();
    let reading = |p: u32, ts: i64, v: f64| Reading {
        point: PointIndex(p),
        value: Some(Value::Analog(v)),
        quality: Quality::Good,
        ts: Timestamp(ts),
        raw: Raw::None,
        range: RangeFlag::Within,
    };
    let t0 = 1_795_000_000_000;
    w.commit(&[reading(0, t0, 1.0)], &[], t0).unwrap();
    // The disk full but a page: a window of noise (it does not compress) is cut short.
    let filler = history.join("filler");
    let f = fill(&filler);
    f.set_len(f.metadata().unwrap().len() - 4096).unwrap();
    drop(f);
    let mut x = 1u64;
    let noise: Vec<Reading> = (0..4000)
        .map(|i| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            reading(
                i,
                t0 + 1000,
                f64::from_bits(x >> 12 | 0x3ff0_0000_0000_0000),
            )
        })
        .collect();
    assert!(
        w.commit(&noise, &[], t0 + 1000).is_err(),
        "the disk is full"
    );
    // Room again: the next window is written, and reads back.
    std::fs::remove_file(&filler).unwrap();
    w.commit(&[reading(0, t0 + 2000, 2.0)], &[], t0 + 2000)
        .unwrap();
    let (back, _) = readings(&history, t0, t0 + 2000, |p| p == PointIndex(0)).unwrap();
    let got: Vec<(i64, f64)> = back
        .iter()
        .map(|r| (r.ts.0, r.value.unwrap().as_f64()))
        .collect();
    assert_eq!(got, [(t0, 1.0), (t0 + 2000, 2.0)]);
}
