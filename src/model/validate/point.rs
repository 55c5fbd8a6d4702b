//! One point: register, scaling, 4–20 mA loop, gas, alarm settings (GB/T 50493-2019
//! guardrails), each checked where it is compiled.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use super::DeviceIndex;
use crate::model::{
    alarm::{self, AlarmSettings, AlarmSettingsFile},
    file::PointFile,
    gas::{Gas, GasTable},
    problems::Problems,
    site::*,
};

/// What compiling a point needs from the rest of the site.
pub(super) struct PointContext<'a> {
    pub(super) channels: &'a [Channel],
    pub(super) devices: &'a DeviceIndex<'a>,
    /// Every point id, for `fault_point` references (which may point forward).
    pub(super) point_ids: &'a HashMap<&'a str, (PointIndex, String)>,
    /// `[alarm_defaults]` of the site, then of the point's hazard source.
    pub(super) defaults: [&'a BTreeMap<PointKind, AlarmSettingsFile>; 2],
    /// The built-in gases and the site's `[[gases]]`.
    pub(super) gases: &'a GasTable,
}

/// Where a point sits in the compiled site.
pub(super) struct Placement<'a> {
    pub(super) index: PointIndex,
    pub(super) source: SourceIndex,
    pub(super) source_id: &'a HazardSourceId,
}

/// Checks one point and compiles it, or None (with its problems in `errors`).
pub(super) fn compile_point(
    p: &PointFile,
    path: &str,
    at: Placement<'_>,
    cx: &PointContext<'_>,
    alike: &mut super::Alike,
    errors: &mut Problems,
) -> Option<Point> {
    let before = errors.len();
    errors.identifier(&format!("{path}.id"), &p.id);
    let device = device_of(p, path, cx.devices, errors);
    let register = compile_register(p, path, errors);
    let scaling = compile_scaling(p, register.data_type, path, errors);
    let rounding = compile_rounding(p, register.data_type, &scaling, path, errors);
    let loop_current = compile_loop_current(p, path, errors);
    if let Some([lo, hi]) = p.valid_range {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            errors.push(
                format!("{path}.valid_range"),
                format!("needs min < max, got [{lo}, {hi}]"),
            );
        }
    }
    let (gas, unit) = compile_gas(p, cx.gases, path, errors);
    let fault_point = p
        .fault_point
        .as_deref()
        .and_then(|id| match cx.point_ids.get(id) {
            Some((i, _)) => Some(*i),
            None => {
                errors.push(format!("{path}.fault_point"), format!("no point `{id}`"));
                None
            }
        });
    if p.normal.is_some() && register.data_type != DataType::Bool {
        errors.push(format!("{path}.normal"), "only for discrete points");
    }
    let alarms = compile_alarms(p, gas.as_deref(), &scaling, cx.defaults, path, errors);
    if errors.len() > before {
        return None;
    }
    Some(Point {
        id: PointId::new(&p.id),
        index: at.index,
        name: p.name.as_str().into(),
        source: at.source,
        source_id: at.source_id.clone(),
        kind: p.kind,
        gas,
        // A site's channels and devices number far below 2^32 (each is a table in a file).
        device: (device.0 as u32, device.1 as u32),
        // Compiled only when the device exists (errors above return None otherwise).
        device_id: cx.channels[device.0].devices[device.1].id.clone(),
        register,
        scaling,
        rounding,
        loop_current: loop_current.map(Box::new),
        unit: alike.unit(&unit),
        valid: p.valid_range.map(Box::new),
        fault_codes: p.fault_codes.as_slice().into(),
        fault_point,
        normal: p.normal,
        alarms: alike.alarms(alarms),
    })
}

/// The point's device as (channel, device) indices.
fn device_of(
    p: &PointFile,
    path: &str,
    devices: &DeviceIndex<'_>,
    errors: &mut Problems,
) -> (usize, usize) {
    match devices.get(p.device.as_str()) {
        Some((at, _)) => *at,
        None => {
            errors.push(
                format!("{path}.device"),
                format!("no device `{}` in any channel", p.device),
            );
            (usize::MAX, usize::MAX)
        }
    }
}

