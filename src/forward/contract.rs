//! The MQTT topic and payload contract, version `v1` (documented in `docs/mqtt.md`,
//! schemas in `docs/schema/`). The one place that defines topic names and payloads.
//!
//! Topics under `{prefix}/v1/{park}/{enterprise}/{gateway}/`: `telemetry`, `alarm`,
//! `risk` (+ retained `risk/{hazard_source}`), `status` (retained, Last Will
//! `offline`), `cmd/{name}` in and `cmd/{name}/reply` out.
//!
//! Every payload is one JSON object carrying `seq` (per gateway, persistent, never
//! repeated), `ts` (RFC 3339 UTC with milliseconds), `park`, `enterprise`, `gateway`
//! and a `type`.

use serde::Serialize;

use super::spool::Seq;
use crate::{
    judge::engine::{AlarmEvent, Event, RiskChange, SpecialOperationEvent, ThresholdsEvent},
    model::{PointKind, Site},
    reading::{Reading, Timestamp, Value},
};

pub const VERSION: &str = "v1";

/// Topic names of one gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

impl Topics {
    pub fn new(prefix: &str, site: &Site) -> Self {
        let g = &site.gateway;
        Self {
            base: format!(
                "{prefix}/{VERSION}/{}/{}/{}",
                g.park_id, g.enterprise_id, g.gateway_id
            ),
        }
    }

    pub fn telemetry(&self) -> String {
        format!("{}/telemetry", self.base)
    }
    pub fn alarm(&self) -> String {
        format!("{}/alarm", self.base)
    }
    pub fn risk(&self) -> String {
        format!("{}/risk", self.base)
    }
    /// Retained current level of one hazard source.
    pub fn risk_of(&self, hazard_source: &str) -> String {
        format!("{}/risk/{hazard_source}", self.base)
    }
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }
    /// What the gateway subscribes to for commands.
    pub fn commands(&self) -> String {
        format!("{}/cmd/+", self.base)
    }
    pub fn reply(&self, command: &str) -> String {
        format!("{}/cmd/{command}/reply", self.base)
    }

    /// The command name of a topic under `cmd/`, if it is one.
    pub fn command_name<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let rest = topic
            .strip_prefix(self.base.as_str())?
            .strip_prefix("/cmd/")?;
        (!rest.is_empty() && !rest.contains('/')).then_some(rest)
    }
}

/// The fields every message carries.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope<'a, B: Serialize> {
    pub seq: u64,
    /// The message's number in its stream — events or telemetry (v1.3; see [`Seq`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub stream_seq: u64,
    pub ts: Timestamp,
    pub park: &'a str,
    pub enterprise: &'a str,
    pub gateway: &'a str,
    #[serde(flatten)]
    pub body: B,
}

