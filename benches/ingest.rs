//! Central ingest's per-message work: schema check + mapping of a gateway's telemetry
//! message (500 readings, as batched by `max_readings_per_message`) to line protocol.
//! Throughput in readings; with the write to the store, this bounds ingest's rate.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hazgate::ingest::{message::decode, tables::Tables};

const READINGS: usize = 500;

fn message() -> Vec<u8> {
    let readings: Vec<serde_json::Value> = (0..READINGS)
        .map(|i| {
            serde_json::json!({"point": format!("PT-{i}"), "hazard_source": "HS-01", "device": "D1",
                "kind": "pressure", "value": i as f64 / 10.0, "unit": "MPa", "quality": "good",
                "ts": "2026-11-23T07:42:58.001Z"})
        })
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"seq": 1, "ts": "2026-11-23T07:42:59.123Z", "park": "P",
        "enterprise": "E", "gateway": "G", "type": "telemetry", "readings": readings}),
    )
    .expect("JSON")
}

fn bench(c: &mut Criterion) {
    let msg = message();
    let topic = "hazgate/v1/P/E/G/telemetry";
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(READINGS as u64));
    g.bench_function("decode_500_readings_to_line_protocol", |b| {
        b.iter(|| {
            let d = decode("hazgate", topic, &msg, 1 << 20, 0, &Tables::default()).expect("valid");
            d.lines.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
