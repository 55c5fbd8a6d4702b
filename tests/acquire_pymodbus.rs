//! Acquisition against pymodbus, a Modbus implementation that is not ours, over Modbus
//! TCP, RTU on a socat pty pair, and RTU framing over TCP.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use hazgate::{
    acquire::{spawn_acquisition, AcquireStats, LatestStore},
    app::poll::poll_site_once,
    model::Site,
    reading::{Quality, RangeFlag, Reading, Value},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// (type, value) pairs exactly representable as f64 after decoding.
const NUMBERS: &[(&str, f64)] = &[
    ("u16", 48879.0),
    ("i16", -12345.0),
    ("u32", 3_000_000_123.0),
    ("i32", -2_000_000_001.0),
    ("f32", 123.456),
    ("u64", 1_234_567_890_123.0),
    ("i64", -987_654_321_012.0),
    ("f64", -1234.5678125),
];
const ORDERS: &[&str] = &["ABCD", "BADC", "CDAB", "DCBA"];

fn words(t: &str) -> u16 {
    match t {
        "u16" | "i16" => 1,
        "u32" | "i32" | "f32" => 2,
        _ => 4,
    }
}

/// The peer's register map and the matching site points for the decode matrix.
fn matrix() -> (serde_json::Value, String, Vec<(String, Expect)>) {
    let mut holding = Vec::new();
    let mut points = String::new();
    let mut expect = Vec::new();
    let mut addr = 0u16;
    for (t, v) in NUMBERS {
        for o in ORDERS {
            let id = format!("N-{t}-{o}");
            holding.push(json!({"addr": addr, "type": t, "order": o, "value": v}));
            points += &format!(
                "[[hazard_sources.points]]\nid = \"{id}\"\nkind = \"analog\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = {addr}\ndata_type = \"{t}\"\nword_order = \"{o}\"\n\n"
            );
            let tol = if *t == "f32" { 1e-4 } else { 0.0 };
            expect.push((id, Expect::Value(*v, tol)));
            addr += words(t);
        }
    }
    // Bits in a status register, scaling, a vendor fault code, valid range.
    holding.push(json!({"addr": 200, "type": "raw", "value": [0b1000_0000_0000_0100u16]}));
    holding.push(json!({"addr": 210, "type": "raw", "value": [1234]}));
    holding.push(json!({"addr": 220, "type": "raw", "value": [65535]}));
    holding.push(json!({"addr": 221, "type": "raw", "value": [150]}));
    holding.push(json!({"addr": 222, "type": "i16", "value": -5}));
    holding.push(json!({"addr": 223, "type": "raw", "value": [150]}));
    for (id, bit, v) in [("B-2", 2, true), ("B-15", 15, true), ("B-3", 3, false)] {
        points += &format!("[[hazard_sources.points]]\nid = \"{id}\"\nkind = \"discrete\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = 200\nbit = {bit}\n\n");
        expect.push((id.into(), Expect::Bool(v)));
    }
    points += "[[hazard_sources.points]]\nid = \"SCALED\"\nkind = \"pressure\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = 210\ndata_type = \"u16\"\nscale = 0.1\noffset = -10.0\n\n";
    expect.push(("SCALED".into(), Expect::Value(113.4, 1e-9)));
    points += "[[hazard_sources.points]]\nid = \"CODE\"\nkind = \"toxic_gas\"\ngas = \"nh3\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = 220\ndata_type = \"u16\"\nscale = 0.1\nfault_codes = [65535]\n\n";
    expect.push((
        "CODE".into(),
        Expect::Exactly(Quality::SensorFault, None, RangeFlag::Within),
    ));
    // 150 on a 0–100 range: a saturated gas detector is a measurement ("at least 150"),
    // a generic analog signal a fault; both keep the value.
    points += "[[hazard_sources.points]]\nid = \"RANGE\"\nkind = \"combustible_gas\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = 221\ndata_type = \"u16\"\nvalid_range = [0.0, 100.0]\n\n";
    expect.push((
        "RANGE".into(),
        Expect::Exactly(Quality::Good, Some(150.0), RangeFlag::Over),
    ));
    points += "[[hazard_sources.points]]\nid = \"RANGE-A\"\nkind = \"analog\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = 223\ndata_type = \"u16\"\nvalid_range = [0.0, 100.0]\n\n";
    expect.push((
        "RANGE-A".into(),
        Expect::Exactly(Quality::SensorFault, Some(150.0), RangeFlag::Over),
    ));
    // −5 %LEL: a gas detector below zero has drifted: a fault, the value kept.
    points += "[[hazard_sources.points]]\nid = \"RANGE-LO\"\nkind = \"combustible_gas\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = 222\ndata_type = \"i16\"\nvalid_range = [0.0, 100.0]\n\n";
    expect.push((
        "RANGE-LO".into(),
        Expect::Exactly(Quality::SensorFault, Some(-5.0), RangeFlag::Under),
    ));
    // Coils and discrete inputs.
    for (id, table, a, v) in [
        ("C0", "coil", 0, true),
        ("C1", "coil", 1, false),
        ("D5", "discrete_input", 5, true),
    ] {
        points += &format!("[[hazard_sources.points]]\nid = \"{id}\"\nkind = \"sis_trip\"\ndevice = \"D1\"\ntable = \"{table}\"\naddress = {a}\n\n");
        expect.push((id.into(), Expect::Bool(v)));
    }
    // 4–20 mA transmitters as 4000–20000 counts in input registers: (kind, raw, expected).
    let loops = [
        ("level", 12000, Expect::Value(50.0, 1e-9)),
        (
            "level",
            3500,
            Expect::Exactly(Quality::SensorFault, None, RangeFlag::Within),
        ),
        (
            "level",
            20800,
            Expect::Exactly(Quality::SensorFault, None, RangeFlag::Within),
        ),
        (
            "level",
            3900,
            Expect::Exactly(Quality::Good, Some(-0.625), RangeFlag::Under),
        ),
        (
            "level",
            20300,
            Expect::Exactly(Quality::Good, Some(101.875), RangeFlag::Over),
        ),
        // 20.8 mA on a gas detector: saturation (its default failure current is 21 mA).
        (
            "combustible_gas",
            20800,
            Expect::Exactly(Quality::Good, Some(105.0), RangeFlag::Over),
        ),
        (
            "combustible_gas",
            21500,
            Expect::Exactly(Quality::SensorFault, None, RangeFlag::Within),
        ),
    ];
    for (i, (kind, _, e)) in loops.iter().enumerate() {
        let id = format!("LOOP-{i}");
        let unit = if *kind == "level" { "%" } else { "%LEL" };
        points += &format!("[[hazard_sources.points]]\nid = \"{id}\"\nkind = \"{kind}\"\ndevice = \"D1\"\ntable = \"input\"\naddress = {i}\ndata_type = \"u16\"\nraw_range = [4000.0, 20000.0]\neng_range = [0.0, 100.0]\nloop_current = {{}}\nunit = \"{unit}\"\n\n");
        expect.push((id, *e));
    }
    let input: Vec<_> = loops
        .iter()
        .enumerate()
        .map(|(i, (_, r, _))| json!({"addr": i, "type": "raw", "value": [r]}))
        .collect();
    let map = json!({"devices": [{
        "unit": 1,
        "holding": {"size": 240, "values": holding},
        "input": {"size": 8, "values": input},
        "coils": {"size": 16, "set": [0]},
        "discrete": {"size": 16, "set": [5]},
    }]});
    (map, points, expect)
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A good value within its range, to a tolerance.
    Value(f64, f64),
    Bool(bool),
    /// Quality, value (to 1e-9) and range flag, all three.
    Exactly(Quality, Option<f64>, RangeFlag),
}

