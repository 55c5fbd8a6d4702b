//! Alarm settings per point: limits, deadband, delays, classes; their layered defaults
//! and the guardrails of GB/T 50493-2019.
//!
//! Layers, later wins: built-in per-kind defaults → site `[alarm_defaults.<kind>]` →
//! hazard source `[hazard_sources.alarm_defaults.<kind>]` → the point's `alarms`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{gas::Gas, PointKind};

/// Severity class of an alarm, the input to the four-colour rules (risk-rules.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmClass {
    Low,
    High,
    Critical,
}

impl AlarmClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// Which condition of a point an alarm watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// High-high; for gas detectors the second-level alarm (二级报警).
    Hh,
    /// High; for gas detectors the first-level alarm (一级报警).
    H,
    L,
    Ll,
    /// Rate of change above its limit.
    Roc,
    /// A discrete point in its abnormal state (SIS trip, ESD valve, bypass, fault bit).
    Discrete,
    /// The point itself is not measuring: comm failure, sensor fault, stale.
    Fault,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 7] = [
        Self::Hh,
        Self::H,
        Self::L,
        Self::Ll,
        Self::Roc,
        Self::Discrete,
        Self::Fault,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hh => "hh",
            Self::H => "h",
            Self::L => "l",
            Self::Ll => "ll",
            Self::Roc => "roc",
            Self::Discrete => "discrete",
            Self::Fault => "fault",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Settings as written in a file: every field optional, so layers can be merged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmSettingsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hh: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ll: Option<f64>,
    /// Hysteresis in engineering units: an alarm clears only once the value is back
    /// past its limit by this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadband: Option<f64>,
    /// Seconds a condition must persist before the alarm is raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delay_s: Option<f64>,
    /// Seconds a condition must stay clear before the alarm clears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_delay_s: Option<f64>,
    /// Rate-of-change limit, engineering units per minute (either direction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_min: Option<f64>,
    /// For `discrete` points: the value that is abnormal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_on: Option<bool>,
    /// Seconds of bad quality before the fault alarm is raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_delay_s: Option<f64>,
    /// Class overrides per alarm kind, e.g. `{ h = "critical" }`.
    #[serde(
        default,
        deserialize_with = "super::plain::choice_keys",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub classes: BTreeMap<AlarmKind, AlarmClass>,
}

impl AlarmSettingsFile {
    /// Whether this layer sets `field` (named as in the file, e.g. `h`).
    pub fn sets(&self, field: &str) -> bool {
        match field {
            "hh" => self.hh.is_some(),
            "h" => self.h.is_some(),
            "l" => self.l.is_some(),
            "ll" => self.ll.is_some(),
            "deadband" => self.deadband.is_some(),
            "on_delay_s" => self.on_delay_s.is_some(),
            "off_delay_s" => self.off_delay_s.is_some(),
            "rate_per_min" => self.rate_per_min.is_some(),
            "alarm_on" => self.alarm_on.is_some(),
            "fault_delay_s" => self.fault_delay_s.is_some(),
            _ => false,
        }
    }

    /// `other`'s fields win where set.
    pub fn merged_with(&self, other: &AlarmSettingsFile) -> AlarmSettingsFile {
        let mut classes = self.classes.clone();
        classes.extend(other.classes.iter().map(|(k, v)| (*k, *v)));
        AlarmSettingsFile {
            hh: other.hh.or(self.hh),
            h: other.h.or(self.h),
            l: other.l.or(self.l),
            ll: other.ll.or(self.ll),
            deadband: other.deadband.or(self.deadband),
            on_delay_s: other.on_delay_s.or(self.on_delay_s),
            off_delay_s: other.off_delay_s.or(self.off_delay_s),
            rate_per_min: other.rate_per_min.or(self.rate_per_min),
            alarm_on: other.alarm_on.or(self.alarm_on),
            fault_delay_s: other.fault_delay_s.or(self.fault_delay_s),
            classes,
        }
    }
}