/// A reading on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct WireReading<'a> {
    pub point: &'a str,
    pub hazard_source: &'a str,
    /// The device the point is read from (poll success per device at the centre).
    pub device: &'a str,
    pub kind: PointKind,
    pub value: Option<Value>,
    pub unit: &'a str,
    pub quality: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<u8>,
    /// Above the measuring range: the value is a bound (contract v1.2, sent only when true).
    #[serde(skip_serializing_if = "is_false")]
    pub over_range: bool,
    /// Below the measuring range (v1.2, sent only when true).
    #[serde(skip_serializing_if = "is_false")]
    pub under_range: bool,
    /// Acquisition time.
    pub ts: Timestamp,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Message bodies, tagged by `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body<'a> {
    Thresholds {
        thresholds: &'a ThresholdsEvent,
    },
    Telemetry {
        readings: Vec<WireReading<'a>>,
    },
    Alarm {
        alarm: &'a AlarmEvent,
    },
    Risk {
        risk: &'a RiskChange,
    },
    SpecialOperation {
        special_operation: &'a SpecialOperationEvent,
    },
    Status(Status),
    CommandReply(CommandReply),
}

/// Gateway status, retained; the Last Will says `offline`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
    pub spool_events: u64,
    pub spool_telemetry: u64,
    pub spool_bytes: u64,
    pub dropped_telemetry: u64,
}

/// The answer to a command, on `cmd/{name}/reply`.
#[derive(Debug, Clone, Serialize)]
pub struct CommandReply {
    pub request_id: Option<String>,
    pub command: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Builds payloads for one site.
pub struct Encoder<'s> {
    site: &'s Site,
}

impl<'s> Encoder<'s> {
    pub fn new(site: &'s Site) -> Self {
        Self { site }
    }

    fn envelope<'a, B: Serialize>(&'a self, seq: Seq, ts: Timestamp, body: B) -> Envelope<'a, B> {
        let g = &self.site.gateway;
        Envelope {
            seq: seq.seq,
            stream_seq: seq.stream_seq,
            ts,
            park: &g.park_id,
            enterprise: &g.enterprise_id,
            gateway: &g.gateway_id,
            body,
        }
    }

    fn to_vec<B: Serialize>(&self, seq: Seq, ts: Timestamp, body: B) -> Vec<u8> {
        // Serialising plain structs of strings and numbers to a Vec cannot fail
        // (non-finite floats become null); an empty payload would be caught by schemas.
        serde_json::to_vec(&self.envelope(seq, ts, body)).unwrap_or_default()
    }

    /// A batch of readings.
    pub fn telemetry(&self, seq: impl Into<Seq>, ts: Timestamp, readings: &[Reading]) -> Vec<u8> {
        let seq = seq.into();
        let readings = readings
            .iter()
            .map(|r| {
                let p = self.site.point(r.point);
                WireReading {
                    point: p.id.as_str(),
                    hazard_source: p.source_id.as_str(),
                    device: p.device_id.as_str(),
                    kind: p.kind,
                    value: r.value,
                    unit: &p.unit,
                    quality: r.quality.as_str(),
                    exception: r.quality.exception_code(),
                    over_range: r.range.is_over(),
                    under_range: r.range.is_under(),
                    ts: r.ts,
                }
            })
            .collect();
        self.to_vec(seq, ts, Body::Telemetry { readings })
    }

    /// A judge event; its own time is the message time.
    pub fn event(&self, seq: impl Into<Seq>, event: &Event) -> Vec<u8> {
        let seq = seq.into();
        match event {
            Event::Alarm(a) => self.to_vec(seq, a.ts, Body::Alarm { alarm: a }),
            Event::Risk(r) => self.to_vec(seq, r.ts, Body::Risk { risk: r }),
            Event::SpecialOperation(s) => self.to_vec(
                seq,
                s.ts,
                Body::SpecialOperation {
                    special_operation: s,
                },
            ),
            Event::Thresholds(t) => self.to_vec(seq, t.ts, Body::Thresholds { thresholds: t }),
        }
    }

    pub fn status(&self, seq: impl Into<Seq>, ts: Timestamp, status: Status) -> Vec<u8> {
        self.to_vec(seq.into(), ts, Body::Status(status))
    }

    pub fn reply(&self, seq: impl Into<Seq>, ts: Timestamp, reply: CommandReply) -> Vec<u8> {
        self.to_vec(seq.into(), ts, Body::CommandReply(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{load_site, SiteSource, DEMO_SITE_TOML};

    #[test]
    fn topics_follow_the_contract() {
        let site = load_site(SiteSource::Text {
            name: "demo",
            toml: DEMO_SITE_TOML,
        })
        .unwrap();
        let t = Topics::new("hazgate", &site);
        assert_eq!(
            t.telemetry(),
            "hazgate/v1/CP-320500-01/91320500MA1DEMO01X/GW-01/telemetry"
        );
        assert_eq!(
            t.risk_of("HS-01"),
            "hazgate/v1/CP-320500-01/91320500MA1DEMO01X/GW-01/risk/HS-01"
        );
        assert_eq!(
            t.commands(),
            "hazgate/v1/CP-320500-01/91320500MA1DEMO01X/GW-01/cmd/+"
        );
        assert_eq!(
            t.command_name(t.reply("ack").trim_end_matches("/reply")),
            Some("ack")
        );
        assert_eq!(
            t.command_name(&t.reply("ack")),
            None,
            "a reply is not a command"
        );
        assert_eq!(t.command_name("other/v1/x/cmd/ack"), None);
    }
}
