//! The subscriber loop ingest's session and the screen's share: poll the broker until
//! shutdown, subscribe again on every connection, pace reconnects.
//!
//! rumqttc reconnects on the next `poll` after an error, at once; without the
//! [`Backoff`] a dead broker would be retried (and logged) in a tight loop.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Packet, Publish, QoS};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::backoff::Backoff;

/// What the loop tells its owner.
pub enum Seen {
    /// Connected (again); the filters are being subscribed.
    Connected {
        session_present: bool,
    },
    Message(Publish),
    /// The connection failed or broke; the loop waits `retry_in`, then reconnects.
    Down {
        error: ConnectionError,
        retry_in: Duration,
    },
}

/// Polls `eventloop` until `cancel`, subscribing `filters` at `qos` after every
/// connection and handing what it sees to `on`.
pub async fn run(
    eventloop: &mut EventLoop,
    client: &AsyncClient,
    filters: &[String],
    qos: QoS,
    cancel: &CancellationToken,
    mut on: impl FnMut(Seen),
) {
    let mut backoff = Backoff::new(Duration::from_millis(500));
    loop {
        let ev = tokio::select! {
            () = cancel.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                on(Seen::Connected {
                    session_present: ack.session_present,
                });
                for f in filters {
                    if let Err(e) = client.try_subscribe(f, qos) {
                        warn!(error = %e, filter = %f, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => on(Seen::Message(p)),
            Ok(_) => {}
            Err(error) => {
                on(Seen::Down {
                    error,
                    retry_in: backoff.delay(),
                });
                if !backoff.wait(cancel).await {
                    break;
                }
            }
        }
    }
}