/// Effective settings of one point, in engineering units and milliseconds. Read back
/// only whole (every field present, null where unset), as it is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmSettings {
    #[serde(deserialize_with = "present")]
    pub hh: Option<f64>,
    #[serde(deserialize_with = "present")]
    pub h: Option<f64>,
    #[serde(deserialize_with = "present")]
    pub l: Option<f64>,
    #[serde(deserialize_with = "present")]
    pub ll: Option<f64>,
    pub deadband: f64,
    pub on_delay_ms: i64,
    pub off_delay_ms: i64,
    #[serde(deserialize_with = "present")]
    pub rate_per_min: Option<f64>,
    /// The abnormal value of a discrete point; `None` = the point raises no discrete alarm.
    #[serde(deserialize_with = "present")]
    pub alarm_on: Option<bool>,
    pub fault_delay_ms: i64,
    pub classes: BTreeMap<AlarmKind, AlarmClass>,
}

/// A field that must be there, null or not (serde takes a missing `Option` as `None`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

impl AlarmSettings {
    /// Back to file form (every field set), so a change can be merged over it.
    pub fn to_file(&self) -> AlarmSettingsFile {
        AlarmSettingsFile {
            hh: self.hh,
            h: self.h,
            l: self.l,
            ll: self.ll,
            deadband: Some(self.deadband),
            on_delay_s: Some(self.on_delay_ms as f64 / 1000.0),
            off_delay_s: Some(self.off_delay_ms as f64 / 1000.0),
            rate_per_min: self.rate_per_min,
            alarm_on: self.alarm_on,
            fault_delay_s: Some(self.fault_delay_ms as f64 / 1000.0),
            classes: self.classes.clone(),
        }
    }

    pub fn limit(&self, kind: AlarmKind) -> Option<f64> {
        match kind {
            AlarmKind::Hh => self.hh,
            AlarmKind::H => self.h,
            AlarmKind::L => self.l,
            AlarmKind::Ll => self.ll,
            AlarmKind::Roc => self.rate_per_min,
            _ => None,
        }
    }

    pub fn class(&self, kind: AlarmKind) -> AlarmClass {
        self.classes.get(&kind).copied().unwrap_or(AlarmClass::Low)
    }
}

/// The engineering span of a point (for span-relative defaults): eng or valid range.
pub type Span = Option<[f64; 2]>;

/// Built-in defaults for a kind (docs/judge.md, "Settings and their layers").
///
/// Gas detectors get GB/T 50493-2019-compliant project defaults (combustible 20 / 40
/// %LEL; toxic 100 / 200 %OEL converted to ppm) with no on-delay: a real leak must not
/// be delayed. Process kinds get the ISA-18.2 deadband / delay starting points as a
/// fraction of span, and no limits: those are the process engineer's to set.
pub fn kind_defaults(kind: PointKind, gas: Option<&Gas>, span: Span) -> AlarmSettingsFile {
    let width = span.map(|[a, b]| (b - a).abs());
    let of_span = |pct: f64| width.map(|w| w * pct / 100.0);
    let mut classes = BTreeMap::new();
    let mut s = AlarmSettingsFile::default();
    match kind {
        PointKind::CombustibleGas => {
            s.h = Some(20.0);
            s.hh = Some(40.0);
            s.deadband = Some(1.0);
            s.on_delay_s = Some(0.0);
            s.off_delay_s = Some(0.0);
            classes.insert(AlarmKind::Hh, AlarmClass::Critical);
            classes.insert(AlarmKind::H, AlarmClass::High);
        }
        PointKind::ToxicGas => {
            if let Some(oel) = gas.and_then(|g| g.oel_ppm) {
                s.h = Some(oel);
                s.hh = Some(2.0 * oel);
                s.deadband = Some(0.05 * oel);
            }
            s.on_delay_s = Some(0.0);
            s.off_delay_s = Some(0.0);
            classes.insert(AlarmKind::Hh, AlarmClass::Critical);
            classes.insert(AlarmKind::H, AlarmClass::High);
        }
        PointKind::Level | PointKind::Pressure | PointKind::Temperature | PointKind::Flow => {
            let (deadband_pct, delay) = match kind {
                PointKind::Level => (5.0, 60.0),
                PointKind::Pressure => (2.0, 15.0),
                PointKind::Temperature => (1.0, 60.0),
                _ => (5.0, 15.0),
            };
            s.deadband = of_span(deadband_pct);
            s.on_delay_s = Some(delay);
            s.off_delay_s = Some(delay);
            classes.insert(AlarmKind::Hh, AlarmClass::High);
            classes.insert(AlarmKind::Ll, AlarmClass::High);
        }
        PointKind::SisTrip => {
            s.alarm_on = Some(true);
            classes.insert(AlarmKind::Discrete, AlarmClass::Critical);
        }
        PointKind::EsdValve => {
            // The abnormal state is the opposite of `normal`; resolved by the caller.
            classes.insert(AlarmKind::Discrete, AlarmClass::Critical);
        }
        PointKind::InterlockBypass => {
            s.alarm_on = Some(true);
            classes.insert(AlarmKind::Discrete, AlarmClass::High);
        }
        PointKind::DetectorFault => {
            s.alarm_on = Some(true);
        }
        PointKind::Analog | PointKind::Discrete => {}
    }
    s.classes = classes;
    s
}

