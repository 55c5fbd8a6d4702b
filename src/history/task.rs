//! The history task: readings (by exception with the history's deadband, and every
//! point in full each `snapshot_s`) and the judge's events, written every `commit_s`.
//! A write that fails — a full disk, a broken card — stops nothing else: it is logged
//! once, counted, shown on `/healthz`, and tried again with the next window.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Mutex,
};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::store::HistoryWriter;
use crate::{
    acquire::LatestStore,
    forward::collect::ReportByException,
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

/// Feeds the history until `cancel`, then writes what it holds.
pub async fn run(
    site: Arc<Site>,
    cfg: HistoryConfig,
    mut writer: HistoryWriter,
    store: LatestStore,
    mut events: mpsc::Receiver<Arc<Event>>,
    health: Arc<HistoryHealth>,
    cancel: CancellationToken,
) {
    let mut rbe = ReportByException::new(&site, cfg.deadband_pct);
    let mut readings_rx = store.subscribe();
    let mut snapshot = tokio::time::interval(std::time::Duration::from_secs(cfg.snapshot_s));
    let mut commit = tokio::time::interval(cfg.commit_window());
    commit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Vec<Reading> = Vec::new();
    let mut pending_events: Vec<String> = Vec::new();
    info!(dir = %writer.dir().display(), "history kept");
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            batch = readings_rx.recv() => match batch {
                Ok(b) => pending.extend(b.iter().filter(|r| rbe.passes(r))),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    pending.extend(store.snapshot().into_iter().flatten().filter(|r| rbe.passes(r)));
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(e) = events.recv() => {
                if let Some(text) = kept(&e) {
                    pending_events.push(text);
                }
            }
            _ = snapshot.tick() => pending.extend(store.snapshot().into_iter().flatten()),
            _ = commit.tick() => {
                writer = write(writer, &mut pending, &mut pending_events, &health).await;
            }
        }
    }
    while let Ok(e) = events.try_recv() {
        pending_events.extend(kept(&e));
    }
    write(writer, &mut pending, &mut pending_events, &health).await;
}

/// The events the history keeps, as JSON: changes, not restatements.
fn kept(e: &Event) -> Option<String> {
    match e {
        Event::Risk(r) if r.snapshot => None,
        Event::ActiveAlarms(_) => None,
        e => serde_json::to_string(e).ok(),
    }
}

/// Writes one window on a blocking thread; the writer comes back either way.
async fn write(
    mut writer: HistoryWriter,
    pending: &mut Vec<Reading>,
    pending_events: &mut Vec<String>,
    health: &Arc<HistoryHealth>,
) -> HistoryWriter {
    if pending.is_empty() && pending_events.is_empty() {
        return writer;
    }
    let readings = std::mem::take(pending);
    let events = std::mem::take(pending_events);
    let n = readings.len() as u64;
    let now = Timestamp::now().0;
    let done = tokio::task::spawn_blocking(move || {
        let r = writer.commit(&readings, &events, now);
        (writer, r)
    })
    .await;
    let (writer, result) = match done {
        Ok(x) => x,
        Err(e) => panic!("the history's writer thread failed: {e}"),
    };
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
    writer
}
