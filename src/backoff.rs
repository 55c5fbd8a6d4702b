//! Doubling retry delays, with jitter.
//!
//! Every retry loop in hazgate — a dead Modbus device's probes, the uplink's and
//! ingest's MQTT sessions, the screen's, the store writes — waits the same way: short
//! at first, doubling per failure up to a cap (30 s by default, so a refused login or a
//! dead store logs at most one line per 30 s), short again after a success, and no
//! waiting at all once shutdown is asked for. Each wait is drawn from the top quarter
//! below its doubling step ([`JITTER`]), so a park's gateways that lost their broker at
//! the same moment do not all come back in the same millisecond. One type, so the
//! `retry_in_ms` a log line announces is exactly the wait that follows it.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// The longest wait between two attempts, unless a caller sets its own.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// How much shorter than its step a wait may be drawn: a step of 8 s waits 6–8 s.
pub const JITTER: f64 = 0.25;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// The current doubling step.
    step: Duration,
    /// The wait drawn for it: what [`Backoff::delay`] announces.
    next: Duration,
}

impl Backoff {
    /// Starts at `first`, doubling to at most [`MAX_DELAY`].
    pub fn new(first: Duration) -> Self {
        Self::with_max(first, MAX_DELAY)
    }

    /// Starts at `first`, doubling to at most `max`.
    pub fn with_max(first: Duration, max: Duration) -> Self {
        let first = first.min(max);
        Self {
            first,
            max,
            step: first,
            next: jittered(first),
        }
    }

    /// After a success: the next failure waits about `first` again.
    pub fn reset(&mut self) {
        self.step = self.first;
        self.next = jittered(self.first);
    }

    /// The wait the next [`Backoff::wait`] (or [`Backoff::failed`]) takes, for the log
    /// line before it.
    pub fn delay(&self) -> Duration {
        self.next
    }

    /// Takes the announced wait without sleeping (a caller with a schedule of its own,
    /// e.g. the poll scheduler) and doubles the step.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.step = (self.step * 2).min(self.max);
        self.next = jittered(self.step);
        wait
    }

    /// Waits [`Backoff::delay`] and doubles the step; returns false at once if `cancel`
    /// comes first.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(self.next) => {}
        }
        self.failed();
        true
    }
}

/// `step` shortened by up to [`JITTER`], to the millisecond.
fn jittered(step: Duration) -> Duration {
    let factor = 1.0 - rand::rng().random_range(0.0..=JITTER);
    Duration::from_millis((step.as_millis() as f64 * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_to_the_cap_resets_and_stops_waiting_on_cancel() {
        let go_on = CancellationToken::new();
        let mut b = Backoff::new(Duration::from_millis(500));
        let mut seen = vec![];
        for _ in 0..9 {
            let announced = b.delay();
            let started = tokio::time::Instant::now();
            assert!(b.wait(&go_on).await);
            assert_eq!(
                started.elapsed(),
                announced,
                "the wait is the one announced"
            );
            seen.push(announced.as_millis());
        }
        let steps = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
        for (wait, step) in seen.iter().zip(steps) {
            let shortest = (step as f64 * (1.0 - JITTER)).round() as u128;
            assert!(
                (shortest..=step).contains(wait),
                "{wait} ms for a {step} ms step"
            );
        }
        b.reset();
        assert!(b.delay() <= Duration::from_millis(500));

        let stop = CancellationToken::new();
        stop.cancel();
        let before = b.delay();
        let started = tokio::time::Instant::now();
        assert!(!b.wait(&stop).await, "cancelled: no wait");
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(b.delay(), before, "not doubled");
    }

    #[test]
    fn waits_are_spread_not_in_lockstep() {
        let waits: std::collections::HashSet<Duration> = (0..50)
            .map(|_| Backoff::new(Duration::from_secs(8)).delay())
            .collect();
        assert!(
            waits.len() > 10,
            "50 gateways, {} distinct waits",
            waits.len()
        );
        assert!(waits.iter().all(|w| (6000..=8000).contains(&w.as_millis())));
    }

    #[test]
    fn a_caller_with_its_own_cap_doubles_to_it() {
        let mut b = Backoff::with_max(Duration::from_secs(1), Duration::from_secs(3));
        let waits: Vec<u128> = (0..4).map(|_| b.failed().as_millis()).collect();
        for (wait, step) in waits.iter().zip([1000, 2000, 3000, 3000]) {
            assert!((step * 3 / 4..=step).contains(wait), "{waits:?}");
        }
    }
}
