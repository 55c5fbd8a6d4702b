//! Scenario tests of the judge core, driven with recorded reading sequences and an
//! injected clock (no I/O): alarm levels and times, colour sequences, deadband,
//! bad quality, shelving, out of service, special operations.

mod common;

use std::sync::Arc;

use common::{site_from_toml, GATEWAY_TOML};
use hazgate::{
    acquire::decode::{decode_point, encode, Number, PointData},
    judge::{
        alarm::AlarmState,
        engine::{AlarmAction, AlarmEvent, AlarmView, Command, CommandError, Event, RiskScope},
        Engine,
    },
    model::{alarm::AlarmKind, risk::Colour, Site},
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
};

/// A level-1 tank farm (two combustible detectors, a SIS trip, a level with limits)
/// and a level-3 ammonia farm; risk hold 600 s (the default).
fn site() -> Arc<Site> {
    site_from_toml(&format!(
        r#"{GATEWAY_TOML}
[[channels]]
id = "c"
kind = "tcp"
host = "127.0.0.1"
port = 502
  [[channels.devices]]
  id = "D"
  unit_id = 1

[[hazard_sources]]
id = "HS-1"
name = "LPG tank farm"
kind = "tank_farm"
level = 1
  [[hazard_sources.points]]
  id = "GT-1"
  kind = "combustible_gas"
  device = "D"
  table = "holding"
  address = 0
  data_type = "f32"
  valid_range = [0.0, 100.0]
  [[hazard_sources.points]]
  id = "GT-2"
  kind = "combustible_gas"
  device = "D"
  table = "holding"
  address = 2
  data_type = "f32"
  valid_range = [0.0, 100.0]
  [[hazard_sources.points]]
  id = "GT-3"
  kind = "combustible_gas"
  device = "D"
  table = "input"
  address = 0
  data_type = "u16"
  raw_range = [4000.0, 20000.0]
  eng_range = [0.0, 100.0]
  loop_current = {{}}
  [[hazard_sources.points]]
  id = "XS-1"
  kind = "sis_trip"
  device = "D"
  table = "discrete_input"
  address = 0
  [[hazard_sources.points]]
  id = "LT-1"
  kind = "level"
  device = "D"
  table = "holding"
  address = 4
  data_type = "f32"
  alarms = {{ h = 85.0, hh = 95.0, deadband = 2.0, on_delay_s = 10.0, off_delay_s = 10.0 }}
  [[hazard_sources.points]]
  id = "LT-2"
  kind = "level"
  device = "D"
  table = "input"
  address = 1
  data_type = "u16"
  raw_range = [4000.0, 20000.0]
  eng_range = [0.0, 100.0]
  loop_current = {{}}
  alarms = {{ h = 85.0, hh = 95.0, l = 10.0, ll = 5.0, deadband = 2.0, on_delay_s = 10.0, off_delay_s = 10.0 }}
  [[hazard_sources.points]]
  id = "TT-1"
  kind = "temperature"
  device = "D"
  table = "holding"
  address = 6
  data_type = "f32"
  alarms = {{ rate_per_min = 10.0, on_delay_s = 0.0, off_delay_s = 0.0 }}
  [[hazard_sources.points]]
  id = "XV-1"
  kind = "esd_valve"
  device = "D"
  table = "discrete_input"
  address = 1
  normal = true

[[hazard_sources]]
id = "HS-3"
name = "Ammonia farm"
kind = "tank_farm"
level = 3
  [[hazard_sources.points]]
  id = "AT-1"
  kind = "toxic_gas"
  gas = "nh3"
  device = "D"
  table = "holding"
  address = 10
  data_type = "u16"
  [[hazard_sources.points]]
  id = "AT-2"
  kind = "toxic_gas"
  gas = "nh3"
  device = "D"
  table = "holding"
  address = 11
  data_type = "u16"
  # A detector whose range (0-50 ppm) ends below its second-level limit (86 ppm).
  valid_range = [0.0, 50.0]
  [[hazard_sources.points]]
  id = "AT-3"
  kind = "toxic_gas"
  gas = "nh3"
  device = "D"
  table = "holding"
  address = 12
  data_type = "u16"
"#
    ))
}

struct Run {
    engine: Engine,
    site: Arc<Site>,
    events: Vec<(i64, Event)>,
}

impl Run {
    fn new() -> Self {
        let site = site();
        Self {
            engine: Engine::new(site.clone(), Timestamp(0)),
            site,
            events: Vec::new(),
        }
    }

