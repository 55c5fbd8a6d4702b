//! One MQTT connection, in either protocol version, behind the few operations the
//! uplink session needs.
//!
//! rumqttc implements MQTT 3.1.1 (`rumqttc`) and MQTT 5 (`rumqttc::v5`) as two clients
//! with look-alike but distinct types. What the session does with them — hand spooled
//! records over, map packet ids to `seq`, remove a record on its PUBACK, take commands
//! in — is the same for both, so the session talks to this adapter and never to either
//! client directly.

use bytes::Bytes;
use rumqttc::{v5, Outgoing, Transport};

use crate::model::mqtt::{MqttEndpoint, Protocol, TlsFileError};

/// Why the connection is down, or a request could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    V311(#[from] Box<rumqttc::ConnectionError>),
    #[error(transparent)]
    V5(#[from] Box<v5::ConnectionError>),
    /// A request (with the packet it carried) the client's queue did not take.
    #[error(transparent)]
    Request(#[from] Box<rumqttc::ClientError>),
    #[error(transparent)]
    RequestV5(#[from] Box<v5::ClientError>),
}

/// Everything needed to open a connection, independent of the protocol version.
pub struct LinkOptions {
    pub endpoint: MqttEndpoint,
    /// QoS 1 publishes awaiting PUBACK at once.
    pub inflight: u16,
    /// The Last Will: topic and payload, published retained at QoS 1.
    pub will: (String, Vec<u8>),
}

/// Largest packet sent or accepted (a telemetry batch of 500 readings is ≈ 70 KiB).
const MAX_PACKET: u32 = 1 << 20;
/// Requests rumqttc may queue between the session and its event loop.
const REQUEST_QUEUE: usize = 256;

/// What happened on the connection, as far as the session cares.
#[derive(Debug)]
pub enum LinkEvent {
    /// CONNACK accepted; `code` is the broker's return code, for the log.
    Connected { code: String },
    /// A QoS 1 publish handed over earlier left with this packet id (in hand-over order).
    Sent(u16),
    /// The broker acknowledged packet `pkid`; `refused` holds an MQTT 5 failure reason.
    Acked { pkid: u16, refused: Option<String> },
    /// A message on a subscribed topic.
    Message { topic: String, payload: Bytes },
    /// Anything else (pings, SUBACK, …).
    Other,
}

/// A connection in one of the two protocol versions.
pub enum Link {
    V311 {
        client: rumqttc::AsyncClient,
        events: Box<rumqttc::EventLoop>,
    },
    V5 {
        client: v5::AsyncClient,
        events: Box<v5::EventLoop>,
    },
}

impl Link {
    /// Sets the connection up; nothing is sent until the first [`Link::poll`].
    ///
    /// Every connection starts a clean session: the spool, not the broker, holds what
    /// is unsent, and commands missed while offline are stale by the time we are back.
    pub fn new(o: LinkOptions) -> Result<Self, TlsFileError> {
        let e = o.endpoint;
        Ok(match e.protocol {
            Protocol::V311 => {
                let mut m = e.v311_options()?;
                m.set_clean_session(true)
                    .set_inflight(o.inflight)
                    .set_max_packet_size(MAX_PACKET as usize, MAX_PACKET as usize)
                    .set_last_will(rumqttc::LastWill::new(
                        o.will.0,
                        o.will.1,
                        rumqttc::QoS::AtLeastOnce,
                        true,
                    ));
                let (client, events) = rumqttc::AsyncClient::new(m, REQUEST_QUEUE);
                Link::V311 {
                    client,
                    events: Box::new(events),
                }
            }
            Protocol::V5 => {
                let mut m = v5::MqttOptions::new(e.client_id, e.host, e.port);
                m.set_keep_alive(e.keepalive)
                    .set_clean_start(true)
                    .set_outgoing_inflight_upper_limit(o.inflight)
                    .set_max_packet_size(Some(MAX_PACKET))
                    .set_last_will(v5::mqttbytes::v5::LastWill::new(
                        o.will.0,
                        o.will.1,
                        v5::mqttbytes::QoS::AtLeastOnce,
                        true,
                        None,
                    ));
                if let Some(tls) = &e.tls {
                    m.set_transport(Transport::Tls(tls.to_rumqttc()?));
                }
                if let Some((u, p)) = e.credentials {
                    m.set_credentials(u, p);
                }
                let (client, events) = v5::AsyncClient::new(m, REQUEST_QUEUE);
                Link::V5 {
                    client,
                    events: Box::new(events),
                }
            }
        })
    }

    /// Drives the connection one step. An error means the connection is down; the next
    /// call reconnects at once (the caller paces it).
    pub async fn poll(&mut self) -> Result<LinkEvent, LinkError> {
        match self {
            Link::V311 { events, .. } => {
                use rumqttc::{Event, Packet};
                Ok(match events.poll().await.map_err(Box::new)? {
                    Event::Incoming(Packet::ConnAck(a)) => LinkEvent::Connected {
                        code: format!("{:?}", a.code),
                    },
                    Event::Incoming(Packet::PubAck(a)) => LinkEvent::Acked {
                        pkid: a.pkid,
                        refused: None,
                    },
                    Event::Incoming(Packet::Publish(p)) => LinkEvent::Message {
                        topic: p.topic,
                        payload: p.payload,
                    },
                    Event::Outgoing(Outgoing::Publish(pkid)) => LinkEvent::Sent(pkid),
                    _ => LinkEvent::Other,
                })
            }
            Link::V5 { events, .. } => {
                use v5::mqttbytes::v5::{Packet, PubAckReason};
                use v5::Event;
                Ok(match events.poll().await.map_err(Box::new)? {
                    Event::Incoming(Packet::ConnAck(a)) => LinkEvent::Connected {
                        code: format!("{:?}", a.code),
                    },
                    Event::Incoming(Packet::PubAck(a)) => LinkEvent::Acked {
                        pkid: a.pkid,
                        refused: match a.reason {
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers => None,
                            other => Some(format!("{other:?}")),
                        },
                    },
                    Event::Incoming(Packet::Publish(p)) => LinkEvent::Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload,
                    },
                    Event::Outgoing(Outgoing::Publish(pkid)) => LinkEvent::Sent(pkid),
                    _ => LinkEvent::Other,
                })
            }
        }
    }

    /// Queues a QoS 1 publish without waiting; false when the request queue is full.
    pub fn try_publish(&self, topic: &str, retain: bool, payload: Vec<u8>) -> bool {
        match self {
            Link::V311 { client, .. } => client
                .try_publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload)
                .is_ok(),
            Link::V5 { client, .. } => client
                .try_publish(topic, v5::mqttbytes::QoS::AtLeastOnce, retain, payload)
                .is_ok(),
        }
    }

    /// Queues a QoS 1 subscription.
    pub fn try_subscribe(&self, filter: &str) -> Result<(), LinkError> {
        match self {
            Link::V311 { client, .. } => Ok(client
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(Box::new)?),
            Link::V5 { client, .. } => Ok(client
                .try_subscribe(filter, v5::mqttbytes::QoS::AtLeastOnce)
                .map_err(Box::new)?),
        }
    }

    /// Queues a DISCONNECT (a clean one: the broker then does not publish the Last Will).
    pub fn try_disconnect(&self) {
        // A full request queue only means the DISCONNECT is not sent: the broker then
        // sees the connection close and publishes the Last Will, which is still true.
        match self {
            Link::V311 { client, .. } => {
                let _ = client.try_disconnect();
            }
            Link::V5 { client, .. } => {
                let _ = client.try_disconnect();
            }
        }
    }
}
