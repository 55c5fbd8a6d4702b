//! Wiring lint: the commissioning mistakes a site file can be read without and still
//! be wrong on the line. Errors where the setting is certainly wrong (two channels on
//! one serial port, one serial server spoken to in two framings, a line faster than
//! Modbus RTU's 3.5-character silence); warnings where it is only suspicious (Modicon
//! numbering typed as an address, unit id 0 behind TCP, a timeout that outlasts the
//! poll, a gas detector polled slowly). Each message says the fix.

use std::{collections::HashMap, time::Duration};

use crate::model::{
    file::{ChannelKind, Parity, RegisterTable, SiteFile},
    problems::Problems,
    site::*,
};

/// Gas detectors are polled at least this often: a leak must reach the judge within
/// seconds (alarm delays on gas are a few seconds at most).
pub const GAS_POLL_MAX: Duration = Duration::from_secs(2);

pub(super) fn check_wiring(
    file: &SiteFile,
    site: &Site,
    errors: &mut Problems,
    warnings: &mut Problems,
) {
    shared_media(file, errors, warnings);
    for (ci, ch) in site.channels.iter().enumerate() {
        for (di, dev) in ch.devices.iter().enumerate() {
            let path = format!("channels[{ci}].devices[{di}]");
            device_timing(ch, dev, &path, warnings);
            if matches!(ch.transport, Transport::Tcp { .. }) {
                tcp_unit_id(dev, &path, warnings);
            }
        }
    }
    for (si, source) in file.hazard_sources.iter().enumerate() {
        for (pi, p) in source.points.iter().enumerate() {
            let path = format!("hazard_sources[{si}].points[{pi}]");
            if let Some(hint) = modicon_hint(p.table, p.address) {
                warnings.push(format!("{path}.address"), hint);
            }
        }
    }
    for p in &site.points {
        let (c, d) = p.device_at();
        let dev = &site.channels[c].devices[d];
        if p.kind.is_gas() && dev.poll_interval > GAS_POLL_MAX {
            warnings.push(
                format!("{}.poll_interval_ms", device_path(c, d)),
                format!(
                    "gas detector {} is polled every {} ms: a leak reaches the judge up to that late; poll gas detectors every {} ms or faster",
                    p.id,
                    dev.poll_interval.as_millis(),
                    GAS_POLL_MAX.as_millis()
                ),
            );
        }
    }
}

fn device_path(c: usize, d: usize) -> String {
    format!("channels[{c}].devices[{d}]")
}

/// Two channels on one serial port interleave their frames; one `host:port` spoken to
/// as both `tcp` and `rtu_over_tcp` cannot be both.
fn shared_media(file: &SiteFile, errors: &mut Problems, warnings: &mut Problems) {
    let mut serial: HashMap<&str, usize> = HashMap::new();
    let mut sockets: HashMap<(String, u16), (usize, ChannelKind)> = HashMap::new();
    for (ci, ch) in file.channels.iter().enumerate() {
        if let Some(path) = ch.path.as_deref().filter(|_| ch.kind == ChannelKind::Rtu) {
            if let Some(first) = serial.insert(path, ci) {
                errors.push(
                    format!("channels[{ci}].path"),
                    format!(
                        "`{path}` is already channels[{first}]'s: two channels on one serial port garble each other's frames; put the devices under one channel"
                    ),
                );
            }
        }
        let (Some(host), Some(port)) = (ch.host.as_deref(), ch.port) else {
            continue;
        };
        let key = (host.trim().to_ascii_lowercase(), port);
        match sockets.get(&key) {
            Some(&(first, kind)) if kind != ch.kind => errors.push(
                format!("channels[{ci}].kind"),
                format!(
                    "{host}:{port} is channels[{first}]'s as `{}`: one server speaks one framing (Modbus TCP, or RTU over TCP); use the same kind",
                    kind.as_str()
                ),
            ),
            Some(&(first, _)) => warnings.push(
                format!("channels[{ci}].host"),
                format!(
                    "{host}:{port} is also channels[{first}]: a second connection to one server; many serial servers accept only one — put the devices under one channel"
                ),
            ),
            None => {
                sockets.insert(key, (ci, ch.kind));
            }
        }
    }
}