    fn feed(&mut self, point: &str, t_s: f64, value: Option<f64>, quality: Quality) {
        let p = self.site.point_by_id(point).unwrap();
        let value = value.map(|v| {
            if p.is_discrete() {
                Value::Discrete(v != 0.0)
            } else {
                Value::Analog(v)
            }
        });
        let t = Timestamp((t_s * 1000.0) as i64);
        let r = Reading {
            point: p.index,
            value,
            quality,
            ts: t,
            raw: Raw::None,
            range: Default::default(),
        };
        let mut out = Vec::new();
        self.engine.on_reading(&r, t, &mut out);
        self.events.extend(out.into_iter().map(|e| (t.0, e)));
    }

    /// What a device sends for raw value `raw`, laid into the point's registers and
    /// decoded as acquisition does: quality and range flags come from the decoder.
    fn device_raw(&mut self, point: &str, t_s: f64, raw: f64) -> Reading {
        let p = self.site.point_by_id(point).unwrap();
        let words = encode(
            Number::Float(raw),
            p.register.data_type,
            p.register.word_order,
        );
        let t = Timestamp((t_s * 1000.0) as i64);
        let r = decode_point(p, PointData::Words(&words), t);
        let mut out = Vec::new();
        self.engine.on_reading(&r, t, &mut out);
        self.events.extend(out.into_iter().map(|e| (t.0, e)));
        r
    }

    /// A device's reading of engineering value `v`.
    fn device(&mut self, point: &str, t_s: f64, v: f64) -> Reading {
        let raw = self.site.point_by_id(point).unwrap().scaling.invert(v);
        self.device_raw(point, t_s, raw)
    }

    /// A 4–20 mA device's reading at `ma` milliamps.
    fn device_ma(&mut self, point: &str, t_s: f64, ma: f64) -> Reading {
        let lc = self
            .site
            .point_by_id(point)
            .unwrap()
            .loop_current
            .as_deref()
            .copied()
            .unwrap();
        self.device_raw(point, t_s, lc.raw_at(ma))
    }

    fn alarm(&self, point: &str, kind: AlarmKind) -> AlarmView {
        self.engine
            .alarm_views()
            .into_iter()
            .find(|a| a.point.as_str() == point && a.alarm == kind)
            .unwrap_or_else(|| panic!("no {kind:?} alarm view of {point}"))
    }

    /// Alarm events of a point with their `over_range` flag.
    fn over_range_flags(&self, point: &str) -> Vec<(i64, AlarmKind, AlarmAction, bool)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Alarm(a) if a.point.as_str() == point => {
                    Some((*t, a.alarm, a.action, a.over_range))
                }
                _ => None,
            })
            .collect()
    }

    fn good(&mut self, point: &str, t_s: f64, v: f64) {
        self.feed(point, t_s, Some(v), Quality::Good);
    }

    fn tick(&mut self, t_s: f64) {
        let t = Timestamp((t_s * 1000.0) as i64);
        let mut out = Vec::new();
        self.engine.on_tick(t, &mut out);
        self.events.extend(out.into_iter().map(|e| (t.0, e)));
    }

    fn command(&mut self, t_s: f64, cmd: Command) -> Result<(), CommandError> {
        let t = Timestamp((t_s * 1000.0) as i64);
        let mut out = Vec::new();
        let r = self.engine.on_command(&cmd, t, &mut out);
        self.events.extend(out.into_iter().map(|e| (t.0, e)));
        r
    }

    fn alarm_events(&self, point: &str) -> Vec<(i64, AlarmKind, AlarmAction, Option<f64>)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Alarm(AlarmEvent {
                    point: p,
                    alarm,
                    action,
                    value,
                    ..
                }) if p.as_str() == point => Some((*t, *alarm, *action, *value)),
                _ => None,
            })
            .collect()
    }

    fn colours(&self, source: &str) -> Vec<(i64, Colour)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Risk(r)
                    if r.scope
                        == RiskScope::HazardSource(hazgate::model::HazardSourceId::new(source)) =>
                {
                    Some((*t, r.to))
                }
                _ => None,
            })
            .collect()
    }

    fn enterprise_colours(&self) -> Vec<Colour> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Risk(r) if r.scope == RiskScope::Enterprise => Some(r.to),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn combustible_leak_ramp_raises_first_then_second_level_and_returns_after_hold() {
    let mut run = Run::new();
    // 1 %LEL rising 1 %LEL/s to 60, holding, then falling back to 1 from t = 120 s.
    for t in 0..=300 {
        let t = f64::from(t);
        let v = if t <= 59.0 {
            1.0 + t
        } else if t < 120.0 {
            60.0
        } else {
            (60.0 - (t - 120.0)).max(1.0)
        };
        run.good("GT-1", t, v);
        run.tick(t);
    }
    let ev = run.alarm_events("GT-1");
    // First-level (H, 20 %LEL) at t = 19 s (value 20), second-level (HH, 40) at t = 39 s.
    assert_eq!(
        ev[0],
        (19_000, AlarmKind::H, AlarmAction::Raised, Some(20.0))
    );
    assert_eq!(
        ev[1],
        (39_000, AlarmKind::Hh, AlarmAction::Raised, Some(40.0))
    );
    // Falling: HH clears once back past 40 by the 1 %LEL deadband (39, t = 141 s);
    // H at 19 (t = 161 s). In between (39–40) it stays active: no chatter.
    assert_eq!(
        ev[2],
        (141_000, AlarmKind::Hh, AlarmAction::Cleared, Some(39.0))
    );
    assert_eq!(
        ev[3],
        (161_000, AlarmKind::H, AlarmAction::Cleared, Some(19.0))
    );
    assert_eq!(ev.len(), 4);
    // Level-1 source: H → orange at once, HH → red at once. Going down waits for the
    // 600 s hold from the first moment red was no longer required (141 s), by which
    // time nothing is required: straight to blue at 741 s.
    let mut more = run;
    for t in 301..=800 {
        more.tick(f64::from(t));
    }
    assert_eq!(
        more.colours("HS-1"),
        vec![
            (19_000, Colour::Orange),
            (39_000, Colour::Red),
            (741_000, Colour::Blue)
        ]
    );
    assert_eq!(
        more.enterprise_colours(),
        vec![Colour::Orange, Colour::Red, Colour::Blue]
    );
}

