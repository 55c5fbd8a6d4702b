//! Polling one device: its planned blocks, retries, and turning answers into readings.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    backoff::Backoff,
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
    /// The poll period and the longest back-off, for probes of set-apart requests.
    pub interval: Duration,
    pub max_backoff: Duration,
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
            interval: d.poll_interval,
            max_backoff: d.max_backoff,
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
    /// The last communication error, with the request it answered, for logs.
    pub last_error: Option<String>,
    /// The device did not answer at all (after retries): back it off.
    pub device_down: bool,
    /// Requests set apart in this poll (the device answered others): (block, error).
    pub isolated: Vec<(usize, String)>,
    /// Set-apart requests that answered their probe.
    pub restored: Vec<usize>,
}

/// One request of a device that failed while the device answered its others — an
/// unmapped address a cheap detector ignores instead of answering exception 2. Its
/// points are `comm_failure`; it is no longer asked every poll (each try would cost a
/// timeout of bus time) but probed alone, once, on a back-off.
#[derive(Debug, Clone)]
pub struct SetApart {
    backoff: Backoff,
    next_probe: Instant,
    pub error: String,
}

/// Each request's standing, kept by the scheduler across polls (one per block).
pub type RequestHealth = Vec<Option<SetApart>>;

/// Polls `dev` over `link`. With `probing` (the device is backed off) each request is
/// tried once.
///
/// The first request of a poll that fails after its retries is confirmed by the next
/// one, tried once: if that fails too (or there is none), the device is down and the
/// rest is not tried, keeping a dead device's cost on the bus to its first request's
/// retries and one more timeout. If the device answers the confirmation, or any later
/// request fails alone, that request alone is set apart ([`SetApart`]). Set-apart
/// requests due for their probe are asked last, once each.
pub async fn poll_device(
    site: &Site,
    dev: &PlannedDevice,
    link: &mut Link,
    health: &mut RequestHealth,
    probing: bool,
) -> (Vec<Reading>, PollOutcome) {
    health.resize(dev.blocks.len(), None);
    let retries = if probing { 0 } else { dev.retries };
    let mut readings = Vec::with_capacity(dev.points.len());
    let mut outcome = PollOutcome::default();
    let mut answered = false;
    let mut unconfirmed: Option<(usize, String)> = None;
    for (bi, block) in dev.blocks.iter().enumerate() {
        if health[bi].is_some() {
            continue;
        }
        if outcome.device_down {
            fail_block(block, Quality::CommFailure, &mut readings);
            continue;
        }
        let tries = if unconfirmed.is_some() && !answered {
            0
        } else {
            retries
        };
        match read_block(dev, block, link, tries, &mut outcome).await {
            Ok(data) => decode_block(site, block, &data, Timestamp::now(), &mut readings),
            Err(BlockError::Exception(code)) => {
                fail_block(block, Quality::DeviceException(code), &mut readings)
            }
            Err(e) => {
                fail_block(block, Quality::CommFailure, &mut readings);
                let error = e.to_string();
                match (&unconfirmed, answered) {
                    (None, false) => unconfirmed = Some((bi, error)),
                    (Some(_), false) => outcome.device_down = true,
                    (_, true) => outcome.isolated.push((bi, error)),
                }
                continue;
            }
        }
        answered = true;
    }
    match unconfirmed {
        Some(first) if answered => outcome.isolated.insert(0, first),
        Some(_) => outcome.device_down = true,
        None => {}
    }
    for (bi, error) in &outcome.isolated {
        let mut backoff = Backoff::with_max(dev.interval, dev.max_backoff);
        health[*bi] = Some(SetApart {
            next_probe: Instant::now() + backoff.failed(),
            backoff,
            error: error.clone(),
        });
    }
    probe_set_apart(site, dev, link, health, &mut outcome, &mut readings).await;
    apply_fault_points(site, &mut readings);
    (readings, outcome)
}

/// Asks each set-apart request whose probe is due, once; the others' points are
/// `comm_failure` as they were.
async fn probe_set_apart(
    site: &Site,
    dev: &PlannedDevice,
    link: &mut Link,
    health: &mut RequestHealth,
    outcome: &mut PollOutcome,
    readings: &mut Vec<Reading>,
) {
    for (bi, block) in dev.blocks.iter().enumerate() {
        let Some(apart) = &mut health[bi] else {
            continue;
        };
        let fresh = outcome.isolated.iter().any(|(i, _)| *i == bi);
        if fresh || outcome.device_down || Instant::now() < apart.next_probe {
            if !fresh {
                fail_block(block, Quality::CommFailure, readings);
            }
            continue;
        }
        match read_block(dev, block, link, 0, outcome).await {
            Ok(data) => {
                decode_block(site, block, &data, Timestamp::now(), readings);
                health[bi] = None;
                outcome.restored.push(bi);
            }
            Err(BlockError::Exception(code)) => {
                fail_block(block, Quality::DeviceException(code), readings);
                health[bi] = None;
                outcome.restored.push(bi);
            }
            Err(e) => {
                fail_block(block, Quality::CommFailure, readings);
                apart.error = e.to_string();
                apart.next_probe = Instant::now() + apart.backoff.failed();
            }
        }
    }
}

/// One request with up to `retries` more tries on a communication failure; counts go
/// to `outcome`, and the last error names the request.
async fn read_block(
    dev: &PlannedDevice,
    block: &Block,
    link: &mut Link,
    retries: u32,
    outcome: &mut PollOutcome,
) -> Result<BlockData, BlockError> {
    let mut attempt = 0;
    loop {
        outcome.requests += 1;
        let r = link.read(dev.unit_id, block, dev.timeout).await;
        match &r {
            Err(e) if e.is_comm() => {
                if e.is_timeout() {
                    outcome.timeouts += 1;
                } else {
                    outcome.comm_errors += 1;
                }
                outcome.last_error = Some(format!("{}: {e}", block.describe()));
                if attempt < retries {
                    attempt += 1;
                    continue;
                }
            }
            Err(_) => outcome.exceptions += 1,
            Ok(_) => {}
        }
        return r;
    }
}

fn fail_block(block: &Block, quality: Quality, out: &mut Vec<Reading>) {
    let ts = Timestamp::now();
    out.extend(block.points.iter().map(|&p| failed(p, quality, ts)));
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
