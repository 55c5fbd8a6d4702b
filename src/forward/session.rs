//! The MQTT uplink: readings and events → spool → broker, acknowledged on PUBACK.
//!
//! rumqttc's `publish` returning Ok means *queued*, and a reconnect into a new session
//! silently drops whatever was queued or in flight, and it never persists anything. So
//! the spool is the source of truth: each publish's packet id is mapped to the record's
//! `seq` (`Outgoing::Publish(pkid)` arrives in request order), the record is removed on
//! `PubAck`, and after every (re)connect the in-flight map is cleared and sending
//! restarts from the spool — events first, then the telemetry backlog oldest first.
//! Delivery is at-least-once: a duplicate `seq` may arrive after a reconnect, a gap never.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::{sync::broadcast, task::block_in_place, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    collect::{frame, unframe, ReportByException},
    encode::{self, CommandReply, Encoder, GatewayState, Status},
    health::UplinkHealth,
    link::{Link, LinkEvent, LinkOptions},
    spool::{Class, Spool, SpoolError},
};
use crate::{
    acquire::LatestStore,
    backoff::Backoff,
    commands::{self, AuditLog, Channel},
    contract::Topics,
    judge::{
        engine::{Event, RiskScope},
        service::{Events, JudgeHandle},
    },
    model::{uplink::UplinkConfig, Site},
    reading::{Reading, Timestamp},
};

/// How often collected messages are committed to the spool (one fsync each).
const COMMIT_WINDOW: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(
        "cannot create the spool's directory {path} (set [uplink] spool_path to a writable place)"
    )]
    SpoolDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the spool {path} (set [uplink] spool_path to a writable place)")]
    SpoolOpen { path: String, source: SpoolError },
    #[error("cannot open the audit log {path} (set [uplink] audit_path to a writable place)")]
    AuditOpen {
        path: String,
        source: std::io::Error,
    },
    #[error("uplink: {0}")]
    TlsFile(#[from] crate::model::mqtt::TlsFileError),
}

/// What the uplink needs before anything runs: its spool and audit log, opened (and
/// so known to be writable) at start-up. A spool that cannot be opened is an error the
/// daemon reports and exits on — never an uplink that silently does not start.
pub struct UplinkFiles {
    pub spool: Arc<Spool>,
    /// The gateway's one audit log (shared with the local API).
    pub audit: Arc<AuditLog>,
    /// The uplink's state for `/healthz` and `/metrics`, reading this spool.
    pub health: Arc<UplinkHealth>,
}

impl UplinkFiles {
    pub fn open(cfg: &UplinkConfig) -> Result<Self, UplinkError> {
        if let Some(dir) = cfg
            .spool_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| UplinkError::SpoolDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let spool = Spool::open(&cfg.spool_path, cfg.spool_max_bytes).map_err(|e| {
            UplinkError::SpoolOpen {
                path: cfg.spool_path.display().to_string(),
                source: e,
            }
        })?;
        let audit = AuditLog::open(&cfg.audit_path)
            .map(Arc::new)
            .map_err(|source| UplinkError::AuditOpen {
                path: cfg.audit_path.display().to_string(),
                source,
            })?;
        let spool = Arc::new(spool);
        Ok(Self {
            health: Arc::new(UplinkHealth::new(spool.clone())),
            spool,
            audit,
        })
    }
}

/// Runs the uplink until `cancel`: collection into the spool and the MQTT session. The
/// judge's `events` are drained to their end (the judge stopped), so its last decisions
/// are spooled before the goodbye.
pub async fn run_uplink(
    site: Arc<Site>,
    cfg: UplinkConfig,
    files: UplinkFiles,
    store: LatestStore,
    judge: JudgeHandle,
    events: Events,
    cancel: CancellationToken,
) -> Result<(), UplinkError> {
    // rustls needs one process-wide crypto provider; ring keeps the build free of C/CMake.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let UplinkFiles {
        spool,
        audit,
        health,
    } = files;
    let topics = encode::topics(&cfg.prefix, &site);
    let started = Instant::now();
    let wake = Arc::new(tokio::sync::Notify::new());
    let collector = tokio::spawn(collect(
        site.clone(),
        cfg.clone(),
        store,
        Inputs {
            judge: judge.clone(),
            events,
        },
        spool.clone(),
        wake.clone(),
        health.clone(),
        cancel.clone(),
        started,
    ));
    let commands = Commands { judge, audit };
    session(
        &site, &cfg, &topics, &spool, &wake, &cancel, started, &commands, &health, collector,
    )
    .await
}