#[test]
fn a_value_oscillating_inside_the_deadband_raises_exactly_one_alarm() {
    let mut run = Run::new();
    for i in 0..200 {
        // 20.0, 19.2, 20.0, 19.2 … around the 20 %LEL limit with a 1 %LEL deadband.
        let v = if i % 2 == 0 { 20.0 } else { 19.2 };
        run.good("GT-1", f64::from(i), v);
    }
    let raised = run
        .alarm_events("GT-1")
        .iter()
        .filter(|e| e.2 == AlarmAction::Raised)
        .count();
    assert_eq!(raised, 1);
}

#[test]
fn comm_failure_while_in_hh_keeps_the_alarm_flagged() {
    let mut run = Run::new();
    run.good("GT-1", 0.0, 45.0);
    run.feed("GT-1", 1.0, None, Quality::CommFailure);
    run.feed("GT-1", 2.0, None, Quality::CommFailure);
    let views = run.engine.alarm_views();
    let hh = views
        .iter()
        .find(|a| a.point.as_str() == "GT-1" && a.alarm == AlarmKind::Hh)
        .unwrap();
    assert_eq!(
        hh.state,
        AlarmState::ActiveUnacknowledged,
        "bad quality never clears a process alarm"
    );
    assert!(hh.bad_quality);
    let fault = views
        .iter()
        .find(|a| a.point.as_str() == "GT-1" && a.alarm == AlarmKind::Fault)
        .unwrap();
    assert!(
        fault.state.is_active(),
        "comm loss raises the point's fault alarm"
    );
    assert_eq!(run.engine.source_level(0).colour, Colour::Red);
    // Good again below the limit: HH clears normally.
    run.good("GT-1", 3.0, 2.0);
    let hh = run
        .engine
        .alarm_views()
        .into_iter()
        .find(|a| a.point.as_str() == "GT-1" && a.alarm == AlarmKind::Hh)
        .unwrap();
    assert_eq!(hh.state, AlarmState::ReturnedUnacknowledged);
    assert!(!hh.bad_quality);
}

#[test]
fn on_delay_holds_a_process_alarm_and_brief_excursions_raise_nothing() {
    let mut run = Run::new();
    run.good("LT-1", 0.0, 86.0);
    run.good("LT-1", 5.0, 84.0); // back below H - deadband? 84 > 83: condition holds
    run.good("LT-1", 6.0, 80.0); // clear before the 10 s on-delay
    run.tick(20.0);
    assert!(
        run.alarm_events("LT-1").is_empty(),
        "{:?}",
        run.alarm_events("LT-1")
    );
    run.good("LT-1", 30.0, 90.0);
    run.tick(39.0);
    assert!(run.alarm_events("LT-1").is_empty());
    run.tick(40.0);
    assert_eq!(
        run.alarm_events("LT-1"),
        vec![(40_000, AlarmKind::H, AlarmAction::Raised, Some(90.0))]
    );
}

