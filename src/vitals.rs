//! Is every stage still working? A stage that can hang — the judge, each channel's
//! polling task — holds a [`Beat`]: it marks itself busy when it takes up work and idle
//! when it waits for more. A stage busy for longer than its limit is hung (a deadlock, a
//! write that never returns, a peer the code waits on without a timeout).
//!
//! The service manager's watchdog is fed only while no stage is hung (`app::service`),
//! so systemd restarts a gateway whose judge or channel stopped, instead of leaving it
//! running and silent. Waiting for work is not a hang: a channel sleeping until its next
//! poll, a judge with nothing to judge, are idle.
//!
//! Pure state, read from any thread: the stages write two atomics, the watchdog reads.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

/// One stage's heartbeat.
#[derive(Debug)]
pub struct Beat {
    name: String,
    /// Milliseconds since [`epoch`] + 1 when the stage took up its current work; 0 idle.
    busy_since: AtomicU64,
    /// The least time one piece of this stage's work may take before it counts as
    /// hung, ms, whatever the watch's limit (a channel's slowest legitimate poll).
    floor_ms: AtomicU64,
}

/// A hung stage, for the log, `/healthz` and the watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    pub stage: String,
    pub busy_for: Duration,
    pub limit: Duration,
}

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} busy for {} s (longer than {} s): hung",
            self.stage,
            self.busy_for.as_secs(),
            self.limit.as_secs()
        )
    }
}

/// A process-wide monotonic origin, so a beat is one atomic word.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl Beat {
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        epoch();
        Arc::new(Self {
            name: name.into(),
            busy_since: AtomicU64::new(0),
            floor_ms: AtomicU64::new(0),
        })
    }

    /// The stage took up work.
    pub fn busy(&self) {
        self.busy_since.store(now_ms() + 1, Ordering::Relaxed);
    }

    /// The stage finished it and waits for more.
    pub fn idle(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }

    /// This stage's work can legitimately take `longest`: it is not hung before.
    pub fn may_take(&self, longest: Duration) {
        self.floor_ms
            .fetch_max(longest.as_millis() as u64, Ordering::Relaxed);
    }

    /// Hung at `now_ms`, if busy for longer than `limit` (or its own floor).
    fn stalled_at(&self, now_ms: u64, limit: u64) -> Option<Stalled> {
        let since = self.busy_since.load(Ordering::Relaxed);
        let limit = limit.max(self.floor_ms.load(Ordering::Relaxed));
        let busy_for = now_ms.saturating_sub(since.checked_sub(1)?);
        (busy_for > limit).then(|| Stalled {
            stage: self.name.clone(),
            busy_for: Duration::from_millis(busy_for),
            limit: Duration::from_millis(limit),
        })
    }
}

/// The beats of the running pipeline; a reload replaces them.
#[derive(Debug, Clone)]
pub struct Vitals {
    beats: Arc<Mutex<Vec<Arc<Beat>>>>,
    /// How long a stage may stay busy: the service manager's watchdog interval, so a
    /// hang is reported and the manager acts within two intervals.
    limit_ms: u64,
}

impl Vitals {
    pub fn new(limit: Duration) -> Self {
        Self {
            beats: Arc::default(),
            limit_ms: limit.as_millis() as u64,
        }
    }

    pub fn limit(&self) -> Duration {
        Duration::from_millis(self.limit_ms)
    }

    /// The stages to watch from now on (the new pipeline's).
    pub fn watch(&self, beats: Vec<Arc<Beat>>) {
        *self.beats.lock().unwrap_or_else(|p| p.into_inner()) = beats;
    }

    /// Every hung stage, now.
    pub fn stalled(&self) -> Vec<Stalled> {
        let now = now_ms();
        self.beats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|b| b.stalled_at(now, self.limit_ms))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_is_never_hung_however_long() {
        let b = Beat::new("judge");
        assert_eq!(b.stalled_at(u64::MAX / 2, 10), None);
    }

    #[test]
    fn busy_past_the_limit_is_hung_and_idle_again_is_not() {
        let b = Beat::new("judge");
        b.busy_since.store(5_000 + 1, Ordering::Relaxed);
        assert_eq!(
            b.stalled_at(6_000, 1000),
            None,
            "exactly the limit is not yet hung"
        );
        let s = b.stalled_at(6_001, 1000).expect("past the limit");
        assert_eq!(s.stage, "judge");
        assert_eq!(s.busy_for, Duration::from_millis(1001));
        b.idle();
        assert_eq!(b.stalled_at(60_000, 1000), None);
    }

    #[test]
    fn busy_from_the_first_millisecond_counts() {
        // busy_since stores ms + 1 so that a stage busy at ms 0 is not read as idle.
        let b = Beat::new("judge");
        b.busy_since.store(1, Ordering::Relaxed);
        assert!(b.stalled_at(6, 5).is_some());
    }

    #[test]
    fn a_stage_that_may_take_longer_than_the_limit_is_not_hung_before() {
        let b = Beat::new("channel rs485");
        b.may_take(Duration::from_secs(40));
        b.busy_since.store(1, Ordering::Relaxed);
        assert_eq!(b.stalled_at(35_000, 30_000), None);
        assert!(b.stalled_at(40_001, 30_000).is_some());
        b.may_take(Duration::from_secs(5));
        assert_eq!(
            b.stalled_at(35_000, 30_000),
            None,
            "a floor is never lowered"
        );
    }

    #[test]
    fn a_reload_replaces_the_watched_stages() {
        let v = Vitals::new(Duration::ZERO);
        let old = Beat::new("judge");
        old.busy_since.store(1, Ordering::Relaxed);
        v.watch(vec![old]);
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(v.stalled().len(), 1);
        v.watch(vec![Beat::new("judge")]);
        assert!(v.stalled().is_empty());
    }
}
