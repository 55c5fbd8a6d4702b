//! Property tests of the judge core on arbitrary input sequences.

mod common;

use std::sync::Arc;

use common::site_from_toml;
use hazgate::{
    judge::{
        alarm::AlarmState,
        engine::{AlarmView, Command},
        state::SavedJudge,
        Engine, Event,
    },
    model::{
        alarm::{AlarmClass, AlarmKind},
        risk::Colour,
        PointIndex, PointKind, Site,
    },
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
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
        /// 0: over range, 1: under range, else within.
        range: u8,
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
        8 => (0..points, prop_oneof![-10.0f64..120.0, Just(f64::NAN), Just(0.0), Just(1.0)], 0u8..8, 0u32..120_000, 0u8..12)
            .prop_map(|(point, value, quality, dt_ms, range)| Input::Reading { point, value, quality, dt_ms, range }),
        2 => (0u32..900_000).prop_map(|dt_ms| Input::Tick { dt_ms }),
        1 => (0..points).prop_map(|point| Input::Ack { point }),
        1 => (0..points, 0u16..4000).prop_map(|(point, secs)| Input::Shelve { point, secs }),
        1 => (0..points, any::<bool>()).prop_map(|(point, on)| Input::OutOfService { point, on }),
        1 => (0u8..4, any::<bool>()).prop_map(|(source, on)| Input::Special { source, on }),
    ]
}

/// The colour the documented default rule table (docs/judge.md) requires for source `s`,
/// computed from the engine's alarm views alone — a model independent of the engine's
/// own rule evaluation. Shelved and out-of-service alarms do not count, but a shelved or
/// out-of-service safety-critical point is a low blind spot; `blind_detectors` gas
/// detectors in fault make the source blind (a high alarm, at the first of them).
fn model_required(engine: &Engine, site: &Site, s: usize, now: i64) -> Colour {
    let hs = &site.hazard_sources[s];
    let views: Vec<AlarmView> = engine
        .alarm_views()
        .into_iter()
        .filter(|v| v.hazard_source == hs.id)
        .collect();
    let kind = |v: &AlarmView| site.point_by_id(v.point.as_str()).unwrap().kind;
    let safety = |k: PointKind| {
        matches!(
            k,
            PointKind::CombustibleGas
                | PointKind::ToxicGas
                | PointKind::SisTrip
                | PointKind::EsdValve
        )
    };
    // (point, class) of every alarm that counts.
    let mut counted: Vec<(String, AlarmClass)> = Vec::new();
    let mut persisting = false;
    let mut in_fault: Vec<String> = Vec::new();
    for v in &views {
        let blind_spot = v.out_of_service || v.shelved_until.is_some();
        if blind_spot && safety(kind(v)) {
            counted.push((v.point.to_string(), AlarmClass::Low));
        }
        if blind_spot || !v.state.is_active() {
            continue;
        }
        counted.push((v.point.to_string(), v.class));
        let since = v.raised_at.map_or(0, |t| t.0);
        if v.state == AlarmState::ActiveUnacknowledged
            && now - since > site.risk.persistence.as_millis() as i64
        {
            persisting = true;
        }
        if v.alarm == AlarmKind::Fault
            && matches!(kind(v), PointKind::CombustibleGas | PointKind::ToxicGas)
            && !in_fault.contains(&v.point.to_string())
        {
            in_fault.push(v.point.to_string());
        }
    }
    if !in_fault.is_empty() && in_fault.len() >= site.risk.blind_detectors as usize {
        // The engine names the first detector in fault in the source's point order.
        let first = hs
            .points
            .iter()
            .map(|p| site.point(*p).id.to_string())
            .find(|id| in_fault.contains(id))
            .unwrap();
        counted.push((first, AlarmClass::High));
    }
    let special = engine.special_operation(s).is_some();
    let has = |c: AlarmClass| counted.iter().any(|(_, k)| *k >= c);
    let mut high_points: Vec<&String> = counted
        .iter()
        .filter(|(_, k)| *k >= AlarmClass::High)
        .map(|(p, _)| p)
        .collect();
    high_points.sort();
    high_points.dedup();
    let l12 = matches!(hs.level, 1 | 2);
    // The default rule table, row by row; the first row that holds wins.
    let rows = [
        (has(AlarmClass::Critical) && l12, Colour::Red),
        (high_points.len() >= 2, Colour::Red),
        (has(AlarmClass::Critical) && special, Colour::Red),
        (has(AlarmClass::Critical), Colour::Orange),
        (has(AlarmClass::High) && l12, Colour::Orange),
        (has(AlarmClass::High), Colour::Yellow),
        (has(AlarmClass::Low), Colour::Yellow),
        (special, Colour::Yellow),
    ];
    let colour = rows
        .iter()
        .find(|(holds, _)| *holds)
        .map_or(Colour::Blue, |(_, c)| *c);
    if persisting {
        colour.up()
    } else {
        colour
    }
}

