//! Cross-field checks of a site file and its compilation into a [`Site`].
//!
//! Checking and building are one walk over the file so that the two can never
//! disagree. Every problem is collected (not just the first), each with the field path
//! an engineer can find in the file, e.g. `hazard_sources[1].points[4].address`.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use super::alarm::{self, AlarmSettings, AlarmSettingsFile};
use super::{
    file::{ApiConfig, ChannelFile, ChannelKind, DeviceFile, PointFile, SiteFile},
    gas,
    problems::{FieldError, Problems},
    site::*,
};

/// Validates `file` and builds the site, or returns every problem found.
pub fn compile(file: &SiteFile) -> Result<Site, Vec<FieldError>> {
    let mut errors = Problems::default();

    let g = &file.gateway;
    errors.identifier("gateway.park_id", &g.park_id);
    errors.identifier("gateway.enterprise_id", &g.enterprise_id);
    errors.identifier("gateway.gateway_id", &g.gateway_id);
    if g.enterprise_name.trim().is_empty() {
        errors.push("gateway.enterprise_name", "must not be empty");
    }
    if file.acquisition.stale_after_periods == 0 {
        errors.push("acquisition.stale_after_periods", "must be at least 1");
    }

    let (channels, device_index) = compile_channels(&file.channels, &mut errors);
    let mut site = Site {
        gateway: file.gateway.clone(),
        hazard_sources: Vec::new(),
        channels,
        points: Vec::new(),
        stale_after_periods: file.acquisition.stale_after_periods,
        risk: file.risk.clone(),
        uplink: file.uplink.clone(),
        api: file.api.clone(),
    };
    let listen = file
        .api
        .listen
        .as_deref()
        .unwrap_or(ApiConfig::DEFAULT_LISTEN);
    file.api.check_listen(listen, &mut errors.at("api"));
    if let Some(u) = &file.uplink {
        u.validate(&mut errors.at("uplink"));
    }
    file.risk.validate(&mut errors.at("risk"));

    // Point ids first, so fault_point references can point forward.
    let mut point_ids: HashMap<&str, (PointIndex, String)> = HashMap::new();
    let mut next = 0u32;
    for (si, source) in file.hazard_sources.iter().enumerate() {
        for (pi, point) in source.points.iter().enumerate() {
            let path = format!("hazard_sources[{si}].points[{pi}]");
            if let Some((_, first)) = point_ids.get(point.id.as_str()) {
                errors.push(
                    format!("{path}.id"),
                    format!("duplicate point id `{}` (first at {first})", point.id),
                );
            } else {
                point_ids.insert(&point.id, (PointIndex(next), path));
            }
            next += 1;
        }
    }

    let mut source_ids: HashMap<&str, usize> = HashMap::new();
    for (si, source) in file.hazard_sources.iter().enumerate() {
        let path = format!("hazard_sources[{si}]");
        errors.identifier(&format!("{path}.id"), &source.id);
        if let Some(first) = source_ids.insert(&source.id, si) {
            errors.push(
                format!("{path}.id"),
                format!(
                    "duplicate hazard source id `{}` (first at hazard_sources[{first}])",
                    source.id
                ),
            );
        }
        if !(1..=4).contains(&source.level) {
            errors.push(
                format!("{path}.level"),
                format!(
                    "major-hazard level must be 1 (most dangerous) to 4 (GB 18218-2018), got {}",
                    source.level
                ),
            );
        }
        if source.name.trim().is_empty() {
            errors.push(format!("{path}.name"), "must not be empty");
        }
        let source_index = SourceIndex(si as u32);
        let source_id = HazardSourceId::new(&source.id);
        let mut members = Vec::new();
        for (pi, point) in source.points.iter().enumerate() {
            let path = format!("{path}.points[{pi}]");
            let index = PointIndex(site.points.len() as u32);
            let cx = PointContext {
                channels: &site.channels,
                devices: &device_index,
                point_ids: &point_ids,
                defaults: [&file.alarm_defaults, &source.alarm_defaults],
            };
            let at = Placement {
                index,
                source: source_index,
                source_id: &source_id,
            };
            if let Some(p) = compile_point(point, &path, at, &cx, &mut errors) {
                members.push(index);
                site.points.push(p);
            } else {
                // Keep indices dense and aligned with point_ids even for a bad point.
                site.points
                    .push(placeholder_point(point, index, source_index));
            }
        }
        site.hazard_sources.push(HazardSource {
            id: source_id,
            name: source.name.clone(),
            kind: source.kind,
            level: source.level,
            r_value: source.r_value,
            responsible: source.responsible.clone(),
            points: members,
        });
    }

    if errors.is_empty() {
        attach_points_to_devices(&mut site);
        check_overlaps_and_faults(file, &site, &mut errors);
        check_block_fits(file, &site, &mut errors);
    }
    if file.hazard_sources.is_empty() {
        errors.push("hazard_sources", "a site needs at least one hazard source");
    }

    if errors.is_empty() {
        Ok(site)
    } else {
        Err(errors.into_vec())
    }
}