#[test]
fn sis_trip_on_a_level_1_source_is_red_at_once() {
    let mut run = Run::new();
    run.good("XS-1", 0.0, 0.0);
    assert!(run.colours("HS-1").is_empty());
    run.good("XS-1", 1.0, 1.0);
    assert_eq!(run.colours("HS-1"), vec![(1_000, Colour::Red)]);
}

#[test]
fn spreading_toxic_leak_on_a_level_3_source_walks_yellow_orange_red() {
    let mut run = Run::new();
    let oel = 43.0; // NH3 PC-STEL in ppm
    run.good("AT-1", 0.0, 1.0);
    run.good("AT-1", 10.0, oel + 1.0); // first-level: high → yellow on a level-3 source
    run.good("AT-1", 20.0, 2.0 * oel + 1.0); // second-level: critical → orange
    run.good("AT-2", 30.0, oel + 1.0); // a second point: spreading → red
    assert_eq!(
        run.colours("HS-3"),
        vec![
            (10_000, Colour::Yellow),
            (20_000, Colour::Orange),
            (30_000, Colour::Red)
        ]
    );
    let red = run.engine.source_level(1);
    assert_eq!(
        red.reasons[0].rule,
        "high or critical alarms at 2+ points (spreading)"
    );
    assert!(
        red.reasons[0].alarms.contains(&"AT-2:h".to_string()),
        "{:?}",
        red.reasons
    );
    assert_eq!(
        red.reasons[0].since,
        Timestamp(10_000),
        "since the first matching alarm"
    );
}

#[test]
fn three_detectors_in_fault_make_a_source_blind() {
    let mut run = Run::new();
    run.feed("AT-1", 0.0, None, Quality::CommFailure);
    run.feed("AT-2", 0.0, None, Quality::SensorFault);
    assert_eq!(
        run.engine.source_level(1).colour,
        Colour::Yellow,
        "single faults are low"
    );
    run.feed("AT-3", 1.0, None, Quality::Stale);
    // Blind = high on a level-3 source; plus the two points with low faults: still yellow
    // by the table (high on level 3), the reason names the blind source.
    let level = run.engine.source_level(1);
    assert!(
        level
            .reasons
            .iter()
            .any(|r| r.alarms.iter().any(|a| a.contains("source blind"))),
        "{level:?}"
    );
}

#[test]
fn shelving_removes_an_alarm_from_colours_until_it_expires_and_counts_a_blind_spot() {
    let mut run = Run::new();
    run.good("GT-2", 0.0, 22.0); // H on a level-1 source → orange
    assert_eq!(run.engine.source_level(0).colour, Colour::Orange);
    // Shelved for 900 s, longer than the 600 s hold, so the hold cannot hide the result.
    run.command(
        1.0,
        Command::Shelve {
            point: "GT-2".into(),
            alarm: None,
            duration_s: 900.0,
            by: "op-zhang".into(),
        },
    )
    .unwrap();
    // The shelved H no longer counts; a shelved gas detector is a low blind spot, so
    // yellow is required from 1 s and reported once the hold ends (601 s), not blue.
    for t in 2..=890 {
        run.good("GT-2", f64::from(t), 22.0);
        run.tick(f64::from(t));
    }
    assert_eq!(
        run.colours("HS-1"),
        vec![(0, Colour::Orange), (601_000, Colour::Yellow)],
        "orange held for 600 s, then the blind-spot yellow"
    );
    let yellow = run.engine.source_level(0);
    assert!(
        yellow
            .reasons
            .iter()
            .any(|r| r.alarms.iter().any(|a| a.contains("shelved"))),
        "{yellow:?}"
    );
    assert_eq!(
        yellow.reasons[0].since,
        Timestamp(1_000),
        "the blind spot dates from the shelving, not from 1970"
    );
    // Shelving ends at 901 s: the H counts again, orange at once.
    run.tick(901.0);
    let unshelved = run
        .alarm_events("GT-2")
        .iter()
        .any(|e| e.2 == AlarmAction::Unshelved && e.0 == 901_000);
    assert!(unshelved, "{:?}", run.alarm_events("GT-2"));
    assert_eq!(run.colours("HS-1").last(), Some(&(901_000, Colour::Orange)));
    assert!(run
        .command(
            2.0,
            Command::Shelve {
                point: "GT-2".into(),
                alarm: None,
                duration_s: 1e9,
                by: "x".into()
            }
        )
        .is_err());
}

