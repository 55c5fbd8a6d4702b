//! A recorded history made by the simulator with an injected clock: days of the
//! simulator's values (noise and a scenario, e.g. a slow leak) plus scripted stretches
//! (a detector chattering near its limit, a value standing in alarm, a sensor fault),
//! judged by the judge's core as the gateway judges them live, and written through the
//! history's own filter and writer. For demos of `hazgate tune` and its tests: what the
//! live judge decided is in the history beside the readings, as on a real gateway.

use std::{io, sync::Arc};

use rand::{rngs::SmallRng, Rng, SeedableRng};

use crate::{
    history::{filter::HistoryFilter, store::HistoryWriter, task::kept},
    judge::engine::{Engine, Event},
    model::{history::HistoryConfig, PointIndex, Site},
    reading::{Quality, RangeFlag, Raw, Reading, Timestamp, Value},
    sim::{Scenario, SimValue},
};

/// A scripted stretch of one point, times in ms since the start.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `around ± amplitude`, uniformly random each poll.
    Chatter {
        point: PointIndex,
        from: i64,
        to: i64,
        around: f64,
        amplitude: f64,
    },
    /// A fixed value.
    Hold {
        point: PointIndex,
        from: i64,
        to: i64,
        value: f64,
    },
    /// The detector reports a fault (no value).
    Fault {
        point: PointIndex,
        from: i64,
        to: i64,
    },
}

impl Pattern {
    fn at(
        &self,
        point: PointIndex,
        t: i64,
        rng: &mut SmallRng,
    ) -> Option<(Option<Value>, Quality)> {
        let (p, from, to) = match self {
            Self::Chatter {
                point, from, to, ..
            }
            | Self::Hold {
                point, from, to, ..
            }
            | Self::Fault { point, from, to } => (*point, *from, *to),
        };
        if p != point || !(from..to).contains(&t) {
            return None;
        }
        Some(match self {
            Self::Chatter {
                around, amplitude, ..
            } => (
                Some(Value::Analog(
                    around + amplitude * rng.random_range(-1.0..=1.0),
                )),
                Quality::Good,
            ),
            Self::Hold { value, .. } => (Some(Value::Analog(*value)), Quality::Good),
            Self::Fault { .. } => (None, Quality::SensorFault),
        })
    }
}

/// What to record.
pub struct Plan {
    pub scenario: Scenario,
    pub patterns: Vec<Pattern>,
    /// The first poll, ms since 1970.
    pub start: i64,
    pub duration_ms: i64,
    pub poll_ms: i64,
    pub seed: u64,
}

/// Records `plan` into the history `cfg` names; returns the live judge's events.
pub fn record(site: &Arc<Site>, plan: &Plan, cfg: &HistoryConfig) -> io::Result<Vec<Event>> {
    let mut writer = HistoryWriter::open(cfg)?;
    let mut filter = HistoryFilter::new(site, cfg.deadband_pct);
    let mut engine = Engine::new(site.clone(), Timestamp(plan.start));
    let mut rng = SmallRng::seed_from_u64(plan.seed);
    let (commit_ms, snapshot_ms) = (cfg.commit_s as i64 * 1000, cfg.snapshot_s as i64 * 1000);
    let (mut readings, mut texts, mut all_events, mut out) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut next_commit = plan.start + commit_ms;
    let mut next_snapshot = plan.start;
    let mut t = plan.start;
    while t < plan.start + plan.duration_ms {
        let batch = poll(site, plan, t, &mut rng);
        engine.on_clock(Timestamp(t), &mut out);
        for r in &batch {
            engine.on_reading(r, r.ts, &mut out);
        }
        if t >= next_snapshot {
            readings.extend(batch.iter().cloned());
            next_snapshot += snapshot_ms;
        } else {
            readings.extend(batch.into_iter().filter(|r| filter.passes(r)));
        }
        texts.extend(out.iter().filter_map(kept));
        all_events.append(&mut out);
        t += plan.poll_ms;
        if t >= next_commit {
            writer.commit(&readings, &texts, t)?;
            readings.clear();
            texts.clear();
            next_commit += commit_ms;
        }
    }
    writer.commit(&readings, &texts, t)?;
    Ok(all_events)
}

/// Every point's reading at `t`.
fn poll(site: &Site, plan: &Plan, t: i64, rng: &mut SmallRng) -> Vec<Reading> {
    let since_s = (t - plan.start) as f64 / 1000.0;
    site.points
        .iter()
        .map(|p| {
            let scripted = plan
                .patterns
                .iter()
                .find_map(|x| x.at(p.index, t - plan.start, rng));
            let (value, quality) = scripted.unwrap_or_else(|| {
                match plan
                    .scenario
                    .value(p, since_s, rng.random_range(-1.0..=1.0))
                {
                    SimValue::Eng(v) => (Some(Value::Analog(v)), Quality::Good),
                    SimValue::Bit(b) => (Some(Value::Discrete(b)), Quality::Good),
                    SimValue::LoopMa(_) => (None, Quality::SensorFault),
                }
            });
            let range = match (value, p.valid_range()) {
                (Some(Value::Analog(v)), Some([_, hi])) if v > hi => RangeFlag::Over,
                (Some(Value::Analog(v)), Some([lo, _])) if v < lo => RangeFlag::Under,
                _ => RangeFlag::Within,
            };
            Reading {
                point: p.index,
                value,
                quality,
                ts: Timestamp(t),
                raw: Raw::None,
                range,
            }
        })
        .collect()
}