type DeviceIndex<'a> = HashMap<&'a str, ((usize, usize), String)>;

fn compile_channels<'a>(
    channels: &'a [ChannelFile],
    errors: &mut Problems,
) -> (Vec<Channel>, DeviceIndex<'a>) {
    let mut out = Vec::new();
    let mut devices: DeviceIndex<'a> = HashMap::new();
    let mut channel_ids: HashMap<&str, usize> = HashMap::new();
    for (ci, ch) in channels.iter().enumerate() {
        let path = format!("channels[{ci}]");
        errors.identifier(&format!("{path}.id"), &ch.id);
        if let Some(first) = channel_ids.insert(&ch.id, ci) {
            errors.push(
                format!("{path}.id"),
                format!(
                    "duplicate channel id `{}` (first at channels[{first}])",
                    ch.id
                ),
            );
        }
        let transport = compile_transport(ch, &path, errors);
        let rtu = transport.is_rtu_framed();
        let mut units: HashMap<u8, usize> = HashMap::new();
        let mut devs = Vec::new();
        for (di, dev) in ch.devices.iter().enumerate() {
            let dpath = format!("{path}.devices[{di}]");
            errors.identifier(&format!("{dpath}.id"), &dev.id);
            if let Some((_, first)) = devices.get(dev.id.as_str()) {
                errors.push(
                    format!("{dpath}.id"),
                    format!("duplicate device id `{}` (first at {first})", dev.id),
                );
            } else {
                devices.insert(&dev.id, ((ci, di), dpath.clone()));
            }
            if let Some(first) = units.insert(dev.unit_id, di) {
                errors.push(
                    format!("{dpath}.unit_id"),
                    format!(
                        "unit id {} already used by {path}.devices[{first}] on this channel",
                        dev.unit_id
                    ),
                );
            }
            if rtu && !(1..=247).contains(&dev.unit_id) {
                errors.push(
                    format!("{dpath}.unit_id"),
                    format!(
                        "RTU slave address must be 1..=247 (0 is broadcast), got {}",
                        dev.unit_id
                    ),
                );
            }
            devs.push(compile_device(dev, &dpath, errors));
        }
        out.push(Channel {
            id: ChannelId::new(&ch.id),
            transport,
            inter_frame_delay: Duration::from_millis(ch.inter_frame_delay_ms),
            devices: devs,
        });
    }
    (out, devices)
}

fn compile_transport(ch: &ChannelFile, path: &str, errors: &mut Problems) -> Transport {
    let mut misplaced = |field: &str, present: bool, kinds: &str| {
        if present {
            errors.push(
                format!("{path}.{field}"),
                format!("only for {kinds} channels"),
            );
        }
    };
    let tcp_like = matches!(ch.kind, ChannelKind::Tcp | ChannelKind::RtuOverTcp);
    if tcp_like {
        misplaced("path", ch.path.is_some(), "rtu");
        misplaced("baud", ch.baud.is_some(), "rtu");
        misplaced("parity", ch.parity.is_some(), "rtu");
        misplaced("data_bits", ch.data_bits.is_some(), "rtu");
        misplaced("stop_bits", ch.stop_bits.is_some(), "rtu");
    } else {
        misplaced("host", ch.host.is_some(), "tcp and rtu_over_tcp");
        misplaced("port", ch.port.is_some(), "tcp and rtu_over_tcp");
    }
    if tcp_like {
        let host = ch.host.clone().unwrap_or_default();
        if host.trim().is_empty() {
            errors.push(
                format!("{path}.host"),
                "required: the device or serial server address",
            );
        }
        let port = match ch.port {
            Some(0) => {
                errors.push(format!("{path}.port"), "must not be 0");
                0
            }
            Some(p) => p,
            None => {
                errors.push(
                    format!("{path}.port"),
                    "required (Modbus TCP is usually 502)",
                );
                0
            }
        };
        return if ch.kind == ChannelKind::Tcp {
            Transport::Tcp { host, port }
        } else {
            Transport::RtuOverTcp { host, port }
        };
    }
    let dev = ch.path.clone().unwrap_or_default();
    if dev.trim().is_empty() {
        errors.push(
            format!("{path}.path"),
            "required: the serial device, e.g. /dev/ttyS1",
        );
    }
    let baud = ch.baud.unwrap_or(0);
    if baud == 0 {
        errors.push(format!("{path}.baud"), "required and above 0 (e.g. 9600)");
    }
    let data_bits = ch.data_bits.unwrap_or(8);
    if !(5..=8).contains(&data_bits) {
        errors.push(
            format!("{path}.data_bits"),
            format!("must be 5..=8, got {data_bits}"),
        );
    }
    let stop_bits = ch.stop_bits.unwrap_or(1);
    if !(1..=2).contains(&stop_bits) {
        errors.push(
            format!("{path}.stop_bits"),
            format!("must be 1 or 2, got {stop_bits}"),
        );
    }
    Transport::Rtu {
        path: dev,
        baud,
        parity: ch.parity.unwrap_or_default(),
        data_bits,
        stop_bits,
    }
}

