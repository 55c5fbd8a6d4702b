//! `hazgate poll`: the commissioning read an engineer runs when wiring a detector.

use std::{io::Write, path::Path, process::ExitCode};

use serde::Serialize;

use crate::{
    acquire::{
        device::{poll_device, PlannedDevice},
        link::Link,
    },
    model::{RegisterTable, Site},
    reading::{Raw, Reading, Value},
};

/// One line of `--json` output.
#[derive(Serialize)]
struct PollLine<'a> {
    point: &'a str,
    hazard_source: &'a str,
    device: &'a str,
    /// The register table and the zero-based protocol address …
    table: &'static str,
    address: u16,
    /// … and the register as a vendor's map writes it (Modicon numbering, e.g. 40101).
    register: String,
    value: Option<Value>,
    unit: &'a str,
    quality: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exception: Option<u8>,
    ts: String,
    raw: Raw,
}

/// What `hazgate poll` was asked.
pub struct PollArgs<'a> {
    pub config: &'a Path,
    pub device: Option<&'a str>,
    pub json: bool,
    pub watch: bool,
}

pub async fn poll(args: PollArgs<'_>) -> anyhow::Result<ExitCode> {
    let site = super::load(args.config)?;
    if let Some(id) = args.device {
        if !site.devices().any(|(_, d)| d.id.as_str() == id) {
            let known: Vec<&str> = site.devices().map(|(_, d)| d.id.as_str()).collect();
            anyhow::bail!(
                "no device `{id}` in {}; its devices: {}",
                args.config.display(),
                known.join(", ")
            );
        }
    }
    if args.watch {
        return watch(&site, args.device).await;
    }
    let (readings, notes) = poll_site(&site, args.device).await;
    for n in &notes {
        tracing::warn!("{n}");
    }
    let all_good = !readings.is_empty() && readings.iter().all(|r| r.quality.is_good());
    let mut out = std::io::stdout().lock();
    if args.json {
        for r in &readings {
            let p = site.point(r.point);
            let line = PollLine {
                point: p.id.as_str(),
                hazard_source: p.source_id.as_str(),
                device: p.device_id.as_str(),
                table: p.register.table.as_str(),
                address: p.register.address,
                register: vendor_register(p.register.table, p.register.address),
                value: r.value,
                unit: &p.unit,
                quality: r.quality.as_str(),
                exception: r.quality.exception_code(),
                ts: r.ts.to_rfc3339(),
                raw: r.raw,
            };
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        }
    } else {
        write!(out, "{}", table(&site, &readings, None))?;
    }
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Re-polls every second, redrawing the table with what changed since the last poll
/// highlighted, until Ctrl-C.
async fn watch(site: &Site, device: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut previous: Option<Vec<Reading>> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            _ = tick.tick() => {}
        }
        let (readings, notes) = poll_site(site, device).await;
        let mut frame = String::from("\x1b[2J\x1b[H");
        frame += &format!(
            "hazgate poll --watch: {} (every second; changes highlighted; Ctrl-C to stop)\n",
            crate::reading::Timestamp::now().to_rfc3339()
        );
        frame += &table(site, &readings, previous.as_deref());
        for n in &notes {
            frame += &format!("! {n}\n");
        }
        let mut out = std::io::stdout().lock();
        out.write_all(frame.as_bytes())?;
        out.flush()?;
        previous = Some(readings);
    }
}

/// Polls every device (or one) once, channels in parallel, with the devices' retries.
pub async fn poll_site_once(site: &Site, only: Option<&str>) -> Vec<Reading> {
    poll_site(site, only).await.0
}

