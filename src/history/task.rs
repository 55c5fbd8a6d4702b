//! The history task: readings (by exception with the history's deadband and across
//! every limit, `filter.rs`; every point in full each `snapshot_s`) and the judge's events, written every `commit_s`.
//! A write that fails — a full disk, a broken card — stops nothing else: it is logged
//! once, counted, shown on `/healthz`, and tried again with the next window.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{codec::ChunkBuilder, filter::HistoryFilter, store::HistoryWriter};
use crate::{
    acquire::{LatestStore, ReadingBatch},
    judge::engine::Event,
    model::{history::HistoryConfig, Site},
    reading::Timestamp,
};

/// How the history is doing, for `/healthz` and the status.
#[derive(Debug, Default)]
pub struct HistoryHealth {
    /// False from a failed write until one succeeds.
    pub ok: AtomicBool,
    pub error: Mutex<Option<String>>,
    pub readings: AtomicU64,
    pub lost_readings: AtomicU64,
}

impl HistoryHealth {
    pub fn new() -> Arc<Self> {
        let h = Self::default();
        h.ok.store(true, Ordering::Relaxed);
        Arc::new(h)
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Feeds the history until `cancel`, then writes what it holds. Everything runs on a
/// thread of the history's own — the filter, the packing, the writes, and even the
/// reading of the batches: it takes them from the broadcast a few times a second, so
/// the runtime's worker, which polls the devices, never wakes for the history.
pub async fn run(
    site: Arc<Site>,
    cfg: HistoryConfig,
    writer: HistoryWriter,
    store: LatestStore,
    events: mpsc::Receiver<Arc<Event>>,
    health: Arc<HistoryHealth>,
    cancel: CancellationToken,
) {
    info!(dir = %writer.dir().display(), "history kept");
    let feed = Feed {
        readings: store.subscribe(),
        room: store.capacity() / 8,
        store,
        events,
    };
    let thread = {
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("history".into())
            .spawn(move || keep(&site, &cfg, writer, feed, &health, &cancel))
    };
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            error!(error = %e, "cannot start the history's thread: no history");
            return;
        }
    };
    cancel.cancelled().await;
    thread.thread().unpark();
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
}

/// Where the history's thread takes its work from.
struct Feed {
    readings: broadcast::Receiver<ReadingBatch>,
    /// How many batches may wait between two looks: well under what the broadcast
    /// keeps, so it never laps the history.
    room: usize,
    store: LatestStore,
    events: mpsc::Receiver<Arc<Event>>,
}

/// The longest and shortest wait between two looks at the broadcast.
const LOOK_MAX: Duration = Duration::from_secs(1);
const LOOK_MIN: Duration = Duration::from_millis(20);

impl Feed {
    /// Packs every batch waiting (those the filter keeps); returns how many there were,
    /// and false once acquisition is gone.
    fn take_readings(
        &mut self,
        filter: &mut HistoryFilter,
        chunk: &mut ChunkBuilder,
    ) -> (usize, bool) {
        let mut batches = 0;
        loop {
            match self.readings.try_recv() {
                Ok(b) => {
                    batches += 1;
                    for r in b.iter().filter(|r| filter.passes(r)) {
                        chunk.push(r);
                    }
                }
                Err(broadcast::error::TryRecvError::Empty) => return (batches, true),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    // Should never happen (the looks are paced): what the skipped
                    // batches held is lost, the latest of every point is kept.
                    metrics::counter!("hazgate_history_batches_lagged_total").increment(n);
                    warn!(
                        batches = n,
                        "the history fell behind acquisition: it keeps the latest readings instead"
                    );
                    self.snapshot(chunk);
                }
                Err(broadcast::error::TryRecvError::Closed) => return (batches, false),
            }
        }
    }

    /// Every point in full: kept whatever the deadband says.
    fn snapshot(&self, chunk: &mut ChunkBuilder) {
        for r in self.store.snapshot().iter().flatten() {
            chunk.push(r);
        }
    }

    fn take_events(&mut self, into: &mut Vec<String>) {
        while let Ok(e) = self.events.try_recv() {
            into.extend(kept(&e));
        }
    }

    /// The next wait: halved while the looks find more than `room` batches, doubled
    /// while they find under a quarter of it.
    fn pace(&self, look: Duration, batches: usize) -> Duration {
        if batches > self.room {
            (look / 2).max(LOOK_MIN)
        } else if batches < self.room / 4 {
            (look * 2).min(LOOK_MAX)
        } else {
            look
        }
    }
}