fn compile_device(dev: &DeviceFile, path: &str, errors: &mut Problems) -> Device {
    if dev.poll_interval_ms < 10 {
        errors.push(
            format!("{path}.poll_interval_ms"),
            format!("must be at least 10 ms, got {}", dev.poll_interval_ms),
        );
    }
    if dev.timeout_ms == 0 {
        errors.push(format!("{path}.timeout_ms"), "must be above 0");
    }
    if !(1..=125).contains(&dev.max_registers_per_read) {
        errors.push(
            format!("{path}.max_registers_per_read"),
            format!(
                "Modbus allows 1..=125 registers per read, got {}",
                dev.max_registers_per_read
            ),
        );
    }
    if !(1..=2000).contains(&dev.max_bits_per_read) {
        errors.push(
            format!("{path}.max_bits_per_read"),
            format!(
                "Modbus allows 1..=2000 bits per read, got {}",
                dev.max_bits_per_read
            ),
        );
    }
    if dev.max_backoff_ms < dev.poll_interval_ms {
        errors.push(
            format!("{path}.max_backoff_ms"),
            format!(
                "must not be below poll_interval_ms ({} < {})",
                dev.max_backoff_ms, dev.poll_interval_ms
            ),
        );
    }
    Device {
        id: DeviceId::new(&dev.id),
        unit_id: dev.unit_id,
        poll_interval: Duration::from_millis(dev.poll_interval_ms),
        timeout: Duration::from_millis(dev.timeout_ms),
        retries: dev.retries,
        max_backoff: Duration::from_millis(dev.max_backoff_ms),
        limits: BlockLimits {
            max_registers: dev.max_registers_per_read,
            max_bits: dev.max_bits_per_read,
            max_gap: dev.max_gap,
        },
        points: Vec::new(),
        description: dev.description.clone(),
    }
}

/// What compiling a point needs from the rest of the site.
struct PointContext<'a> {
    channels: &'a [Channel],
    devices: &'a DeviceIndex<'a>,
    /// Every point id, for `fault_point` references (which may point forward).
    point_ids: &'a HashMap<&'a str, (PointIndex, String)>,
    /// `[alarm_defaults]` of the site, then of the point's hazard source.
    defaults: [&'a BTreeMap<PointKind, AlarmSettingsFile>; 2],
}

/// Where a point sits in the compiled site.
struct Placement<'a> {
    index: PointIndex,
    source: SourceIndex,
    source_id: &'a HazardSourceId,
}

