//! Talking to the service manager (systemd `Type=notify`, sd_notify(3)): `READY=1` once
//! the pipeline runs, `RELOADING=1` … `READY=1` around a reload, `STOPPING=1` on the way
//! out, a `STATUS=` line for `systemctl status`, and the watchdog.
//!
//! The watchdog (`WatchdogSec=`) is fed only while every stage works
//! ([`crate::vitals`]): a judge or a channel task busy for longer than the watchdog
//! interval is hung, the feeding stops, and systemd kills and restarts the gateway
//! (`Restart=on-failure`). A hang is logged with the stage named, counted in
//! `hazgate_stalled`, and shown by `/healthz`. Without a service manager (no
//! `NOTIFY_SOCKET`) the notifications are no-ops and hangs are still logged.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::vitals::{Stalled, Vitals};

/// How long a stage may stay busy when no watchdog is configured (hangs are then only
/// reported).
const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// The service manager, as far as this process knows it.
#[derive(Debug, Clone)]
pub struct ServiceManager {
    /// `WATCHDOG_USEC`, when the manager expects to be fed.
    watchdog: Option<Duration>,
    pub vitals: Vitals,
}

impl ServiceManager {
    /// From the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
    /// `WATCHDOG_PID`).
    pub fn from_env() -> Self {
        let watchdog = sd_notify::watchdog_enabled();
        Self {
            watchdog,
            vitals: Vitals::new(watchdog.unwrap_or(DEFAULT_LIMIT)),
        }
    }

    pub fn ready(&self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[NotifyState::Reloading, now]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    pub fn stopping(&self) {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }

    /// Feeds the watchdog while no stage is hung (checked at a quarter of the interval;
    /// each second when there is no watchdog, to report hangs), until `cancel`.
    pub fn watch(&self, cancel: CancellationToken) {
        let every = self.watchdog.map_or(Duration::from_secs(1), |w| w / 4);
        let feed = self.watchdog.is_some();
        let vitals = self.vitals.clone();
        if let Some(w) = self.watchdog {
            info!(
                interval_ms = w.as_millis() as u64,
                "service manager watchdog on: fed while the judge and every channel work"
            );
        }
        metrics::gauge!("hazgate_stalled").set(0.0);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut reported: Vec<Stalled> = Vec::new();
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let stalled = vitals.stalled();
                report(&reported, &stalled);
                metrics::gauge!("hazgate_stalled").set(stalled.len() as f64);
                if feed && stalled.is_empty() {
                    send(&[NotifyState::Watchdog]);
                }
                reported = stalled;
            }
        });
    }
}

/// Logs a hang when it starts and when it ends (not at every check).
fn report(before: &[Stalled], now: &[Stalled]) {
    for s in now {
        if !before.iter().any(|b| b.stage == s.stage) {
            error!(stage = %s.stage, busy_s = s.busy_for.as_secs(), limit_s = s.limit.as_secs(),
                "stage hung: the service manager's watchdog is no longer fed and will restart hazgate");
        }
    }
    for b in before {
        if !now.iter().any(|s| s.stage == b.stage) {
            warn!(stage = %b.stage, "stage working again");
        }
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}