/// A device that never answers holds the channel for every attempt's timeout.
fn device_timing(ch: &Channel, dev: &Device, path: &str, warnings: &mut Problems) {
    let held = dev.timeout * (dev.retries + 1);
    if held > dev.poll_interval {
        warnings.push(
            format!("{path}.timeout_ms"),
            format!(
                "timeout_ms × (retries + 1) = {} ms is longer than poll_interval_ms = {} ms: a silent device holds channel `{}` past its next poll and delays every device on it; lower timeout_ms or retries",
                held.as_millis(),
                dev.poll_interval.as_millis(),
                ch.id
            ),
        );
    }
}

/// Behind a Modbus TCP server, 0 is the broadcast address of the serial line a gateway
/// bridges (nothing answers a read); 248–254 are reserved.
fn tcp_unit_id(dev: &Device, path: &str, warnings: &mut Problems) {
    let u = dev.unit_id;
    if u == 0 || (248..=254).contains(&u) {
        warnings.push(
            format!("{path}.unit_id"),
            format!(
                "unit id {u} is {}: a device behind a TCP gateway has its RTU address 1–247, a plain Modbus TCP device usually answers 1 or 255",
                if u == 0 { "broadcast, and nothing answers a read" } else { "reserved (248–254)" }
            ),
        );
    }
}

/// Modicon numbering (holding register 40001 = protocol address 0) typed as an address.
pub fn modicon_hint(table: RegisterTable, address: u16) -> Option<String> {
    let prefix = match address {
        40001..=49999 | 30001..=39999 | 10001..=19999 => u32::from(address / 10000),
        _ => return None,
    };
    let table_of_prefix = [
        RegisterTable::Holding,
        RegisterTable::Input,
        RegisterTable::DiscreteInput,
    ]
    .into_iter()
    .find(|t| t.modicon_prefix() == prefix)?;
    let base = (prefix * 10000 + 1) as u16;
    let meant = address - base;
    let table_note = if table == table_of_prefix {
        String::new()
    } else {
        format!(
            " — and {}xxxx is the {} table, not {}",
            prefix,
            table_of_prefix.as_str(),
            table.as_str()
        )
    };
    Some(format!(
        "{address} looks like Modicon numbering ({}xxxx, counted from {base}): the protocol address is probably {meant}{table_note}; if the vendor's map really says {address} as a zero-based address, keep it",
        prefix
    ))
}

/// Modbus RTU's silence between frames: 3.5 character times, fixed at 1.75 ms above
/// 19,200 baud (Modbus over Serial Line V1.02, 2.5.1.1).
pub fn t35(baud: u32, parity: Parity, data_bits: u8, stop_bits: u8) -> Duration {
    if baud > 19_200 || baud == 0 {
        return Duration::from_micros(1750);
    }
    let bits = 1 + u64::from(data_bits) + u64::from(parity != Parity::None) + u64::from(stop_bits);
    Duration::from_micros((3_500_000 * bits).div_ceil(u64::from(baud)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_and_a_half_characters() {
        // 9600 8E1: 11 bits a character, 3.5 × 11 / 9600 s.
        assert_eq!(t35(9600, Parity::Even, 8, 1), Duration::from_micros(4011));
        assert_eq!(t35(9600, Parity::None, 8, 1), Duration::from_micros(3646));
        assert_eq!(
            t35(115_200, Parity::None, 8, 1),
            Duration::from_micros(1750)
        );
    }

    #[test]
    fn modicon_numbers_say_what_they_probably_mean() {
        let h = modicon_hint(RegisterTable::Holding, 40101).unwrap();
        assert!(h.contains("probably 100;"), "{h}");
        let i = modicon_hint(RegisterTable::Holding, 30001).unwrap();
        assert!(
            i.contains("probably 0 — and 3xxxx is the input table, not holding"),
            "{i}"
        );
        assert_eq!(modicon_hint(RegisterTable::Holding, 100), None);
        assert_eq!(modicon_hint(RegisterTable::Holding, 40000), None);
    }
}
