//! Scripted process behaviour for the simulator.
//!
//! A scenario is a pure function of (point, seconds since start) → what the device
//! should hold, so runs are reproducible apart from the noise, and a scenario can be
//! inspected or tested without any server.

use std::{fmt, str::FromStr, time::Duration};

use crate::model::{DeviceId, Point, PointIndex, PointKind, Site, SourceIndex};

/// The scenarios an engineer can pick with `--scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioKind {
    /// Everything normal, values with a little noise.
    Steady,
    /// A combustible detector ramps slowly to 60 %LEL.
    GasLeak,
    /// A toxic detector ramps to three times its gas's OEL.
    ToxicLeak,
    /// A tank level climbs to 98 % of span.
    Overfill,
    /// A SIS trip signal becomes active.
    SisTrip,
    /// An interlock bypass (联锁旁路) is switched on.
    Bypass,
    /// A gas detector's loop current drops below 3.8 mA (or its fault bit is set).
    DetectorFault,
    /// A device stops answering altogether.
    DeadDevice,
    /// A device answers every read with exception 0x02 (illegal data address).
    Exception,
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

impl FromStr for ScenarioKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as clap::ValueEnum>::from_str(s, true)
    }
}

/// Timing of a scenario's event.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Normal operation before the event starts.
    pub start_after: Duration,
    /// How long a ramp takes to reach its peak.
    pub ramp: Duration,
    /// When set, the event ends this long after it started and the site returns to normal.
    pub recover_after: Option<Duration>,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            start_after: Duration::from_secs(5),
            ramp: Duration::from_secs(60),
            recover_after: None,
        }
    }
}

/// What a device should present for one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimValue {
    /// An engineering value, encoded through the point's scaling.
    Eng(f64),
    Bit(bool),
    /// A raw loop current (for 4–20 mA points), in mA.
    LoopMa(f64),
}

/// How a device behaves on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceMode {
    Normal,
    Silent,
    Exception(u8),
}

/// A scenario bound to a site: which point or device it acts on.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub kind: ScenarioKind,
    pub timing: Timing,
    /// The point the event acts on, if any.
    pub target_point: Option<PointIndex>,
    /// A point whose fault bit the detector-fault scenario sets instead of the loop.
    pub fault_bit: Option<PointIndex>,
    /// The device the dead-device / exception scenarios act on.
    pub target_device: Option<DeviceId>,
}

impl Scenario {
    /// Binds `kind` to the first suitable point or device of `site`, or to the given
    /// target (a point id or device id).
    pub fn bind(
        site: &Site,
        kind: ScenarioKind,
        timing: Timing,
        target: Option<&str>,
    ) -> Result<Self, String> {
        let mut s = Scenario {
            kind,
            timing,
            target_point: None,
            fault_bit: None,
            target_device: None,
        };
        let find = Finder { site, kind, target };
        let single = |k: PointKind| find.need(&|p| p.kind == k, k.as_str());
        match kind {
            ScenarioKind::Steady => {}
            ScenarioKind::GasLeak => s.target_point = Some(single(PointKind::CombustibleGas)?),
            ScenarioKind::ToxicLeak => s.target_point = Some(single(PointKind::ToxicGas)?),
            ScenarioKind::Overfill => s.target_point = Some(single(PointKind::Level)?),
            ScenarioKind::SisTrip => s.target_point = Some(single(PointKind::SisTrip)?),
            ScenarioKind::Bypass => s.target_point = Some(single(PointKind::InterlockBypass)?),
            ScenarioKind::DetectorFault => {
                let p = find.faulty_detector()?;
                let point = site.point(p);
                if point.loop_current.is_none() {
                    s.fault_bit = point.fault_point;
                }
                s.target_point = Some(p);
            }
            ScenarioKind::DeadDevice | ScenarioKind::Exception => {
                s.target_device = Some(find.device()?);
            }
        }
        Ok(s)
    }

