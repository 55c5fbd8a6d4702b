//! Clock truth: how far each gateway's clock is from the centre's.
//!
//! Industrial gateways often have no real-time-clock battery and no NTP: they boot in
//! 1970 or drift by minutes, and the store keys everything on gateway time. Each live
//! status message (sent on connect and every integrity period) carries the gateway's
//! time; received at once, it differs from the centre's clock by the offset minus the
//! time in transit. Transit is never negative, so the largest difference over the last
//! few is the best estimate (the least-delayed message) — the filter NTP uses.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Mutex,
};

/// How many status messages an estimate looks back over.
const WINDOW: usize = 8;

/// Each gateway's measured offset (gateway clock − centre clock), in milliseconds.
#[derive(Debug, Default)]
pub struct Clocks {
    seen: Mutex<BTreeMap<String, VecDeque<i64>>>,
}

/// What one observation concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset {
    pub ms: i64,
    /// Beyond the tolerance now, and not before: worth one warning.
    pub newly_off: bool,
    /// Within it now, and not before.
    pub newly_on: bool,
}

impl Clocks {
    /// Records a live status message of `gateway` stamped `gateway_ms`, received at
    /// `received_ms`; the estimate after it.
    pub fn observe(
        &self,
        gateway: &str,
        gateway_ms: i64,
        received_ms: i64,
        tolerance_ms: i64,
    ) -> Offset {
        let Ok(mut seen) = self.seen.lock() else {
            return Offset {
                ms: 0,
                newly_off: false,
                newly_on: false,
            };
        };
        let window = seen.entry(gateway.to_string()).or_default();
        let before = best(window);
        window.push_back(gateway_ms.saturating_sub(received_ms));
        if window.len() > WINDOW {
            window.pop_front();
        }
        let ms = best(window).unwrap_or(0);
        let was_off = before.is_some_and(|b| b.abs() > tolerance_ms);
        let off = ms.abs() > tolerance_ms;
        Offset {
            ms,
            newly_off: off && !was_off,
            newly_on: !off && was_off,
        }
    }

    /// What to take from `gateway`'s times when re-stamping: its offset if beyond
    /// `tolerance_ms`, else 0 (a clock within tolerance is left alone). Counted.
    pub fn shift(&self, gateway: &str, tolerance_ms: i64) -> i64 {
        let best = self
            .seen
            .lock()
            .ok()
            .and_then(|s| s.get(gateway).and_then(best));
        match best {
            Some(ms) if ms.abs() > tolerance_ms => {
                metrics::counter!("hazgate_ingest_restamped_messages_total").increment(1);
                ms
            }
            _ => 0,
        }
    }

    /// Every gateway's estimate, for `/healthz` and the screen.
    pub fn offsets(&self) -> BTreeMap<String, i64> {
        self.seen
            .lock()
            .map(|s| {
                s.iter()
                    .filter_map(|(g, w)| best(w).map(|b| (g.clone(), b)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn best(window: &VecDeque<i64>) -> Option<i64> {
    window.iter().copied().max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_delayed_message_gives_the_offset() {
        let c = Clocks::default();
        // A gateway 10 min fast; messages delayed 0.2 s, 3 s and 0.05 s in transit.
        let ahead = 600_000;
        for delay in [200, 3000, 50] {
            c.observe("G", 1_000_000 + ahead - delay, 1_000_000, 60_000);
        }
        assert_eq!(c.offsets()["G"], ahead - 50);
    }

    #[test]
    fn crossing_the_tolerance_is_said_once_each_way() {
        let c = Clocks::default();
        let o = c.observe("G", 0, 0, 1000);
        assert!(!o.newly_off && !o.newly_on);
        let o = c.observe("G", 5000, 0, 1000);
        assert!(o.newly_off);
        assert!(!c.observe("G", 5000, 0, 1000).newly_off, "said once");
        // The clock is set right: the window forgets the old offsets.
        let mut back = false;
        for _ in 0..WINDOW {
            back |= c.observe("G", 0, 0, 1000).newly_on;
        }
        assert!(back);
        assert_eq!(c.offsets()["G"], 0);
    }
}