#[test]
fn out_of_service_is_visible_counted_and_frozen() {
    let mut run = Run::new();
    run.command(
        0.0,
        Command::OutOfService {
            point: "GT-1".into(),
            enabled: true,
            by: "tech-li".into(),
        },
    )
    .unwrap();
    run.good("GT-1", 1.0, 45.0); // maintenance gas test: no alarm
    assert!(!run
        .alarm_events("GT-1")
        .iter()
        .any(|e| e.2 == AlarmAction::Raised));
    let counts = run.engine.alarm_counts();
    assert!(counts.out_of_service >= 3, "{counts:?}");
    // A gas detector out of service is a blind spot: low → yellow.
    assert_eq!(run.engine.source_level(0).colour, Colour::Yellow);
    run.command(
        2.0,
        Command::OutOfService {
            point: "GT-1".into(),
            enabled: false,
            by: "tech-li".into(),
        },
    )
    .unwrap();
    run.good("GT-1", 3.0, 45.0);
    assert!(run
        .alarm_events("GT-1")
        .iter()
        .any(|e| e.1 == AlarmKind::Hh && e.2 == AlarmAction::Raised));
}

#[test]
fn special_operation_raises_the_floor_and_escalates_critical_to_red() {
    let mut run = Run::new();
    run.command(
        0.0,
        Command::SpecialOperation {
            hazard_source: "HS-3".into(),
            active: true,
            kind: "hot_work".into(),
            by: "safety-wang".into(),
        },
    )
    .unwrap();
    assert_eq!(run.engine.source_level(1).colour, Colour::Yellow);
    run.good("AT-1", 1.0, 90.0); // second-level on a level-3 source during hot work
    assert_eq!(run.engine.source_level(1).colour, Colour::Red);
    assert_eq!(
        run.command(
            2.0,
            Command::SpecialOperation {
                hazard_source: "HS-9".into(),
                active: true,
                kind: String::new(),
                by: "x".into()
            }
        ),
        Err(CommandError::UnknownSource("HS-9".into()))
    );
}

#[test]
fn acknowledgement_and_persistence() {
    let mut run = Run::new();
    run.good("AT-1", 0.0, 50.0); // first-level on level 3 → yellow
    run.tick(1801.0);
    assert_eq!(
        run.engine.source_level(1).colour,
        Colour::Orange,
        "unacknowledged > 30 min: one up"
    );
    run.command(
        1802.0,
        Command::Acknowledge {
            point: "AT-1".into(),
            alarm: None,
            by: "op-zhao".into(),
        },
    )
    .unwrap();
    let ack = run
        .alarm_events("AT-1")
        .into_iter()
        .find(|e| e.2 == AlarmAction::Acknowledged)
        .unwrap();
    assert_eq!((ack.0, ack.1), (1_802_000, AlarmKind::H));
    assert_eq!(
        run.command(
            1803.0,
            Command::Acknowledge {
                point: "AT-1".into(),
                alarm: None,
                by: "op-zhao".into()
            }
        ),
        Err(CommandError::NothingToAcknowledge("AT-1".into()))
    );
    assert!(run
        .command(
            1803.0,
            Command::Acknowledge {
                point: "AT-1".into(),
                alarm: None,
                by: " ".into()
            }
        )
        .is_err());
}

#[test]
fn rate_of_change_alarm_on_a_fast_temperature_rise() {
    let mut run = Run::new();
    run.good("TT-1", 0.0, 20.0);
    run.good("TT-1", 60.0, 25.0); // 5 °C/min: fine
    run.good("TT-1", 90.0, 32.0); // 14 °C/min: above 10
    run.good("TT-1", 150.0, 33.0); // 1 °C/min: clears
    let ev = run.alarm_events("TT-1");
    assert_eq!(
        ev.iter().map(|e| (e.0, e.1, e.2)).collect::<Vec<_>>(),
        vec![
            (90_000, AlarmKind::Roc, AlarmAction::Raised),
            (150_000, AlarmKind::Roc, AlarmAction::Cleared)
        ]
    );
}

#[test]
fn an_esd_valve_leaving_its_normal_state_is_critical() {
    let mut run = Run::new();
    run.good("XV-1", 0.0, 1.0); // open = normal
    assert!(run.alarm_events("XV-1").is_empty());
    run.good("XV-1", 5.0, 0.0); // closed: the ESD acted
    assert_eq!(
        run.alarm_events("XV-1"),
        vec![(5_000, AlarmKind::Discrete, AlarmAction::Raised, Some(0.0))]
    );
    assert_eq!(
        run.colours("HS-1"),
        vec![(5_000, Colour::Red)],
        "critical on a level-1 source"
    );
}