fn status(spool: &Spool, state: GatewayState, started: Instant) -> Status<'static> {
    let d = spool.depth().unwrap_or_default();
    Status {
        state,
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: started.elapsed().as_secs(),
        spool_events: d.events,
        spool_telemetry: d.telemetry,
        spool_bytes: d.bytes,
        dropped_telemetry: d.dropped_telemetry,
    }
}

/// What the collector takes in besides readings: the judge's ordered events, and the
/// judge itself, asked to restate its levels.
struct Inputs {
    judge: JudgeHandle,
    events: Events,
}

/// Collects readings (by exception) and the judge's events; commits them every window.
/// At a stop it takes no more readings but drains the judge's events to their end.
#[allow(clippy::too_many_arguments)]
async fn collect(
    site: Arc<Site>,
    cfg: UplinkConfig,
    store: LatestStore,
    mut inputs: Inputs,
    spool: Arc<Spool>,
    wake: Arc<tokio::sync::Notify>,
    health: Arc<UplinkHealth>,
    cancel: CancellationToken,
    started: Instant,
) {
    let topics = encode::topics(&cfg.prefix, &site);
    let encoder = Encoder::new(&site);
    let mut rbe = ReportByException::new(&site, cfg.publish_deadband_pct);
    let mut readings_rx = store.subscribe();
    let mut batch = Batch::default();
    let mut window = tokio::time::interval(COMMIT_WINDOW);
    let mut integrity = tokio::time::interval(Duration::from_secs(cfg.integrity_period_s));
    // The first integrity tick is now: every level is restated at start-up.
    let mut stopping = false;
    loop {
        let mut flush = false;
        tokio::select! {
            () = cancel.cancelled(), if !stopping => stopping = true,
            batch_in = readings_rx.recv(), if !stopping => match batch_in {
                Ok(b) => batch.telemetry.extend(b.iter().filter(|r| rbe.passes(r))),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    batch.telemetry.extend(store.snapshot().into_iter().flatten().filter(|r| rbe.passes(r)));
                }
                Err(broadcast::error::RecvError::Closed) => stopping = true,
            },
            ev = inputs.events.recv() => match ev {
                // Alarms and risk changes go out at once, not at the next window.
                Some(e) => {
                    batch.events.push(e);
                    flush = true;
                }
                // The judge has stopped and everything it decided is here: last commit.
                None => {
                    commit(&spool, &topics, &encoder, &cfg, &mut batch, &health, started);
                    wake.notify_one();
                    break;
                }
            },
            _ = integrity.tick(), if !stopping => {
                batch.telemetry.extend(store.snapshot().into_iter().flatten());
                batch.status_due = true;
                inputs.judge.restate_levels();
            }
            _ = window.tick() => flush = true,
        }
        if flush && !batch.is_empty() {
            commit(
                &spool, &topics, &encoder, &cfg, &mut batch, &health, started,
            );
            wake.notify_one();
        }
    }
}

/// What the collector has gathered since its last commit.
#[derive(Default)]
struct Batch {
    telemetry: Vec<Reading>,
    events: Vec<Arc<Event>>,
    status_due: bool,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.telemetry.is_empty() && self.events.is_empty() && !self.status_due
    }
}

/// The topics an event goes to: (topic, retained). A change of level goes to the event
/// stream and, retained, to its scope's own topic; a restatement only to the latter.
fn event_topics(topics: &Topics, e: &Event) -> Vec<(String, bool)> {
    match e {
        Event::Alarm(_) | Event::Thresholds(_) => vec![(topics.alarm(), false)],
        Event::SpecialOperation(_) => vec![(topics.risk(), false)],
        Event::Risk(r) => {
            let own = match &r.scope {
                RiskScope::HazardSource(id) => topics.risk_of(id.as_str()),
                RiskScope::Enterprise => topics.risk_of("enterprise"),
            };
            if r.snapshot {
                vec![(own, true)]
            } else {
                vec![(topics.risk(), false), (own, true)]
            }
        }
    }
}