fn check(site: &Site, readings: &[Reading], expect: &[(String, Expect)]) {
    assert_eq!(readings.len(), expect.len(), "one reading per point");
    let mut failures = Vec::new();
    for (id, e) in expect {
        let p = site.point_by_id(id).unwrap();
        let r = readings.iter().find(|r| r.point == p.index).unwrap();
        let ok = match *e {
            Expect::Value(v, tol) => {
                r.quality == Quality::Good
                    && r.range == RangeFlag::Within
                    && matches!(r.value, Some(Value::Analog(x)) if (x - v).abs() <= tol.max(v.abs() * 1e-12))
            }
            Expect::Bool(b) => r.quality == Quality::Good && r.value == Some(Value::Discrete(b)),
            Expect::Exactly(q, v, range) => {
                let value_ok = match (v, r.value) {
                    (None, None) => true,
                    (Some(v), Some(Value::Analog(x))) => (x - v).abs() <= 1e-9,
                    _ => false,
                };
                r.quality == q && value_ok && r.range == range
            }
        };
        if !ok {
            failures.push(format!(
                "{id}: expected {e:?}, got {:?} {:?} {:?} raw {}",
                r.value, r.quality, r.range, r.raw
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "decode mismatches:\n{}",
        failures.join("\n")
    );
}

fn matrix_site(at: &PeerAt, points: &str) -> Arc<Site> {
    let toml = format!(
        "{GATEWAY_TOML}\n{}\n[[channels.devices]]\nid = \"D1\"\nunit_id = 1\ntimeout_ms = 1000\n\n[[hazard_sources]]\nid = \"HS\"\nname = \"Matrix\"\nkind = \"process_unit\"\nlevel = 2\n\n{points}",
        channel_toml("ch", at)
    );
    site_from_toml(&toml)
}

async fn decode_matrix(at: PeerAt, peer_at: PeerAt, dir: &std::path::Path) {
    let (map, points, expect) = matrix();
    let _peer = pymodbus(&map, &peer_at, dir, &PeerOpts::default());
    let site = matrix_site(&at, &points);
    let readings = poll_site_once(&site, None).await;
    check(&site, &readings, &expect);
}

#[tokio::test]
async fn tcp_decodes_every_type_order_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    decode_matrix(PeerAt::Tcp(port), PeerAt::Tcp(port), dir.path()).await;
}

#[tokio::test]
async fn rtu_over_pty_decodes_every_type_order_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let pty = socat_pair(dir.path());
    decode_matrix(
        PeerAt::Serial(pty.a.clone()),
        PeerAt::Serial(pty.b.clone()),
        dir.path(),
    )
    .await;
}

#[tokio::test]
async fn rtu_over_tcp_decodes_every_type_order_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    decode_matrix(
        PeerAt::RtuOverTcp(port),
        PeerAt::RtuOverTcp(port),
        dir.path(),
    )
    .await;
}

