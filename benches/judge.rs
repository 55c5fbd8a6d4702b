//! Alarm + risk evaluation per reading, on the demo site (50 points, 4 hazard sources).
//!
//! Two workloads: steady readings (the common case: limits checked, nothing changes)
//! and a leak crossing limits back and forth (every reading changes an alarm and
//! re-evaluates its hazard source's colour).

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hazgate::{
    judge::Engine,
    model::{load_site, SiteSource, DEMO_SITE_TOML},
    reading::{Quality, Raw, Reading, Timestamp, Value},
};

fn readings(site: &hazgate::model::Site, leak: bool) -> Vec<Reading> {
    (0..1000)
        .map(|i| {
            let p = &site.points[i % site.points.len()];
            let value = if p.is_discrete() {
                Value::Discrete(p.normal.unwrap_or(false))
            } else if leak && p.id.as_str() == "GT-101" {
                // Alternates 50 ↔ 5 %LEL: raises and clears H and HH each time.
                Value::Analog(if (i / site.points.len()) % 2 == 0 {
                    50.0
                } else {
                    5.0
                })
            } else {
                Value::Analog(
                    p.valid_range()
                        .map_or(1.0, |[lo, hi]| lo + (hi - lo) * 0.01),
                )
            };
            Reading {
                point: p.index,
                value: Some(value),
                quality: Quality::Good,
                ts: Timestamp(i as i64 * 20),
                raw: Raw::None,
                range: Default::default(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let site = Arc::new(
        load_site(SiteSource::Text {
            name: "demo",
            toml: DEMO_SITE_TOML,
        })
        .expect("demo site"),
    );
    let mut group = c.benchmark_group("judge");
    for (name, leak) in [("steady_reading", false), ("alarm_changing_reading", true)] {
        let input = readings(&site, leak);
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_function(name, |b| {
            let mut engine = Engine::new(site.clone(), Timestamp(0));
            let mut out = Vec::with_capacity(64);
            let mut t = 0i64;
            b.iter(|| {
                for r in &input {
                    t += 1;
                    engine.on_reading(black_box(r), Timestamp(t), &mut out);
                }
                out.clear();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
