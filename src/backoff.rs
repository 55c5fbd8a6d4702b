//! Doubling retry delays.
//!
//! Every retry loop in hazgate — the uplink's and ingest's MQTT sessions, the screen's,
//! the store writes — waits the same way: short at first, doubling per failure up to
//! 30 s (so a refused login or a dead store logs at most one line per 30 s), short again
//! after a success, and no waiting at all once shutdown is asked for. One type, so the
//! `retry_in_ms` a log line announces is the wait that follows it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `first`, doubling to at most [`MAX_DELAY`].
    pub fn new(first: Duration) -> Self {
        Self { first, next: first }
    }

    /// After a success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The wait the next [`Backoff::wait`] will take, for the log line before it.
    pub fn delay(&self) -> Duration {
        self.next
    }

    /// Waits [`Backoff::delay`] and doubles it; returns false at once if `cancel`
    /// comes first.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(self.next) => {}
        }
        self.next = (self.next * 2).min(MAX_DELAY);
        true
    }
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
            seen.push(b.delay().as_millis());
            let started = tokio::time::Instant::now();
            assert!(b.wait(&go_on).await);
            assert_eq!(started.elapsed().as_millis(), *seen.last().unwrap());
        }
        assert_eq!(
            seen,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.delay(), Duration::from_millis(500));

        let stop = CancellationToken::new();
        stop.cancel();
        let started = tokio::time::Instant::now();
        assert!(!b.wait(&stop).await, "cancelled: no wait");
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(b.delay(), Duration::from_millis(500), "not doubled");
    }
}