/// Two devices on one channel, each with one u16 at holding 0 and a coil.
fn two_device_site(at: &PeerAt, poll_ms: u64, timeout_ms: u64, max_backoff_ms: u64) -> Arc<Site> {
    two_device_site_with(at, poll_ms, [timeout_ms, timeout_ms], 1, max_backoff_ms)
}

fn two_device_site_with(
    at: &PeerAt,
    poll_ms: u64,
    timeouts: [u64; 2],
    retries: u32,
    max_backoff_ms: u64,
) -> Arc<Site> {
    let mut toml = format!("{GATEWAY_TOML}\n{}\n", channel_toml("ch", at));
    for (unit, timeout_ms) in [(1, timeouts[0]), (2, timeouts[1])] {
        toml += &format!("[[channels.devices]]\nid = \"D{unit}\"\nunit_id = {unit}\npoll_interval_ms = {poll_ms}\ntimeout_ms = {timeout_ms}\nretries = {retries}\nmax_backoff_ms = {max_backoff_ms}\n\n");
    }
    toml += "[[hazard_sources]]\nid = \"HS\"\nname = \"Two\"\nkind = \"warehouse\"\nlevel = 3\n\n";
    for unit in [1, 2] {
        toml += &format!("[[hazard_sources.points]]\nid = \"P{unit}\"\nkind = \"analog\"\ndevice = \"D{unit}\"\ntable = \"holding\"\naddress = 0\ndata_type = \"u16\"\n\n");
    }
    site_from_toml(&toml)
}

fn unit_map(unit: u8, value: u16, extra: serde_json::Value) -> serde_json::Value {
    let mut d = json!({"unit": unit, "holding": {"size": 4, "values": [{"addr": 0, "type": "raw", "value": [value]}]}});
    if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
        d.extend(extra.clone());
    }
    d
}

