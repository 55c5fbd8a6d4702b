//! The collector task: readings (by exception, and in full every integrity period) and
//! the judge's events into the spool, one durable commit per window — or at once for an
//! event, so an alarm never waits for the window.

use std::{borrow::Cow, sync::Arc, time::Duration};

use tokio::{
    sync::{broadcast, Notify},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{
    collect::{frame, ReportByException},
    encode::{self, Encoder, GatewayState, Status},
    health::UplinkHealth,
    spool::{Class, Spool},
    spool_thread::SpoolThread,
};
use crate::{
    acquire::LatestStore,
    contract::samples::PAGE,
    contract::Topics,
    judge::{
        engine::{Event, RiskScope},
        service::{Events, JudgeHandle},
    },
    model::{
        uplink::{TelemetryForm, Uplink},
        Site,
    },
    reading::{Reading, Timestamp},
};

/// How often collected messages are committed to the spool (one fsync each).
const COMMIT_WINDOW: Duration = Duration::from_millis(200);

/// What the collector takes in besides readings: the judge's ordered events, and the
/// judge itself, asked to restate its levels every integrity period.
pub struct Inputs {
    pub store: LatestStore,
    pub judge: JudgeHandle,
    pub events: Events,
}

/// Where the collector commits, and what it tells when it has.
pub struct Collector {
    pub site: Arc<Site>,
    pub cfg: Uplink,
    pub spool: SpoolThread,
    pub health: Arc<UplinkHealth>,
    /// Woken after each commit: the session sends at once.
    pub wake: Arc<Notify>,
    /// Woken by the session on every connect: the point table is sent again (with
    /// samples), as a broker may have lost what it retained.
    pub restate_table: Arc<Notify>,
    pub started: Instant,
}

impl Collector {
    /// Collects until `cancel`, then takes no more readings but drains the judge's
    /// events to their end (the judge stopped), so its last decisions are spooled.
    pub async fn run(self, mut inputs: Inputs, cancel: CancellationToken) {
        let topics = encode::topics(&self.cfg.prefix, &self.site);
        // With samples, the table is named once and spooled before any sample.
        let table: Option<Arc<str>> = (self.cfg.telemetry == TelemetryForm::Samples)
            .then(|| encode::table_name(&self.site).into());
        let mut rbe = ReportByException::new(&self.site, self.cfg.publish_deadband_pct);
        let mut readings_rx = inputs.store.subscribe();
        let mut batch = Batch {
            table_due: table.is_some(),
            ..Batch::default()
        };
        // The window opens with the first thing collected after a commit: an idle
        // collector sets no timer (five wake-ups a second for nothing, otherwise).
        let mut window: Option<Instant> = None;
        let period = self.cfg.integrity_period;
        // The first integrity tick is now: every level is restated at start-up.
        let mut integrity = tokio::time::interval(period);
        let mut stopping = false;
        loop {
            let mut flush = false;
            tokio::select! {
                () = cancel.cancelled(), if !stopping => stopping = true,
                batch_in = readings_rx.recv(), if !stopping => match batch_in {
                    Ok(b) => batch.telemetry.extend(b.iter().filter(|r| rbe.passes(r))),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let all = inputs.store.snapshot().into_iter().flatten();
                        batch.telemetry.extend(all.filter(|r| rbe.passes(r)));
                    }
                    Err(broadcast::error::RecvError::Closed) => stopping = true,
                },
                ev = inputs.events.recv() => match ev {
                    // Alarms and risk changes go out at once, not at the next window.
                    Some(e) => {
                        batch.events.push(e);
                        flush = true;
                    }
                    // The judge has stopped and everything it decided is here.
                    None => {
                        self.commit(&topics, &table, &mut batch).await;
                        break;
                    }
                },
                _ = integrity.tick(), if !stopping => {
                    batch.telemetry.extend(inputs.store.snapshot().into_iter().flatten());
                    batch.status_due = true;
                    inputs.judge.restate_levels();
                }
                () = self.restate_table.notified(), if table.is_some() && !stopping => {
                    batch.table_due = true;
                }
                () = sleep_until_some(window) => flush = true,
            }
            if flush && !batch.is_empty() {
                self.commit(&topics, &table, &mut batch).await;
                window = None;
            }
            if window.is_none() && !batch.is_empty() {
                window = Some(Instant::now() + COMMIT_WINDOW);
            }
        }
    }

    /// Commits the batch in one transaction (one fsync) on the spool's thread. On
    /// failure the batch is kept for the next window, the failure logged and shown on
    /// `/healthz`.
    async fn commit(&self, topics: &Topics, table: &Option<Arc<str>>, batch: &mut Batch) {
        let job = Commit {
            site: self.site.clone(),
            topics: topics.clone(),
            table: table.clone(),
            per_message: self.cfg.max_readings_per_message,
            started: self.started,
            history_error: self.health.history_error(),
            batch: std::mem::take(batch),
        };
        let (result, back) = match self.spool.run(move |s| job.append(s)).await {
            Ok(done) => done,
            Err(e) => (Err(e), Batch::default()),
        };
        match result {
            Ok(seqs) => {
                debug!(messages = seqs.len(), "spooled");
                self.health.spool_ok();
                // The next window fills the same buffer: a large one is not mapped,
                // faulted in and unmapped again every window.
                *batch = back.emptied();
            }
            Err(e) => {
                warn!(error = %e, "spool write failed; kept in memory and retried next window");
                self.health.spool_failed(e.to_string());
                *batch = back;
            }
        }
        self.wake.notify_one();
    }
}

