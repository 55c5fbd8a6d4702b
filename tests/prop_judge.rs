//! Property tests of the judge core on arbitrary input sequences.

mod common;

use std::sync::Arc;

use common::site_from_toml;
use hazgate::{
    judge::{engine::Command, Engine, Event},
    model::{PointIndex, Site},
    reading::{Quality, Raw, Reading, Timestamp, Value},
};
use proptest::prelude::*;

fn site() -> Arc<Site> {
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/firmware-config/demo-site.toml"
    ))
    .unwrap();
    site_from_toml(&demo)
}

#[derive(Debug, Clone)]
enum Input {
    Reading {
        point: u32,
        value: f64,
        quality: u8,
        dt_ms: u32,
    },
    Tick {
        dt_ms: u32,
    },
    Ack {
        point: u32,
    },
    Shelve {
        point: u32,
        secs: u16,
    },
    OutOfService {
        point: u32,
        on: bool,
    },
    Special {
        source: u8,
        on: bool,
    },
}

fn input(points: u32) -> impl Strategy<Value = Input> {
    prop_oneof![
        8 => (0..points, prop_oneof![-10.0f64..120.0, Just(f64::NAN), Just(0.0), Just(1.0)], 0u8..8, 0u32..120_000)
            .prop_map(|(point, value, quality, dt_ms)| Input::Reading { point, value, quality, dt_ms }),
        2 => (0u32..900_000).prop_map(|dt_ms| Input::Tick { dt_ms }),
        1 => (0..points).prop_map(|point| Input::Ack { point }),
        1 => (0..points, 0u16..4000).prop_map(|(point, secs)| Input::Shelve { point, secs }),
        1 => (0..points, any::<bool>()).prop_map(|(point, on)| Input::OutOfService { point, on }),
        1 => (0u8..4, any::<bool>()).prop_map(|(source, on)| Input::Special { source, on }),
    ]
}

/// Runs the inputs; checks after each one that no source is below what its rules require.
fn run(site: &Arc<Site>, inputs: &[Input]) -> Result<Vec<Event>, TestCaseError> {
    let mut engine = Engine::new(site.clone(), Timestamp(0));
    let mut now = 0i64;
    let mut events = Vec::new();
    for i in inputs {
        match i {
            Input::Reading {
                point,
                value,
                quality,
                dt_ms,
            } => {
                now += i64::from(*dt_ms);
                let p = site.point(PointIndex(*point));
                let quality = match quality {
                    0 => Quality::CommFailure,
                    1 => Quality::SensorFault,
                    2 => Quality::Stale,
                    3 => Quality::DeviceException(2),
                    _ => Quality::Good,
                };
                let value = if p.is_discrete() {
                    Value::Discrete(*value > 0.5)
                } else {
                    Value::Analog(*value)
                };
                let r = Reading {
                    point: p.index,
                    value: quality.is_good().then_some(value),
                    quality,
                    ts: Timestamp(now),
                    raw: Raw::None,
                    range: Default::default(),
                };
                engine.on_reading(&r, Timestamp(now), &mut events);
            }
            Input::Tick { dt_ms } => {
                now += i64::from(*dt_ms);
                engine.on_tick(Timestamp(now), &mut events);
            }
            Input::Ack { point } => {
                let id = site.point(PointIndex(*point)).id.to_string();
                let _ = engine.on_command(
                    &Command::Acknowledge {
                        point: id,
                        alarm: None,
                        by: "op".into(),
                    },
                    Timestamp(now),
                    &mut events,
                );
            }
            Input::Shelve { point, secs } => {
                let id = site.point(PointIndex(*point)).id.to_string();
                let cmd = Command::Shelve {
                    point: id,
                    alarm: None,
                    duration_s: f64::from(*secs),
                    by: "op".into(),
                };
                let _ = engine.on_command(&cmd, Timestamp(now), &mut events);
            }
            Input::OutOfService { point, on } => {
                let id = site.point(PointIndex(*point)).id.to_string();
                let cmd = Command::OutOfService {
                    point: id,
                    enabled: *on,
                    by: "tech".into(),
                };
                engine
                    .on_command(&cmd, Timestamp(now), &mut events)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Input::Special { source, on } => {
                let id = site.hazard_sources[usize::from(*source) % site.hazard_sources.len()]
                    .id
                    .to_string();
                let cmd = Command::SpecialOperation {
                    hazard_source: id,
                    active: *on,
                    kind: "hot work".into(),
                    by: "safety".into(),
                };
                engine
                    .on_command(&cmd, Timestamp(now), &mut events)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
        }
        for s in 0..site.hazard_sources.len() {
            let reported = engine.source_level(s).colour;
            let required = engine.required_colour(s, Timestamp(now));
            prop_assert!(reported >= required, "source {s}: reported {reported:?} below required {required:?} at {now} ms after {i:?}");
            prop_assert!(
                !engine.source_level(s).reasons.is_empty()
                    || reported == hazgate::judge::Colour::Blue,
                "a colour needs its reasons"
            );
        }
        let top = (0..site.hazard_sources.len())
            .map(|s| engine.source_level(s).colour)
            .max()
            .unwrap();
        prop_assert_eq!(
            engine.enterprise_level().colour,
            top,
            "enterprise = highest source"
        );
    }
    Ok(events)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn engine_never_panics_never_under_reports_and_is_deterministic(inputs in prop::collection::vec(input(50), 1..200)) {
        let site = site();
        prop_assume!(site.points.len() == 50);
        let first = run(&site, &inputs)?;
        let second = run(&site, &inputs)?;
        prop_assert_eq!(first, second, "same input, same events");
    }
}

/// Found by the property above: persistence escalation must happen on the first input
/// after its deadline, not wait for the next tick.
#[test]
fn persistence_escalates_on_the_first_input_after_its_deadline() {
    let site = site();
    let mut inputs = vec![
        Input::Reading {
            point: 0,
            value: 0.0,
            quality: 0,
            dt_ms: 0
        };
        12
    ];
    inputs.push(Input::Reading {
        point: 34,
        value: 0.0,
        quality: 0,
        dt_ms: 0,
    });
    inputs.push(Input::Tick { dt_ms: 376213 });
    for dt in [53877, 115497, 72615, 118310, 109682, 100733] {
        inputs.push(Input::Reading {
            point: 0,
            value: 0.0,
            quality: 0,
            dt_ms: dt,
        });
    }
    inputs.push(Input::Tick { dt_ms: 659693 });
    for dt in [68277, 53228, 71876] {
        inputs.push(Input::Reading {
            point: 0,
            value: 0.0,
            quality: 0,
            dt_ms: dt,
        });
    }
    run(&site, &inputs).unwrap();
}
