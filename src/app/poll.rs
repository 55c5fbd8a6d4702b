//! `hazgate poll`: the commissioning read an engineer runs when wiring a detector.

use std::{io::Write, path::Path, process::ExitCode};

use serde::Serialize;

use crate::{
    acquire::{
        device::{poll_device, PlannedDevice},
        link::Link,
    },
    model::Site,
    reading::{Raw, Reading, Value},
};

/// One line of `--json` output.
#[derive(Serialize)]
struct PollLine<'a> {
    point: &'a str,
    hazard_source: &'a str,
    device: &'a str,
    value: Option<Value>,
    unit: &'a str,
    quality: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exception: Option<u8>,
    ts: String,
    raw: Raw,
}

pub async fn poll(config: &Path, device: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let site = super::load(config)?;
    if let Some(id) = device {
        if !site.devices().any(|(_, d)| d.id.as_str() == id) {
            anyhow::bail!("no device `{id}` in {}", config.display());
        }
    }
    let readings = poll_site_once(&site, device).await;
    let all_good = !readings.is_empty() && readings.iter().all(|r| r.quality.is_good());
    let mut out = std::io::stdout().lock();
    if json {
        for r in &readings {
            let p = site.point(r.point);
            let line = PollLine {
                point: p.id.as_str(),
                hazard_source: p.source_id.as_str(),
                device: p.device_id.as_str(),
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
        print_table(&mut out, &site, &readings)?;
    }
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Polls every device (or one) once, channels in parallel, with the devices' retries.
pub async fn poll_site_once(site: &Site, only: Option<&str>) -> Vec<Reading> {
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
            for d in &devices {
                let mut health = Vec::new();
                let (readings, outcome) =
                    poll_device(site, d, &mut link, &mut health, false).await;
                let device = &site.channels[d.channel].devices[d.device].id;
                if outcome.device_down {
                    let error = outcome.last_error.unwrap_or_default();
                    tracing::warn!(%device, %error, "device not answering");
                }
                for (bi, error) in outcome.isolated {
                    let request = d.blocks[bi].describe();
                    tracing::warn!(%device, %request, %error, "request not answered while the device answers others");
                }
                out.extend(readings);
            }
            link.disconnect().await;
            out
        });
    }
    let mut readings: Vec<Reading> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect();
    readings.sort_by_key(|r| r.point);
    readings
}

fn print_table(out: &mut impl Write, site: &Site, readings: &[Reading]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<12} {:<8} {:<10} {:>12} {:<6} {:<22} RAW",
        "POINT", "SOURCE", "DEVICE", "VALUE", "UNIT", "QUALITY"
    )?;
    for r in readings {
        let p = site.point(r.point);
        let value = r.value.map_or_else(|| "-".to_string(), |v| v.to_string());
        writeln!(
            out,
            "{:<12} {:<8} {:<10} {:>12} {:<6} {:<22} {}",
            p.id,
            p.source_id,
            p.device_id,
            value,
            p.unit,
            r.quality.to_string(),
            r.raw
        )?;
    }
    let bad = readings.iter().filter(|r| !r.quality.is_good()).count();
    writeln!(
        out,
        "{} points, {} good, {} not good",
        readings.len(),
        readings.len() - bad,
        bad
    )
}