    /// What the scenario is about to do, in a sentence: printed when a demo or a
    /// simulator starts and kept in the demo's header.
    pub fn describe(&self, site: &Site) -> String {
        let point = self.target_point.map(|p| site.point(p));
        let what = match (self.kind, point) {
            (ScenarioKind::Steady, _) => {
                return "steady: every value normal, with a little noise".into()
            }
            (ScenarioKind::GasLeak, Some(p)) => format!("detector {} ramps to 60 %LEL", p.id),
            (ScenarioKind::ToxicLeak, Some(p)) => {
                format!("detector {} ramps to 3 × its gas's OEL", p.id)
            }
            (ScenarioKind::Overfill, Some(p)) => {
                format!("tank level {} climbs to 98 % of span", p.id)
            }
            (ScenarioKind::SisTrip, Some(p)) => format!("SIS trip {} becomes active", p.id),
            (ScenarioKind::Bypass, Some(p)) => format!("interlock bypass {} is switched on", p.id),
            (ScenarioKind::DetectorFault, Some(p)) => {
                format!("gas detector {} goes into fault", p.id)
            }
            (ScenarioKind::DeadDevice, _) => format!(
                "device {} stops answering",
                self.target_device.as_ref().map_or("?", |d| d.as_str())
            ),
            (ScenarioKind::Exception, _) => format!(
                "device {} answers every read with exception 2",
                self.target_device.as_ref().map_or("?", |d| d.as_str())
            ),
            (kind, None) => format!("{kind}"),
        };
        let source = point
            .map(|p| format!(" at {}", site.source(p.source).id))
            .unwrap_or_default();
        let ramp = match self.kind {
            ScenarioKind::GasLeak | ScenarioKind::ToxicLeak | ScenarioKind::Overfill => {
                format!(" over {} s", self.timing.ramp.as_secs_f64())
            }
            _ => String::new(),
        };
        let recover = self
            .timing
            .recover_after
            .map(|r| format!(", back to normal {} s later", r.as_secs_f64()))
            .unwrap_or_default();
        format!(
            "{}: from {} s, {what}{source}{ramp}{recover}",
            self.kind,
            self.timing.start_after.as_secs_f64()
        )
    }

    /// The hazard source the scenario acts on (the demo keeps it on screen).
    pub fn focus_source(&self, site: &Site) -> Option<SourceIndex> {
        if let Some(p) = self.target_point {
            return Some(site.point(p).source);
        }
        let device = self.target_device.as_ref()?;
        site.points
            .iter()
            .find(|p| &p.device_id == device)
            .map(|p| p.source)
    }

    /// Seconds into the event, or `None` when it is not running at `t`.
    fn event_time(&self, t: f64) -> Option<f64> {
        let start = self.timing.start_after.as_secs_f64();
        if t < start {
            return None;
        }
        if let Some(r) = self.timing.recover_after {
            if t >= start + r.as_secs_f64() {
                return None;
            }
        }
        Some(t - start)
    }

    /// The wire behaviour of `device` at `t` seconds.
    pub fn device_mode(&self, device: &DeviceId, t: f64) -> DeviceMode {
        if self.target_device.as_ref() != Some(device) || self.event_time(t).is_none() {
            return DeviceMode::Normal;
        }
        match self.kind {
            ScenarioKind::DeadDevice => DeviceMode::Silent,
            ScenarioKind::Exception => DeviceMode::Exception(0x02),
            _ => DeviceMode::Normal,
        }
    }

    /// What `point` should read at `t` seconds; `noise` is in -1..=1.
    pub fn value(&self, point: &Point, t: f64, noise: f64) -> SimValue {
        let base = baseline(point, noise);
        let Some(e) = self.event_time(t) else {
            return base;
        };
        let ramp = (e / self.timing.ramp.as_secs_f64().max(0.001)).min(1.0);
        if self.fault_bit == Some(point.index) {
            return SimValue::Bit(true);
        }
        if self.target_point != Some(point.index) {
            return base;
        }
        let SimValue::Eng(b) = base else {
            // Discrete targets: the event switches them to their abnormal state.
            return SimValue::Bit(!point.normal.unwrap_or(false));
        };
        let towards = |peak: f64| SimValue::Eng(b + (peak - b) * ramp);
        match self.kind {
            ScenarioKind::GasLeak => towards(60.0),
            ScenarioKind::ToxicLeak => {
                towards(3.0 * point.gas.as_ref().and_then(|g| g.oel_ppm).unwrap_or(10.0))
            }
            ScenarioKind::Overfill => {
                let [lo, hi] = span(point);
                towards(lo + 0.98 * (hi - lo))
            }
            ScenarioKind::DetectorFault => SimValue::LoopMa(2.0),
            _ => base,
        }
    }
}

