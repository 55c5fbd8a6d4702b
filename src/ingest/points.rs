//! Each message type, decoded into the contract's types, as points of the store
//! schema (`docs/storage.md`).

use std::{cell::RefCell, collections::HashMap, io::Write as _};

use super::ledger::Counts;
use crate::contract::{
    wire::{Alarm, Quality, Reading, Risk, Scope, SpecialOperation, Status, Thresholds},
    GatewayPath,
};
use crate::line::Point;

/// Where one message's points go: its gateway's tags, its `seq`, the buffer.
pub struct Points<'a> {
    pub gateway: GatewayPath<'a>,
    pub seq: i64,
    pub lines: Vec<u8>,
    pub count: usize,
    /// Taken from every gateway-stamped time: the gateway's measured clock offset when
    /// ingest re-stamps (`[clock] restamp`), else 0.
    pub shift_ms: i64,
}

impl<'a> Points<'a> {
    pub fn new(gateway: GatewayPath<'a>, seq: u64) -> Self {
        Self {
            gateway,
            seq: i64::try_from(seq).unwrap_or(i64::MAX),
            lines: Vec::new(),
            count: 0,
            shift_ms: 0,
        }
    }

    fn point(&self, measurement: &'static str) -> Point<'a> {
        Point::new(measurement)
            .tag("park", self.gateway.park)
            .tag("enterprise", self.gateway.enterprise)
            .tag("gateway", self.gateway.gateway)
    }

    fn push(&mut self, p: Point<'_>, ts: i64) {
        p.write(&mut self.lines, ts.saturating_sub(self.shift_ms));
        self.count += 1;
    }

    /// One point per reading, at its acquisition time.
    pub fn readings(&mut self, readings: &[Reading<'_>]) {
        self.lines.reserve(readings.len() * 200);
        for r in readings {
            self.reading_prefix(r);
            write_reading_fields(&mut self.lines, r);
            self.count += 1;
        }
    }

    /// `reading,<tags>`: rendered once per point identity and reused — a gateway sends
    /// the same points over and over, and the tags are most of a reading's line.
    fn reading_prefix(&mut self, r: &Reading<'_>) {
        thread_local! {
            static PREFIXES: RefCell<(String, HashMap<String, Vec<u8>>)> = RefCell::default();
        }
        let g = self.gateway;
        let device = r.device.as_deref();
        let unit = Some(&*r.unit).filter(|u| !u.is_empty());
        PREFIXES.with(|cache| {
            let (key, map) = &mut *cache.borrow_mut();
            key.clear();
            for part in [
                g.park,
                g.enterprise,
                g.gateway,
                &r.hazard_source,
                &r.point,
                r.kind.as_str(),
                device.unwrap_or("\u{1}"),
                unit.unwrap_or("\u{1}"),
            ] {
                key.push_str(part);
                key.push('\0');
            }
            if !map.contains_key(key.as_str()) {
                let mut p = Point::new("reading")
                    .tag("park", g.park)
                    .tag("enterprise", g.enterprise)
                    .tag("gateway", g.gateway)
                    .tag("hazard_source", &r.hazard_source)
                    .tag("point", &r.point)
                    .tag("kind", r.kind.as_str());
                if let Some(d) = device {
                    p = p.tag("device", d);
                }
                if let Some(u) = unit {
                    p = p.tag("unit", u);
                }
                let mut prefix = Vec::new();
                p.write_tags(&mut prefix);
                if map.len() >= PREFIX_CACHE {
                    map.clear();
                }
                map.insert(key.clone(), prefix);
            }
            self.lines.extend_from_slice(&map[key.as_str()]);
        });
    }

    pub fn alarm(&mut self, a: &Alarm<'_>) {
        let mut p = self
            .point("alarm")
            .tag("hazard_source", &a.hazard_source)
            .tag("point", &a.point)
            .tag("alarm", a.alarm.as_str())
            .tag("class", a.class.as_str())
            .tag("action", a.action.as_str())
            .tag("state", a.state.as_str())
            // Whether the alarm is still active after this event: "active now" is then
            // last(active) per alarm, whatever the store.
            .field("active", i64::from(a.state.as_str() != "normal"))
            .field("seq", self.seq)
            .field("bad_quality", a.bad_quality)
            .field("over_range", a.over_range)
            .field("shelved", a.shelved)
            .field("out_of_service", a.out_of_service);
        if let Some(x) = a.value {
            p = p.field("value", x);
        }
        if let Some(x) = a.limit {
            p = p.field("limit", x);
        }
        if let Some(by) = &a.by {
            p = p.field("by", &**by);
        }
        // The occurrence (v1.3): ties raise, acknowledgement and clear together. A
        // field, not a tag: one value per occurrence would make a series each.
        if let Some(id) = &a.alarm_id {
            p = p.field("alarm_id", &**id);
        }
        if a.at_restart {
            p = p.field("at_restart", true);
        }
        self.push(p, a.ts.0);
    }

    pub fn risk(&mut self, r: &Risk<'_>) {
        let source = match r.scope {
            Scope::Enterprise => "enterprise",
            Scope::HazardSource => r.id.as_deref().unwrap_or_default(),
        };
        let reasons: Vec<String> = r
            .reasons
            .iter()
            .map(|x| format!("{} ({})", x.rule, x.colour.as_str()))
            .collect();
        let reasons = reasons.join("; ");
        let p = self
            .point("risk")
            .tag("scope", r.scope.as_str())
            .tag("hazard_source", source)
            .tag("colour", r.to.as_str())
            .field("level", i64::from(r.to.level()))
            .field("from_level", i64::from(r.from.level()))
            .field("colour", r.to.as_str())
            .field("reasons", reasons.as_str())
            .field("snapshot", i64::from(r.snapshot))
            .field("seq", self.seq);
        self.push(p, r.ts.0);
    }

    pub fn special_operation(&mut self, o: &SpecialOperation<'_>) {
        let p = self
            .point("special_operation")
            .tag("hazard_source", &o.hazard_source)
            .field("active", i64::from(o.active))
            .field("kind", &*o.kind)
            .field("by", &*o.by)
            .field("seq", self.seq);
        self.push(p, o.ts.0);
    }

    pub fn thresholds(&mut self, t: &Thresholds<'_>) {
        let old = serde_json::to_string(&t.old).unwrap_or_default();
        let new = serde_json::to_string(&t.new).unwrap_or_default();
        let mut p = self
            .point("threshold_change")
            .tag("hazard_source", &t.hazard_source)
            .tag("point", &t.point)
            .field("by", &*t.by)
            .field("old", old.as_str())
            .field("new", new.as_str())
            .field("seq", self.seq);
        // The new limits as numbers: a dashboard draws them as threshold lines.
        for (name, limit) in [
            ("hh", t.new.hh),
            ("h", t.new.h),
            ("l", t.new.l),
            ("ll", t.new.ll),
        ] {
            if let Some(x) = limit {
                p = p.field(name, x);
            }
        }
        self.push(p, t.ts.0);
    }

    /// `ts`: the message's time (gateway time).
    pub fn status(&mut self, s: &Status<'_>, ts: i64) {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let p = self
            .point("gateway_status")
            .field("online", i64::from(s.state.as_str() == "online"))
            .field("uptime_s", int(s.uptime_s))
            .field("spool_events", int(s.spool_events))
            .field("spool_telemetry", int(s.spool_telemetry))
            .field("spool_bytes", int(s.spool_bytes))
            .field("dropped_telemetry", int(s.dropped_telemetry))
            .field("version", &*s.version)
            .field("seq", self.seq);
        self.push(p, ts);
    }
}

/// The alarm-handling loop's counters (`alarm_loop`), one point per enterprise and per
/// park at `ts` (the centre's time): the dashboards' 未销警 / 未反馈 / online / feedback
/// time panels read them, and the store keeps their history, which the ledger does not.
pub fn loop_counts(counts: &[Counts], ts: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(counts.len() * 160);
    for c in counts {
        let int = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let (scope, enterprise, gateway) = if c.enterprise.is_empty() {
            ("park", "park", "park")
        } else {
            ("enterprise", c.enterprise.as_str(), c.gateway.as_str())
        };
        let mut p = Point::new("alarm_loop")
            .tag("park", &c.park)
            .tag("scope", scope)
            .tag("enterprise", enterprise)
            .tag("gateway", gateway)
            .field("not_cleared", int(c.not_cleared))
            .field("longest_open_s", c.longest_open_s)
            .field("feedback_overdue", int(c.feedback_overdue))
            .field("online", int(c.online))
            .field("gateways", int(c.gateways));
        if c.gateways > 0 {
            p = p.field("online_pct", 100.0 * c.online as f64 / c.gateways as f64);
        }
        if let Some(x) = c.feedback_p50_min {
            p = p.field("feedback_p50_min", x);
        }
        if let Some(x) = c.feedback_p90_min {
            p = p.field("feedback_p90_min", x);
        }
        p.write(&mut out, ts);
    }
    out
}

/// At most this many reading prefixes are cached per thread (≈ 200 B each).
const PREFIX_CACHE: usize = 200_000;

/// A reading's fields in sorted order, then its time. The range flags are written only
/// when set: they are rare, and every byte of a reading's line costs throughput.
fn write_reading_fields(out: &mut Vec<u8>, r: &Reading<'_>) {
    let quality = r.quality.code();
    out.push(b' ');
    if let Some(code) = r.exception {
        let _ = write!(out, "exception={code}i,");
    }
    let _ = write!(out, "good={}i,", i64::from(r.quality == Quality::Good));
    if r.over_range {
        out.extend_from_slice(b"over_range=1i,");
    }
    let _ = write!(out, "quality={quality}i");
    if r.under_range {
        out.extend_from_slice(b",under_range=1i");
    }
    if let Some(x) = r.value {
        let _ = write!(out, ",value={}", x.as_f64());
    }
    let _ = writeln!(out, " {}", r.ts.0);
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::{
        contract::wire::{Id, Value},
        model::PointKind,
        reading::Timestamp,
    };

    /// An enterprise's counters carry its gateway; a park's total is tagged as such;
    /// feedback times are written only when there are some.
    #[test]
    fn loop_counts_name_their_scope_and_leave_out_unknown_times() {
        let gw = Counts {
            park: "P1".into(),
            enterprise: "E1".into(),
            gateway: "G1".into(),
            not_cleared: 2,
            online: 1,
            gateways: 1,
            feedback_p50_min: Some(12.5),
            ..Counts::default()
        };
        let park = Counts {
            park: "P1".into(),
            gateways: 2,
            ..Counts::default()
        };
        let out = String::from_utf8(loop_counts(&[gw, park], 7)).unwrap();
        assert_eq!(
            out,
            "alarm_loop,enterprise=E1,gateway=G1,park=P1,scope=enterprise \
             feedback_overdue=0i,feedback_p50_min=12.5,gateways=1i,longest_open_s=0i,\
             not_cleared=2i,online=1i,online_pct=100 7\n\
             alarm_loop,enterprise=park,gateway=park,park=P1,scope=park \
             feedback_overdue=0i,gateways=2i,longest_open_s=0i,not_cleared=0i,online=0i,\
             online_pct=0 7\n"
        );
    }

    /// The cached prefix and hand-written fields are the line the general builder
    /// writes for the same reading.
    #[test]
    fn reading_lines_are_what_the_builder_writes() {
        let g = GatewayPath {
            park: "P,1",
            enterprise: "E=1",
            gateway: "G1",
        };
        for (point, unit, exception, quality, value, over, under) in [
            (
                "GT-101",
                "%LEL",
                None,
                Quality::Good,
                Some(12.5),
                false,
                false,
            ),
            (
                "A,B=C",
                "m³/h",
                Some(2),
                Quality::DeviceException,
                None,
                false,
                false,
            ),
            (
                "T\\1",
                "",
                None,
                Quality::SensorFault,
                Some(-0.000123),
                false,
                true,
            ),
            ("BIG", "kPa", None, Quality::Good, Some(1e21), true, false),
        ] {
            let r = Reading {
                point: Id::from(point),
                hazard_source: Id::from("HS-01"),
                device: Some(Id::from("D1")),
                kind: PointKind::Pressure,
                value: value.map(Value::Number),
                unit: Cow::Borrowed(unit),
                quality,
                exception,
                over_range: over,
                under_range: under,
                ts: Timestamp(1_795_419_778_001),
            };
            for _ in 0..2 {
                // second round: from the cache
                let mut ours = Points::new(g, 1);
                ours.readings(std::slice::from_ref(&r));
                let mut p = Point::new("reading")
                    .tag("park", g.park)
                    .tag("enterprise", g.enterprise)
                    .tag("gateway", g.gateway)
                    .tag("hazard_source", "HS-01")
                    .tag("point", point)
                    .tag("kind", "pressure")
                    .tag("device", "D1")
                    .field("quality", quality.code())
                    .field("good", i64::from(quality == Quality::Good));
                if !unit.is_empty() {
                    p = p.tag("unit", unit);
                }
                if let Some(x) = value {
                    p = p.field("value", x);
                }
                if let Some(e) = exception {
                    p = p.field("exception", i64::from(e));
                }
                if over {
                    p = p.field("over_range", 1i64);
                }
                if under {
                    p = p.field("under_range", 1i64);
                }
                let mut theirs = Vec::new();
                p.write(&mut theirs, 1_795_419_778_001);
                assert_eq!(
                    String::from_utf8(ours.lines).unwrap(),
                    String::from_utf8(theirs).unwrap()
                );
            }
        }
    }
}
