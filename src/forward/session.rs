//! The MQTT uplink: readings and events → spool → broker, acknowledged on PUBACK.
//!
//! rumqttc's `publish` returning Ok means *queued*, and a reconnect into a new session
//! silently drops whatever was queued or in flight, and it never persists anything. So
//! the spool is the source of truth: each publish's packet id is mapped to the record's
//! `seq` (`Outgoing::Publish(pkid)` arrives in request order), the record is removed on
//! `PubAck`, and after every (re)connect the in-flight map is cleared and sending
//! restarts from the spool — events first, then the telemetry backlog oldest first.
//! Delivery is at-least-once: a duplicate `seq` may arrive after a reconnect, a gap never.

use std::{sync::Arc, time::Duration};

use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    collect::{frame, unframe},
    collector::{self, Collector, Inputs},
    delivery::{Ack, Delivery},
    encode::{self, CommandReply, Encoder, GatewayState},
    health::UplinkHealth,
    link::{Link, LinkError, LinkEvent, LinkOptions},
    spool::{Class, Spool, SpoolError},
    spool_thread::{self, SpoolThread},
};
use crate::{
    acquire::LatestStore,
    backoff::Backoff,
    commands::{self, AuditLog, Channel},
    contract::Topics,
    judge::service::{Events, JudgeHandle},
    model::{uplink::Uplink as UplinkSettings, Site},
    reading::Timestamp,
};

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
    #[error("cannot start the spool's thread")]
    SpoolThread(#[source] std::io::Error),
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
    pub fn open(cfg: &UplinkSettings) -> Result<Self, UplinkError> {
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

/// Runs the uplink until `cancel`: the [`Collector`] into the spool, and the MQTT
/// session out of it. The judge's `events` are drained to their end (the judge
/// stopped), so its last decisions are spooled before the goodbye.
pub async fn run_uplink(
    site: Arc<Site>,
    cfg: UplinkSettings,
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
    let spool = SpoolThread::start(spool).map_err(UplinkError::SpoolThread)?;
    let started = Instant::now();
    let wake = Arc::new(Notify::new());
    let restate_table = Arc::new(Notify::new());
    let collector = Collector {
        restate_table: restate_table.clone(),
        site: site.clone(),
        cfg: cfg.clone(),
        spool: spool.clone(),
        health: health.clone(),
        wake: wake.clone(),
        started,
    };
    let inputs = Inputs {
        store,
        judge: judge.clone(),
        events,
    };
    let collector = tokio::spawn(collector.run(inputs, cancel.clone()));
    let commands = Commands {
        judge,
        audit,
        restate_table,
    };
    let result = match Uplink::new(site, cfg, spool.clone(), health, commands, started) {
        Ok(uplink) => uplink.run(&wake, &cancel, collector).await,
        Err(e) => {
            collector.abort();
            Err(e)
        }
    };
    // The spool's file is free again when the uplink has stopped: a reload opens it.
    spool.close().await;
    result
}

/// Where commands go and are recorded, and whom a new connection tells.
struct Commands {
    judge: JudgeHandle,
    audit: Arc<AuditLog>,
    /// Tells the collector to send the point table again.
    restate_table: Arc<Notify>,
}

/// The MQTT session: connect, publish from the spool, release on PUBACK, reconnect.
struct Uplink {
    site: Arc<Site>,
    cfg: UplinkSettings,
    topics: Topics,
    spool: SpoolThread,
    link: Link,
    delivery: Delivery,
    connected: bool,
    health: Arc<UplinkHealth>,
    commands: Commands,
    started: Instant,
}

impl Uplink {
    fn new(
        site: Arc<Site>,
        cfg: UplinkSettings,
        spool: SpoolThread,
        health: Arc<UplinkHealth>,
        commands: Commands,
        started: Instant,
    ) -> Result<Self, UplinkError> {
        let topics = encode::topics(&cfg.prefix, &site);
        // The Last Will is published by the broker, at a time we do not choose: it
        // cannot take a place in our counter without appearing out of order: seq 0.
        let offline = collector::status(spool.spool(), GatewayState::Offline, started);
        let will = Encoder::new(&site).status(0, Timestamp::now(), offline);
        let link = Link::new(LinkOptions {
            endpoint: cfg.endpoint.clone(),
            inflight: cfg.inflight,
            will: (topics.status(), will),
        })?;
        Ok(Self {
            site,
            cfg,
            topics,
            spool,
            link,
            delivery: Delivery::default(),
            connected: false,
            health,
            commands,
            started,
        })
    }

    async fn run(
        mut self,
        wake: &Notify,
        cancel: &CancellationToken,
        collector: tokio::task::JoinHandle<()>,
    ) -> Result<(), UplinkError> {
        let mut backoff = Backoff::new(Duration::from_millis(500));
        // Releases records and retries refused ones between commits; each commit wakes
        // the session itself.
        let mut poll_tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            if self.connected {
                self.fill().await;
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = wake.notified() => self.delivery.spool_changed(),
                _ = poll_tick.tick() => self.flush_released(),
                ev = self.link.poll() => match ev {
                    Ok(ev) => {
                        if self.on_event(ev).await {
                            wake.notify_one();
                        }
                    }
                    Err(e) => {
                        self.on_down(&e, &backoff);
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
        self.delivery.spool_changed();
        if self.connected {
            self.goodbye().await?;
        }
        self.flush_released();
        Ok(())
    }

    /// Handles one event of a live connection; true when a command was answered (and
    /// its reply is waiting in the spool).
    async fn on_event(&mut self, ev: LinkEvent) -> bool {
        match ev {
            LinkEvent::Connected { code } => {
                let c = &self.cfg.endpoint;
                info!(host = %c.host, port = c.port, protocol = ?c.protocol, code, "uplink connected");
                self.connected = true;
                self.health.connected();
                if let Err(e) = self.link.try_subscribe(&self.topics.commands()) {
                    warn!(error = %e, "cannot subscribe to commands");
                }
                self.delivery.clear();
                // Whatever the broker retained may be older than the gateway's state (a
                // restart, levels changed while it was away): restate them.
                self.commands.judge.restate_levels();
                self.commands.restate_table.notify_one();
                false
            }
            LinkEvent::Message { topic, payload } => match self.topics.command_name(&topic) {
                Some(name) => {
                    let name = name.to_string();
                    self.command(&name, &payload).await;
                    true
                }
                None => false,
            },
            ev => {
                self.track(&ev);
                false
            }
        }
    }

    /// The connection is down (or could not be made).
    fn on_down(&mut self, e: &LinkError, backoff: &Backoff) {
        let c = &self.cfg.endpoint;
        if self.connected {
            warn!(error = %e, "uplink lost; spooling until the broker is back");
        } else {
            // Refused credentials or an untrusted certificate must be visible; the
            // back-off keeps this to one line per attempt (≤ 1 per 30 s).
            warn!(host = %c.host, port = c.port, error = %e, retry_in_ms = backoff.delay().as_millis() as u64,
                "uplink connect failed; retrying");
        }
        self.connected = false;
        self.health.disconnected(e.to_string());
        self.delivery.clear();
    }

    /// Applies a delivery event (`Sent`, `Acked`): a released record leaves the spool.
    /// True when it was the PUBACK of a packet that carried no spooled record.
    fn track(&mut self, ev: &LinkEvent) -> bool {
        match ev {
            LinkEvent::Sent(pkid) => self.delivery.sent(*pkid),
            LinkEvent::Acked { pkid, refused } => {
                match self
                    .delivery
                    .acked(*pkid, refused.is_some(), Instant::now())
                {
                    // Removed from the spool with the next read, or by the tick.
                    Ack::Released(_) => {}
                    Ack::Refused(seq) => warn!(
                        seq,
                        reason = refused.as_deref().unwrap_or_default(),
                        "broker refused a message; kept in the spool and sent again in 10 s"
                    ),
                    Ack::Foreign => return true,
                }
            }
            _ => {}
        }
        false
    }

    /// Hands spooled records to the link up to the in-flight limit (events first),
    /// when the spool may hold any not handed over ([`Delivery::to_read`]); the
    /// records released since the last read leave the spool in the same round trip.
    async fn fill(&mut self) {
        let room = self.delivery.to_read(self.cfg.inflight, Instant::now());
        if room == 0 {
            return;
        }
        let released = self.delivery.take_released();
        let skip = self.delivery.in_flight();
        let records = match self
            .spool
            .call(move |s| {
                spool_thread::remove(s, &released);
                s.pending(room, |seq| skip.contains(&seq))
            })
            .await
        {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "spool read failed");
                self.delivery.spool_changed();
                return;
            }
        };
        self.delivery.read(room, records.len());
        for r in records {
            let Some((topic, retain, payload)) = unframe(&r.payload) else {
                warn!(seq = r.seq, "corrupt spool record dropped");
                self.spool.ack(vec![r.seq]);
                continue;
            };
            if !self.link.try_publish(topic, retain, payload.to_vec()) {
                // Request queue full: what was read and not handed over is read again.
                self.delivery.spool_changed();
                break;
            }
            self.delivery.handed_over(r.seq);
        }
    }

    /// Removes the records released since the last read, without waiting for it.
    fn flush_released(&mut self) {
        let released = self.delivery.take_released();
        if !released.is_empty() {
            self.spool.ack(released);
        }
    }

    /// Applies one command by the one command path (which audits it), and spools the
    /// reply.
    async fn command(&mut self, name: &str, payload: &[u8]) {
        let Commands { judge, audit, .. } = &self.commands;
        let outcome = commands::execute(judge, audit, Channel::Mqtt, name, payload, None).await;
        let error = outcome.result.err();
        let reply = CommandReply {
            request_id: outcome.request_id.map(Into::into),
            command: name.to_string().into(),
            ok: error.is_none(),
            error: error.map(Into::into),
        };
        let site = self.site.clone();
        let topic = self.topics.reply(name);
        let now = Timestamp::now();
        let spooled = self
            .spool
            .call(move |spool| {
                spool.append(&[Class::Event], |_, seq| {
                    frame(
                        &topic,
                        false,
                        &Encoder::new(&site).reply(seq, now, reply.clone()),
                    )
                })
            })
            .await;
        if let Err(e) = spooled {
            warn!(error = %e, "could not spool a command reply");
        }
    }

    /// A clean stop with the broker up. First what the spool holds is sent (≤ 3 s), so
    /// no `seq` waits behind the goodbye for the next start; then the retained `offline`
    /// status (≤ 1 s) — the one publish that carries no spooled record, its `seq`
    /// reserved only now that it is sent — and a DISCONNECT, so the broker does not
    /// publish the Last Will.
    async fn goodbye(&mut self) -> Result<(), UplinkError> {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.drain()).await;
        let started = self.started;
        let (seq, offline) = self
            .spool
            .call(move |s| {
                let status = collector::status(s, GatewayState::Offline, started);
                Ok((s.reserve_seq()?, status))
            })
            .await?;
        let bye = Encoder::new(&self.site).status(seq, Timestamp::now(), offline);
        let mut acked_bye = !self.link.try_publish(&self.topics.status(), true, bye);
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while !acked_bye || self.delivery.awaiting_ack() {
                match self.link.poll().await {
                    Ok(ev) => acked_bye |= self.track(&ev),
                    Err(_) => break,
                }
            }
        })
        .await;
        self.link.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), self.link.poll()).await;
        Ok(())
    }

    /// Sends until the spool holds nothing unacknowledged (or the link fails).
    async fn drain(&mut self) {
        loop {
            self.fill().await;
            if !self.delivery.unread() && !self.delivery.awaiting_ack() {
                break;
            }
            match self.link.poll().await {
                Ok(ev) => {
                    self.track(&ev);
                }
                Err(_) => break,
            }
        }
    }
}