/// Commits the batch to the spool in one transaction (one fsync). On failure the batch is
/// kept for the next window, the failure logged and shown on `/healthz`.
fn commit(
    spool: &Spool,
    topics: &Topics,
    encoder: &Encoder<'_>,
    cfg: &UplinkConfig,
    batch: &mut Batch,
    health: &UplinkHealth,
    started: Instant,
) {
    enum Item<'a> {
        Event(&'a Event, String, bool),
        Telemetry(&'a [Reading]),
        Status,
    }
    let mut items: Vec<Item> = Vec::new();
    let mut classes = Vec::new();
    for e in &batch.events {
        for (topic, retain) in event_topics(topics, e) {
            items.push(Item::Event(e, topic, retain));
            classes.push(Class::Event);
        }
    }
    for chunk in batch.telemetry.chunks(cfg.max_readings_per_message) {
        items.push(Item::Telemetry(chunk));
        classes.push(Class::Telemetry);
    }
    if batch.status_due {
        items.push(Item::Status);
        classes.push(Class::Event);
    }
    let now = Timestamp::now();
    let result = block_in_place(|| {
        spool.append(&classes, |i, seq| match &items[i] {
            Item::Event(e, topic, retain) => frame(topic, *retain, &encoder.event(seq, e)),
            Item::Telemetry(rs) => {
                frame(&topics.telemetry(), false, &encoder.telemetry(seq, now, rs))
            }
            Item::Status => frame(
                &topics.status(),
                true,
                &encoder.status(seq, now, status(spool, GatewayState::Online, started)),
            ),
        })
    });
    match result {
        Ok(seqs) => {
            debug!(messages = seqs.len(), "spooled");
            health.spool_ok();
            *batch = Batch::default();
        }
        Err(e) => {
            warn!(error = %e, "spool write failed; kept in memory and retried next window");
            health.spool_failed(e.to_string());
        }
    }
}

/// Where commands go and are recorded.
struct Commands {
    judge: JudgeHandle,
    audit: Arc<AuditLog>,
}

impl Commands {
    /// Applies one command by the one command path (which audits it), and spools the
    /// reply.
    async fn handle(
        &self,
        site: &Site,
        topics: &Topics,
        spool: &Spool,
        name: &str,
        payload: &[u8],
    ) {
        let outcome =
            commands::execute(&self.judge, &self.audit, Channel::Mqtt, name, payload, None).await;
        let error = outcome.result.err();
        let reply = CommandReply {
            request_id: outcome.request_id.map(Into::into),
            command: name.to_string().into(),
            ok: error.is_none(),
            error: error.map(Into::into),
        };
        let encoder = Encoder::new(site);
        let topic = topics.reply(name);
        let now = Timestamp::now();
        if let Err(e) = block_in_place(|| {
            spool.append(&[Class::Event], |_, seq| {
                frame(&topic, false, &encoder.reply(seq, now, reply.clone()))
            })
        }) {
            warn!(error = %e, "could not spool a command reply");
        }
    }
}

/// Which spooled record each QoS 1 publish carries, from hand-over to PUBACK.
///
/// rumqttc assigns packet ids itself and reports them (`Sent`) in hand-over order, so
/// the seqs handed over wait in a queue until their packet id is known.
#[derive(Default)]
struct InFlight {
    awaiting_pkid: VecDeque<u64>,
    by_pkid: HashMap<u16, u64>,
    /// Every seq handed over and not yet acknowledged (also those refused by an MQTT 5
    /// broker, until their retry is due).
    handed: HashSet<u64>,
    /// Refused seqs and when they were refused.
    refused: Vec<(Instant, u64)>,
}

/// How long a message an MQTT 5 broker refused (quota exceeded, not authorised, …) waits
/// before it is sent again: it is never dropped, and never resent in a tight loop.
const REFUSED_RETRY: Duration = Duration::from_secs(10);

impl InFlight {
    fn handed_over(&mut self, seq: u64) {
        self.awaiting_pkid.push_back(seq);
        self.handed.insert(seq);
    }

    fn sent(&mut self, pkid: u16) {
        if let Some(seq) = self.awaiting_pkid.pop_front() {
            self.by_pkid.insert(pkid, seq);
        }
    }

    /// The seq a PUBACK acknowledges; None for a packet that carried no spooled record.
    fn acked(&mut self, pkid: u16) -> Option<u64> {
        let seq = self.by_pkid.remove(&pkid)?;
        self.handed.remove(&seq);
        Some(seq)
    }

    /// The seq a refusing PUBACK (MQTT 5) concerns: it stays handed over — holding its
    /// in-flight slot — until [`REFUSED_RETRY`] has passed.
    fn refused(&mut self, pkid: u16, now: Instant) -> Option<u64> {
        let seq = self.by_pkid.remove(&pkid)?;
        self.refused.push((now, seq));
        Some(seq)
    }

    /// Makes refused seqs whose retry is due available to be handed over again.
    fn release_refused(&mut self, now: Instant) {
        let handed = &mut self.handed;
        self.refused.retain(|(at, seq)| {
            let due = now.duration_since(*at) >= REFUSED_RETRY;
            if due {
                handed.remove(seq);
            }
            !due
        });
    }

    fn contains(&self, seq: u64) -> bool {
        self.handed.contains(&seq)
    }

    fn len(&self) -> usize {
        self.handed.len()
    }

    fn awaiting_ack(&self) -> bool {
        !self.by_pkid.is_empty() || !self.awaiting_pkid.is_empty()
    }

    /// A new connection is a new session: nothing is in flight any more.
    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Removes an acknowledged record from the spool, or says why it will be sent again.
fn on_ack(spool: &Spool, in_flight: &mut InFlight, pkid: u16, refused: Option<&str>) -> bool {
    if let Some(reason) = refused {
        let seq = in_flight.refused(pkid, Instant::now());
        warn!(
            ?seq,
            reason, "broker refused a message; kept in the spool and sent again in 10 s"
        );
        return seq.is_some();
    }
    let Some(seq) = in_flight.acked(pkid) else {
        return false;
    };
    if let Err(e) = block_in_place(|| spool.ack(&[seq])) {
        warn!(error = %e, seq, "spool ack failed; the message will be sent again");
    }
    true
}

/// Applies a delivery event (`Sent`, `Acked`) to the records in flight. True when it
/// was the PUBACK of a packet that carried no spooled record (the goodbye).
fn track(spool: &Spool, in_flight: &mut InFlight, ev: &LinkEvent) -> bool {
    match ev {
        LinkEvent::Sent(pkid) => {
            in_flight.sent(*pkid);
            false
        }
        LinkEvent::Acked { pkid, refused } => !on_ack(spool, in_flight, *pkid, refused.as_deref()),
        _ => false,
    }
}

/// The MQTT session: connect, publish from the spool, ack on PUBACK, reconnect.
#[allow(clippy::too_many_arguments)]
async fn session(
    site: &Site,
    cfg: &UplinkConfig,
    topics: &Topics,
    spool: &Arc<Spool>,
    wake: &tokio::sync::Notify,
    cancel: &CancellationToken,
    started: Instant,
    commands: &Commands,
    health: &UplinkHealth,
    collector: tokio::task::JoinHandle<()>,
) -> Result<(), UplinkError> {
    let encoder = Encoder::new(site);
    // The Last Will is published by the broker, at a time we do not choose: it cannot
    // take a place in our counter without appearing out of order, so it carries seq 0.
    let will = encoder.status(
        0,
        Timestamp::now(),
        status(spool, GatewayState::Offline, started),
    );
    let mut link = Link::new(LinkOptions {
        endpoint: cfg.endpoint(site.gateway.gateway_id.as_str()),
        inflight: cfg.inflight,
        will: (topics.status(), will),
    })?;
    let mut connected = false;
    let mut backoff = Backoff::new(Duration::from_millis(500));
    let mut in_flight = InFlight::default();
    let mut poll_tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        if connected {
            fill(cfg, spool, &link, &mut in_flight);
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = wake.notified() => {}
            _ = poll_tick.tick() => {}
            ev = link.poll() => match ev {
                Ok(LinkEvent::Connected { code }) => {
                    info!(host = %cfg.host, port = cfg.port, protocol = ?cfg.protocol, code, "uplink connected");
                    connected = true;
                    health.connected();
                    backoff.reset();
                    if let Err(e) = link.try_subscribe(&topics.commands()) {
                        warn!(error = %e, "cannot subscribe to commands");
                    }
                    in_flight.clear();
                    // Whatever the broker retained may be older than the gateway's state
                    // (a restart, levels changed while it was away): restate them.
                    commands.judge.restate_levels();
                }
                Ok(ev @ (LinkEvent::Sent(_) | LinkEvent::Acked { .. })) => {
                    track(spool, &mut in_flight, &ev);
                }
                Ok(LinkEvent::Message { topic, payload }) => {
                    if let Some(name) = topics.command_name(&topic) {
                        commands.handle(site, topics, spool, name, &payload).await;
                        wake.notify_one();
                    }
                }
                Ok(LinkEvent::Other) => {}
                Err(e) => {
                    if connected {
                        warn!(error = %e, "uplink lost; spooling until the broker is back");
                    } else {
                        // Refused credentials or an untrusted certificate must be visible;
                        // the back-off keeps this to one line per attempt (≤ 1 per 30 s).
                        warn!(host = %cfg.host, port = cfg.port, error = %e, retry_in_ms = backoff.delay().as_millis() as u64,
                            "uplink connect failed; retrying");
                    }
                    connected = false;
                    health.disconnected(e.to_string());
                    in_flight.clear();
                    // rumqttc reconnects on the next poll at once: pace it.
                    if !backoff.wait(cancel).await {
                        break;
                    }
                }
            },
        }
    }
    // Whatever the collector committed last is in the spool once it has stopped.
    let _ = collector.await;
    if connected {
        goodbye(
            cfg,
            topics,
            spool,
            &encoder,
            &mut link,
            &mut in_flight,
            started,
        )
        .await?;
    }
    Ok(())
}

/// A clean stop with the broker up. First what the spool holds is sent (≤ 3 s), so no
/// `seq` waits behind the goodbye for the next start; then the retained `offline`
/// status (≤ 1 s) — the one publish that carries no spooled record, its `seq` reserved
/// only now that it is sent — and a DISCONNECT, so the broker does not publish the
/// Last Will.
#[allow(clippy::too_many_arguments)]
async fn goodbye(
    cfg: &UplinkConfig,
    topics: &Topics,
    spool: &Spool,
    encoder: &Encoder<'_>,
    link: &mut Link,
    in_flight: &mut InFlight,
    started: Instant,
) -> Result<(), UplinkError> {
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            fill(cfg, spool, link, in_flight);
            let more = block_in_place(|| spool.pending(1, |seq| in_flight.contains(seq)))
                .is_ok_and(|r| !r.is_empty());
            if !more && !in_flight.awaiting_ack() {
                break;
            }
            match link.poll().await {
                Ok(ev) => {
                    track(spool, in_flight, &ev);
                }
                Err(_) => break,
            }
        }
    })
    .await;
    let bye = encoder.status(
        block_in_place(|| spool.reserve_seq())?,
        Timestamp::now(),
        status(spool, GatewayState::Offline, started),
    );
    let mut acked_bye = !link.try_publish(&topics.status(), true, bye);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while !acked_bye || in_flight.awaiting_ack() {
            match link.poll().await {
                Ok(ev) => acked_bye |= track(spool, in_flight, &ev),
                Err(_) => break,
            }
        }
    })
    .await;
    link.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(500), link.poll()).await;
    Ok(())
}