fn change(
    point: &str,
    set: hazgate::model::alarm::AlarmSettingsFile,
) -> hazgate::judge::engine::ThresholdChange {
    hazgate::judge::engine::ThresholdChange {
        point: point.into(),
        set,
    }
}

#[test]
fn thresholds_apply_atomically_and_keep_alarm_state() {
    use hazgate::model::alarm::AlarmSettingsFile as S;
    let mut run = Run::new();
    run.good("GT-1", 0.0, 22.0); // H active at the default 20 %LEL
    let bad = Command::Thresholds {
        changes: vec![
            change(
                "GT-2",
                S {
                    h: Some(15.0),
                    ..Default::default()
                },
            ),
            change(
                "GT-1",
                S {
                    h: Some(30.0),
                    ..Default::default()
                },
            ),
        ],
        by: "engineer-wu".into(),
    };
    let err = run.command(1.0, bad).unwrap_err().to_string();
    assert!(err.contains("GT-1.h: first-level alarm 30 %LEL is above the 25 %LEL ceiling of GB/T 50493-2019 5.5.2"), "{err}");
    assert_eq!(
        run.engine.site().point_by_id("GT-2").unwrap().alarms.h,
        Some(20.0),
        "all or nothing: GT-2 untouched"
    );
    let inverted = Command::Thresholds {
        changes: vec![change(
            "GT-1",
            S {
                h: Some(24.0),
                hh: Some(22.0),
                ..Default::default()
            },
        )],
        by: "engineer-wu".into(),
    };
    assert!(run
        .command(1.5, inverted)
        .unwrap_err()
        .to_string()
        .contains("hh = 22 must be above h = 24"));
    let before = run.events.len();
    let ok = Command::Thresholds {
        changes: vec![change(
            "GT-1",
            S {
                h: Some(24.0),
                ..Default::default()
            },
        )],
        by: "engineer-wu".into(),
    };
    run.command(2.0, ok).unwrap();
    assert_eq!(
        run.engine.site().point_by_id("GT-1").unwrap().alarms.h,
        Some(24.0)
    );
    assert!(
        matches!(&run.events[before].1, Event::Thresholds(t) if t.old.h == Some(20.0) && t.new.h == Some(24.0) && t.by == "engineer-wu")
    );
    // The H alarm is still active (state kept); it clears only by the new limit's rules.
    let h = run
        .engine
        .alarm_views()
        .into_iter()
        .find(|a| a.point.as_str() == "GT-1" && a.alarm == AlarmKind::H)
        .unwrap();
    assert_eq!(h.state, AlarmState::ActiveUnacknowledged);
    run.good("GT-1", 3.0, 22.0); // below the new 24 − 1 deadband
    assert!(run
        .alarm_events("GT-1")
        .iter()
        .any(|e| e.1 == AlarmKind::H && e.2 == AlarmAction::Cleared));
}

// ---- Over range: a saturated detector is the loudest alarm, not a fault. ----

#[test]
fn a_detector_saturated_by_a_leak_raises_hh_and_turns_a_level_1_source_red() {
    let mut run = Run::new();
    for t in 0..10 {
        run.device("GT-1", f64::from(t), 5.0);
    }
    assert!(
        run.colours("HS-1").is_empty(),
        "blue while the reading is 5 %LEL"
    );
    // The leak saturates the detector: 120 %LEL, beyond its 0–100 range.
    let r = run.device("GT-1", 10.0, 120.0);
    assert_eq!((r.quality, r.range), (Quality::Good, RangeFlag::Over));
    assert_eq!(r.value, Some(Value::Analog(120.0)), "the value is kept");
    let ev = run.over_range_flags("GT-1");
    assert!(
        ev.contains(&(10_000, AlarmKind::Hh, AlarmAction::Raised, true)),
        "{ev:?}"
    );
    assert!(
        ev.contains(&(10_000, AlarmKind::H, AlarmAction::Raised, true)),
        "{ev:?}"
    );
    assert!(
        !ev.iter().any(|e| e.1 == AlarmKind::Fault),
        "saturation is not a sensor fault: {ev:?}"
    );
    assert_eq!(run.colours("HS-1"), vec![(10_000, Colour::Red)]);
    assert_eq!(
        run.engine.source_level(0).reasons[0].rule,
        "critical alarm on a level 1/2 source"
    );
}

