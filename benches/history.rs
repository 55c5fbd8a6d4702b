//! The gateway's history: one commit window of a 10,000-point gateway polled every
//! second (5 s: 50,000 readings of register values scaled by 0.1, with noise) packed
//! into a chunk, and read back. Throughput in readings; bytes per reading are printed.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hazgate::{
    history::codec,
    model::PointIndex,
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
};

const POINTS: u32 = 10_000;
const SCANS: i64 = 5;

fn window() -> Vec<Reading> {
    let mut x = 7u64;
    let mut out = Vec::new();
    for scan in 0..SCANS {
        for p in 0..POINTS {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let raw = 200 + (p % 50) + (x >> 60) as u32; // a level, and noise of a few counts
            out.push(Reading {
                point: PointIndex(p),
                value: Some(Value::Analog(f64::from(raw) * 0.1)),
                quality: Quality::Good,
                ts: Timestamp(1_795_419_779_000 + scan * 1000 + i64::from(p / 500)),
                raw: Raw::None,
                range: RangeFlag::Within,
            });
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let readings = window();
    let chunk = codec::encode(&readings);
    println!(
        "history chunk: {} readings in {} bytes: {:.2} bytes per reading",
        readings.len(),
        chunk.len(),
        chunk.len() as f64 / readings.len() as f64
    );
    let mut g = c.benchmark_group("history");
    g.throughput(Throughput::Elements(readings.len() as u64));
    g.bench_function("encode_a_5s_window_of_10k_points", |b| {
        b.iter(|| codec::encode(&readings).len())
    });
    g.bench_function("decode_it", |b| {
        b.iter(|| codec::decode(&chunk).map(|r| r.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