/// Hands spooled records to the link up to the in-flight limit (events first).
fn fill(cfg: &UplinkConfig, spool: &Spool, link: &Link, in_flight: &mut InFlight) {
    in_flight.release_refused(Instant::now());
    let room = usize::from(cfg.inflight).saturating_sub(in_flight.len());
    if room == 0 {
        return;
    }
    let records = match block_in_place(|| spool.pending(room, |seq| in_flight.contains(seq))) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "spool read failed");
            return;
        }
    };
    for r in records {
        let Some((topic, retain, payload)) = unframe(&r.payload) else {
            warn!(seq = r.seq, "corrupt spool record dropped");
            let _ = spool.ack(&[r.seq]);
            continue;
        };
        if !link.try_publish(topic, retain, payload.to_vec()) {
            break; // request queue full: next round
        }
        in_flight.handed_over(r.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::{InFlight, REFUSED_RETRY};
    use tokio::time::Instant;

    #[test]
    fn packet_ids_map_to_seqs_in_hand_over_order_and_refusals_hold_their_slot() {
        let mut f = InFlight::default();
        for seq in [7, 8, 9] {
            f.handed_over(seq);
        }
        f.sent(1);
        f.sent(2);
        assert_eq!(f.acked(2), Some(8));
        assert_eq!(f.acked(2), None, "a PUBACK counts once");
        assert!(f.awaiting_ack());
        let t0 = Instant::now();
        assert_eq!(f.refused(1, t0), Some(7));
        f.release_refused(t0 + REFUSED_RETRY / 2);
        assert!(
            f.contains(7),
            "a refused record is not handed over again at once"
        );
        assert_eq!(f.len(), 2);
        f.sent(3);
        assert_eq!(f.acked(3), Some(9));
        assert!(!f.awaiting_ack());
        f.release_refused(t0 + REFUSED_RETRY);
        assert!(!f.contains(7), "… but once its retry is due");
        assert_eq!(f.len(), 0);
    }
}
