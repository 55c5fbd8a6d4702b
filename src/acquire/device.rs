//! Polling one device: its planned blocks, retries, and turning answers into readings.

use std::time::Duration;

use crate::{
    model::{Device, PointIndex, Site},
    reading::{Quality, Raw, Reading, Timestamp, Value},
};

use super::{
    decode::{decode_point, PointData},
    link::{BlockData, BlockError, Link},
    plan::{plan_blocks, Block},
};

/// A device plus its precomputed read plan.
#[derive(Debug, Clone)]
pub struct PlannedDevice {
    pub channel: usize,
    pub device: usize,
    pub unit_id: u8,
    pub timeout: Duration,
    pub retries: u32,
    pub blocks: Vec<Block>,
    pub points: Vec<PointIndex>,
}

impl PlannedDevice {
    pub fn new(site: &Site, channel: usize, device: usize) -> Self {
        let d: &Device = &site.channels[channel].devices[device];
        let specs: Vec<_> = d
            .points
            .iter()
            .map(|&i| (i, site.point(i).register))
            .collect();
        Self {
            channel,
            device,
            unit_id: d.unit_id,
            timeout: d.timeout,
            retries: d.retries,
            blocks: plan_blocks(&specs, d.limits),
            points: d.points.clone(),
        }
    }
}

/// What one poll of a device achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollOutcome {
    pub requests: u32,
    pub timeouts: u32,
    pub comm_errors: u32,
    pub exceptions: u32,
    /// The last communication error, for logs and events.
    pub last_error: Option<String>,
    /// The device did not answer at all (after retries): back it off.
    pub device_down: bool,
}

/// Polls every block of `dev` over `link`. With `retries = None` the device's own
/// retry count is used; a probe of a backed-off device passes `Some(0)`.
///
/// Once a block fails for communication reasons after its retries, the remaining
/// blocks are not tried (the device is down; trying them would only hold up the bus)
/// and all their points are reported `comm_failure`.
pub async fn poll_device(
    site: &Site,
    dev: &PlannedDevice,
    link: &mut Link,
    retries: Option<u32>,
) -> (Vec<Reading>, PollOutcome) {
    let retries = retries.unwrap_or(dev.retries);
    let mut readings = Vec::with_capacity(dev.points.len());
    let mut outcome = PollOutcome::default();
    for block in &dev.blocks {
        if outcome.device_down {
            let ts = Timestamp::now();
            readings.extend(
                block
                    .points
                    .iter()
                    .map(|&p| failed(p, Quality::CommFailure, ts)),
            );
            continue;
        }
        let mut attempt = 0;
        let result = loop {
            outcome.requests += 1;
            let r = link.read(dev.unit_id, block, dev.timeout).await;
            match &r {
                Err(e) if e.is_comm() => {
                    if e.is_timeout() {
                        outcome.timeouts += 1;
                    } else {
                        outcome.comm_errors += 1;
                    }
                    outcome.last_error = Some(e.to_string());
                    if attempt < retries {
                        attempt += 1;
                        continue;
                    }
                }
                Err(_) => outcome.exceptions += 1,
                Ok(_) => {}
            }
            break r;
        };
        let ts = Timestamp::now();
        match result {
            Ok(data) => decode_block(site, block, &data, ts, &mut readings),
            Err(BlockError::Exception(code)) => readings.extend(
                block
                    .points
                    .iter()
                    .map(|&p| failed(p, Quality::DeviceException(code), ts)),
            ),
            Err(_) => {
                outcome.device_down = true;
                readings.extend(
                    block
                        .points
                        .iter()
                        .map(|&p| failed(p, Quality::CommFailure, ts)),
                );
            }
        }
    }
    apply_fault_points(site, &mut readings);
    (readings, outcome)
}

fn failed(point: PointIndex, quality: Quality, ts: Timestamp) -> Reading {
    Reading {
        point,
        value: None,
        quality,
        ts,
        raw: Raw::None,
        range: Default::default(),
    }
}

/// Slices each point's data out of a block answer and decodes it.
pub fn decode_block(
    site: &Site,
    block: &Block,
    data: &BlockData,
    ts: Timestamp,
    out: &mut Vec<Reading>,
) {
    for &pi in &block.points {
        let point = site.point(pi);
        let offset = usize::from(point.register.address - block.start);
        let reading = match data {
            BlockData::Bits(bits) => match bits.get(offset) {
                Some(&b) => decode_point(point, PointData::Bit(b), ts),
                None => failed(pi, Quality::CommFailure, ts),
            },
            BlockData::Words(words) => {
                let end = (offset + usize::from(point.register.width())).min(words.len());
                let slice = words.get(offset..end).unwrap_or(&[]);
                decode_point(point, PointData::Words(slice), ts)
            }
        };
        out.push(reading);
    }
}

/// A detector whose own fault bit is set is not measuring, whatever it reads.
fn apply_fault_points(site: &Site, readings: &mut [Reading]) {
    let faulted: Vec<PointIndex> = readings
        .iter()
        .filter(|r| r.quality.is_good() && r.value == Some(Value::Discrete(true)))
        .map(|r| r.point)
        .collect();
    if faulted.is_empty() {
        return;
    }
    for r in readings.iter_mut() {
        if let Some(f) = site.point(r.point).fault_point {
            if faulted.contains(&f) && r.quality.is_good() {
                r.quality = Quality::SensorFault;
            }
        }
    }
}
