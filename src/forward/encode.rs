//! The gateway's side of the contract ([`crate::contract`]): readings and judge events
//! into payloads, each in its [`Envelope`].

use std::borrow::Cow;

use serde::Serialize;

use super::spool::Seq;
use crate::{
    contract::{
        wire::{Envelope, Head, Id, Message, Reading as WireReading},
        GatewayPath, Topics,
    },
    judge::engine::Event,
    model::Site,
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

    /// A judge event; its own time is the message time.
    pub fn event(&self, seq: impl Into<Seq>, event: &Event) -> Vec<u8> {
        self.to_vec(seq.into(), event.ts(), Message::from(event))
    }

    pub fn status(&self, seq: impl Into<Seq>, ts: Timestamp, status: Status<'_>) -> Vec<u8> {
        self.to_vec(seq.into(), ts, Message::Status(status))
    }

    pub fn reply(&self, seq: impl Into<Seq>, ts: Timestamp, reply: CommandReply<'_>) -> Vec<u8> {
        self.to_vec(seq.into(), ts, Message::CommandReply(reply))
    }
}
