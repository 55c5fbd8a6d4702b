//! The gateway's side of the contract ([`crate::contract`]): readings and judge events
//! into payloads, each in its [`Envelope`].

use std::borrow::Cow;

use serde::Serialize;

use super::spool::Seq;
use crate::{
    contract::{
        samples::{Fault, PointInfo, Scan, TableHasher},
        wire::{Envelope, Head, Id, Message, Reading as WireReading},
        GatewayPath, Topics,
    },
    judge::engine::Event,
    model::{Point, Site},
    reading::{Reading, Timestamp},
};

pub use crate::contract::wire::{CommandReply, GatewayState, Status};

/// The gateway's identity as its topics name it.
pub fn gateway_path(site: &Site) -> GatewayPath<'_> {
    let g = &site.gateway;
    GatewayPath {
        park: &g.park_id,
        enterprise: &g.enterprise_id,
        gateway: &g.gateway_id,
    }
}

/// The topics of this site's gateway under `prefix`.
pub fn topics(prefix: &str, site: &Site) -> Topics {
    Topics::new(prefix, gateway_path(site))
}

/// Builds payloads for one site.
pub struct Encoder<'s> {
    site: &'s Site,
}

impl<'s> Encoder<'s> {
    pub fn new(site: &'s Site) -> Self {
        Self { site }
    }

    fn to_vec<B: Serialize>(&self, seq: Seq, ts: Timestamp, body: B) -> Vec<u8> {
        let g = &self.site.gateway;
        let envelope = Envelope {
            head: Head {
                seq: seq.seq,
                stream_seq: seq.stream_seq,
                ts,
                park: Id::from(&*g.park_id),
                enterprise: Id::from(&*g.enterprise_id),
                gateway: Id::from(&*g.gateway_id),
            },
            body,
        };
        // Serialising plain structs of strings and numbers to a Vec cannot fail
        // (non-finite floats become null); an empty payload would be caught by schemas.
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    /// A batch of readings.
    pub fn telemetry(&self, seq: impl Into<Seq>, ts: Timestamp, readings: &[Reading]) -> Vec<u8> {
        let readings = readings
            .iter()
            .map(|r| {
                let p = self.site.point(r.point);
                WireReading {
                    point: Id::from(p.id.as_str()),
                    hazard_source: Id::from(p.source_id.as_str()),
                    device: Some(Id::from(p.device_id.as_str())),
                    kind: p.kind,
                    value: r.value.map(Into::into),
                    unit: Cow::Borrowed(&p.unit),
                    quality: r.quality.into(),
                    exception: r.quality.exception_code(),
                    over_range: r.range.is_over(),
                    under_range: r.range.is_under(),
                    ts: r.ts,
                }
            })
            .collect();
        self.to_vec(seq.into(), ts, Message::Telemetry { readings })
    }

    /// A batch of readings as samples of the point table `table` (v1.4).
    pub fn samples(
        &self,
        seq: impl Into<Seq>,
        ts: Timestamp,
        table: &str,
        readings: &[Reading],
    ) -> Vec<u8> {
        let body = Message::Samples {
            table: Cow::Borrowed(table),
            scans: scans(readings),
        };
        self.to_vec(seq.into(), ts, body)
    }

    /// The page of the point table `table` from point `first`, at most `len` points.
    pub fn points_page(
        &self,
        seq: impl Into<Seq>,
        ts: Timestamp,
        table: &str,
        first: usize,
        len: usize,
    ) -> Vec<u8> {
        let n = self.site.points.len();
        let body = Message::Points {
            table: Cow::Borrowed(table),
            first: first as u32,
            total: self.site.points.len() as u32,
            points: point_infos(&self.site.points[first.min(n)..(first + len).min(n)]).collect(),
        };
        self.to_vec(seq.into(), ts, body)
    }

    /// A judge event; its own time is the message time. Risk carries its scope's name
    /// and an alarm its point's unit, for screens (v1.5).
    pub fn event(&self, seq: impl Into<Seq>, event: &Event) -> Vec<u8> {
        let mut message = Message::from(event);
        match &mut message {
            Message::Risk { risk } => {
                risk.name = match &risk.id {
                    Some(id) => self
                        .site
                        .hazard_sources
                        .iter()
                        .find(|h| h.id.as_str() == &**id)
                        .map(|h| Cow::<str>::Owned(h.name.clone())),
                    None => Some(Cow::Owned(self.site.gateway.enterprise_name.clone())),
                }
                .filter(|n| !n.is_empty());
            }
            Message::Alarm { alarm } => alarm.unit = self.unit(&alarm.point),
            Message::ActiveAlarms { alarms } => {
                for a in alarms {
                    a.unit = self.unit(&a.point);
                }
            }
            _ => {}
        }
        self.to_vec(seq.into(), event.ts(), message)
    }

    /// A point's unit, for screens; none when it has none.
    fn unit(&self, point: &str) -> Option<Cow<'static, str>> {
        self.site
            .point_by_id(point)
            .map(|p| Cow::<str>::Owned(p.unit.to_string()))
            .filter(|u| !u.is_empty())
    }