fn reading_of(site: &Site, readings: &[Reading], id: &str) -> Reading {
    let p = site.point_by_id(id).unwrap();
    *readings.iter().find(|r| r.point == p.index).unwrap()
}

#[tokio::test]
async fn exception_response_flags_only_that_device() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let map =
        json!({"devices": [unit_map(1, 7, json!({})), unit_map(2, 9, json!({"exception": 2}))]});
    let _peer = pymodbus(&map, &PeerAt::Tcp(port), dir.path(), &PeerOpts::default());
    let site = two_device_site(&PeerAt::Tcp(port), 1000, 500, 5000);
    let readings = poll_site_once(&site, None).await;
    let p1 = reading_of(&site, &readings, "P1");
    let p2 = reading_of(&site, &readings, "P2");
    assert_eq!(
        (p1.quality, p1.value),
        (Quality::Good, Some(Value::Analog(7.0)))
    );
    assert_eq!(p2.quality, Quality::DeviceException(2));
    assert_eq!(p2.value, None, "an exception never becomes a number");
}

#[tokio::test]
async fn garbled_rtu_frame_is_comm_failure_and_the_bus_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let pty = socat_pair(dir.path());
    let map = json!({"devices": [unit_map(1, 7, json!({})), unit_map(2, 9, json!({}))]});
    let opts = PeerOpts {
        garble: Some(("crc", 1)),
        ..Default::default()
    };
    let _peer = pymodbus(&map, &PeerAt::Serial(pty.b.clone()), dir.path(), &opts);
    let site = two_device_site(&PeerAt::Serial(pty.a.clone()), 1000, 300, 5000);
    let readings = poll_site_once(&site, None).await;
    let p1 = reading_of(&site, &readings, "P1");
    let p2 = reading_of(&site, &readings, "P2");
    assert_eq!(
        (p1.quality, p1.value),
        (Quality::CommFailure, None),
        "bad CRC must not become a number"
    );
    assert_eq!(
        (p2.quality, p2.value),
        (Quality::Good, Some(Value::Analog(9.0))),
        "the next device on the line still reads"
    );
}

#[tokio::test]
async fn truncated_and_mismatched_tcp_frames_are_comm_failure() {
    for mode in ["truncate", "txid"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let map = json!({"devices": [unit_map(1, 7, json!({})), unit_map(2, 9, json!({}))]});
        let opts = PeerOpts {
            garble: Some((mode, 1)),
            ..Default::default()
        };
        let _peer = pymodbus(&map, &PeerAt::Tcp(port), dir.path(), &opts);
        let site = two_device_site(&PeerAt::Tcp(port), 1000, 300, 5000);
        let readings = poll_site_once(&site, None).await;
        let p1 = reading_of(&site, &readings, "P1");
        let p2 = reading_of(&site, &readings, "P2");
        assert_eq!(
            (p1.quality, p1.value),
            (Quality::CommFailure, None),
            "{mode}"
        );
        assert_eq!(
            p2.quality,
            Quality::Good,
            "{mode}: the other unit reads after a reconnect"
        );
    }
}

async fn run_for(site: &Arc<Site>, secs: f64) -> (LatestStore, Arc<AcquireStats>) {
    let store = LatestStore::new(site.points.len(), 1024);
    let stats = Arc::new(AcquireStats::new(site));
    let cancel = CancellationToken::new();
    let mut tasks = spawn_acquisition(site.clone(), store.clone(), stats.clone(), cancel.clone());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    (store, stats)
}