/// Table, address, data type, word order and bit, checked together: discrete kinds
/// and bit tables are bool, analog kinds never are.
fn compile_register(p: &PointFile, path: &str, errors: &mut Problems) -> RegisterSpec {
    let data_type = match (p.data_type, p.kind.is_discrete() || p.table.is_bit_table()) {
        (Some(t), _) => t,
        (None, true) => DataType::Bool,
        (None, false) => {
            errors.push(
                format!("{path}.data_type"),
                "required for an analog point (u16, i16, u32, i32, f32, u64, i64, f64)",
            );
            DataType::U16
        }
    };
    if p.table.is_bit_table() && data_type != DataType::Bool {
        errors.push(
            format!("{path}.data_type"),
            format!(
                "{:?} table holds single bits: data_type must be bool",
                p.table
            ),
        );
    }
    if p.kind.is_discrete() && data_type != DataType::Bool {
        errors.push(
            format!("{path}.data_type"),
            format!(
                "a {} point is on/off: data_type must be bool",
                p.kind.as_str()
            ),
        );
    }
    if !p.kind.is_discrete() && data_type == DataType::Bool {
        errors.push(
            format!("{path}.data_type"),
            format!("a {} point is a measurement, not bool", p.kind.as_str()),
        );
    }
    match (p.bit, p.table.is_bit_table(), data_type) {
        (Some(b), false, DataType::Bool) if b > 15 => errors.push(
            format!("{path}.bit"),
            format!("a register has bits 0..=15, got {b}"),
        ),
        (Some(_), true, _) => errors.push(
            format!("{path}.bit"),
            "only for bools packed in holding / input registers",
        ),
        (Some(_), false, t) if t != DataType::Bool => {
            errors.push(format!("{path}.bit"), "only for data_type bool")
        }
        (None, false, DataType::Bool) => errors.push(
            format!("{path}.bit"),
            "a bool in a register needs the bit index (0 = least significant)",
        ),
        _ => {}
    }
    let register = RegisterSpec {
        table: p.table,
        address: p.address,
        data_type,
        word_order: p.word_order,
        bit: p.bit,
    };
    if u32::from(p.address) + u32::from(register.width()) > 65536 {
        errors.push(
            format!("{path}.address"),
            format!(
                "{} registers from address {} run past 65535",
                register.width(),
                p.address
            ),
        );
    }

    register
}

/// scale/offset or raw_range/eng_range, one or the other.
fn compile_scaling(
    p: &PointFile,
    data_type: DataType,
    path: &str,
    errors: &mut Problems,
) -> Scaling {
    let linear = p.scale.is_some() || p.offset.is_some();
    let scaling = match (p.raw_range, p.eng_range) {
        (Some(_), _) | (_, Some(_)) if linear => {
            errors.push(
                format!("{path}.scale"),
                "use scale/offset or raw_range/eng_range, not both",
            );
            Scaling::IDENTITY
        }
        (Some(raw), Some(eng)) => {
            if !(raw[0].is_finite() && raw[1].is_finite()) || raw[0] == raw[1] {
                errors.push(
                    format!("{path}.raw_range"),
                    "needs two different finite values",
                );
            }
            if !(eng[0].is_finite() && eng[1].is_finite()) || eng[0] == eng[1] {
                errors.push(
                    format!("{path}.eng_range"),
                    "needs two different finite values",
                );
            }
            Scaling::Range { raw, eng }
        }
        (Some(_), None) => {
            errors.push(format!("{path}.eng_range"), "required with raw_range");
            Scaling::IDENTITY
        }
        (None, Some(_)) => {
            errors.push(format!("{path}.raw_range"), "required with eng_range");
            Scaling::IDENTITY
        }
        (None, None) => {
            let scale = p.scale.unwrap_or(1.0);
            let offset = p.offset.unwrap_or(0.0);
            if !scale.is_finite() || scale == 0.0 {
                errors.push(format!("{path}.scale"), "must be finite and not 0");
            }
            if !offset.is_finite() {
                errors.push(format!("{path}.offset"), "must be finite");
            }
            Scaling::Linear { scale, offset }
        }
    };
    if data_type == DataType::Bool && (linear || p.raw_range.is_some()) {
        errors.push(format!("{path}.scale"), "a bool point takes no scaling");
    }

    scaling
}

/// `decimals`, or the places the scaling resolves. A float register carries its own
/// resolution, unknown here: without `decimals` or scaling it is not rounded.
fn compile_rounding(
    p: &PointFile,
    data_type: DataType,
    scaling: &Scaling,
    path: &str,
    errors: &mut Problems,
) -> Rounding {
    match p.decimals {
        Some(d) if d > Rounding::MAX_DECIMALS => {
            errors.push(
                format!("{path}.decimals"),
                format!("must be 0–{}, got {d}", Rounding::MAX_DECIMALS),
            );
            Rounding::NONE
        }
        Some(d) => Rounding::decimals(d),
        None if data_type == DataType::Bool => Rounding::NONE,
        None if data_type.is_float() && *scaling == Scaling::IDENTITY => Rounding::NONE,
        None => Rounding::of_scaling(scaling),
    }
}

/// The 4–20 mA loop's fault bands (NE43), from the counts at 4 and 20 mA.
fn compile_loop_current(p: &PointFile, path: &str, errors: &mut Problems) -> Option<LoopCurrent> {
    match (p.loop_current, p.raw_range) {
        (Some(lc), Some(raw)) => {
            let (below, above) = lc.resolved(p.kind);
            if !(below < 4.0 && above > 20.0) {
                errors.push(
                    format!("{path}.loop_current"),
                    format!(
                        "fault thresholds must lie outside 4–20 mA, got below {below} / above {above}"
                    ),
                );
            }
            Some(LoopCurrent {
                raw_4ma: raw[0],
                raw_20ma: raw[1],
                fault_below_ma: below,
                fault_above_ma: above,
            })
        }
        (Some(_), None) => {
            errors.push(
                format!("{path}.loop_current"),
                "needs raw_range (the counts at 4 mA and 20 mA)",
            );
            None
        }
        (None, _) => None,
    }
}