fn secs_to_ms(s: Option<f64>) -> i64 {
    (s.unwrap_or(0.0).max(0.0) * 1000.0).round() as i64
}

/// Resolves merged file settings into effective settings.
pub fn resolve(merged: &AlarmSettingsFile, kind: PointKind, normal: Option<bool>) -> AlarmSettings {
    let alarm_on = match kind {
        PointKind::EsdValve => merged.alarm_on.or(Some(!normal.unwrap_or(true))),
        _ => merged.alarm_on,
    };
    AlarmSettings {
        hh: merged.hh,
        h: merged.h,
        l: merged.l,
        ll: merged.ll,
        deadband: merged.deadband.unwrap_or(0.0),
        on_delay_ms: secs_to_ms(merged.on_delay_s),
        off_delay_ms: secs_to_ms(merged.off_delay_s),
        rate_per_min: merged.rate_per_min,
        alarm_on,
        fault_delay_ms: secs_to_ms(merged.fault_delay_s),
        classes: merged.classes.clone(),
    }
}

/// One broken rule: which limit, why, under which clause.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardrailViolation {
    /// The field, e.g. `h`.
    pub field: &'static str,
    /// The other field of a pair out of order (`h` when `hh` is not above it).
    pub against: Option<&'static str>,
    pub message: String,
}

/// GB/T 50493-2019, 5.5.2: alarm setpoints of gas detectors.
pub const CLAUSE_GAS_SETPOINTS: &str = "GB/T 50493-2019 5.5.2";

/// Checks effective settings against the standards and plain consistency.
pub fn guardrails(
    s: &AlarmSettings,
    kind: PointKind,
    gas: Option<&Gas>,
) -> Vec<GuardrailViolation> {
    let mut v = Vec::new();
    let mut push = |field: &'static str, message: String| {
        v.push(GuardrailViolation {
            field,
            against: None,
            message,
        })
    };
    check_numbers(s, &mut push);
    match kind {
        PointKind::CombustibleGas | PointKind::ToxicGas => check_gas_detector(s, &mut push),
        _ => {}
    }
    match kind {
        PointKind::CombustibleGas => check_combustible(s, &mut push),
        PointKind::ToxicGas => check_toxic(s, gas, &mut push),
        _ => {}
    }
    check_order(s, &mut v);
    v
}

type Push<'a> = dyn FnMut(&'static str, String) + 'a;

/// Finite numbers, a deadband ≥ 0, a rate above 0.
fn check_numbers(s: &AlarmSettings, push: &mut Push<'_>) {
    for (field, val) in [
        ("hh", s.hh),
        ("h", s.h),
        ("l", s.l),
        ("ll", s.ll),
        ("rate_per_min", s.rate_per_min),
    ] {
        if let Some(x) = val {
            if !x.is_finite() {
                push(field, format!("must be a finite number, got {x}"));
            }
        }
    }
    if !(s.deadband.is_finite() && s.deadband >= 0.0) {
        push("deadband", format!("must be ≥ 0, got {}", s.deadband));
    }
    if s.rate_per_min.is_some_and(|r| r <= 0.0) {
        push("rate_per_min", "must be above 0".into());
    }
}

