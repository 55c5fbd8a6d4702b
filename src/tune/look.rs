//! What a report shows of the readings themselves, gathered in one pass over a
//! history too large to hold: for a few points, the envelope of their values (min and
//! max per pixel column, so a spike survives however long the period) and their noise
//! (the spread of their changes from one kept reading to the next).

use std::collections::BTreeMap;

use crate::{
    model::PointIndex,
    reading::{Reading, Value},
};

/// Columns of a trace: the width of the report's charts.
pub const COLUMNS: usize = 900;
/// Changes kept per point for its noise (the latest).
const DIFFS: usize = 4096;

pub struct Look {
    from: i64,
    to: i64,
    points: BTreeMap<u32, PointLook>,
}

struct PointLook {
    envelope: Vec<Option<(f64, f64)>>,
    last: Option<f64>,
    diffs: Vec<f64>,
    next: usize,
}

impl super::source::Feed for Look {
    fn feed(&mut self, readings: &[Reading]) {
        Look::feed(self, readings);
    }
}

impl Look {
    pub fn new(points: impl IntoIterator<Item = PointIndex>, from: i64, to: i64) -> Self {
        let points = points
            .into_iter()
            .map(|p| {
                let l = PointLook {
                    envelope: vec![None; COLUMNS],
                    last: None,
                    diffs: Vec::new(),
                    next: 0,
                };
                (p.0, l)
            })
            .collect();
        Self {
            from,
            to: to.max(from + 1),
            points,
        }
    }

    pub fn feed(&mut self, readings: &[Reading]) {
        for r in readings {
            let Some(p) = self.points.get_mut(&r.point.0) else {
                continue;
            };
            let v = match (r.quality.is_good(), r.value) {
                (true, Some(Value::Analog(v))) if v.is_finite() => v,
                (true, Some(Value::Discrete(b))) => f64::from(u8::from(b)),
                _ => continue,
            };
            let col = (r.ts.0 - self.from) as f64 / (self.to - self.from) as f64;
            if let Some(slot) = p.envelope.get_mut((col * COLUMNS as f64) as usize) {
                *slot = Some(slot.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
            }
            if let Some(prev) = p.last.replace(v) {
                let d = (v - prev).abs();
                if p.diffs.len() < DIFFS {
                    p.diffs.push(d);
                } else {
                    p.diffs[p.next] = d;
                }
                p.next = (p.next + 1) % DIFFS;
            }
        }
    }

    /// Min and max of each column, from `from` to `to`.
    pub fn envelope(&self, point: PointIndex) -> &[Option<(f64, f64)>] {
        self.points.get(&point.0).map_or(&[], |p| &p.envelope)
    }

    /// The noise of a point as a standard deviation: the median absolute change,
    /// scaled (robust against the few large changes of a real event). None with
    /// fewer than 30 changes.
    pub fn noise(&self, point: PointIndex) -> Option<f64> {
        let p = self.points.get(&point.0)?;
        if p.diffs.len() < 30 {
            return None;
        }
        let mut d = p.diffs.clone();
        d.sort_by(f64::total_cmp);
        Some(d[d.len() / 2] * 1.4826 / std::f64::consts::SQRT_2)
    }
}