/// Sleeps until `at`, or forever where there is no `at`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the collector has gathered since its last commit.
#[derive(Default)]
struct Batch {
    telemetry: Vec<Reading>,
    events: Vec<Arc<Event>>,
    status_due: bool,
    /// The point table's pages are to be (re)sent.
    table_due: bool,
}

impl Batch {
    /// The same buffers, holding nothing.
    fn emptied(mut self) -> Self {
        self.telemetry.clear();
        self.events.clear();
        Self {
            telemetry: self.telemetry,
            events: self.events,
            ..Self::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.telemetry.is_empty() && self.events.is_empty() && !self.status_due && !self.table_due
    }
}

/// One commit, owned, to run on the spool's thread.
struct Commit {
    site: Arc<Site>,
    topics: Topics,
    /// The point table's name when telemetry goes as samples.
    table: Option<Arc<str>>,
    per_message: usize,
    started: Instant,
    /// Why the history cannot be written, for the status.
    history_error: Option<String>,
    batch: Batch,
}

impl Commit {
    /// Appends the batch's messages, each encoded with the seq the spool gives it;
    /// returns the batch beside the result so a failed commit loses nothing.
    fn append(self, spool: &Spool) -> (Result<Vec<u64>, super::spool::SpoolError>, Batch) {
        enum Item<'a> {
            Event(&'a Event, String, bool),
            TablePage(usize),
            Telemetry(&'a [Reading]),
            Status,
        }
        let mut items: Vec<Item<'_>> = Vec::new();
        let mut classes = Vec::new();
        if self.batch.table_due && self.table.is_some() {
            for first in (0..self.site.points.len()).step_by(PAGE) {
                items.push(Item::TablePage(first));
                classes.push(Class::Event);
            }
        }
        for e in &self.batch.events {
            for (topic, retain) in event_topics(&self.topics, e) {
                items.push(Item::Event(e, topic, retain));
                classes.push(match **e {
                    Event::ActiveAlarms(_) => Class::State,
                    _ => Class::Event,
                });
            }
        }
        for chunk in self.batch.telemetry.chunks(self.per_message) {
            items.push(Item::Telemetry(chunk));
            classes.push(Class::Telemetry);
        }
        if self.batch.status_due {
            items.push(Item::Status);
            classes.push(Class::Event);
        }
        let encoder = Encoder::new(&self.site);
        let now = Timestamp::now();
        let topics = &self.topics;
        let result = spool.append(&classes, |i, seq| match &items[i] {
            Item::Event(e, topic, retain) => frame(topic, *retain, &encoder.event(seq, e)),
            Item::TablePage(first) => {
                let name = self.table.as_deref().unwrap_or_default();
                let page = encoder.points_page(seq, now, name, *first, PAGE);
                frame(&topics.points(name, *first), true, &page)
            }
            Item::Telemetry(rs) => match self.table.as_deref() {
                Some(name) => frame(
                    &topics.telemetry(),
                    false,
                    &encoder.samples(seq, now, name, rs),
                ),
                None => frame(&topics.telemetry(), false, &encoder.telemetry(seq, now, rs)),
            },
            Item::Status => {
                let mut status = status(spool, GatewayState::Online, self.started);
                status.history_error = self.history_error.clone().map(Cow::Owned);
                frame(&topics.status(), true, &encoder.status(seq, now, status))
            }
        });
        drop(items);
        (result, self.batch)
    }
}

/// The gateway's status message body.
pub fn status(spool: &Spool, state: GatewayState, started: Instant) -> Status<'static> {
    let d = spool.depth().unwrap_or_default();
    Status {
        state,
        enterprise_name: None,
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_s: started.elapsed().as_secs(),
        spool_events: d.events,
        spool_telemetry: d.telemetry,
        spool_bytes: d.bytes,
        dropped_telemetry: d.dropped_telemetry,
        clock_stepped_s: clock_stepped(),
        history_error: None,
    }
}

/// How far the wall clock has been stepped since the first status (beyond 2 s), from
/// the wall clock's advance against the monotonic clock's: a gateway without an RTC
/// battery that gets NTP late jumps from 1970 or by minutes. Each new step is logged.
fn clock_stepped() -> Option<f64> {
    use std::sync::{atomic::AtomicI64, OnceLock};
    static START: OnceLock<(Instant, std::time::SystemTime)> = OnceLock::new();
    static LOGGED: AtomicI64 = AtomicI64::new(0);
    let (mono, wall) = *START.get_or_init(|| (Instant::now(), std::time::SystemTime::now()));
    let wall_ms = match std::time::SystemTime::now().duration_since(wall) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    let stepped = wall_ms - mono.elapsed().as_millis() as i64;
    let last = LOGGED.load(std::sync::atomic::Ordering::Relaxed);
    if (stepped - last).abs() > 2000 {
        LOGGED.store(stepped, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(stepped_s = stepped as f64 / 1000.0,
            "the wall clock was stepped: timestamps before and after do not line up (reported on status)");
    }
    (stepped.abs() > 2000).then(|| stepped as f64 / 1000.0)
}

/// The topics an event goes to: (topic, retained). A change of level goes to the event
/// stream and, retained, to its scope's own topic; a restatement only to the latter.
fn event_topics(topics: &Topics, e: &Event) -> Vec<(String, bool)> {
    match e {
        Event::Alarm(_) | Event::Thresholds(_) => vec![(topics.alarm(), false)],
        Event::SpecialOperation(_) => vec![(topics.risk(), false)],
        Event::ActiveAlarms(_) => vec![(topics.active_alarms(), true)],
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
