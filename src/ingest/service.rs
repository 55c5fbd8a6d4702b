//! `hazgate ingest`: gateways' MQTT stream → time-series store, acknowledged only once
//! stored.
//!
//! Ingest keeps no state of its own, so it scales out by running more instances:
//!
//! - **Shared subscription** (`$share/{group}/…`): the broker splits the stream among the
//!   instances of a group; nothing to coordinate here.
//! - **Acknowledged after the write.** Manual acks, QoS 1, a persistent session (clean
//!   session off, a stable client id): a message's PUBACK goes to the broker only after
//!   the store accepted every point it carried. While the store is down, batches are
//!   retried with back-off and nothing is acknowledged; the broker stops sending once
//!   its in-flight window for this client is full (Mosquitto: `max_inflight_messages`)
//!   and keeps the rest queued — that is the backpressure. An instance that dies
//!   mid-batch gets its unacknowledged messages again when it reconnects.
//! - **Idempotent writes**: points carry the gateway's timestamps, so a message stored
//!   twice (redelivered after a crash) overwrites itself.
//! - **Dead letters**: a malformed or schema-invalid message is counted, logged once
//!   per cause, republished with its topic and cause on the dead-letter topic, and
//!   acknowledged — it never blocks the stream.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use rumqttc::{AsyncClient, MqttOptions, Publish, QoS};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    backoff::Backoff,
    contract::{every_gateway, GatewayPath, Stream, Topic},
    model::{
        central::{IngestConfig, MqttConfig, StoreConfig},
        mqtt::TlsFileError,
    },
};

use super::{
    decoders::Decoders,
    gaps::{Gaps, StreamPosition},
    message::{decode_shifted, Decoded, Rejected},
    subscriber::{self, Seen},
    tables::Tables,
    writer::PointWriter,
};

/// What the HTTP endpoint reports.
#[derive(Default)]
pub struct Health {
    pub mqtt_connected: AtomicBool,
    /// False after a failed write, true again after a good one.
    pub store_ok: AtomicBool,
    /// Messages received and not yet acknowledged (waiting in a batch).
    pub unacked: AtomicU64,
    /// Each gateway's clock against ours (the screen reads it too).
    pub clocks: Arc<super::clock::Clocks>,
}

/// A stored message's share of a batch: its ack and its points as line protocol.
struct Accepted {
    publish: Publish,
    lines: Vec<u8>,
    points: usize,
    newest_ms: Option<i64>,
    message_type: &'static str,
    /// Where it stands in its gateway's stream.
    position: Option<StreamPosition>,
}

/// Why ingest could not run.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("mqtt.tls: {0}")]
    Tls(#[from] TlsFileError),
    #[error("cannot start decoding threads: {0}")]
    Threads(std::io::Error),
}