/// Runs the inputs; checks after each one that every source is at least at the colour
/// the model requires, and at most at the highest colour it required within the hold.
fn run(site: &Arc<Site>, inputs: &[Input]) -> Result<Vec<Event>, TestCaseError> {
    Ok(run_with_restarts(site, inputs, &[])?.events)
}

/// What a run leaves: its events, and at its end every alarm view and level.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Event>,
    views: Vec<AlarmView>,
    levels: Vec<hazgate::judge::risk::RiskLevel>,
}

/// Like [`run`], with the engine saved, written out as JSON, read back and restored onto
/// a new engine before the inputs at `restarts` (a restart of the gateway).
fn run_with_restarts(
    site: &Arc<Site>,
    inputs: &[Input],
    restarts: &[usize],
) -> Result<Outcome, TestCaseError> {
    run_with(site, inputs, restarts, Sweep::Always)
}

/// How a clock tick is applied.
#[derive(Clone, Copy)]
enum Sweep {
    /// `on_tick`: every point, every time.
    Always,
    /// `on_clock`: only when the engine's deadline has come.
    WhenDue,
}

fn run_with(
    site: &Arc<Site>,
    inputs: &[Input],
    restarts: &[usize],
    sweep: Sweep,
) -> Result<Outcome, TestCaseError> {
    let mut engine = Engine::new(site.clone(), Timestamp(0));
    let mut now = 0i64;
    let mut events = Vec::new();
    let hold = site.risk.hold.as_millis() as i64;
    // Per source, the model's required colour after each input: (time, colour).
    let mut required: Vec<Vec<(i64, Colour)>> =
        vec![vec![(0, Colour::Blue)]; site.hazard_sources.len()];
    for (n, i) in inputs.iter().enumerate() {
        if restarts.contains(&n) {
            let json = serde_json::to_string(&engine.save()).unwrap();
            let saved: SavedJudge = serde_json::from_str(&json).unwrap();
            engine = Engine::new(site.clone(), Timestamp(now));
            engine.restore(&saved);
        }
        // What a time-based sweep at the input's instant makes of the state before the
        // input itself is applied (the engine sweeps first when something is due): the
        // colour it may pass through for an instant.
        let at = now
            + match i {
                Input::Reading { dt_ms, .. } | Input::Tick { dt_ms } => i64::from(*dt_ms),
                _ => 0,
            };
        let mut swept = engine.clone();
        swept.on_tick(Timestamp(at), &mut Vec::new());
        for (s, history) in required.iter_mut().enumerate() {
            history.push((at, model_required(&swept, site, s, at)));
        }
        match i {
            Input::Reading {
                point,
                value,
                quality,
                dt_ms,
                range,
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
                    range: match range {
                        0 => RangeFlag::Over,
                        1 => RangeFlag::Under,
                        _ => RangeFlag::Within,
                    },
                };
                engine.on_reading(&r, Timestamp(now), &mut events);
            }
            Input::Tick { dt_ms } => {
                now += i64::from(*dt_ms);
                match sweep {
                    Sweep::Always => engine.on_tick(Timestamp(now), &mut events),
                    Sweep::WhenDue => engine.on_clock(Timestamp(now), &mut events),
                }
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
                    kind: "hot_work".into(),
                    by: "safety".into(),
                };
                engine
                    .on_command(&cmd, Timestamp(now), &mut events)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
        }
        for (s, history) in required.iter_mut().enumerate() {
            let reported = engine.source_level(s).colour;
            let need = model_required(&engine, site, s, now);
            prop_assert!(
                reported >= need,
                "source {s}: reported {reported:?} below required {need:?} at {now} ms after {i:?}"
            );
            history.push((now, need));
            // The colour in force when the hold window opened, and every one since.
            let opened = history
                .iter()
                .rev()
                .find(|(t, _)| *t <= now - hold)
                .map(|(_, c)| *c);
            let ceiling = history
                .iter()
                .filter(|(t, _)| *t > now - hold)
                .map(|(_, c)| *c)
                .chain(opened)
                .max()
                .unwrap_or(Colour::Blue);
            prop_assert!(reported <= ceiling, "source {s}: reported {reported:?} above {ceiling:?}, the most required within the {hold} ms hold, at {now} ms after {i:?}");
            prop_assert!(
                !engine.source_level(s).reasons.is_empty() || reported == Colour::Blue,
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
    let mut levels: Vec<_> = (0..site.hazard_sources.len())
        .map(|s| engine.source_level(s).clone())
        .collect();
    levels.push(engine.enterprise_level().clone());
    Ok(Outcome {
        events,
        views: engine.alarm_views(),
        levels,
    })
}

/// The events with what only a restart adds (`at_restart`) taken out.
fn without_restart_marks(mut events: Vec<Event>) -> Vec<Event> {
    for e in &mut events {
        if let Event::Alarm(a) = e {
            a.at_restart = false;
        }
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Saving and restoring the judge at arbitrary points, the same inputs fed after,
    /// gives exactly the events of the run without restarts.
    #[test]
    fn save_and_restore_anywhere_changes_no_event(
        inputs in prop::collection::vec(input(50), 1..150),
        restarts in prop::collection::vec(0usize..150, 1..6),
    ) {
        let site = site();
        let straight = run_with_restarts(&site, &inputs, &[])?;
        let restarted = run_with_restarts(&site, &inputs, &restarts)?;
        prop_assert_eq!(without_restart_marks(straight.events), without_restart_marks(restarted.events));
        let differ = straight.views.iter().zip(&restarted.views).find(|(a, b)| a != b);
        prop_assert!(differ.is_none(), "alarm views differ: {:?}", differ);
        prop_assert_eq!(straight.views.len(), restarted.views.len());
        prop_assert_eq!(straight.levels, restarted.levels);
    }

    /// Sweeping only when the deadline has come changes nothing: every time-based
    /// change (delays, shelving, holds, persistence) registers its instant.
    #[test]
    fn sweeping_when_due_is_sweeping_always(inputs in prop::collection::vec(input(50), 1..200)) {
        let site = site();
        let always = run_with(&site, &inputs, &[], Sweep::Always)?;
        let due = run_with(&site, &inputs, &[], Sweep::WhenDue)?;
        prop_assert_eq!(always, due);
    }

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
            dt_ms: 0,
            range: 9,
        };
        12
    ];
    inputs.push(Input::Reading {
        point: 34,
        value: 0.0,
        quality: 0,
        dt_ms: 0,
        range: 9,
    });
    inputs.push(Input::Tick { dt_ms: 376213 });
    for dt in [53877, 115497, 72615, 118310, 109682, 100733] {
        inputs.push(Input::Reading {
            point: 0,
            value: 0.0,
            quality: 0,
            dt_ms: dt,
            range: 9,
        });
    }
    inputs.push(Input::Tick { dt_ms: 659693 });
    for dt in [68277, 53228, 71876] {
        inputs.push(Input::Reading {
            point: 0,
            value: 0.0,
            quality: 0,
            dt_ms: dt,
            range: 9,
        });
    }
    run(&site, &inputs).unwrap();
}

/// Found by the property above (on CI): a shelving that ends while its point is out of
/// service ends on the first sweep after the point is back, whether or not every tick
/// sweeps.
#[test]
fn shelving_that_ended_out_of_service_ends_when_back_in_service() {
    let site = site();
    let inputs = [
        Input::OutOfService {
            point: 24,
            on: true,
        },
        Input::Shelve { point: 24, secs: 1 },
        Input::Tick { dt_ms: 5000 },
        Input::OutOfService {
            point: 24,
            on: false,
        },
        Input::Tick { dt_ms: 0 },
    ];
    let always = run_with(&site, &inputs, &[], Sweep::Always).unwrap();
    let due = run_with(&site, &inputs, &[], Sweep::WhenDue).unwrap();
    assert!(
        due.views.iter().all(|v| v.shelved_until.is_none()),
        "still shelved: {:?}",
        due.views
    );
    assert_eq!(always, due);
}