/// A gas detector's gas and unit (GB/T 50493-2019: combustible in %LEL, toxic in ppm).
fn compile_gas(
    p: &PointFile,
    gases: &GasTable,
    path: &str,
    errors: &mut Problems,
) -> (Option<Arc<Gas>>, String) {
    let mut unit = p.unit.clone();
    let gas = match p.gas.as_deref() {
        Some(name) => match gases.find(name) {
            Some(g) => Some(Arc::clone(g)),
            None => {
                errors.push(
                    format!("{path}.gas"),
                    format!(
                        "unknown gas `{name}`; known: {} (add it under [[gases]], see `hazgate gases`)",
                        gases.names()
                    ),
                );
                None
            }
        },
        None => None,
    };
    match p.kind {
        PointKind::CombustibleGas => {
            if unit.is_empty() {
                unit = "%LEL".into();
            } else if unit != "%LEL" {
                errors.push(
                    format!("{path}.unit"),
                    format!(
                        "a combustible gas detector reads %LEL (GB/T 50493-2019), got `{unit}`"
                    ),
                );
            }
            if let Some(g) = &gas {
                if g.lel_vol_pct.is_none() {
                    errors.push(
                        format!("{path}.gas"),
                        format!("`{}` is not combustible", g.name),
                    );
                }
            }
        }
        PointKind::ToxicGas => {
            if unit.is_empty() {
                unit = "ppm".into();
            } else if unit != "ppm" {
                errors.push(
                    format!("{path}.unit"),
                    format!("a toxic gas detector reads ppm, got `{unit}`"),
                );
            }
            match &gas {
                Some(g) if g.oel_ppm.is_none() => errors.push(
                    format!("{path}.gas"),
                    format!(
                        "`{}` has no occupational exposure limit in the gas table",
                        g.name
                    ),
                ),
                None if p.gas.is_none() => errors.push(
                    format!("{path}.gas"),
                    "a toxic gas detector needs its gas (e.g. nh3, cl2, h2s)",
                ),
                _ => {}
            }
        }
        _ => {}
    }

    (gas, unit)
}

/// Alarm settings: kind defaults → site → hazard source → point; then the guardrails.
fn compile_alarms(
    p: &PointFile,
    gas: Option<&Gas>,
    scaling: &Scaling,
    defaults: [&BTreeMap<PointKind, AlarmSettingsFile>; 2],
    path: &str,
    errors: &mut Problems,
) -> AlarmSettings {
    let span = p.valid_range.or(scaling.eng_range());
    let mut merged = alarm::kind_defaults(p.kind, gas, span);
    for layer in defaults {
        if let Some(d) = layer.get(&p.kind) {
            merged = merged.merged_with(d);
        }
    }
    if let Some(own) = &p.alarms {
        merged = merged.merged_with(own);
    }
    let alarms = alarm::resolve(&merged, p.kind, p.normal);
    let kind = p.kind.as_str();
    let own = |field: &str| p.alarms.as_ref().is_some_and(|a| a.sets(field));
    let layer = |field: &str| {
        defaults
            .iter()
            .rposition(|d| d.get(&p.kind).is_some_and(|a| a.sets(field)))
    };
    for v in alarm::guardrails(&alarms, p.kind, gas) {
        // A built-in value is valid on its own: a pair out of order is the other
        // field's doing.
        let field = match v.against {
            Some(other) if !own(v.field) && layer(v.field).is_none() => other,
            _ => v.field,
        };
        // A value from a defaults section is reported once, at its key in the file.
        match layer(field) {
            Some(layer) if !own(field) => {
                let (at, whose) = match layer {
                    0 => ("alarm_defaults".to_string(), "every"),
                    _ => {
                        let source = path.split(".points[").next().unwrap_or(path);
                        (format!("{source}.alarm_defaults"), "this source's")
                    }
                };
                errors.push_once(
                    format!("{at}.{kind}.{field}"),
                    format!(
                        "{} (applies to {whose} {kind} point without its own `{field}`)",
                        v.message
                    ),
                );
            }
            _ => errors.push(
                format!("{path}.alarms.{field}"),
                format!("point {}: {}", p.id, v.message),
            ),
        }
    }

    alarms
}

pub(super) fn placeholder_point(p: &PointFile, index: PointIndex, source: SourceIndex) -> Point {
    Point {
        id: PointId::new(&p.id),
        index,
        name: Box::default(),
        source,
        source_id: HazardSourceId::new(""),
        kind: p.kind,
        gas: None,
        device: (u32::MAX, u32::MAX),
        device_id: DeviceId::new(&p.device),
        register: RegisterSpec {
            table: p.table,
            address: p.address,
            data_type: DataType::U16,
            word_order: WordOrder::ABCD,
            bit: None,
        },
        scaling: Scaling::IDENTITY,
        rounding: Rounding::NONE,
        loop_current: None,
        unit: Arc::from(""),
        valid: None,
        fault_codes: Box::default(),
        fault_point: None,
        normal: None,
        alarms: Arc::new(alarm::resolve(&AlarmSettingsFile::default(), p.kind, None)),
    }
}