#[test]
fn a_gateway_starting_into_a_saturated_detector_raises_hh_on_the_first_reading() {
    // A fresh engine (a restart during the leak): the very first reading is over range.
    let mut run = Run::new();
    let r = run.device("GT-2", 0.0, 250.0);
    assert_eq!(r.range, RangeFlag::Over);
    let hh = run.alarm("GT-2", AlarmKind::Hh);
    assert_eq!(hh.state, AlarmState::ActiveUnacknowledged);
    assert_eq!(hh.raised_value, Some(250.0));
    assert_eq!(run.colours("HS-1"), vec![(0, Colour::Red)]);
}

#[test]
fn a_saturated_toxic_detector_whose_range_ends_below_hh_still_raises_hh() {
    let mut run = Run::new();
    // AT-2 reads 0–50 ppm; NH3's second-level limit is 86 ppm (200 %OEL). At 55 ppm the
    // detector is past full scale: the true concentration is unknown and may be far
    // above 86, so HH is raised — the comparison with the value alone would miss it.
    let r = run.device("AT-2", 0.0, 55.0);
    assert_eq!((r.quality, r.range), (Quality::Good, RangeFlag::Over));
    let ev = run.over_range_flags("AT-2");
    assert!(
        ev.contains(&(0, AlarmKind::Hh, AlarmAction::Raised, true)),
        "{ev:?}"
    );
    // Critical on a level-3 source: orange.
    assert_eq!(run.colours("HS-3"), vec![(0, Colour::Orange)]);
}

#[test]
fn saturation_latches_until_the_value_is_back_in_range_and_below_the_limit_by_the_deadband() {
    let mut run = Run::new();
    run.device("GT-1", 0.0, 120.0);
    // A comm failure while saturated: the alarm is held, never cleared by a fault.
    run.feed("GT-1", 1.0, None, Quality::CommFailure);
    assert!(run.alarm("GT-1", AlarmKind::Hh).state.is_active());
    // Back in range at 45 and at 39.5 (above HH 40 − 1 deadband): still active.
    run.device("GT-1", 2.0, 101.0);
    run.device("GT-1", 3.0, 45.0);
    run.device("GT-1", 4.0, 39.5);
    assert!(run.alarm("GT-1", AlarmKind::Hh).state.is_active());
    // Below the limit by the deadband: HH clears, H (20) stays.
    run.device("GT-1", 5.0, 39.0);
    let ev = run.over_range_flags("GT-1");
    assert!(
        ev.contains(&(5_000, AlarmKind::Hh, AlarmAction::Cleared, false)),
        "{ev:?}"
    );
    assert!(run.alarm("GT-1", AlarmKind::H).state.is_active());
    assert_eq!(
        ev.iter()
            .filter(|e| e.2 == AlarmAction::Raised && e.1 == AlarmKind::Hh)
            .count(),
        1,
        "one HH for the whole episode: {ev:?}"
    );
    run.device("GT-1", 6.0, 5.0);
    assert!(!run.alarm("GT-1", AlarmKind::H).state.is_active());
}

#[test]
fn loop_current_bands_of_a_gas_detector_saturation_fault_and_under_range() {
    let mut run = Run::new();
    // 20.7 mA: NE43's vendor band; for a gas detector saturation by default → HH.
    let r = run.device_ma("GT-3", 0.0, 20.7);
    assert_eq!((r.quality, r.range), (Quality::Good, RangeFlag::Over));
    assert!((r.value.unwrap().as_f64() - 104.375).abs() < 1e-9, "{r:?}");
    assert!(run.alarm("GT-3", AlarmKind::Hh).state.is_active());
    // 21.5 mA: a failed transmitter. A fault, no value — and the HH it had is held.
    let r = run.device_ma("GT-3", 1.0, 21.5);
    assert_eq!((r.quality, r.value), (Quality::SensorFault, None));
    assert!(run.alarm("GT-3", AlarmKind::Hh).state.is_active());
    assert!(run.alarm("GT-3", AlarmKind::Hh).bad_quality);
    // 3.9 mA: below zero. For a gas detector that is drift or a vendor's maintenance
    // current: a fault with the value kept, never a measurement.
    let r = run.device_ma("GT-3", 2.0, 3.9);
    assert_eq!(
        (r.quality, r.range),
        (Quality::SensorFault, RangeFlag::Under)
    );
    assert!((r.value.unwrap().as_f64() + 0.625).abs() < 1e-9, "{r:?}");
    // 3.7 mA: below the 3.8 mA failure current.
    let r = run.device_ma("GT-3", 3.0, 3.7);
    assert_eq!((r.quality, r.value), (Quality::SensorFault, None));
}