/// LL < L < H < HH among the limits that are set.
fn check_order(s: &AlarmSettings, v: &mut Vec<GuardrailViolation>) {
    let ordered: Vec<(&'static str, f64)> = [("ll", s.ll), ("l", s.l), ("h", s.h), ("hh", s.hh)]
        .into_iter()
        .filter_map(|(n, x)| x.map(|x| (n, x)))
        .collect();
    for w in ordered.windows(2) {
        if w[0].1 >= w[1].1 {
            v.push(GuardrailViolation {
                field: w[1].0,
                against: Some(w[0].0),
                message: format!(
                    "{} = {} must be above {} = {}",
                    w[1].0, w[1].1, w[0].0, w[0].1
                ),
            });
        }
    }
}

/// A gas detector alarms on rising concentration, at two levels.
fn check_gas_detector(s: &AlarmSettings, push: &mut Push<'_>) {
    for (field, val) in [("l", s.l), ("ll", s.ll)] {
        if val.is_some() {
            push(
                field,
                "gas detectors alarm on rising concentration: use h / hh".into(),
            );
        }
    }
    if s.h.is_none() || s.hh.is_none() {
        push(
            if s.h.is_none() { "h" } else { "hh" },
            format!("a gas detector needs both its first-level (h) and second-level (hh) alarm ({CLAUSE_GAS_SETPOINTS})"),
        );
    }
}

/// Combustible gas: first level ≤ 25 %LEL, second ≤ 50 %LEL.
fn check_combustible(s: &AlarmSettings, push: &mut Push<'_>) {
    if let Some(h) = s.h.filter(|h| *h > 25.0) {
        push(
            "h",
            format!(
                "first-level alarm {h} %LEL is above the 25 %LEL ceiling of {CLAUSE_GAS_SETPOINTS}"
            ),
        );
    }
    if let Some(hh) = s.hh.filter(|hh| *hh > 50.0) {
        push("hh", format!("second-level alarm {hh} %LEL is above the 50 %LEL ceiling of {CLAUSE_GAS_SETPOINTS}"));
    }
}

/// Toxic gas: first level ≤ 100 %OEL, second ≤ 200 %OEL of the gas.
fn check_toxic(s: &AlarmSettings, gas: Option<&Gas>, push: &mut Push<'_>) {
    let Some((g, oel)) = gas.and_then(|g| g.oel_ppm.map(|o| (g, o))) else {
        return;
    };
    if let Some(h) = s.h.filter(|h| *h > oel * (1.0 + 1e-9)) {
        push(
            "h",
            format!(
                "first-level alarm {h} ppm is above 100 %OEL of {} ({oel} ppm), the ceiling of {CLAUSE_GAS_SETPOINTS}",
                g.name
            ),
        );
    }
    if let Some(hh) = s.hh.filter(|hh| *hh > 2.0 * oel * (1.0 + 1e-9)) {
        push(
            "hh",
            format!(
                "second-level alarm {hh} ppm is above 200 %OEL of {} ({} ppm), the ceiling of {CLAUSE_GAS_SETPOINTS}",
                g.name,
                2.0 * oel
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gas::lookup;

    fn eff(f: &AlarmSettingsFile, kind: PointKind, gas: Option<&Gas>) -> AlarmSettings {
        resolve(
            &kind_defaults(kind, gas, Some([0.0, 100.0])).merged_with(f),
            kind,
            None,
        )
    }

    #[test]
    fn defaults_pass_their_own_guardrails() {
        for (kind, gas) in [
            (PointKind::CombustibleGas, None),
            (PointKind::ToxicGas, lookup("cl2")),
            (PointKind::ToxicGas, lookup("h2s")),
            (PointKind::ToxicGas, lookup("nh3")),
        ] {
            let s = eff(&AlarmSettingsFile::default(), kind, gas);
            assert!(
                guardrails(&s, kind, gas).is_empty(),
                "{kind:?} {gas:?}: {:?}",
                guardrails(&s, kind, gas)
            );
        }
    }

    /// Guardrail table: each violation, the field it names and a phrase of its message.
    #[test]
    fn each_violation_is_rejected_with_its_clause() {
        let cl2 = lookup("cl2");
        /// (what, settings, kind, gas, field named, phrase of the message)
        type Case<'a> = (
            &'a str,
            AlarmSettingsFile,
            PointKind,
            Option<&'a Gas>,
            &'a str,
            &'a str,
        );
        let cases: &[Case<'_>] = &[
            (
                "combustible h above 25",
                AlarmSettingsFile {
                    h: Some(26.0),
                    ..Default::default()
                },
                PointKind::CombustibleGas,
                None,
                "h",
                "above the 25 %LEL ceiling of GB/T 50493-2019 5.5.2",
            ),
            (
                "combustible hh above 50",
                AlarmSettingsFile {
                    hh: Some(55.0),
                    ..Default::default()
                },
                PointKind::CombustibleGas,
                None,
                "hh",
                "above the 50 %LEL ceiling of GB/T 50493-2019 5.5.2",
            ),
            (
                "h not below hh",
                AlarmSettingsFile {
                    h: Some(25.0),
                    hh: Some(25.0),
                    ..Default::default()
                },
                PointKind::CombustibleGas,
                None,
                "hh",
                "hh = 25 must be above h = 25",
            ),
            (
                "toxic h above OEL",
                AlarmSettingsFile {
                    h: Some(0.5),
                    ..Default::default()
                },
                PointKind::ToxicGas,
                cl2,
                "h",
                "above 100 %OEL of cl2 (0.34 ppm)",
            ),
            (
                "toxic hh above 2 OEL",
                AlarmSettingsFile {
                    hh: Some(0.9),
                    ..Default::default()
                },
                PointKind::ToxicGas,
                cl2,
                "hh",
                "above 200 %OEL of cl2 (0.68 ppm)",
            ),
            (
                "low limit on a gas detector",
                AlarmSettingsFile {
                    l: Some(1.0),
                    ..Default::default()
                },
                PointKind::CombustibleGas,
                None,
                "l",
                "rising concentration",
            ),
            (
                "process l above h",
                AlarmSettingsFile {
                    l: Some(90.0),
                    h: Some(80.0),
                    ..Default::default()
                },
                PointKind::Level,
                None,
                "h",
                "h = 80 must be above l = 90",
            ),
            (
                "negative deadband",
                AlarmSettingsFile {
                    deadband: Some(-1.0),
                    ..Default::default()
                },
                PointKind::Level,
                None,
                "deadband",
                "must be ≥ 0",
            ),
            (
                "zero rate",
                AlarmSettingsFile {
                    rate_per_min: Some(0.0),
                    ..Default::default()
                },
                PointKind::Pressure,
                None,
                "rate_per_min",
                "above 0",
            ),
            (
                "NaN limit",
                AlarmSettingsFile {
                    hh: Some(f64::NAN),
                    ..Default::default()
                },
                PointKind::Pressure,
                None,
                "hh",
                "finite",
            ),
        ];
        for (what, f, kind, gas, field, phrase) in cases {
            let v = guardrails(&eff(f, *kind, *gas), *kind, *gas);
            assert!(
                v.iter()
                    .any(|x| x.field == *field && x.message.contains(phrase)),
                "{what}: expected {field}: …{phrase}…, got {v:?}"
            );
        }
    }

    #[test]
    fn layers_merge_later_wins() {
        let site = AlarmSettingsFile {
            h: Some(15.0),
            deadband: Some(2.0),
            ..Default::default()
        };
        let point = AlarmSettingsFile {
            h: Some(10.0),
            ..Default::default()
        };
        let m = kind_defaults(PointKind::CombustibleGas, None, None)
            .merged_with(&site)
            .merged_with(&point);
        assert_eq!((m.h, m.hh, m.deadband), (Some(10.0), Some(40.0), Some(2.0)));
    }

    #[test]
    fn esd_valve_alarms_on_leaving_its_normal_state() {
        let s = resolve(
            &kind_defaults(PointKind::EsdValve, None, None),
            PointKind::EsdValve,
            Some(true),
        );
        assert_eq!(s.alarm_on, Some(false));
        assert_eq!(s.class(AlarmKind::Discrete), AlarmClass::Critical);
    }
}