    /// A status message, with the enterprise's name (v1.5).
    pub fn status(&self, seq: impl Into<Seq>, ts: Timestamp, mut status: Status<'_>) -> Vec<u8> {
        let name = &self.site.gateway.enterprise_name;
        if !name.is_empty() {
            status.enterprise_name = Some(Cow::Owned(name.clone()));
        }
        self.to_vec(seq.into(), ts, Message::Status(status))
    }

    pub fn reply(&self, seq: impl Into<Seq>, ts: Timestamp, reply: CommandReply<'_>) -> Vec<u8> {
        self.to_vec(seq.into(), ts, Message::CommandReply(reply))
    }
}

/// Points as the contract's point table names them (v1.4): for the site's whole
/// `points`, point index `i` is the i-th item.
pub fn point_infos(points: &[Point]) -> impl Iterator<Item = PointInfo<'_>> {
    points.iter().map(|p| PointInfo {
        point: Id::from(p.id.as_str()),
        hazard_source: Id::from(p.source_id.as_str()),
        device: Id::from(p.device_id.as_str()),
        kind: p.kind,
        unit: Cow::Borrowed(&p.unit),
    })
}

/// The name of the site's point table.
pub fn table_name(site: &Site) -> String {
    let mut h = TableHasher::default();
    point_infos(&site.points).for_each(|p| h.add(&p));
    h.name()
}

/// Readings as scans: one per run of readings with the same time (a device's poll, or
/// a snapshot's), by first index where the points follow each other, else by list.
pub fn scans(readings: &[Reading]) -> Vec<Scan> {
    let mut out: Vec<Scan> = Vec::new();
    let mut index: Vec<u32> = Vec::new();
    let close = |scan: &mut Scan, index: &mut Vec<u32>| {
        let run = index.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
        if run {
            scan.first = index.first().copied();
            index.clear();
        } else {
            scan.index = Some(std::mem::take(index));
        }
    };
    for r in readings {
        if out.last().is_none_or(|s| s.ts != r.ts) {
            if let Some(s) = out.last_mut() {
                close(s, &mut index);
            }
            out.push(Scan {
                ts: r.ts,
                first: None,
                index: None,
                values: Vec::new(),
                faults: Vec::new(),
                over_range: Vec::new(),
                under_range: Vec::new(),
            });
        }
        let Some(scan) = out.last_mut() else { break };
        let i = r.point.get() as u32;
        index.push(i);
        scan.values.push(r.value.map(Into::into));
        if !r.quality.is_good() {
            scan.faults.push(Fault {
                index: i,
                quality: r.quality.into(),
                exception: r.quality.exception_code(),
            });
        }
        if r.range.is_over() {
            scan.over_range.push(i);
        }
        if r.range.is_under() {
            scan.under_range.push(i);
        }
    }
    if let Some(s) = out.last_mut() {
        close(s, &mut index);
    }
    out
}
