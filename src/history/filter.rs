//! What the history keeps of the readings: enough for a replay of the judge to raise
//! and clear every alarm at the instant the live judge did (`hazgate tune`'s fidelity),
//! and little else.
//!
//! Report-by-exception with the history's deadband keeps a reading that moved, changed
//! quality or range. On top of it, a reading is kept when it stands on another side of
//! one of its point's limits (or of a limit's deadband) than the last one kept, so a
//! crossing inside the deadband is never lost; and every reading of a point with a
//! rate-of-change alarm is kept, as a rate needs the time of the previous poll.

use std::collections::HashMap;

use crate::{
    forward::collect::{LastSent, Sent},
    judge::alarm::analog_condition,
    model::{
        alarm::{AlarmKind, AlarmSettings},
        Site,
    },
    reading::{Reading, Value},
};

/// A point's limit alarms, its alarm deadband, whether it has a rate alarm and its
/// report-by-exception deadband: shared by every point whose alarm settings (shared in
/// the site) and span are alike, so that the table stays in the cache.
struct Limits {
    kind: [AlarmKind; 4],
    limit: [f64; 4],
    n: u8,
    rate: bool,
    deadband: f64,
    rbe_deadband: f64,
}

/// What the filter keeps for each point: 32 bytes, two to a cache line. The filter
/// sees every reading, and its time was the wait for each point's record: at 88 bytes
/// (the limits in every record), half of it by `perf annotate`.
#[derive(Clone, Copy)]
struct PointState {
    sent: LastSent,
    limits: u32,
    /// The sides of its limits the last kept reading stood on.
    sides: u8,
}

// The size the record's doc claims.
const _: () = assert!(size_of::<PointState>() == 32);

pub struct HistoryFilter {
    points: Vec<PointState>,
    limits: Vec<Limits>,
}

impl HistoryFilter {
    pub fn new(site: &Site, deadband_pct: f64) -> Self {
        let mut limits = Vec::new();
        let mut alike: HashMap<(*const (), u64), u32> = HashMap::new();
        let points = site
            .points
            .iter()
            .map(|p| {
                let rbe_deadband = Sent::deadband(p, deadband_pct);
                let key = (
                    std::sync::Arc::as_ptr(&p.alarms).cast::<()>(),
                    rbe_deadband.to_bits(),
                );
                let at = *alike.entry(key).or_insert_with(|| {
                    limits.push(Limits::new(&p.alarms, rbe_deadband));
                    // Never the fallback: at most one set a point, and a site's points
                    // are numbered in a u32 (`PointIndex`).
                    u32::try_from(limits.len() - 1).unwrap_or(u32::MAX)
                });
                PointState {
                    sent: LastSent::default(),
                    limits: at,
                    sides: 0,
                }
            })
            .collect();
        Self { points, limits }
    }

    /// Whether to keep `r`.
    pub fn passes(&mut self, r: &Reading) -> bool {
        let Some(p) = self.points.get_mut(r.point.get()) else {
            return false;
        };
        let Some(l) = self.limits.get(p.limits as usize) else {
            return false;
        };
        let side = l.sides(r.value);
        let crossed = p.sides != side;
        p.sides = side;
        let moved = p.sent.passes(r, l.rbe_deadband);
        if (crossed || l.rate) && !moved {
            p.sent.kept(r);
            return true;
        }
        moved
    }
}

impl Limits {
    fn new(s: &AlarmSettings, rbe_deadband: f64) -> Self {
        let mut l = Limits {
            kind: [AlarmKind::Hh; 4],
            limit: [0.0; 4],
            n: 0,
            rate: s.rate_per_min.is_some(),
            deadband: s.deadband,
            rbe_deadband,
        };
        for k in [AlarmKind::Hh, AlarmKind::H, AlarmKind::L, AlarmKind::Ll] {
            if let Some(limit) = s.limit(k) {
                let i = usize::from(l.n);
                (l.kind[i], l.limit[i]) = (k, limit);
                l.n += 1;
            }
        }
        l
    }

    /// Bits: for each limit alarm, its condition for the value were it quiet and were
    /// it active (where it raises, and where it clears: the judge's own test).
    fn sides(&self, value: Option<Value>) -> u8 {
        let Some(Value::Analog(v)) = value else {
            return 0;
        };
        let mut bits = 0u8;
        for i in 0..usize::from(self.n) {
            let (kind, limit) = (self.kind[i], self.limit[i]);
            for (j, was) in [false, true].into_iter().enumerate() {
                let on = analog_condition(kind, was, v, limit, self.deadband);
                bits |= u8::from(on) << (2 * i + j);
            }
        }
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{load_site, PointIndex, SiteSource, DEMO_SITE_TOML},
        reading::{Quality, Raw, Timestamp},
    };

    /// A good analog reading of `point`.
    fn reading(point: PointIndex, v: f64) -> Reading {
        Reading {
            point,
            value: Some(Value::Analog(v)),
            quality: Quality::Good,
            ts: Timestamp(0),
            raw: Raw::None,
            range: Default::default(),
        }
    }

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
        let r = |v: f64| reading(p.index, v);
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

    #[test]
    fn points_alike_in_alarms_keep_their_own_deadband() {
        // GT-102 with half GT-101's span: the same alarm settings (shared), half the
        // history's deadband.
        let at = DEMO_SITE_TOML.find("id = \"GT-102\"").unwrap();
        let mut toml = DEMO_SITE_TOML.to_string();
        let range = at + toml[at..].find("valid_range = [0.0, 100.0]").unwrap();
        toml.replace_range(range..range + 26, "valid_range = [0.0, 50.0]");
        let site = load_site(SiteSource::Text {
            name: "demo",
            toml: &toml,
        })
        .unwrap();
        let (a, b) = (
            site.point_by_id("GT-101").unwrap(),
            site.point_by_id("GT-102").unwrap(),
        );
        assert!(
            std::sync::Arc::ptr_eq(&a.alarms, &b.alarms),
            "shared settings"
        );
        let mut f = HistoryFilter::new(&site, 10.0);
        let r = |p: &crate::model::Point, v: f64| reading(p.index, v);
        assert!(
            f.passes(&r(a, 1.0)) && f.passes(&r(b, 1.0)),
            "first readings"
        );
        assert!(!f.passes(&r(a, 8.0)), "7 within GT-101's deadband of 10");
        assert!(f.passes(&r(b, 8.0)), "7 beyond GT-102's deadband of 5");
    }
}