/// The engineering span of a point ([`Point::span`]), else 0–100.
fn span(point: &Point) -> [f64; 2] {
    point.span().unwrap_or([0.0, 100.0])
}

/// Normal operation: gas near zero, process values mid-span, discretes in their normal state.
fn baseline(point: &Point, noise: f64) -> SimValue {
    match point.kind {
        k if k.is_discrete() => SimValue::Bit(match k {
            PointKind::SisTrip | PointKind::InterlockBypass | PointKind::DetectorFault => false,
            _ => point.normal.unwrap_or(false),
        }),
        PointKind::CombustibleGas => SimValue::Eng(1.0 + noise),
        PointKind::ToxicGas => {
            let oel = point.gas.as_ref().and_then(|g| g.oel_ppm).unwrap_or(10.0);
            SimValue::Eng((0.05 + 0.03 * noise) * oel)
        }
        _ => {
            let [lo, hi] = span(point);
            SimValue::Eng(lo + (hi - lo) * (0.45 + 0.005 * noise))
        }
    }
}

/// Finds what a scenario acts on: the `--target` if given (and fitting), else the first
/// that fits.
struct Finder<'a> {
    site: &'a Site,
    kind: ScenarioKind,
    target: Option<&'a str>,
}

impl Finder<'_> {
    fn point(&self, fits: &dyn Fn(&Point) -> bool) -> Result<Option<PointIndex>, String> {
        let Some(id) = self.target else {
            return Ok(self.site.points.iter().find(|p| fits(p)).map(|p| p.index));
        };
        match self.site.point_by_id(id) {
            Some(p) if fits(p) => Ok(Some(p.index)),
            Some(p) => Err(format!(
                "point {id} ({}) does not fit scenario {}",
                p.kind.as_str(),
                self.kind
            )),
            None => Err(format!("no point {id}")),
        }
    }

    fn need(&self, fits: &dyn Fn(&Point) -> bool, what: &str) -> Result<PointIndex, String> {
        self.point(fits)?
            .ok_or_else(|| format!("scenario {} needs a {what} point in the site", self.kind))
    }

    /// A 4–20 mA gas detector (the loop current drops below 3.8 mA), else one with a
    /// fault bit.
    fn faulty_detector(&self) -> Result<PointIndex, String> {
        let is_gas = |p: &Point| matches!(p.kind, PointKind::CombustibleGas | PointKind::ToxicGas);
        if let Ok(Some(p)) = self.point(&|p| is_gas(p) && p.loop_current.is_some()) {
            return Ok(p);
        }
        self.need(
            &|p| is_gas(p) && (p.loop_current.is_some() || p.fault_point.is_some()),
            "gas detector with loop_current or fault_point",
        )
    }

    fn device(&self) -> Result<DeviceId, String> {
        let mut devices = self.site.devices().map(|(_, d)| &d.id);
        match self.target {
            Some(id) => devices
                .find(|d| d.as_str() == id)
                .cloned()
                .ok_or_else(|| format!("no device {id}")),
            None => devices
                .next()
                .cloned()
                .ok_or_else(|| "the site has no devices".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{load_site, SiteSource, DEMO_SITE_TOML};

    fn demo() -> Site {
        load_site(SiteSource::Text {
            name: "demo",
            toml: DEMO_SITE_TOML,
        })
        .unwrap()
    }

    fn timing() -> Timing {
        Timing {
            start_after: Duration::from_secs(10),
            ramp: Duration::from_secs(100),
            recover_after: Some(Duration::from_secs(200)),
        }
    }

    fn eng(v: SimValue) -> f64 {
        match v {
            SimValue::Eng(e) => e,
            other => panic!("not an engineering value: {other:?}"),
        }
    }

    #[test]
    fn gas_leak_ramps_to_60_lel_then_recovers() {
        let site = demo();
        let s = Scenario::bind(&site, ScenarioKind::GasLeak, timing(), None).unwrap();
        let p = site.point(s.target_point.unwrap());
        assert_eq!(p.kind, PointKind::CombustibleGas);
        assert!(eng(s.value(p, 5.0, 0.0)) < 3.0, "normal before the event");
        let mid = eng(s.value(p, 60.0, 0.0));
        assert!((25.0..35.0).contains(&mid), "half way up the ramp: {mid}");
        assert!(
            (eng(s.value(p, 150.0, 0.0)) - 60.0).abs() < 1e-9,
            "peak 60 %LEL"
        );
        assert!(
            eng(s.value(p, 215.0, 0.0)) < 3.0,
            "back to normal after recover_after"
        );
        // Other points stay normal.
        let other = site.point_by_id("GT-102").unwrap();
        assert!(eng(s.value(other, 150.0, 0.0)) < 3.0);
    }

    #[test]
    fn toxic_leak_reaches_three_times_the_oel() {
        let site = demo();
        let s = Scenario::bind(&site, ScenarioKind::ToxicLeak, timing(), None).unwrap();
        let p = site.point(s.target_point.unwrap());
        let oel = p.gas.as_ref().unwrap().oel_ppm.unwrap();
        assert!((eng(s.value(p, 150.0, 0.0)) - 3.0 * oel).abs() < 1e-9);
    }

    #[test]
    fn overfill_reaches_98_percent_of_span() {
        let site = demo();
        let s = Scenario::bind(&site, ScenarioKind::Overfill, timing(), Some("LT-102")).unwrap();
        let p = site.point_by_id("LT-102").unwrap();
        let [lo, hi] = span(p);
        assert!((eng(s.value(p, 150.0, 0.0)) - (lo + 0.98 * (hi - lo))).abs() < 1e-9);
    }

    #[test]
    fn discrete_events_switch_to_the_abnormal_state() {
        let site = demo();
        for (kind, target, during) in [
            (ScenarioKind::SisTrip, "XS-101", true),
            (ScenarioKind::Bypass, "BP-101", true),
        ] {
            let s = Scenario::bind(&site, kind, timing(), Some(target)).unwrap();
            let p = site.point_by_id(target).unwrap();
            assert_eq!(
                s.value(p, 5.0, 0.0),
                SimValue::Bit(!during),
                "{kind} before"
            );
            assert_eq!(
                s.value(p, 50.0, 0.0),
                SimValue::Bit(during),
                "{kind} during"
            );
        }
        let s = Scenario::bind(&site, ScenarioKind::Bypass, timing(), Some("XV-101"));
        assert!(s.is_err(), "a valve is not an interlock bypass");
    }

    #[test]
    fn detector_fault_prefers_a_loop_below_3_8_ma() {
        let site = demo();
        let s = Scenario::bind(&site, ScenarioKind::DetectorFault, timing(), None).unwrap();
        let p = site.point(s.target_point.unwrap());
        assert!(p.loop_current.is_some());
        assert_eq!(s.value(p, 50.0, 0.0), SimValue::LoopMa(2.0));
    }

    #[test]
    fn device_modes_apply_only_to_the_target_during_the_event() {
        let site = demo();
        let dead =
            Scenario::bind(&site, ScenarioKind::DeadDevice, timing(), Some("CL2-12")).unwrap();
        let id = DeviceId::new("CL2-12");
        assert_eq!(dead.device_mode(&id, 5.0), DeviceMode::Normal);
        assert_eq!(dead.device_mode(&id, 50.0), DeviceMode::Silent);
        assert_eq!(
            dead.device_mode(&DeviceId::new("CL2-11"), 50.0),
            DeviceMode::Normal
        );
        let exc = Scenario::bind(&site, ScenarioKind::Exception, timing(), Some("CL2-12")).unwrap();
        assert_eq!(exc.device_mode(&id, 50.0), DeviceMode::Exception(2));
        assert!(Scenario::bind(&site, ScenarioKind::DeadDevice, timing(), Some("NOPE")).is_err());
    }
}
