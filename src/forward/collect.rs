//! What goes into the spool: readings reported by exception (plus a full snapshot every
//! integrity period) and every judge event, framed with their topic.

use crate::{
    model::{Point, Site},
    reading::{Quality, RangeFlag, Reading, Value},
};

/// A spooled record: topic, retain flag and JSON payload in one byte string
/// (`[u16 topic length][topic][u8 retain][payload]`), so the spool stays opaque.
pub fn frame(topic: &str, retain: bool, payload: &[u8]) -> Vec<u8> {
    let t = topic.as_bytes();
    let mut v = Vec::with_capacity(3 + t.len() + payload.len());
    v.extend_from_slice(&(t.len() as u16).to_be_bytes());
    v.extend_from_slice(t);
    v.push(u8::from(retain));
    v.extend_from_slice(payload);
    v
}

/// Splits a record into (topic, retain, payload); `None` for a corrupt record.
pub fn unframe(record: &[u8]) -> Option<(&str, bool, &[u8])> {
    let len = usize::from(u16::from_be_bytes([*record.first()?, *record.get(1)?]));
    let topic = std::str::from_utf8(record.get(2..2 + len)?).ok()?;
    let retain = *record.get(2 + len)? != 0;
    Some((topic, retain, record.get(3 + len..)?))
}

/// Report-by-exception filter: a reading passes when its quality or range flag changed
/// or its value moved beyond the point's publish deadband since it was last sent.
pub struct ReportByException {
    /// A point's deadband beside what it last sent: one load a reading, where two
    /// arrays took two (this filter sees every reading, the history's too).
    points: Vec<Sent>,
}

impl ReportByException {
    pub fn new(site: &Site, deadband_pct: f64) -> Self {
        Self {
            points: site
                .points
                .iter()
                .map(|p| Sent::new(p, deadband_pct))
                .collect(),
        }
    }

    pub fn passes(&mut self, r: &Reading) -> bool {
        self.points
            .get_mut(r.point.get())
            .is_some_and(|p| p.passes(r))
    }
}

/// One point's report-by-exception state: its deadband and what it last sent.
#[derive(Clone, Copy)]
pub struct Sent {
    last: LastSent,
    deadband: f64,
}

impl Sent {
    /// `deadband_pct` of the point's span (its valid range, else its scaled range; no
    /// span: every change passes).
    pub fn new(p: &Point, deadband_pct: f64) -> Self {
        Self {
            last: LastSent::default(),
            deadband: Self::deadband(p, deadband_pct),
        }
    }

    /// The deadband [`Sent::new`] gives `p`, for a filter that keeps it elsewhere.
    pub fn deadband(p: &Point, deadband_pct: f64) -> f64 {
        p.span()
            .map_or(0.0, |[a, b]| (b - a).abs() * deadband_pct / 100.0)
    }

    /// Whether `r` passes; if it does, it is what was last sent.
    pub fn passes(&mut self, r: &Reading) -> bool {
        self.last.passes(r, self.deadband)
    }
}

/// What a point last sent, without its deadband: public so that a filter with more per
/// point (the history's) keeps it in its own per-point record, one load a reading, and
/// its deadband in a table shared by points alike (24 bytes a point, where
/// [`Sent`] takes 32).
#[derive(Clone, Copy, Default)]
pub struct LastSent(Option<(Option<Value>, Quality, RangeFlag)>);

impl LastSent {
    /// Whether `r` passes with `deadband`; if it does, it is what was last sent.
    pub fn passes(&mut self, r: &Reading, deadband: f64) -> bool {
        let send = match self.0 {
            None => true,
            Some((_, q, range)) if q != r.quality || range != r.range => true,
            Some((Some(Value::Analog(a)), _, _)) => match r.value {
                Some(Value::Analog(b)) => (b - a).abs() > deadband || (deadband == 0.0 && a != b),
                other => other.is_some(),
            },
            Some((old, _, _)) => old != r.value,
        };
        if send {
            self.kept(r);
        }
        send
    }

    /// Records `r` as sent (kept for a reason of the caller's own).
    pub fn kept(&mut self, r: &Reading) {
        self.0 = Some((r.value, r.quality, r.range));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::{load_site, PointIndex, SiteSource, DEMO_SITE_TOML},
        reading::{Raw, Timestamp},
    };

    #[test]
    fn frames_round_trip_and_corruption_is_detected() {
        let f = frame("a/b/risk/HS-01", true, b"{}");
        assert_eq!(unframe(&f), Some(("a/b/risk/HS-01", true, &b"{}"[..])));
        assert_eq!(unframe(&f[..5]), None);
        assert_eq!(unframe(&[0xFF, 0xFF, 1]), None);
    }

    #[test]
    fn report_by_exception() {
        let site = load_site(SiteSource::Text {
            name: "demo",
            toml: DEMO_SITE_TOML,
        })
        .unwrap();
        let gt101 = site.point_by_id("GT-101").unwrap().index; // valid range 0–100 → 1 % = 1 %LEL
        let mut rbe = ReportByException::new(&site, 1.0);
        let r = |p: PointIndex, v: f64, q: Quality| Reading {
            point: p,
            value: Some(Value::Analog(v)),
            quality: q,
            ts: Timestamp(0),
            raw: Raw::None,
            range: Default::default(),
        };
        assert!(rbe.passes(&r(gt101, 1.0, Quality::Good)), "first value");
        assert!(
            !rbe.passes(&r(gt101, 1.9, Quality::Good)),
            "inside the deadband"
        );
        assert!(rbe.passes(&r(gt101, 2.5, Quality::Good)), "beyond it");
        assert!(rbe.passes(&r(gt101, 2.5, Quality::Stale)), "quality change");
    }
}