/// Checks one point and compiles it, or None (with its problems in `errors`).
fn compile_point(
    p: &PointFile,
    path: &str,
    at: Placement<'_>,
    cx: &PointContext<'_>,
    errors: &mut Problems,
) -> Option<Point> {
    let before = errors.len();
    errors.identifier(&format!("{path}.id"), &p.id);
    let device = device_of(p, path, cx.devices, errors);
    let register = compile_register(p, path, errors);
    let scaling = compile_scaling(p, register.data_type, path, errors);
    let loop_current = compile_loop_current(p, path, errors);
    if let Some([lo, hi]) = p.valid_range {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            errors.push(
                format!("{path}.valid_range"),
                format!("needs min < max, got [{lo}, {hi}]"),
            );
        }
    }
    let (gas, unit) = compile_gas(p, path, errors);
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
    let alarms = compile_alarms(p, gas, &scaling, cx.defaults, path, errors);
    if errors.len() > before {
        return None;
    }
    Some(Point {
        id: PointId::new(&p.id),
        index: at.index,
        name: p.name.clone(),
        source: at.source,
        source_id: at.source_id.clone(),
        kind: p.kind,
        gas,
        device,
        // Compiled only when the device exists (errors above return None otherwise).
        device_id: cx.channels[device.0].devices[device.1].id.clone(),
        register,
        scaling,
        loop_current,
        unit,
        valid_range: p.valid_range,
        fault_codes: p.fault_codes.clone(),
        fault_point,
        normal: p.normal,
        alarms,
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
    path: &str,
    errors: &mut Problems,
) -> (Option<&'static gas::Gas>, String) {
    let mut unit = p.unit.clone();
    let gas = match p.gas.as_deref() {
        Some(name) => match gas::lookup(name) {
            Some(g) => Some(g),
            None => {
                errors.push(
                    format!("{path}.gas"),
                    format!(
                        "unknown gas `{name}`; known: {}",
                        gas::GASES
                            .iter()
                            .map(|g| g.name)
                            .collect::<Vec<_>>()
                            .join(", ")
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
            if let Some(g) = gas {
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
            match gas {
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
    gas: Option<&'static gas::Gas>,
    scaling: &Scaling,
    defaults: [&BTreeMap<PointKind, AlarmSettingsFile>; 2],
    path: &str,
    errors: &mut Problems,
) -> AlarmSettings {
    let span = p.valid_range.or(match scaling {
        Scaling::Range { eng, .. } => Some(*eng),
        Scaling::Linear { .. } => None,
    });
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
    for v in alarm::guardrails(&alarms, p.kind, gas) {
        errors.push(
            format!("{path}.alarms.{}", v.field),
            format!("point {}: {}", p.id, v.message),
        );
    }

    alarms
}

fn placeholder_point(p: &PointFile, index: PointIndex, source: SourceIndex) -> Point {
    Point {
        id: PointId::new(&p.id),
        index,
        name: String::new(),
        source,
        source_id: HazardSourceId::new(""),
        kind: p.kind,
        gas: None,
        device: (usize::MAX, usize::MAX),
        device_id: DeviceId::new(&p.device),
        register: RegisterSpec {
            table: p.table,
            address: p.address,
            data_type: DataType::U16,
            word_order: WordOrder::ABCD,
            bit: None,
        },
        scaling: Scaling::IDENTITY,
        loop_current: None,
        unit: String::new(),
        valid_range: None,
        fault_codes: Vec::new(),
        fault_point: None,
        normal: None,
        alarms: alarm::resolve(&AlarmSettingsFile::default(), p.kind, None),
    }
}

fn attach_points_to_devices(site: &mut Site) {
    for i in 0..site.points.len() {
        let (c, d) = site.points[i].device;
        site.channels[c].devices[d]
            .points
            .push(PointIndex(i as u32));
    }
}

/// The file path of a point, from its dense index.
fn point_path(file: &SiteFile, index: PointIndex) -> String {
    let mut i = index.get();
    for (si, s) in file.hazard_sources.iter().enumerate() {
        if i < s.points.len() {
            return format!("hazard_sources[{si}].points[{i}]");
        }
        i -= s.points.len();
    }
    format!("points[{}]", index.get())
}

fn check_overlaps_and_faults(file: &SiteFile, site: &Site, errors: &mut Problems) {
    for (_, device) in site.devices() {
        let mut spans: Vec<&Point> = device.points.iter().map(|&i| site.point(i)).collect();
        spans.sort_by_key(|p| (p.register.table, p.register.address));
        for pair in spans.windows(2) {
            let (a, b) = (&pair[0].register, &pair[1].register);
            if a.table != b.table {
                continue;
            }
            let a_end = u32::from(a.address) + u32::from(a.width());
            if u32::from(b.address) < a_end {
                // Bools on different bits of one register legitimately share it.
                let shared_bits = a.data_type == DataType::Bool
                    && b.data_type == DataType::Bool
                    && !a.table.is_bit_table()
                    && a.address == b.address
                    && a.bit != b.bit;
                if !shared_bits {
                    errors.push(
                        format!("{}.address", point_path(file, pair[1].index)),
                        format!("overlaps point {}", pair[0].id),
                    );
                }
            }
        }
    }
    for p in &site.points {
        if let Some(f) = p.fault_point {
            let fp = site.point(f);
            let path = format!("{}.fault_point", point_path(file, p.index));
            if fp.device != p.device {
                errors.push(
                    path,
                    format!(
                        "`{}` is on device {}, not {}",
                        fp.id, fp.device_id, p.device_id
                    ),
                );
            } else if !fp.is_discrete() {
                errors.push(path, format!("`{}` is not a discrete point", fp.id));
            } else if f == p.index {
                errors.push(path, "a point cannot be its own fault point");
            }
        }
    }
}

fn check_block_fits(file: &SiteFile, site: &Site, errors: &mut Problems) {
    for (_, device) in site.devices() {
        for &i in &device.points {
            let p = site.point(i);
            let max = if p.register.table.is_bit_table() {
                device.limits.max_bits
            } else {
                device.limits.max_registers
            };
            if p.register.width() > max {
                errors.push(
                    format!("{}.data_type", point_path(file, i)),
                    format!(
                        "needs {} registers but device {} reads at most {max} per request",
                        p.register.width(),
                        device.id
                    ),
                );
            }
        }
    }
}