/// Runs ingest until `cancel`.
pub async fn run_ingest<W: PointWriter>(
    cfg: IngestConfig,
    writer: W,
    health: Arc<Health>,
    cancel: CancellationToken,
) -> Result<(), IngestError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = mqtt_options(&cfg.mqtt)?;
    let mut decoders = Decoders::per_core().map_err(IngestError::Threads)?;
    let tables = Arc::new(Tables::default());
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let (tx, rx) = mpsc::unbounded_channel();
    let batcher = tokio::spawn(batcher(
        cfg.store.clone(),
        writer,
        client.clone(),
        rx,
        health.clone(),
        cancel.clone(),
    ));
    let filters = shared_filters(&cfg.mqtt);
    let tolerance_ms =
        i64::try_from(cfg.clock.tolerance_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    // Where configured, a gateway's times are stored less its clock's offset once that
    // is beyond the tolerance.
    let restamp = cfg.clock.restamp.then(|| health.clocks.clone());
    // Decoding jobs in arrival order: results are taken in that order, so batches and
    // acknowledgements follow the order the broker sent the messages in.
    let (jobs, pending) = mpsc::unbounded_channel();
    let sequencer = tokio::spawn(sequence(
        pending,
        tx,
        client.clone(),
        SequenceConfig {
            dead_letter_topic: cfg.mqtt.dead_letter_topic.clone(),
            count_seq_gaps: cfg.mqtt.count_seq_gaps,
            clock_tolerance_ms: tolerance_ms,
        },
        health.clone(),
    ));
    let on = |seen| match seen {
        Seen::Connected { session_present } => {
            info!(host = %cfg.mqtt.host, port = cfg.mqtt.port, session_present,
                group = %cfg.mqtt.group, "ingest connected");
            health.mqtt_connected.store(true, Ordering::Relaxed);
        }
        Seen::Message(p) => {
            health.unacked.fetch_add(1, Ordering::Relaxed);
            let page = is_points_page(&cfg.mqtt.prefix, &p.topic);
            // Checking and rendering a message is the CPU-heavy part: it runs on the
            // decoding threads, so all cores work, and the event loop keeps polling
            // (pings, acks) meanwhile.
            let (prefix, max) = (cfg.mqtt.prefix.clone(), cfg.mqtt.max_message_bytes);
            let tables = tables.clone();
            let restamp = restamp.clone();
            let shift = move |g: GatewayPath<'_>| {
                restamp
                    .as_ref()
                    .map_or(0, |c| c.shift(&g.to_string(), tolerance_ms))
            };
            let work = move || match decode_shifted(
                &prefix,
                &p.topic,
                &p.payload,
                max,
                now_ms(),
                &tables,
                shift,
            ) {
                Ok(d) => Ok(accept(p, d)),
                Err(r) => Err((p, r)),
            };
            // A page of a point table is learnt here, before any later message goes to
            // a decoding thread: no sample can be decoded ahead of its table.
            let job = if page {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = tx.send(work());
                rx
            } else {
                decoders.run(work)
            };
            let _ = jobs.send(job);
        }
        Seen::Down { error, retry_in } => {
            let was = health.mqtt_connected.swap(false, Ordering::Relaxed);
            warn!(error = %error, was_connected = was, retry_in_ms = retry_in.as_millis() as u64,
                "ingest MQTT connection down; retrying");
        }
    };
    subscriber::run(
        &mut eventloop,
        &client,
        &filters,
        QoS::AtLeastOnce,
        &cancel,
        on,
    )
    .await;
    // The batcher writes what it holds and acknowledges it; give the acks a moment to
    // leave, then disconnect (the session, and anything unacknowledged, stays).
    drop(jobs);
    let _ = sequencer.await;
    let _ = batcher.await;
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while eventloop.poll().await.is_ok() {}
    })
    .await;
    Ok(())
}

/// Every stream of every gateway, shared among the instances of one group — but the
/// point tables, which every instance needs and which a shared subscription would not
/// deliver retained (MQTT 5 §4.8.2): those each instance subscribes to alone.
fn shared_filters(cfg: &MqttConfig) -> Vec<String> {
    Stream::PUBLISHED
        .iter()
        .map(|s| {
            let every = every_gateway(&cfg.prefix, *s);
            if *s == Stream::Points {
                every
            } else {
                format!("$share/{}/{every}", cfg.group)
            }
        })
        .collect()
}

fn is_points_page(prefix: &str, topic: &str) -> bool {
    Topic::parse(prefix, topic).is_some_and(|t| t.stream == Stream::Points)
}

type DecodeJob = tokio::sync::oneshot::Receiver<Result<Accepted, (Publish, Rejected)>>;

/// Takes decoding results in arrival order: good messages to the batcher, refused ones
/// to the dead-letter topic (acknowledged at once).
async fn sequence(
    mut pending: mpsc::UnboundedReceiver<DecodeJob>,
    batcher: mpsc::UnboundedSender<Accepted>,
    client: AsyncClient,
    cfg: SequenceConfig,
    health: Arc<Health>,
) {
    let mut dead = DeadLetters::default();
    let mut gaps = cfg.count_seq_gaps.then(Gaps::default);
    while let Some(job) = pending.recv().await {
        match job.await {
            Ok(Ok(mut a)) => {
                metrics::counter!("hazgate_ingest_messages_total", "type" => a.message_type)
                    .increment(1);
                if let (Some(g), Some(pos)) = (gaps.as_mut(), &a.position) {
                    record_gap(g, pos, &mut a.lines);
                }
                watch_clock(&health, &a, cfg.clock_tolerance_ms);
                let _ = batcher.send(a);
            }
            Ok(Err((p, r))) => {
                dead.park(&client, &cfg.dead_letter_topic, &p, &r);
                ack(&client, &p).await;
                health.unacked.fetch_sub(1, Ordering::Relaxed);
            }
            // Not acknowledged: the broker delivers it again after a reconnect.
            Err(_) => warn!("decoding result lost; the message stays unacknowledged"),
        }
    }
}

