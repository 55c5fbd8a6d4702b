//! What the history keeps of the readings: enough for a replay of the judge to raise
//! and clear every alarm at the instant the live judge did (`hazgate tune`'s fidelity),
//! and little else.
//!
//! Report-by-exception with the history's deadband keeps a reading that moved, changed
//! quality or range. On top of it, a reading is kept when it stands on another side of
//! one of its point's limits (or of a limit's deadband) than the last one kept, so a
//! crossing inside the deadband is never lost; and every reading of a point with a
//! rate-of-change alarm is kept, as a rate needs the time of the previous poll.

use crate::{
    forward::collect::Sent,
    judge::alarm::analog_condition,
    model::{alarm::AlarmKind, Site},
    reading::{Reading, Value},
};

/// A point's limit alarms, its alarm deadband, whether it has a rate alarm, the sides
/// of its limits the last kept reading stood on, and its report-by-exception state —
/// flat, in one array: the filter sees every reading, and a list of limits allocated
/// apart for each point made nearly every reading wait on memory (9 in 10 of the
/// filter's time, by `perf annotate`); the report-by-exception state in an array of its
/// own cost a second wait.
#[derive(Clone, Copy)]
struct PointLimits {
    kind: [AlarmKind; 4],
    limit: [f64; 4],
    n: u8,
    rate: bool,
    deadband: f64,
    sides: u32,
    sent: Sent,
}

pub struct HistoryFilter {
    points: Vec<PointLimits>,
}

impl HistoryFilter {
    pub fn new(site: &Site, deadband_pct: f64) -> Self {
        let points = site
            .points
            .iter()
            .map(|p| {
                let s = &p.alarms;
                let mut l = PointLimits {
                    kind: [AlarmKind::Hh; 4],
                    limit: [0.0; 4],
                    n: 0,
                    rate: s.rate_per_min.is_some(),
                    deadband: s.deadband,
                    sides: 0,
                    sent: Sent::new(p, deadband_pct),
                };
                for k in [AlarmKind::Hh, AlarmKind::H, AlarmKind::L, AlarmKind::Ll] {
                    if let Some(limit) = s.limit(k) {
                        let i = usize::from(l.n);
                        (l.kind[i], l.limit[i]) = (k, limit);
                        l.n += 1;
                    }
                }
                l
            })
            .collect();
        Self { points }
    }

    /// Whether to keep `r`.
    pub fn passes(&mut self, r: &Reading) -> bool {
        let Some(p) = self.points.get_mut(r.point.get()) else {
            return false;
        };
        let side = p.sides(r.value);
        let crossed = p.sides != side;
        p.sides = side;
        let moved = p.sent.passes(r);
        if (crossed || p.rate) && !moved {
            p.sent.kept(r);
            return true;
        }
        moved
    }
}

impl PointLimits {
    /// Bits: for each limit alarm, its condition for the value were it quiet and were
    /// it active (where it raises, and where it clears: the judge's own test).
    fn sides(&self, value: Option<Value>) -> u32 {
        let Some(Value::Analog(v)) = value else {
            return 0;
        };
        let mut bits = 0u32;
        for i in 0..usize::from(self.n) {
            let (kind, limit) = (self.kind[i], self.limit[i]);
            for (j, was) in [false, true].into_iter().enumerate() {
                let on = analog_condition(kind, was, v, limit, self.deadband);
                bits |= u32::from(on) << (2 * i + j);
            }
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{load_site, SiteSource, DEMO_SITE_TOML},
        reading::{Quality, Raw, Timestamp},
    };

    #[test]
    fn a_crossing_inside_the_deadband_is_kept() {
        let site = load_site(SiteSource::Text {
            name: "demo",
            toml: DEMO_SITE_TOML,
        })
        .unwrap();
        let p = site.point_by_id("GT-101").unwrap();
        let h = p.alarms.h.unwrap();
        // A deadband of 10 % of the span: 10 %LEL for a 0–100 detector.
        let mut f = HistoryFilter::new(&site, 10.0);
        let r = |v: f64| Reading {
            point: p.index,
            value: Some(Value::Analog(v)),
            quality: Quality::Good,
            ts: Timestamp(0),
            raw: Raw::None,
            range: Default::default(),
        };
        assert!(f.passes(&r(h - 0.5)), "the first reading");
        assert!(f.passes(&r(h + 0.5)), "crosses H by less than the deadband");
        assert!(
            !f.passes(&r(h + 1.0)),
            "moved less than the deadband, same side"
        );
        // The crossing's reading is the one the deadband now counts from: 9.7 from it,
        // 10.7 from the one before.
        assert!(
            !f.passes(&r(h + 10.2)),
            "within the deadband of the reading kept for the crossing"
        );
        assert!(f.passes(&r(h - 0.2)), "back below H");
    }
}
