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
    forward::collect::ReportByException,
    judge::alarm::analog_condition,
    model::{alarm::AlarmKind, Site},
    reading::{Reading, Value},
};

/// A point's limit alarms, its alarm deadband, and whether it has a rate alarm.
type Limits = (Vec<(AlarmKind, f64)>, f64, bool);

pub struct HistoryFilter {
    rbe: ReportByException,
    limits: Vec<Limits>,
    /// Per point: the sides of its limits the last kept reading stood on.
    sides: Vec<u32>,
}

impl HistoryFilter {
    pub fn new(site: &Site, deadband_pct: f64) -> Self {
        let limits = site
            .points
            .iter()
            .map(|p| {
                let s = &p.alarms;
                let l: Vec<(AlarmKind, f64)> =
                    [AlarmKind::Hh, AlarmKind::H, AlarmKind::L, AlarmKind::Ll]
                        .into_iter()
                        .filter_map(|k| Some((k, s.limit(k)?)))
                        .collect();
                (l, s.deadband, s.rate_per_min.is_some())
            })
            .collect();
        Self {
            rbe: ReportByException::new(site, deadband_pct),
            limits,
            sides: vec![0; site.points.len()],
        }
    }

    /// Whether to keep `r`.
    pub fn passes(&mut self, r: &Reading) -> bool {
        let i = r.point.get();
        let Some((limits, deadband, rate)) = self.limits.get(i) else {
            return false;
        };
        let side = sides(limits, *deadband, r.value);
        let crossed = self.sides[i] != side;
        self.sides[i] = side;
        let moved = self.rbe.passes(r);
        if (crossed || *rate) && !moved {
            self.rbe.kept(r);
            return true;
        }
        moved
    }
}

/// Bits: for each limit alarm, its condition for the value were it quiet and were it
/// active (where it raises, and where it clears: the judge's own test).
fn sides(limits: &[(AlarmKind, f64)], deadband: f64, value: Option<Value>) -> u32 {
    let Some(Value::Analog(v)) = value else {
        return 0;
    };
    let mut bits = 0u32;
    for (i, (kind, limit)) in limits.iter().enumerate() {
        for (j, was) in [false, true].into_iter().enumerate() {
            let on = analog_condition(*kind, was, v, *limit, deadband);
            bits |= u32::from(on) << (2 * i + j);
        }
    }
    bits
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
        assert!(f.passes(&r(h - 0.2)), "back below H");
    }
}