#[test]
fn a_process_transmitter_out_of_range_raises_its_limits_and_its_vendor_band_is_a_fault() {
    let mut run = Run::new();
    // LT-2: 4–20 mA level, H 85 / HH 95, L 10 / LL 5, 10 s on-delay.
    let r = run.device_ma("LT-2", 0.0, 20.3);
    assert_eq!((r.quality, r.range), (Quality::Good, RangeFlag::Over));
    run.tick(9.0);
    assert!(
        run.alarm_events("LT-2").is_empty(),
        "the on-delay still applies"
    );
    run.device_ma("LT-2", 10.0, 20.3);
    let raised: Vec<_> = run
        .over_range_flags("LT-2")
        .into_iter()
        .filter(|e| e.2 == AlarmAction::Raised)
        .map(|e| (e.1, e.3))
        .collect();
    assert_eq!(raised, vec![(AlarmKind::Hh, true), (AlarmKind::H, true)]);
    // Above 20.5 mA a process transmitter has failed (NE43), unlike a gas detector.
    let r = run.device_ma("LT-2", 11.0, 20.7);
    assert_eq!((r.quality, r.value), (Quality::SensorFault, None));
    // Below 4 mA: an empty tank is a measurement; LL and L are crossed.
    let mut run = Run::new();
    let r = run.device_ma("LT-2", 0.0, 3.9);
    assert_eq!((r.quality, r.range), (Quality::Good, RangeFlag::Under));
    run.device_ma("LT-2", 10.0, 3.9);
    assert!(run.alarm("LT-2", AlarmKind::Ll).state.is_active());
    assert!(run.alarm("LT-2", AlarmKind::L).state.is_active());
}

/// Found by the property test's upper bound: a shelve's end was not a deadline, and an
/// end noticed while settling a point did not judge its source again, so the blind-spot
/// yellow outlived its hold.
#[test]
fn a_shelve_ends_on_time_and_its_blind_spot_yellow_ends_one_hold_later() {
    let mut run = Run::new();
    run.command(
        0.0,
        Command::Shelve {
            point: "AT-1".into(),
            alarm: None,
            duration_s: 1.0,
            by: "op".into(),
        },
    )
    .unwrap();
    assert_eq!(run.colours("HS-3"), vec![(0, Colour::Yellow)], "blind spot");
    // The next input after the shelve's end (here a reading of another source's point)
    // ends it, and starts the hold.
    run.good("GT-1", 2.0, 0.0);
    let unshelved = run
        .alarm_events("AT-1")
        .iter()
        .any(|e| e.2 == AlarmAction::Unshelved && e.0 == 2_000);
    assert!(unshelved, "{:?}", run.alarm_events("AT-1"));
    run.tick(601.0);
    assert_eq!(run.engine.source_level(1).colour, Colour::Yellow, "held");
    run.tick(602.0);
    assert_eq!(
        run.colours("HS-3"),
        vec![(0, Colour::Yellow), (602_000, Colour::Blue)],
        "blue one hold after the shelve ended"
    );
}

fn feedback(alarm_id: &str) -> Command {
    Command::Feedback {
        alarm_id: alarm_id.into(),
        cause: "real_leak".into(),
        measures: "closed the valve".into(),
        text: String::new(),
        by: "centre-li".into(),
    }
}

#[test]
fn feedback_is_accepted_for_an_alarm_the_site_has_even_after_it_cleared_and_changes_nothing() {
    let mut run = Run::new();
    run.good("AT-1", 0.0, 50.0);
    run.good("AT-1", 10.0, 0.0);
    run.tick(400.0);
    let raised = run
        .alarm_events("AT-1")
        .into_iter()
        .find(|e| e.2 == AlarmAction::Raised)
        .expect("raised");
    let before = run.events.len();
    let id = format!("AT-1:h:{}", raised.0);
    assert_eq!(run.command(401.0, feedback(&id)), Ok(()));
    assert_eq!(run.events.len(), before, "feedback changes no alarm");
    let refused = |run: &mut Run, id: &str| run.command(402.0, feedback(id)).unwrap_err();
    assert_eq!(
        refused(&mut run, "NOPE:h:1"),
        CommandError::UnknownPoint("NOPE".into())
    );
    assert_eq!(
        refused(&mut run, "AT-1:discrete:1"),
        CommandError::UnknownAlarm {
            point: "AT-1".into(),
            alarm: "discrete".into()
        }
    );
    for bad in ["AT-1:h", "AT-1:hhh:1", "AT-1:h:soon", ""] {
        assert_eq!(
            refused(&mut run, bad),
            CommandError::BadAlarmId(bad.into()),
            "{bad}"
        );
    }
}