/// The events the history keeps, as JSON: changes, not restatements.
pub fn kept(e: &Event) -> Option<String> {
    match e {
        Event::Risk(r) if r.snapshot => None,
        Event::ActiveAlarms(_) => None,
        e => serde_json::to_string(e).ok(),
    }
}

/// The history's thread: takes, filters and packs the readings, and writes a window
/// every `commit_s` until `cancel` (or acquisition ends), then writes what it holds.
fn keep(
    site: &Site,
    cfg: &HistoryConfig,
    mut writer: HistoryWriter,
    mut feed: Feed,
    health: &HistoryHealth,
    cancel: &CancellationToken,
) {
    let mut filter = HistoryFilter::new(site, cfg.deadband_pct);
    let mut chunk = ChunkBuilder::default();
    let mut events: Vec<String> = Vec::new();
    let window = cfg.commit_window();
    let snapshot_every = Duration::from_secs(cfg.snapshot_s);
    let mut due = Instant::now() + window;
    let mut next_snapshot = Instant::now();
    let mut look = LOOK_MAX / 4;
    loop {
        // Read before taking: what came before the stop is written.
        let stopping = cancel.is_cancelled();
        let (batches, open) = feed.take_readings(&mut filter, &mut chunk);
        feed.take_events(&mut events);
        let now = Instant::now();
        if now >= next_snapshot {
            feed.snapshot(&mut chunk);
            next_snapshot = (next_snapshot + snapshot_every).max(now);
        }
        if now >= due || stopping || !open {
            write(&mut writer, &mut chunk, &mut events, health);
            due = (due + window).max(now);
        }
        if stopping || !open {
            return;
        }
        look = feed.pace(look, batches);
        let wake = due.min(next_snapshot).min(now + look);
        std::thread::park_timeout(wake.saturating_duration_since(Instant::now()));
    }
}

/// Writes one window; a failure is logged once, counted and shown until a write succeeds.
fn write(
    writer: &mut HistoryWriter,
    chunk: &mut ChunkBuilder,
    events: &mut Vec<String>,
    health: &HistoryHealth,
) {
    if chunk.is_empty() && events.is_empty() {
        return;
    }
    let packed = chunk.finish();
    let n = packed.as_ref().map_or(0, |c| c.readings) as u64;
    let result = writer.commit_chunk(packed.as_ref(), events, Timestamp::now().0);
    events.clear();
    match result {
        Ok(w) => {
            health.readings.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("hazgate_history_readings_total").increment(n);
            metrics::counter!("hazgate_history_bytes_total").increment(w.bytes);
            if w.dropped_segments > 0 {
                metrics::counter!("hazgate_history_segments_dropped_total")
                    .increment(w.dropped_segments as u64);
            }
            if !health.ok.swap(true, Ordering::Relaxed) {
                info!("history written again");
                *health.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
            metrics::gauge!("hazgate_history_ok").set(1.0);
        }
        Err(e) => {
            health.lost_readings.fetch_add(n, Ordering::Relaxed);
            metrics::counter!("hazgate_history_write_failures_total").increment(1);
            metrics::counter!("hazgate_history_readings_lost_total").increment(n);
            metrics::gauge!("hazgate_history_ok").set(0.0);
            if health.ok.swap(false, Ordering::Relaxed) {
                error!(error = %e, dir = %writer.dir().display(),
                    "history write failed: the history stops until a write succeeds (acquisition, judge and uplink go on)");
            }
            *health.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }
}