/// What [`sequence`] is told.
struct SequenceConfig {
    dead_letter_topic: String,
    count_seq_gaps: bool,
    clock_tolerance_ms: i64,
}

/// A live status message (not retained, not the Last Will: both were stamped long
/// before they arrive) measures its gateway's clock: a gauge, and a warning when the
/// clock goes beyond the tolerance (and a note when it is back).
fn watch_clock(health: &Health, a: &Accepted, tolerance_ms: i64) {
    let (Some(pos), Some(ts)) = (&a.position, a.newest_ms) else {
        return;
    };
    if a.message_type != "status" || a.publish.retain {
        return;
    }
    // Gateway ids are unique within an enterprise only: the whole path names one.
    let path = format!("{}/{}/{}", pos.park, pos.enterprise, pos.gateway);
    let o = health.clocks.observe(&path, ts, now_ms(), tolerance_ms);
    metrics::gauge!("hazgate_ingest_gateway_clock_offset_seconds",
        "park" => pos.park.clone(), "enterprise" => pos.enterprise.clone(), "gateway" => pos.gateway.clone())
    .set(o.ms as f64 / 1000.0);
    if o.newly_off {
        warn!(gateway = %path, offset_s = o.ms as f64 / 1000.0, tolerance_s = tolerance_ms / 1000,
            "gateway clock off: its readings and events are stored at its own, wrong time — set its clock (NTP)");
    } else if o.newly_on {
        info!(gateway = %path, offset_s = o.ms as f64 / 1000.0, "gateway clock back within tolerance");
    }
}

/// Counts what the message's stream skipped: a metric and a `seq_gap` point beside the
/// message's own points (stored with them, or not at all).
fn record_gap(gaps: &mut Gaps, pos: &StreamPosition, lines: &mut Vec<u8>) {
    let missing = gaps.see(pos);
    if missing == 0 {
        return;
    }
    metrics::counter!("hazgate_ingest_seq_gaps_total", "gateway" => pos.gateway.clone(), "stream" => pos.stream())
        .increment(missing);
    warn!(gateway = %pos.gateway, stream = pos.stream(), missing, before = pos.n, "messages lost in a gateway's stream");
    lines.extend_from_slice(&pos.gap_line(missing, now_ms()));
}

fn mqtt_options(cfg: &MqttConfig) -> Result<MqttOptions, TlsFileError> {
    let mut o = cfg.options(cfg.client_id.clone())?;
    o.set_clean_session(false)
        .set_manual_acks(true)
        // Accept far larger packets than we store, so an oversized message is
        // dead-lettered instead of breaking the connection (and coming back forever).
        .set_max_packet_size((cfg.max_message_bytes * 16).max(1 << 24), 1 << 20);
    Ok(o)
}

fn accept(publish: Publish, d: Decoded) -> Accepted {
    Accepted {
        publish,
        lines: d.lines,
        points: d.points,
        newest_ms: d.newest_ms,
        message_type: d.message_type,
        position: d.position,
    }
}

