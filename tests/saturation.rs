//! End to end: a combustible detector on a level-1 source saturated by a leak — its
//! reading steps from 5 to 120 %LEL on a 0–100 range — reaches the centre as the loudest
//! alarm (HH raised, `over_range`, the source red), not as a sensor fault. pymodbus is
//! the detector (over Modbus TCP, and RTU over a socat pty), Mosquitto the broker.

mod common;

use std::{path::Path, time::Duration};

use common::{mqtt::*, *};
use serde_json::json;

fn reading(
    got: &[(String, serde_json::Value)],
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Option<&serde_json::Value> {
    got.iter()
        .filter(|(_, v)| v["type"] == "telemetry")
        .flat_map(|(_, v)| v["readings"].as_array().into_iter().flatten())
        .find(|r| r["point"] == "GT-1" && pred(r))
}

async fn saturation_reaches_the_centre(gateway_at: PeerAt, peer_at: PeerAt, dir: &Path) {
    let broker = Broker::start(dir);
    let (got, sub) = subscriber(broker.port, "hazgate/#").await;
    let control = dir.join("control.json");
    let map = json!({"devices": [{"unit": 1, "holding": {"size": 8, "values": [
        {"addr": 0, "type": "f32", "order": "CDAB", "value": 5.0}]}}]});
    let opts = PeerOpts {
        control: Some(control.clone()),
        ..Default::default()
    };
    let _peer = pymodbus(&map, &peer_at, dir, &opts);
    let site = one_detector_site(dir, &gateway_at, broker.port, "");
    let log = dir.join("gw.log");
    let mut gw = start_gateway(&site, Some(&log));
    eventually(Duration::from_secs(20), "GT-1 reading 5 %LEL", || {
        reading(&got.lock().unwrap(), |r| {
            r["value"] == 5.0 && r["quality"] == "good"
        })
        .is_some()
    })
    .await;

    // The leak: 120 %LEL, beyond the detector's range.
    std::fs::write(
        &control,
        json!([{"unit": 1, "table": "holding", "addr": 0, "type": "f32", "order": "CDAB", "value": 120.0}])
            .to_string(),
    )
    .unwrap();
    eventually(Duration::from_secs(20), "HH raised and HS-1 red", || {
        let got = got.lock().unwrap();
        let hh = got.iter().any(|(_, v)| {
            v["type"] == "alarm"
                && v["alarm"]["point"] == "GT-1"
                && v["alarm"]["alarm"] == "hh"
                && v["alarm"]["action"] == "raised"
        });
        let red = got
            .iter()
            .any(|(t, v)| t.ends_with("/risk/HS-1") && v["risk"]["to"] == "red");
        hh && red
    })
    .await;
    stop_gateway(&mut gw, &got).await;
    sub.abort();

    let got = got.lock().unwrap().clone();
    let hh = got
        .iter()
        .map(|(_, v)| &v["alarm"])
        .find(|a| a["point"] == "GT-1" && a["alarm"] == "hh" && a["action"] == "raised")
        .unwrap();
    assert_eq!(
        (
            &hh["value"],
            &hh["over_range"],
            &hh["class"],
            &hh["bad_quality"]
        ),
        (
            &json!(120.0),
            &json!(true),
            &json!("critical"),
            &json!(false)
        ),
        "{hh}"
    );
    let r = reading(&got, |r| r["value"] == 120.0).expect("the saturated reading");
    assert_eq!(
        (&r["quality"], &r["over_range"]),
        (&json!("good"), &json!(true)),
        "a saturated detector is a measurement, flagged: {r}"
    );
    assert!(
        !got.iter()
            .any(|(_, v)| v["type"] == "alarm" && v["alarm"]["alarm"] == "fault"),
        "no fault alarm for a saturated detector"
    );
    let red = got
        .iter()
        .find(|(t, v)| t.ends_with("/risk/HS-1") && v["risk"]["to"] == "red")
        .unwrap();
    assert_eq!(
        red.1["risk"]["reasons"][0]["rule"],
        "critical alarm on a level 1/2 source"
    );
    assert_schemas(&got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_detector_over_tcp_is_red_at_the_centre() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    saturation_reaches_the_centre(PeerAt::Tcp(port), PeerAt::Tcp(port), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_detector_over_rtu_is_red_at_the_centre() {
    let dir = tempfile::tempdir().unwrap();
    let pty = socat_pair(dir.path());
    saturation_reaches_the_centre(
        PeerAt::Serial(pty.a.clone()),
        PeerAt::Serial(pty.b.clone()),
        dir.path(),
    )
    .await;
}
