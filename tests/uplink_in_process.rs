//! The uplink in process, on tokio's current-thread runtime: nothing in it blocks a
//! runtime worker (the spool has a thread of its own; audit writes go to the blocking
//! pool), so it runs — and is tested — without the multi-thread runtime. Real
//! Mosquitto.

mod common;

use std::{sync::Arc, time::Duration};

use common::{mqtt::*, *};
use hazgate::{
    acquire::LatestStore,
    forward::session::{run_uplink, UplinkFiles},
    judge::service::spawn_judge,
    model::{load_site, PointIndex, SiteSource},
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "current_thread")]
async fn a_reading_and_a_command_go_through_on_the_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path());
    let path = one_detector_site(dir.path(), &PeerAt::Tcp(free_port()), broker.port, "");
    let site = Arc::new(load_site(SiteSource::Path(&path)).unwrap());
    let cfg = site.uplink.clone().unwrap();
    let (got, _sub) = subscriber(broker.port, "hazgate/v1/#").await;

    let cancel = CancellationToken::new();
    let store = LatestStore::new(site.points.len(), 16);
    let judge = spawn_judge(site.clone(), store.clone(), cancel.clone());
    let files = UplinkFiles::open(&cfg).unwrap();
    let uplink = tokio::spawn(run_uplink(
        site.clone(),
        cfg.clone(),
        files,
        store.clone(),
        judge.handle.clone(),
        judge.events,
        cancel.clone(),
    ));
    wait_online(&got).await;

    store.publish(vec![Reading {
        point: PointIndex(0),
        value: Some(Value::Analog(12.5)),
        quality: Quality::Good,
        ts: Timestamp::now(),
        raw: Raw::None,
        range: RangeFlag::Within,
    }]);
    let value_arrived = || {
        got.lock()
            .unwrap()
            .iter()
            .any(|(t, m)| t.ends_with("/telemetry") && m["readings"][0]["value"] == 12.5)
    };
    eventually(
        Duration::from_secs(10),
        "the reading at the broker",
        value_arrived,
    )
    .await;

    // A command by MQTT: parsed, refused by the judge (nothing to acknowledge), audited
    // and answered.
    let mut o = MqttOptions::new("hazgate-test-operator", "127.0.0.1", broker.port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(o, 8);
    let operator = tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
        .publish(
            topic_of(&got, "/status").replace("/status", "/cmd/ack"),
            QoS::AtLeastOnce,
            false,
            r#"{"request_id":"r-1","point":"GT-1","by":"op-zhang"}"#,
        )
        .await
        .unwrap();
    let replied = || {
        got.lock().unwrap().iter().any(|(t, m)| {
            t.ends_with("/cmd/ack/reply") && m["request_id"] == "r-1" && m["ok"] == false
        })
    };
    eventually(Duration::from_secs(10), "the command's reply", replied).await;
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains(r#""request_id":"r-1""#), "{audit}");

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), uplink)
        .await
        .expect("the uplink stops within 10 s")
        .unwrap()
        .unwrap();
    operator.abort();
    let bye = got.lock().unwrap().iter().any(|(t, m)| {
        t.ends_with("/status") && m["state"] == "offline" && m["seq"].as_u64() > Some(0)
    });
    assert!(bye, "the goodbye (not the Last Will) was sent");
}

/// The first topic received that ends with `suffix`.
fn topic_of(got: &Received, suffix: &str) -> String {
    got.lock()
        .unwrap()
        .iter()
        .find(|(t, _)| t.ends_with(suffix))
        .map(|(t, _)| t.clone())
        .unwrap_or_else(|| panic!("nothing on *{suffix}"))
}