#[tokio::test]
async fn dead_device_on_rtu_is_backed_off_and_neighbours_keep_their_rate() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().unwrap();
    let pty = socat_pair(dir.path());
    let map =
        json!({"devices": [unit_map(1, 7, json!({})), unit_map(2, 9, json!({"silent": true}))]});
    let _peer = pymodbus(
        &map,
        &PeerAt::Serial(pty.b.clone()),
        dir.path(),
        &PeerOpts::default(),
    );
    // 200 ms period for 6 s (30 periods). The dead unit costs 3 × 150 ms per attempt:
    // polled every period it would leave the live one ~13 polls; backed off (probes
    // at 0.2, 0.4, 0.8, 1.6, 2 s) it leaves ~28. The live unit gets a generous timeout
    // so a loaded CI machine does not make it look dead.
    let site = two_device_site_with(&PeerAt::Serial(pty.a.clone()), 200, [1000, 150], 2, 2000);
    let (store, stats) = run_for(&site, 6.0).await;

    let alive = &stats.devices[0].1;
    let dead = &stats.devices[1].1;
    let alive_polls = alive.polls_ok.load(Relaxed);
    assert!(
        alive_polls >= 18,
        "live device polled {alive_polls} times in 6 s at 200 ms (expected ~28)"
    );
    let dead_requests = dead.requests.load(Relaxed);
    assert!(
        (3..=10).contains(&dead_requests),
        "dead device should be probed with back-off, got {dead_requests} requests"
    );
    assert_eq!(
        dead.timeouts.load(Relaxed),
        dead_requests,
        "every request to it timed out"
    );
    let p1 = site.point_by_id("P1").unwrap().index;
    let p2 = site.point_by_id("P2").unwrap().index;
    assert_eq!(store.get(p1).unwrap().quality, Quality::Good);
    assert_eq!(store.get(p2).unwrap().quality, Quality::CommFailure);
}

#[tokio::test]
async fn tcp_server_restart_is_reconnected() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let map = json!({"devices": [unit_map(1, 7, json!({})), unit_map(2, 9, json!({}))]});
    let mut peer = pymodbus(&map, &PeerAt::Tcp(port), dir.path(), &PeerOpts::default());
    let site = two_device_site(&PeerAt::Tcp(port), 100, 200, 400);
    let store = LatestStore::new(site.points.len(), 1024);
    let stats = Arc::new(AcquireStats::new(&site));
    let cancel = CancellationToken::new();
    let mut tasks = spawn_acquisition(site.clone(), store.clone(), stats.clone(), cancel.clone());
    let p1 = site.point_by_id("P1").unwrap().index;
    let quality = |s: &LatestStore| s.get(p1).map(|r| r.quality);

    eventually(Duration::from_secs(10), "first good reading", || {
        quality(&store) == Some(Quality::Good)
    })
    .await;
    peer.kill();
    eventually(
        Duration::from_secs(10),
        "comm_failure after the server died",
        || quality(&store) == Some(Quality::CommFailure),
    )
    .await;
    let _peer = pymodbus(&map, &PeerAt::Tcp(port), dir.path(), &PeerOpts::default());
    eventually(
        Duration::from_secs(10),
        "good again after the server restarted",
        || quality(&store) == Some(Quality::Good),
    )
    .await;
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
}

#[tokio::test]
async fn block_planner_issues_the_minimal_requests() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // 20 contiguous floats (40 registers), 3 coils, 2 input registers, one far holding point.
    let mut holding: Vec<_> = (0..20)
        .map(|i| json!({"addr": i * 2, "type": "f32", "value": f64::from(i)}))
        .collect();
    holding.push(json!({"addr": 500, "type": "raw", "value": [42]}));
    let map = json!({"devices": [{"unit": 1, "holding": {"size": 510, "values": holding},
        "coils": {"size": 8, "set": [1]}, "input": {"size": 4}}]});
    let _peer = pymodbus(&map, &PeerAt::Tcp(port), dir.path(), &PeerOpts::default());
    let mut toml = format!(
        "{GATEWAY_TOML}\n{}\n[[channels.devices]]\nid = \"D1\"\nunit_id = 1\n\n[[hazard_sources]]\nid = \"HS\"\nname = \"Plan\"\nkind = \"tank_farm\"\nlevel = 1\n\n",
        channel_toml("ch", &PeerAt::Tcp(port))
    );
    for i in 0..20 {
        toml += &format!("[[hazard_sources.points]]\nid = \"F{i}\"\nkind = \"analog\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = {}\ndata_type = \"f32\"\n\n", i * 2);
    }
    for i in 0..3 {
        toml += &format!("[[hazard_sources.points]]\nid = \"C{i}\"\nkind = \"discrete\"\ndevice = \"D1\"\ntable = \"coil\"\naddress = {i}\n\n");
    }
    for i in 0..2 {
        toml += &format!("[[hazard_sources.points]]\nid = \"I{i}\"\nkind = \"analog\"\ndevice = \"D1\"\ntable = \"input\"\naddress = {i}\ndata_type = \"u16\"\n\n");
    }
    toml += "[[hazard_sources.points]]\nid = \"FAR\"\nkind = \"analog\"\ndevice = \"D1\"\ntable = \"holding\"\naddress = 500\ndata_type = \"u16\"\n\n";
    let site = site_from_toml(&toml);
    let readings = poll_site_once(&site, None).await;
    assert!(
        readings.iter().all(|r| r.quality == Quality::Good),
        "{readings:?}"
    );
    let mut reqs = peer_requests(dir.path());
    reqs.sort();
    // fc 1 coils 0..3; fc 3 holding 0..40 and 500..501; fc 4 input 0..2.
    assert_eq!(
        reqs,
        vec![(1, 1, 0, 3), (1, 3, 0, 40), (1, 3, 500, 1), (1, 4, 0, 2)]
    );
}