/// [`poll_site_once`], with what went wrong per device or request, in words.
async fn poll_site(site: &Site, only: Option<&str>) -> (Vec<Reading>, Vec<String>) {
    let mut tasks = Vec::new();
    for (ci, ch) in site.channels.iter().enumerate() {
        let devices: Vec<PlannedDevice> = ch
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| only.is_none_or(|id| d.id.as_str() == id))
            .map(|(di, _)| PlannedDevice::new(site, ci, di))
            .collect();
        if devices.is_empty() {
            continue;
        }
        let mut link = Link::new(ch.transport.clone(), ch.inter_frame_delay);
        tasks.push(async move {
            let mut out = Vec::new();
            let mut notes = Vec::new();
            for d in &devices {
                let mut health = Vec::new();
                let (readings, outcome) =
                    poll_device(site, d, &mut link, &mut health, false).await;
                let device = &site.channels[d.channel].devices[d.device].id;
                if outcome.device_down {
                    let error = outcome.last_error.unwrap_or_default();
                    notes.push(format!("device {device} not answering: {error}"));
                }
                for (bi, error) in outcome.isolated {
                    notes.push(format!(
                        "device {device}: request {} not answered ({error}) while the device answers others",
                        d.blocks[bi].describe()
                    ));
                }
                out.extend(readings);
            }
            link.disconnect().await;
            (out, notes)
        });
    }
    let mut readings = Vec::new();
    let mut notes = Vec::new();
    for (r, n) in futures_util::future::join_all(tasks).await {
        readings.extend(r);
        notes.extend(n);
    }
    readings.sort_by_key(|r| r.point);
    (readings, notes)
}

/// A register as vendors' maps number it (Modicon): coil 00001, discrete input 10001,
/// input register 30001, holding register 40001 for protocol address 0; six digits
/// past address 9998.
pub fn vendor_register(table: RegisterTable, address: u16) -> String {
    let prefix = table.modicon_prefix();
    let n = u32::from(address) + 1;
    if n <= 9999 {
        format!("{prefix}{n:04}")
    } else {
        format!("{prefix}{n:05}")
    }
}

/// The raw words in decimal (the hex is [`Raw`]'s display).
fn raw_decimal(raw: &Raw) -> String {
    match raw {
        Raw::None => "-".into(),
        Raw::Bit(b) => u8::from(*b).to_string(),
        Raw::Words { words, len } => words[..usize::from(*len)]
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The table, a row per point; rows whose value or quality differ from `previous` are
/// shown in reverse video.
fn table(site: &Site, readings: &[Reading], previous: Option<&[Reading]>) -> String {
    let mut out = format!(
        "{:<12} {:<8} {:<10} {:<14} {:>6} {:>5} {:>12} {:<6} {:<22} {:<24} RAW (hex)\n",
        "POINT", "SOURCE", "DEVICE", "TABLE", "REG", "ADDR", "VALUE", "UNIT", "QUALITY", "RAW"
    );
    for r in readings {
        let p = site.point(r.point);
        let value = r.value.map_or_else(|| "-".to_string(), |v| v.to_string());
        let changed = previous.is_some_and(|prev| {
            prev.iter()
                .find(|x| x.point == r.point)
                .is_none_or(|x| x.value != r.value || x.quality != r.quality)
        });
        let (on, off) = if changed {
            ("\x1b[7m", "\x1b[0m")
        } else {
            ("", "")
        };
        out += &format!(
            "{on}{:<12} {:<8} {:<10} {:<14} {:>6} {:>5} {:>12} {:<6} {:<22} {:<24} {}{off}\n",
            p.id,
            p.source_id,
            p.device_id,
            p.register.table.as_str(),
            vendor_register(p.register.table, p.register.address),
            p.register.address,
            value,
            p.unit,
            r.quality.to_string(),
            raw_decimal(&r.raw),
            r.raw
        );
    }
    let bad = readings.iter().filter(|r| !r.quality.is_good()).count();
    out += &format!(
        "{} points, {} good, {} not good\n",
        readings.len(),
        readings.len() - bad,
        bad
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_as_vendors_number_them() {
        assert_eq!(vendor_register(RegisterTable::Holding, 0), "40001");
        assert_eq!(vendor_register(RegisterTable::Holding, 100), "40101");
        assert_eq!(vendor_register(RegisterTable::Input, 9), "30010");
        assert_eq!(vendor_register(RegisterTable::Coil, 0), "00001");
        assert_eq!(vendor_register(RegisterTable::DiscreteInput, 15), "10016");
        assert_eq!(vendor_register(RegisterTable::Holding, 9998), "49999");
        assert_eq!(vendor_register(RegisterTable::Holding, 9999), "410000");
    }
}
