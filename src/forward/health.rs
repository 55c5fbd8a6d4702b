//! What the uplink tells `/healthz` and `/metrics`: connected or spooling (and how old
//! the oldest unsent message is), whether the spool can still be written, reconnects.
//!
//! Written by the session and the collector, read by the local API on request: the
//! spool's depth and age are read from the spool itself at that moment, so the answer is
//! never a stale copy.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::{collect::unframe, spool::Spool};

pub struct UplinkHealth {
    spool: Arc<Spool>,
    connected: AtomicBool,
    connects: AtomicU64,
    last_error: Mutex<Option<String>>,
    spool_error: Mutex<Option<String>>,
    /// Why the gateway's history cannot be written, asked when a status goes out (the
    /// history reports here without the uplink knowing it).
    history: std::sync::OnceLock<HistoryProblem>,
}

/// Asked for the history's trouble, if any.
pub type HistoryProblem = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// The uplink's state as `/healthz` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UplinkReport {
    /// `connected`, `spooling` (broker unreachable: messages wait in the spool) or
    /// `failed` (the spool cannot be written: messages are at risk).
    pub state: &'static str,
    pub spool_events: u64,
    pub spool_telemetry: u64,
    pub spool_bytes: u64,
    pub dropped_telemetry: u64,
    /// Age of the oldest message not yet acknowledged by the broker.
    pub oldest_unsent_s: Option<f64>,
    /// Connections after the first.
    pub reconnects: u64,
    pub last_error: Option<String>,
    pub spool_error: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl UplinkHealth {
    pub fn new(spool: Arc<Spool>) -> Self {
        Self {
            spool,
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            last_error: Mutex::new(None),
            spool_error: Mutex::new(None),
            history: std::sync::OnceLock::new(),
        }
    }

    /// Where the status learns whether the history can be written.
    pub fn report_history(&self, problem: HistoryProblem) {
        let _ = self.history.set(problem);
    }

    /// Why the history cannot be written, if it cannot.
    pub fn history_error(&self) -> Option<String> {
        self.history.get().and_then(|f| f())
    }

    pub fn connected(&self) {
        self.connected.store(true, Ordering::Relaxed);
        self.connects.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("hazgate_uplink_connected").set(1.0);
        if self.connects.load(Ordering::Relaxed) > 1 {
            metrics::counter!("hazgate_uplink_reconnects_total").increment(1);
        }
    }

    pub fn disconnected(&self, error: String) {
        self.connected.store(false, Ordering::Relaxed);
        metrics::gauge!("hazgate_uplink_connected").set(0.0);
        *lock(&self.last_error) = Some(error);
    }

    pub fn spool_ok(&self) {
        lock(&self.spool_error).take();
    }

    pub fn spool_failed(&self, error: String) {
        metrics::counter!("hazgate_spool_write_failures_total").increment(1);
        *lock(&self.spool_error) = Some(error);
    }

    /// The state now, reading the spool's depth and oldest message.
    pub fn report(&self) -> UplinkReport {
        let spool_error = lock(&self.spool_error).clone();
        let (depth, depth_error) = match self.spool.depth() {
            Ok(d) => (d, None),
            Err(e) => (Default::default(), Some(e.to_string())),
        };
        let spool_error = spool_error.or(depth_error);
        let state = match (&spool_error, self.connected.load(Ordering::Relaxed)) {
            (Some(_), _) => "failed",
            (None, true) => "connected",
            (None, false) => "spooling",
        };
        UplinkReport {
            state,
            spool_events: depth.events,
            spool_telemetry: depth.telemetry,
            spool_bytes: depth.bytes,
            dropped_telemetry: depth.dropped_telemetry,
            oldest_unsent_s: self.oldest_unsent().map(|d| d.as_secs_f64()),
            reconnects: self.connects.load(Ordering::Relaxed).saturating_sub(1),
            last_error: lock(&self.last_error).clone(),
            spool_error,
        }
    }

    /// Sets the uplink and spool gauges (before `/metrics` is rendered).
    pub fn record_gauges(&self) {
        let r = self.report();
        metrics::gauge!("hazgate_uplink_connected")
            .set(f64::from(u8::from(r.state == "connected")));
        metrics::gauge!("hazgate_uplink_failed").set(f64::from(u8::from(r.state == "failed")));
        metrics::gauge!("hazgate_spool_messages", "class" => "event").set(r.spool_events as f64);
        metrics::gauge!("hazgate_spool_messages", "class" => "telemetry")
            .set(r.spool_telemetry as f64);
        metrics::gauge!("hazgate_spool_bytes").set(r.spool_bytes as f64);
        metrics::gauge!("hazgate_spool_dropped_telemetry").set(r.dropped_telemetry as f64);
        metrics::gauge!("hazgate_spool_oldest_unsent_seconds")
            .set(r.oldest_unsent_s.unwrap_or(0.0));
    }

    /// How long ago the oldest spooled message was made (its `ts`).
    fn oldest_unsent(&self) -> Option<Duration> {
        #[derive(serde::Deserialize)]
        struct Stamp {
            ts: String,
        }
        let oldest = self
            .spool
            .first()
            .ok()?
            .iter()
            .filter_map(|r| {
                let (_, _, payload) = unframe(&r.payload)?;
                let s: Stamp = serde_json::from_slice(payload).ok()?;
                humantime::parse_rfc3339(&s.ts).ok()
            })
            .min()?;
        Some(SystemTime::now().duration_since(oldest).unwrap_or_default())
    }
}