#[tokio::test]
async fn a_starved_device_goes_stale_keeping_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Unit 2 answers after 900 ms; polled every 100 ms on the same connection, it holds
    // the channel so unit 1 (100 ms period, stale after 3 periods) cannot be refreshed.
    let map =
        json!({"devices": [unit_map(1, 7, json!({})), unit_map(2, 9, json!({"delay_ms": 900}))]});
    let _peer = pymodbus(&map, &PeerAt::Tcp(port), dir.path(), &PeerOpts::default());
    let site = two_device_site_with(&PeerAt::Tcp(port), 100, [2000, 2000], 0, 2000);
    let store = LatestStore::new(site.points.len(), 1024);
    let mut rx = store.subscribe();
    let stats = Arc::new(AcquireStats::new(&site));
    let cancel = CancellationToken::new();
    let mut tasks = spawn_acquisition(site.clone(), store.clone(), stats, cancel.clone());
    let p1 = site.point_by_id("P1").unwrap().index;
    let mut saw_stale = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while saw_stale.is_none() && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(batch)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            saw_stale = batch
                .iter()
                .find(|r| r.point == p1 && r.quality == Quality::Stale)
                .copied();
        }
    }
    cancel.cancel();
    while tasks.join_next().await.is_some() {}
    let r = saw_stale.expect("P1 should be reported stale while the slow device holds the channel");
    assert_eq!(
        r.value,
        Some(Value::Analog(7.0)),
        "stale keeps the last value"
    );
}

/// One device with three requests — holding 0, holding 100, input 0 — and a neighbour.
/// The peer never answers a request covering `ignored` (holding) of unit 1.
fn one_bad_request_site(at: &PeerAt, poll_ms: u64) -> Arc<Site> {
    let mut toml = format!("{GATEWAY_TOML}\n{}\n", channel_toml("ch", at));
    for unit in [1, 2] {
        toml += &format!("[[channels.devices]]\nid = \"D{unit}\"\nunit_id = {unit}\npoll_interval_ms = {poll_ms}\ntimeout_ms = 150\nretries = 1\nmax_backoff_ms = 1600\n\n");
    }
    toml +=
        "[[hazard_sources]]\nid = \"HS\"\nname = \"Panel\"\nkind = \"warehouse\"\nlevel = 3\n\n";
    for (id, dev, table, addr) in [
        ("A", "D1", "holding", 0),
        ("BAD", "D1", "holding", 100),
        ("IN", "D1", "input", 0),
        ("N", "D2", "holding", 0),
    ] {
        toml += &format!("[[hazard_sources.points]]\nid = \"{id}\"\nkind = \"analog\"\ndevice = \"{dev}\"\ntable = \"{table}\"\naddress = {addr}\ndata_type = \"u16\"\n\n");
    }
    site_from_toml(&toml)
}

