//! The durable spool: write (one fsync per commit) and replay (read + ack after PUBACK)
//! of telemetry messages of 50 readings (the demo site) encoded as published.
//! Throughput is reported in readings; bytes per reading are printed once.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hazgate::{
    forward::{
        collect::frame,
        encode::Encoder,
        spool::{Class, Spool},
    },
    model::{load_site, SiteSource, DEMO_SITE_TOML},
    reading::{Quality, Raw, Reading, Timestamp, Value},
};

const MESSAGES: usize = 20; // per commit: one 200 ms window of a 1,000-point gateway

fn bench(c: &mut Criterion) {
    let site = load_site(SiteSource::Text {
        name: "demo",
        toml: DEMO_SITE_TOML,
    })
    .expect("demo site");
    let readings: Vec<Reading> = site
        .points
        .iter()
        .map(|p| Reading {
            point: p.index,
            value: Some(if p.is_discrete() {
                Value::Discrete(false)
            } else {
                Value::Analog(12.345)
            }),
            quality: Quality::Good,
            ts: Timestamp(1_795_419_779_123),
            raw: Raw::None,
            range: Default::default(),
        })
        .collect();
    let enc = Encoder::new(&site);
    let payload = frame(
        "hazgate/v1/P/E/G/telemetry",
        false,
        &enc.telemetry(123_456, Timestamp(1_795_419_779_200), &readings),
    );
    eprintln!(
        "telemetry message: {} readings, {} bytes framed, {:.1} bytes per reading",
        readings.len(),
        payload.len(),
        payload.len() as f64 / readings.len() as f64
    );
    let per_commit = (MESSAGES * readings.len()) as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = Spool::open(&dir.path().join("bench.redb"), u64::MAX).expect("spool");
    let classes = vec![Class::Telemetry; MESSAGES];
    let mut g = c.benchmark_group("spool");
    g.sample_size(30);
    g.throughput(Throughput::Elements(per_commit));
    g.bench_function("write_commit_20_messages", |b| {
        b.iter(|| {
            spool
                .append(&classes, |_, _| payload.clone())
                .expect("append")
        })
    });
    g.bench_function("replay_20_messages", |b| {
        b.iter_batched(
            || {
                spool
                    .append(&classes, |_, _| payload.clone())
                    .expect("append");
            },
            |()| {
                let recs = spool.pending(MESSAGES, |_| false).expect("pending");
                let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
                spool.ack(&seqs).expect("ack");
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
