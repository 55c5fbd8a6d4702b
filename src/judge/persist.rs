//! The judge's durable state, written by a thread of its own.
//!
//! Whatever the judge decides is on disk before its events leave: a gateway cut off
//! right after telling the centre of an alarm knows of it at restart, and clears it
//! there if it went away meanwhile (else the centre would show it forever). The write
//! — the whole state, ≈ 45 bytes a point, with two fsyncs — used to run on the judge's
//! task and so held up the runtime's worker, and with it polling and sending. Now the
//! judge hands a snapshot to the writer thread and awaits it: its events still wait for
//! the disk, nothing else does. An operator's command is answered once the state that
//! includes it is on disk. A failure to write is loud (log once per new error, metric,
//! `/healthz`) and retried with the next snapshot; the events go on regardless.

use std::{
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
};

use tokio::sync::oneshot;
use tracing::{error, info};

use super::{
    engine::{Engine, Event},
    state::{LoadedState, SavedJudge, StateError, StateFile},
};

/// Run on the writer thread once a snapshot including it is on disk (or failed to be).
pub(super) type Then = Box<dyn FnOnce() + Send>;

struct Snapshot {
    state: SavedJudge,
    then: Vec<Then>,
}

/// The judge's side of the state writer.
pub(super) struct Persist {
    jobs: mpsc::Sender<Snapshot>,
    writer: JoinHandle<()>,
}

impl Persist {
    fn start(file: StateFile, problem: Arc<Mutex<Option<String>>>) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("hazgate-state".into())
            .spawn(move || write_each(&file, &problem, &rx))?;
        Ok(Self { jobs, writer })
    }

    /// Hands a snapshot over when the judge decided something (anything but restated
    /// levels), its hold clocks moved or a command is to be answered; the receiver
    /// hears once it is written. `reply` goes after the write as well.
    pub(super) fn keep(
        &self,
        engine: &mut Engine,
        out: &[Event],
        reply: Option<Then>,
    ) -> Option<oneshot::Receiver<()>> {
        let decided = out.iter().any(|e| {
            !matches!(e, Event::Risk(r) if r.snapshot) && !matches!(e, Event::ActiveAlarms(_))
        });
        if !(engine.take_unsaved() | decided) && reply.is_none() {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let written: Then = Box::new(move || {
            let _ = tx.send(());
        });
        self.hand_over(engine, reply.into_iter().chain([written]).collect());
        Some(rx)
    }

    /// The last snapshot, written before this returns (a clean stop).
    pub(super) fn finish(self, engine: &Engine) {
        self.hand_over(engine, Vec::new());
        // Its channel closed, the writer ends after the last snapshot.
        let Self { jobs, writer } = self;
        drop(jobs);
        if writer.join().is_err() {
            error!("the judge state writer panicked: the last state may not be saved");
        }
    }

    fn hand_over(&self, engine: &Engine, then: Vec<Then>) {
        let snapshot = Snapshot {
            state: engine.save(),
            then,
        };
        if let Err(mpsc::SendError(lost)) = self.jobs.send(snapshot) {
            // Only after the writer panicked; its callers must still hear back.
            error!("the judge state writer has stopped: state not saved");
            lost.then.into_iter().for_each(|f| f());
        }
    }
}

/// The writer: each snapshot written in turn, then whoever waits on it told.
fn write_each(file: &StateFile, problem: &Mutex<Option<String>>, rx: &mpsc::Receiver<Snapshot>) {
    while let Ok(snapshot) = rx.recv() {
        record(file, problem, file.save(&snapshot.state));
        snapshot.then.into_iter().for_each(|f| f());
    }
}

fn record(file: &StateFile, problem: &Mutex<Option<String>>, result: Result<(), StateError>) {
    let mut problem = problem.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(()) => {
            if problem.take().is_some() {
                info!(path = %file.path.display(), "judge state written again");
            }
        }
        Err(e) => {
            let text = format!("{e}: {}", e.source_text());
            metrics::counter!("hazgate_state_write_failures_total").increment(1);
            if problem.as_deref() != Some(text.as_str()) {
                error!(error = %text, "judge state not saved: a restart now would forget acknowledgements, shelves and special operations");
            }
            *problem = Some(text);
        }
    }
}

/// Restores the saved state onto the engine and starts the writer; the state is then
/// written after every change. `None` (loudly) when the writer cannot be started.
pub(super) fn restore(
    engine: &mut Engine,
    loaded: LoadedState,
    problem: Arc<Mutex<Option<String>>>,
) -> Option<Persist> {
    let path = loaded.file.path.display().to_string();
    // The counter exists from start-up, at 0 while all is well.
    metrics::counter!("hazgate_state_write_failures_total").increment(0);
    if let Some(p) = &loaded.problem {
        error!(error = %p, "judge state unreadable: starting without it (acknowledgements, shelves and special operations are forgotten)");
        *problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
    }
    match &loaded.saved {
        Some(saved) => {
            let r = engine.restore(saved);
            info!(path, points = r.points, sources = r.sources, unknown = ?r.unknown, "judge state restored");
        }
        None => info!(path, "no judge state saved yet: starting fresh"),
    }
    match Persist::start(loaded.file, problem.clone()) {
        Ok(p) => Some(p),
        Err(e) => {
            let text = format!("cannot start the judge state writer: {e}");
            error!(error = %text, "judge state will not be saved");
            metrics::counter!("hazgate_state_write_failures_total").increment(1);
            *problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
            None
        }
    }
}
