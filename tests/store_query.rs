//! The screen's drill-down reads back what ingest wrote, through both query APIs, on
//! real stores: VictoriaMetrics (Prometheus API) and Debian's InfluxDB 1.6 (InfluxQL).
//! The points are written by ingest's own mapping of telemetry messages; ids carry
//! quotes and backslashes, which the queries must escape.

mod common;

use std::{process::Command, time::Duration};

use common::store::{influxdb, Store};
use hazgate::{
    contract::GatewayPath,
    ingest::{
        message::decode,
        store_query::{Api, PointNow, Selector, StoreQuery},
        tables::Tables,
    },
    model::central::StoreConfig,
    reading::Timestamp,
};
use serde_json::json;

const READINGS: i64 = 300;
const SPIKE: f64 = 50.0;

/// A gateway whose ids hold what a query language would stumble on.
const ENTERPRISE: &str = r#"E"1"#;
const GATEWAY: &str = r"G'1\a";

/// Telemetry over the last ten minutes, a reading every 2 s: GT-1 (a combustible
/// detector of HS-01) at 10 %LEL with a spike to 50 every third reading, its last read
/// failed; PT-2 a pressure of HS-01; GT-9 of another source. As line protocol, through
/// ingest's mapping.
fn lines(now: i64) -> Vec<u8> {
    let mut readings = Vec::new();
    for i in 0..READINGS {
        let ts = Timestamp(now - (READINGS - i) * 2_000).to_rfc3339();
        let failed = i == READINGS - 1;
        let gt1 = if i % 3 == 1 { SPIKE } else { 10.0 };
        readings.push(
            json!({"point": "GT-1", "hazard_source": "HS-01", "device": "D1",
            "kind": "combustible_gas", "unit": "%LEL", "ts": ts,
            "value": if failed { None } else { Some(gt1) },
            "quality": if failed { "comm_failure" } else { "good" }}),
        );
        readings.push(
            json!({"point": "PT-2", "hazard_source": "HS-01", "device": "D1",
            "kind": "pressure", "unit": "MPa", "ts": ts, "value": 1.25, "quality": "good"}),
        );
        readings.push(
            json!({"point": "GT-9", "hazard_source": "HS-02", "device": "D1",
            "kind": "toxic_gas", "unit": "ppm", "ts": ts, "value": 3.0, "quality": "good"}),
        );
    }
    let msg = json!({"seq": 1, "ts": Timestamp(now).to_rfc3339(), "park": "P",
        "enterprise": ENTERPRISE, "gateway": GATEWAY, "type": "telemetry", "readings": readings});
    let topic = format!("hazgate/v1/P/{ENTERPRISE}/{GATEWAY}/telemetry");
    let d = decode(
        "hazgate",
        &topic,
        msg.to_string().as_bytes(),
        1 << 20,
        0,
        &Tables::default(),
    )
    .expect("a valid telemetry message");
    d.lines
}

fn post(url: &str, body: &[u8], want: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-XPOST", url])
        .arg("--data-binary")
        .arg(format!("@{}", file.path().display()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{url}");
}

fn config(url: String, api: Api) -> StoreConfig {
    toml::from_str::<StoreConfig>(&format!(
        "url = {url:?}\norg = \"o\"\nbucket = \"hazgate\"\nquery = {:?}",
        match api {
            Api::VictoriaMetrics => "victoriametrics",
            Api::InfluxQl => "influxql",
        }
    ))
    .unwrap()
}

/// What both stores must answer about the same data.
async fn reads_back(q: &StoreQuery, now: i64) {
    let gateway = GatewayPath {
        park: "P",
        enterprise: ENTERPRISE,
        gateway: GATEWAY,
    };
    let source = Selector {
        gateway,
        hazard_source: Some("HS-01"),
        point: None,
    };
    let points = q
        .points(&source, Duration::from_secs(15 * 60))
        .await
        .unwrap();
    let point = |point: &str, kind: &str, unit: &str, value: f64, quality: i64| PointNow {
        point: point.into(),
        kind: kind.into(),
        unit: Some(unit.into()),
        value: Some(value),
        quality: Some(quality),
    };
    // GT-1's last read failed: its last value is the one before, its quality says so.
    assert_eq!(
        points,
        [
            point("GT-1", "combustible_gas", "%LEL", SPIKE, 1),
            point("PT-2", "pressure", "MPa", 1.25, 0),
        ],
        "HS-01's points only"
    );

    let point = Selector {
        gateway,
        hazard_source: None,
        point: Some("GT-1"),
    };
    let t = q.trend(&point, now - 3_600_000, now).await.unwrap();
    assert_eq!(t.step_s, 6, "an hour in at most 600 steps");
    let values: Vec<f64> = t.samples.iter().map(|(_, v)| *v).collect();
    assert!(
        (95..=102).contains(&values.len()),
        "a sample per 6 s step over the ten minutes of data: {}",
        values.len()
    );
    // Each step holds three readings, one of them a spike: the highest is kept, never
    // averaged away (the ends may hold a partial step).
    let inner = &values[1..values.len() - 1];
    assert!(inner.iter().all(|v| *v == SPIKE), "{values:?}");
    assert!(t
        .samples
        .iter()
        .all(|(ts, _)| (now - 3_600_000..=now).contains(ts)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoriametrics_gives_back_a_sources_points_and_a_points_trend() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::start(dir.path());
    let now = Timestamp::now().0;
    post(
        &format!(
            "{}/api/v2/write?org=o&bucket=hazgate&precision=ms",
            store.url()
        ),
        &lines(now),
        "204",
    );
    // What VictoriaMetrics accepted is searchable after its next flush: now.
    post(&format!("{}/internal/force_flush", store.url()), b"", "200");
    let q = StoreQuery::new(&config(store.url(), Api::VictoriaMetrics)).unwrap();
    reads_back(&q, now).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxql_gives_back_a_sources_points_and_a_points_trend() {
    let dir = tempfile::tempdir().unwrap();
    let (_influx, port) = influxdb(dir.path());
    let url = format!("http://127.0.0.1:{port}");
    post(
        &format!("{url}/query?q=CREATE+DATABASE+hazgate"),
        b"",
        "200",
    );
    post(
        &format!("{url}/write?db=hazgate&precision=ms"),
        &lines(Timestamp::now().0),
        "204",
    );
    let q = StoreQuery::new(&config(url.clone(), Api::InfluxQl)).unwrap();
    reads_back(&q, Timestamp::now().0).await;

    // A database that is not there: the store's own words come back.
    let mut cfg = config(url, Api::InfluxQl);
    cfg.database = Some("nowhere".into());
    let e = StoreQuery::new(&cfg)
        .unwrap()
        .points(
            &Selector {
                gateway: GatewayPath {
                    park: "P",
                    enterprise: ENTERPRISE,
                    gateway: GATEWAY,
                },
                hazard_source: Some("HS-01"),
                point: None,
            },
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("database not found"), "{e}");
}