fn one_bad_request_map(ignored: u16) -> serde_json::Value {
    json!({"devices": [
        {"unit": 1, "holding": {"size": 110, "values": [{"addr": 0, "type": "raw", "value": [7]}, {"addr": 100, "type": "raw", "value": [8]}]},
         "input": {"size": 4, "values": [{"addr": 0, "type": "raw", "value": [9]}]},
         "ignore": [{"table": "holding", "addr": ignored}]},
        unit_map(2, 5, json!({}))]})
}

/// A request the device leaves unanswered costs only its own points: the device's other
/// requests — one polled after it — stay good, the device is not backed off, and the
/// request is asked again only on its own back-off, named in the outcome.
async fn a_bad_request_is_set_apart(
    at: PeerAt,
    peer_at: PeerAt,
    dir: &std::path::Path,
    ignored: u16,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let _peer = pymodbus(
        &one_bad_request_map(ignored),
        &peer_at,
        dir,
        &PeerOpts::default(),
    );
    let site = one_bad_request_site(&at, 200);

    // One poll, as `hazgate poll` does it: the request is named.
    let plan = hazgate::acquire::device::PlannedDevice::new(&site, 0, 0);
    let ch = &site.channels[0];
    let mut link = hazgate::acquire::link::Link::new(ch.transport.clone(), ch.inter_frame_delay);
    let mut health = Vec::new();
    let (readings, outcome) =
        hazgate::acquire::device::poll_device(&site, &plan, &mut link, &mut health, false).await;
    link.disconnect().await;
    assert!(!outcome.device_down, "{outcome:?}");
    let named: Vec<String> = outcome
        .isolated
        .iter()
        .map(|(b, _)| plan.blocks[*b].describe())
        .collect();
    assert_eq!(
        named,
        [format!("fc 3 holding address {ignored} count 1")],
        "{outcome:?}"
    );
    let bad = if ignored == 0 { "A" } else { "BAD" };
    for (id, good) in [("A", 7.0), ("BAD", 8.0), ("IN", 9.0)] {
        let r = reading_of(&site, &readings, id);
        if id == bad {
            assert_eq!(r.quality, Quality::CommFailure, "{id}");
        } else {
            assert_eq!(
                (id, r.quality, r.value),
                (id, Quality::Good, Some(Value::Analog(good)))
            );
        }
    }

    // Running: 4 s at 200 ms. The device keeps its rate; the bad request is probed on a
    // back-off from 200 ms doubling to 1.6 s (≈ 5 probes), not asked 20 times.
    let before = peer_requests(dir).len();
    let (store, stats) = run_for(&site, 4.0).await;
    let d1 = &stats.devices[0].1;
    assert_eq!(
        d1.polls_failed.load(Relaxed),
        0,
        "the device was never down"
    );
    assert!(
        d1.polls_ok.load(Relaxed) >= 12,
        "polls: {}",
        d1.polls_ok.load(Relaxed)
    );
    let asked_bad = peer_requests(dir)[before..]
        .iter()
        .filter(|(u, fc, addr, _)| *u == 1 && *fc == 3 && *addr == ignored)
        .count();
    assert!(
        (1..=8).contains(&asked_bad),
        "bad request asked {asked_bad} times in 4 s"
    );
    for (id, quality) in [
        (bad, Quality::CommFailure),
        ("IN", Quality::Good),
        ("N", Quality::Good),
    ] {
        let p = site.point_by_id(id).unwrap().index;
        assert_eq!(store.get(p).unwrap().quality, quality, "{id}");
    }
}

#[tokio::test]
async fn tcp_a_request_the_device_ignores_is_set_apart_not_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    a_bad_request_is_set_apart(PeerAt::Tcp(port), PeerAt::Tcp(port), dir.path(), 100).await;
}

#[tokio::test]
async fn tcp_a_first_request_the_device_ignores_is_set_apart_not_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    a_bad_request_is_set_apart(PeerAt::Tcp(port), PeerAt::Tcp(port), dir.path(), 0).await;
}

#[tokio::test]
async fn rtu_a_request_the_device_ignores_is_set_apart_not_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let pty = socat_pair(dir.path());
    a_bad_request_is_set_apart(
        PeerAt::Serial(pty.a.clone()),
        PeerAt::Serial(pty.b.clone()),
        dir.path(),
        100,
    )
    .await;
}
