//! A fixed set of decoding threads, one per core.
//!
//! Checking and rendering a message is CPU work; it must not stall the MQTT event loop,
//! and it should use every core. `spawn_blocking` did that, but the blocking pool grows a
//! thread per concurrent task — up to the broker's in-flight window (200) — and each new
//! thread starts with a cold tag-prefix cache and its own malloc arena: under load most
//! readings rendered their tags again. A fixed pool keeps the caches warm and the
//! threads few. Results come back through a oneshot each, so the caller can await them
//! in arrival order.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::mpsc as std_mpsc,
    thread,
};

use tokio::sync::oneshot;
use tracing::error;

type Job = Box<dyn FnOnce() + Send>;

/// Decoding threads fed round-robin (messages cost about the same; every thread's cache
/// learns every point, which for ~2 threads per core is a small price).
pub struct Decoders {
    queues: Vec<std_mpsc::Sender<Job>>,
    next: usize,
}

impl Decoders {
    /// Starts `threads` (at least one) decoding threads. They end when `self` is dropped
    /// and their queues are empty.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let mut queues = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = std_mpsc::channel::<Job>();
            thread::Builder::new()
                .name(format!("ingest-decode-{i}"))
                .spawn(move || {
                    for job in rx {
                        // A panic is a bug (decoding is fuzzed); it loses this one result
                        // — the message stays unacknowledged and comes back — not the thread.
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            error!(thread = i, "decoding panicked; message left unacknowledged");
                        }
                    }
                })?;
            queues.push(tx);
        }
        Ok(Self { queues, next: 0 })
    }

    /// One thread per available core.
    pub fn per_core() -> std::io::Result<Self> {
        Self::start(thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Runs `f` on the next thread; the receiver yields its result.
    pub fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let i = self.next;
        self.next = (i + 1) % self.queues.len();
        // A thread's queue closes only if the thread is gone; the dropped job then drops
        // its sender and the receiver reports the loss.
        let _ = self.queues[i].send(job);
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn results_come_back_in_submission_order_and_a_panic_loses_only_its_job() {
        let mut d = Decoders::start(3).unwrap();
        let jobs: Vec<_> = (0..50u64)
            .map(|i| {
                d.run(move || {
                    assert!(i != 7, "job 7 panics");
                    i * i
                })
            })
            .collect();
        for (i, rx) in jobs.into_iter().enumerate() {
            let i = i as u64;
            match rx.await {
                Ok(v) => assert_eq!(v, i * i),
                Err(_) => assert_eq!(i, 7, "only the panicking job is lost"),
            }
        }
        // The thread that ran the panicking job still works.
        let after: Vec<_> = (0..6u64).map(|i| d.run(move || i + 1)).collect();
        for (i, rx) in after.into_iter().enumerate() {
            assert_eq!(rx.await.unwrap(), i as u64 + 1);
        }
    }
}
