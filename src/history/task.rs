//! The history task: readings (by exception with the history's deadband and across
//! every limit, `filter.rs`; every point in full each `snapshot_s`) and the judge's events, written every `commit_s`.
//! A write that fails — a full disk, a broken card — stops nothing else: it is logged
//! once, counted, shown on `/healthz`, and tried again with the next window.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Mutex,
};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::{filter::HistoryFilter, store::HistoryWriter};
use crate::{
    acquire::{LatestStore, ReadingBatch},
    judge::engine::Event,
    model::{history::HistoryConfig, Site},
    reading::{Reading, Timestamp},
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

/// What the history's thread is handed.
enum Work {
    Readings(ReadingBatch),
    /// Every point in full (the snapshot): kept whatever the deadband says.
    Snapshot(Vec<Reading>),
    Event(String),
}

/// Feeds the history until `cancel`, then writes what it holds. The runtime's worker
/// only hands batches over: the filter, the packing and the writes run on a thread of
/// the history's own, so polling is not delayed by them.
pub async fn run(
    site: Arc<Site>,
    cfg: HistoryConfig,
    writer: HistoryWriter,
    store: LatestStore,
    mut events: mpsc::Receiver<Arc<Event>>,
    health: Arc<HistoryHealth>,
    cancel: CancellationToken,
) {
    // Bounded: a history thread stuck on a slow card loses batches (counted), never
    // the gateway's memory.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Work>(1024);
    let snapshot_every = std::time::Duration::from_secs(cfg.snapshot_s);
    info!(dir = %writer.dir().display(), "history kept");
    let thread = {
        let health = health.clone();
        std::thread::Builder::new()
            .name("history".into())
            .spawn(move || keep(&site, &cfg, writer, &rx, &health))
    };
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            error!(error = %e, "cannot start the history's thread: no history");
            return;
        }
    };
    let mut readings_rx = store.subscribe();
    let mut snapshot = tokio::time::interval(snapshot_every);
    loop {
        let work = tokio::select! {
            () = cancel.cancelled() => break,
            batch = readings_rx.recv() => match batch {
                Ok(b) => Work::Readings(b),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Work::Readings(store.snapshot().into_iter().flatten().collect())
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(e) = events.recv() => match kept(&e) {
                Some(text) => Work::Event(text),
                None => continue,
            },
            _ = snapshot.tick() => Work::Snapshot(store.snapshot().into_iter().flatten().collect()),
        };
        match tx.try_send(work) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(w)) => {
                let n = match &w {
                    Work::Readings(b) => b.len(),
                    Work::Snapshot(all) => all.len(),
                    Work::Event(_) => {
                        metrics::counter!("hazgate_history_events_lost_total").increment(1);
                        0
                    }
                };
                health.lost_readings.fetch_add(n as u64, Ordering::Relaxed);
                metrics::counter!("hazgate_history_readings_lost_total").increment(n as u64);
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => break,
        }
    }
    while let Ok(e) = events.try_recv() {
        if let Some(text) = kept(&e) {
            let _ = tx.try_send(Work::Event(text));
        }
    }
    drop(tx);
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
}

/// The events the history keeps, as JSON: changes, not restatements.
pub fn kept(e: &Event) -> Option<String> {
    match e {
        Event::Risk(r) if r.snapshot => None,
        Event::ActiveAlarms(_) => None,
        e => serde_json::to_string(e).ok(),
    }
}

/// The history's thread: filters, gathers and writes a window every `commit_s` until
/// the channel closes, then writes what it holds.
fn keep(
    site: &Site,
    cfg: &HistoryConfig,
    mut writer: HistoryWriter,
    rx: &std::sync::mpsc::Receiver<Work>,
    health: &HistoryHealth,
) {
    let mut filter = HistoryFilter::new(site, cfg.deadband_pct);
    let mut pending: Vec<Reading> = Vec::new();
    let mut pending_events: Vec<String> = Vec::new();
    let window = cfg.commit_window();
    let mut due = std::time::Instant::now() + window;
    loop {
        let wait = due.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Work::Readings(b)) => pending.extend(b.iter().filter(|r| filter.passes(r))),
            Ok(Work::Snapshot(all)) => pending.extend(all),
            Ok(Work::Event(e)) => pending_events.push(e),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if std::time::Instant::now() >= due {
            write(&mut writer, &mut pending, &mut pending_events, health);
            due += window;
        }
    }
    write(&mut writer, &mut pending, &mut pending_events, health);
}

/// Writes one window; a failure is logged once, counted and shown until a write succeeds.
fn write(
    writer: &mut HistoryWriter,
    pending: &mut Vec<Reading>,
    pending_events: &mut Vec<String>,
    health: &HistoryHealth,
) {
    if pending.is_empty() && pending_events.is_empty() {
        return;
    }
    let readings = std::mem::take(pending);
    let events = std::mem::take(pending_events);
    let n = readings.len() as u64;
    let result = writer.commit(&readings, &events, Timestamp::now().0);
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