async fn ack(client: &AsyncClient, p: &Publish) {
    if let Err(e) = client.ack(p).await {
        debug!(error = %e, "ack not sent; the broker will redeliver");
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parks refused messages and logs each cause once.
#[derive(Default)]
struct DeadLetters {
    logged: HashSet<&'static str>,
}

/// How much of a refused payload the dead letter carries.
const DEAD_LETTER_EXCERPT: usize = 4096;

impl DeadLetters {
    fn park(&mut self, client: &AsyncClient, topic: &str, p: &Publish, r: &Rejected) {
        metrics::counter!("hazgate_ingest_dead_letters_total", "cause" => r.cause).increment(1);
        if self.logged.insert(r.cause) {
            warn!(cause = r.cause, topic = %p.topic, detail = %r.detail,
                "message refused and dead-lettered (logged once per cause; see hazgate_ingest_dead_letters_total)");
        }
        let excerpt = &p.payload[..p.payload.len().min(DEAD_LETTER_EXCERPT)];
        let letter = serde_json::json!({
            "topic": p.topic,
            "cause": r.cause,
            "detail": r.detail,
            "received_ms": now_ms(),
            "payload_bytes": p.payload.len(),
            "payload": String::from_utf8_lossy(excerpt),
        });
        if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, false, letter.to_string()) {
            warn!(error = %e, "dead letter not published");
        }
    }
}

/// Collects accepted messages into batches, writes each (retrying until it is stored)
/// and only then acknowledges its messages.
async fn batcher<W: PointWriter>(
    cfg: StoreConfig,
    writer: W,
    client: AsyncClient,
    mut rx: mpsc::UnboundedReceiver<Accepted>,
    health: Arc<Health>,
    cancel: CancellationToken,
) {
    let max_wait = cfg.batch_max_wait();
    let mut batch: Vec<Accepted> = Vec::new();
    let mut points = 0usize;
    let mut opened = Instant::now();
    loop {
        let due = opened + max_wait;
        let full = tokio::select! {
            () = cancel.cancelled() => break,
            item = rx.recv() => match item {
                Some(a) => {
                    if batch.is_empty() {
                        opened = Instant::now();
                    }
                    points += a.points;
                    batch.push(a);
                    points >= cfg.batch_max_points
                }
                None => break,
            },
            () = tokio::time::sleep_until(due), if !batch.is_empty() => true,
        };
        if full && !write_and_ack(&writer, &client, &mut batch, &health, &cancel).await {
            break;
        }
        if batch.is_empty() {
            points = 0;
        }
    }
    // On shutdown: what is already here is written once more; if the store is down it
    // stays unacknowledged and the broker delivers it again after the restart.
    while let Ok(a) = rx.try_recv() {
        batch.push(a);
    }
    if !batch.is_empty() {
        let stop = CancellationToken::new();
        let attempt = write_and_ack(&writer, &client, &mut batch, &health, &stop);
        let _ = tokio::time::timeout(Duration::from_secs(5), attempt).await;
    }
}

/// Writes one batch, retrying with back-off, then acknowledges its messages. Returns
/// false when cancelled before the write succeeded (nothing acknowledged).
async fn write_and_ack<W: PointWriter>(
    writer: &W,
    client: &AsyncClient,
    batch: &mut Vec<Accepted>,
    health: &Health,
    cancel: &CancellationToken,
) -> bool {
    let size: usize = batch.iter().map(|a| a.lines.len()).sum();
    let mut body = Vec::with_capacity(size);
    for a in batch.iter() {
        body.extend_from_slice(&a.lines);
    }
    let body = Bytes::from(body);
    let points: usize = batch.iter().map(|a| a.points).sum();
    let mut backoff = Backoff::new(Duration::from_millis(250));
    let mut failures = 0u32;
    if points > 0 {
        loop {
            let started = Instant::now();
            match writer.write(body.clone()).await {
                Ok(()) => {
                    metrics::histogram!("hazgate_ingest_write_seconds")
                        .record(started.elapsed().as_secs_f64());
                    if !health.store_ok.swap(true, Ordering::Relaxed) || failures > 0 {
                        info!(points, failures, "store writes accepted");
                    }
                    break;
                }
                Err(e) => {
                    failures += 1;
                    metrics::counter!("hazgate_ingest_write_retries_total").increment(1);
                    health.store_ok.store(false, Ordering::Relaxed);
                    // One line per attempt, paced by the back-off (≤ 1 per 30 s).
                    warn!(error = %e, points, attempt = failures, retry_in_ms = backoff.delay().as_millis() as u64,
                        "store write failed; holding the batch (nothing acknowledged)");
                    if !backoff.wait(cancel).await {
                        return false;
                    }
                }
            }
        }
    }
    metrics::counter!("hazgate_ingest_points_written_total").increment(points as u64);
    let stored_ms = now_ms();
    for a in batch.drain(..) {
        // Lag: gateway timestamp of the message's newest point → accepted by the store.
        if let Some(newest) = a.newest_ms {
            metrics::histogram!("hazgate_ingest_lag_seconds")
                .record((stored_ms - newest).max(0) as f64 / 1000.0);
        }
        metrics::counter!("hazgate_ingest_messages_stored_total", "type" => a.message_type)
            .increment(1);
        ack(client, &a.publish).await;
        health.unacked.fetch_sub(1, Ordering::Relaxed);
    }
    true
}
