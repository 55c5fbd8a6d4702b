//! Channels and their devices: transport settings, unit ids, poll timing.

use std::{collections::HashMap, time::Duration};

use crate::model::{
    file::{ChannelFile, ChannelKind, DeviceFile},
    problems::Problems,
    site::*,
};

/// Device id → ((channel, device) indices, field path).
pub(super) type DeviceIndex<'a> = HashMap<&'a str, ((usize, usize), String)>;

pub(super) fn compile_channels<'a>(
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
        let inter_frame_delay = inter_frame_delay(ch, &transport, &path, errors);
        out.push(Channel {
            id: ChannelId::new(&ch.id),
            transport,
            inter_frame_delay,
            devices: devs,
        });
    }
    (out, devices)
}

/// The silence kept between frames: on an RTU line at least 3.5 character times
/// (Modbus over Serial Line V1.02, 2.5.1.1), which is also the default.
fn inter_frame_delay(
    ch: &ChannelFile,
    transport: &Transport,
    path: &str,
    errors: &mut Problems,
) -> Duration {
    let configured = ch.inter_frame_delay_ms.map(Duration::from_millis);
    let Transport::Rtu {
        baud,
        parity,
        data_bits,
        stop_bits,
        ..
    } = *transport
    else {
        return configured.unwrap_or(Duration::ZERO);
    };
    let least = super::wiring::t35(baud, parity, data_bits, stop_bits);
    match configured {
        Some(d) if d < least => {
            errors.push(
                format!("{path}.inter_frame_delay_ms"),
                format!(
                    "{} ms is below 3.5 character times at {baud} baud ({:.2} ms): frames would run together; set {} or more, or leave it out",
                    d.as_millis(),
                    least.as_secs_f64() * 1000.0,
                    least.as_millis() + 1
                ),
            );
            least
        }
        Some(d) => d,
        None => least,
    }
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
