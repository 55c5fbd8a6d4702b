//! The spool behind one owner thread: every write (append, ack, seq reservation) and
//! the sender's reads run there, in the order they were asked for, and async callers
//! await the answer instead of blocking a runtime worker on an fsync. Because the queue
//! is first-in first-out, an acknowledgement handed over before a read of what is
//! pending is applied before that read — the session need not wait for it.
//!
//! `/healthz` and the metrics read the spool's depth directly: redb readers see a
//! consistent snapshot beside the writer.

use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;
use tracing::{error, warn};

use super::spool::{Spool, SpoolError};

/// What the spool's thread is asked to do.
enum Job {
    Run(Box<dyn FnOnce(&Spool) + Send>),
    /// Remove acknowledged records. Acknowledgements queued one after another are
    /// removed in one transaction, which is what lets a backlog drain at the broker's
    /// pace rather than the disk's.
    Ack(Vec<u64>),
    /// End the thread; the spool is closed (its file free to open again) when the
    /// sender hears back.
    Stop(oneshot::Sender<()>),
}

/// A handle to the spool's thread; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct SpoolThread {
    jobs: mpsc::Sender<Job>,
    spool: Arc<Spool>,
}

impl SpoolThread {
    /// Starts the thread that owns every change to `spool`.
    pub fn start(spool: Arc<Spool>) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let owned = spool.clone();
        std::thread::Builder::new()
            .name("hazgate-spool".into())
            .spawn(move || {
                let stopped = serve(&owned, &rx);
                // Closed before anyone hears of it: a reload opens the same file next.
                drop(owned);
                if let Some(told) = stopped {
                    let _ = told.send(());
                }
            })?;
        Ok(Self { jobs, spool })
    }

    /// Runs `f` on the spool's thread, after everything asked for before it; an error
    /// only when the thread has stopped.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Spool) -> T + Send + 'static,
    ) -> Result<T, SpoolError> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Run(Box::new(move |spool| {
            let _ = tx.send(f(spool));
        }));
        if self.jobs.send(job).is_err() {
            return Err(SpoolError::Stopped);
        }
        rx.await.map_err(|_| SpoolError::Stopped)
    }

    /// [`SpoolThread::run`] for a spool operation, its own error and a stopped
    /// thread's in one.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Spool) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        self.run(f).await?
    }

    /// Removes acknowledged records without waiting: a failure is logged there (the
    /// record is then sent again, which the centre counts as a resend, not a loss).
    pub fn ack(&self, seqs: Vec<u64>) {
        let n = seqs.len();
        if self.jobs.send(Job::Ack(seqs)).is_err() {
            error!(
                messages = n,
                "spool thread stopped; ack lost, the messages will be sent again"
            );
        }
    }

    /// Stops the thread after what was asked before, and waits until it has let go of
    /// the spool (its handles' readers keep theirs until they are dropped).
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The spool itself, for readers (depth, oldest record).
    pub fn spool(&self) -> &Arc<Spool> {
        &self.spool
    }
}

/// The thread's loop: jobs in order, consecutive acknowledgements together. Returns
/// whom to tell once it has stopped.
fn serve(spool: &Spool, jobs: &mpsc::Receiver<Job>) -> Option<oneshot::Sender<()>> {
    let mut next = None;
    while let Some(job) = next.take().or_else(|| jobs.recv().ok()) {
        match job {
            Job::Stop(told) => return Some(told),
            Job::Run(f) => f(spool),
            Job::Ack(mut seqs) => {
                while let Ok(job) = jobs.try_recv() {
                    match job {
                        Job::Ack(more) => seqs.extend(more),
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                remove(spool, &seqs);
            }
        }
    }
    None
}

/// Removes acknowledged records, on the spool's thread; a failure is logged (the
/// records are then sent again, which the centre counts as a resend, not a loss).
pub fn remove(spool: &Spool, seqs: &[u64]) {
    if let Err(e) = spool.ack(seqs) {
        warn!(error = %e, messages = seqs.len(), "spool ack failed; the messages will be sent again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::spool::Class;

    /// On the current-thread runtime (no `block_in_place`): appends, acks and reads
    /// happen in the order asked for.
    #[tokio::test(flavor = "current_thread")]
    async fn calls_run_in_order_off_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::open(&dir.path().join("s.redb"), 1 << 20).unwrap());
        let t = SpoolThread::start(spool).unwrap();
        let seqs = t
            .call(|s| s.append(&[Class::Event, Class::Event], |i, _| vec![i as u8]))
            .await
            .unwrap();
        t.ack(vec![seqs[0]]);
        let pending = t.call(|s| s.pending(10, |_| false)).await.unwrap();
        assert_eq!(
            pending.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [seqs[1]],
            "the ack was applied before the read asked for after it"
        );
        let more = t
            .call(|s| s.append(&[Class::Event; 5], |i, _| vec![i as u8]))
            .await
            .unwrap();
        for seq in std::iter::once(seqs[1]).chain(more.iter().copied()) {
            t.ack(vec![seq]);
        }
        let depth = t.call(|s| s.depth()).await.unwrap();
        assert_eq!(depth.events, 0, "acks queued together all applied");
    }
}
