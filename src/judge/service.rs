//! The judge as a task: readings in from the [`LatestStore`], commands and queries in
//! through its own channel, events out on one bounded channel to the uplink.
//!
//! The engine is owned by this one task (no locks); everything else talks to it by
//! message, as the architecture asks: no stage calls back into an earlier one.
//!
//! Nothing the judge decides is lost on its way out: the event channel exists before
//! the judge runs (so the events of the very first poll wait for the uplink, however
//! late it starts), it is bounded and applies back-pressure (the judge waits rather
//! than drop), and at a stop the judge's last events are drained before the uplink's
//! final commit.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Events the judge may be ahead of its consumer before it waits (back-pressure).
pub const EVENT_BACKLOG: usize = 4096;

/// How often every point is swept whether or not something is due (a backstop for the
/// deadline bookkeeping; [`Engine::on_clock`] sweeps when something is).
const FULL_SWEEP: Duration = Duration::from_secs(60);
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use super::files::{Overrides, OverridesError};
use super::persist::{restore, Persist, Then};
use super::{
    engine::{AlarmCounts, AlarmView, Command, CommandError, Engine, Event, RiskScope},
    risk::RiskLevel,
    state::LoadedState,
};
use crate::{
    acquire::LatestStore,
    model::{alarm::AlarmSettings, HazardSourceKind, Site},
    reading::Timestamp,
    vitals::Beat,
};

/// A hazard source as the local API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub id: String,
    pub name: String,
    pub kind: HazardSourceKind,
    pub level: u8,
    #[serde(flatten)]
    pub risk: RiskLevel,
    pub special_operation: Option<SpecialOperationView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpecialOperationView {
    pub kind: String,
    pub by: String,
    pub since: Timestamp,
}

/// `GET /api/v1/state`.
#[derive(Debug, Clone, Serialize)]
pub struct StateView {
    pub ts: Timestamp,
    pub park_id: String,
    pub enterprise_id: String,
    pub enterprise_name: String,
    pub gateway_id: String,
    pub enterprise: RiskLevel,
    pub hazard_sources: Vec<SourceView>,
    pub alarm_counts: AlarmCounts,
}

enum Request {
    Command(Command, oneshot::Sender<Result<Vec<Event>, CommandError>>),
    State(oneshot::Sender<StateView>),
    Alarms(oneshot::Sender<Vec<AlarmView>>),
    Thresholds(oneshot::Sender<BTreeMap<String, AlarmSettings>>),
    /// Restate every level on the event channel (start-up, reconnect, integrity period).
    RestateLevels,
}

/// How other tasks reach the judge.
#[derive(Clone)]
pub struct JudgeHandle {
    requests: mpsc::Sender<Request>,
    /// What is wrong with the judge's state file, if anything (for `/healthz`).
    state_problem: Arc<Mutex<Option<String>>>,
}

/// The judge's events, in the order it decided them.
pub type Events = mpsc::Receiver<Arc<Event>>;

/// The judge task stopped: the gateway is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the judge is not running")]
pub struct JudgeGone;

impl JudgeHandle {
    /// What is wrong with saving or loading the judge's state, if anything.
    pub fn state_problem(&self) -> Option<String> {
        self.state_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Asks the judge to restate every level on its event channel. Never waits: a
    /// request that finds the judge busy is dropped, the next one comes soon.
    pub fn restate_levels(&self) {
        let _ = self.requests.try_send(Request::RestateLevels);
    }

    pub async fn command(
        &self,
        cmd: Command,
    ) -> Result<Result<Vec<Event>, CommandError>, JudgeGone> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Command(cmd, tx))
            .await
            .map_err(|_| JudgeGone)?;
        rx.await.map_err(|_| JudgeGone)
    }

    pub async fn state(&self) -> Result<StateView, JudgeGone> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::State(tx))
            .await
            .map_err(|_| JudgeGone)?;
        rx.await.map_err(|_| JudgeGone)
    }

    pub async fn alarms(&self) -> Result<Vec<AlarmView>, JudgeGone> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Alarms(tx))
            .await
            .map_err(|_| JudgeGone)?;
        rx.await.map_err(|_| JudgeGone)
    }

    /// The alarm settings in force, by point id (after overrides and remote changes).
    pub async fn thresholds(&self) -> Result<BTreeMap<String, AlarmSettings>, JudgeGone> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Thresholds(tx))
            .await
            .map_err(|_| JudgeGone)?;
        rx.await.map_err(|_| JudgeGone)
    }
}

/// A running judge: how to reach it, its events, its task.
pub struct Judge {
    pub handle: JudgeHandle,
    /// Dropping this is allowed (no consumer): events are then only logged.
    pub events: Events,
    pub task: tokio::task::JoinHandle<()>,
    /// Busy while the judge handles a batch, a tick or a request, up to sending its
    /// events (for the service manager's watchdog: `crate::vitals`).
    pub beat: Arc<Beat>,
}

/// The judge's files: remote threshold changes, and its durable state.
#[derive(Debug, Default)]
pub struct JudgeFiles {
    pub overrides: Option<PathBuf>,
    /// Opened (and known writable) at start-up by [`super::state::StateFile::open`].
    pub state: Option<LoadedState>,
}

/// Starts the judge over `store`'s readings, keeping nothing on disk (the demo).
pub fn spawn_judge(site: Arc<Site>, store: LatestStore, cancel: CancellationToken) -> Judge {
    spawn_judge_with(site, store, JudgeFiles::default(), cancel)
}

/// As [`spawn_judge`], applying and persisting remote threshold changes in `overrides`,
/// restoring its state from `state` and saving it there on every change.
pub fn spawn_judge_with(
    site: Arc<Site>,
    store: LatestStore,
    files: JudgeFiles,
    cancel: CancellationToken,
) -> Judge {
    let (req_tx, req_rx) = mpsc::channel(64);
    let (ev_tx, events) = mpsc::channel(EVENT_BACKLOG);
    // Subscribed here, before the task runs: no batch of acquisition can slip past.
    let readings = store.subscribe();
    let state_problem = Arc::new(Mutex::new(None));
    let beat = Beat::new("judge");
    let io = Io {
        store,
        readings,
        requests: req_rx,
        events: ev_tx,
        beat: beat.clone(),
    };
    let task = tokio::spawn(run(site, io, files, state_problem.clone(), cancel));
    Judge {
        handle: JudgeHandle {
            requests: req_tx,
            state_problem,
        },
        events,
        task,
        beat,
    }
}

/// The judge task's channels.
struct Io {
    store: LatestStore,
    readings: broadcast::Receiver<crate::acquire::ReadingBatch>,
    requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<Arc<Event>>,
    beat: Arc<Beat>,
}

async fn run(
    site: Arc<Site>,
    io: Io,
    files: JudgeFiles,
    state_problem: Arc<Mutex<Option<String>>>,
    cancel: CancellationToken,
) {
    let Io {
        store,
        mut readings,
        mut requests,
        events,
        beat,
    } = io;
    let mut clock = Clock::default();
    let mut engine = Engine::new(site.clone(), clock.now(Timestamp::now()));
    let mut out = Vec::new();
    let mut overrides = match files.overrides.map(|p| Overrides::load(&p)).transpose() {
        Ok(o) => o,
        Err(e) => {
            error!(error = %e, "cannot read the threshold overrides; running with the site file's settings");
            None
        }
    };
    if let Some(o) = &overrides {
        o.apply(&mut engine, clock.now(Timestamp::now()), &mut out);
    }
    let persist = files
        .state
        .and_then(|loaded| restore(&mut engine, loaded, state_problem));
    // Whatever acquisition already knows.
    for r in store.snapshot().into_iter().flatten() {
        engine.on_reading(&r, clock.now(r.ts), &mut out);
    }
    keep(&mut engine, &out, persist.as_ref(), None).await;
    publish(&site, &engine, &mut out, &events).await;
    // The gauges exist from start-up, not from the first event.
    record_gauges(&site, &engine);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_sweep = std::time::Instant::now();
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut reply = None;
        beat.idle();
        tokio::select! {
            () = cancel.cancelled() => break,
            batch = readings.recv() => match batch {
                Ok(batch) => {
                    beat.busy();
                    for r in batch.iter() {
                        engine.on_reading(r, clock.now(r.ts), &mut out);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(batches = n, "judge fell behind acquisition; resynchronising from the latest values");
                    for r in store.snapshot().into_iter().flatten() {
                        engine.on_reading(&r, clock.now(r.ts), &mut out);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                beat.busy();
                let now = clock.now(Timestamp::now());
                // What is due, each second; everything, each minute, as a backstop.
                if last_sweep.elapsed() >= FULL_SWEEP {
                    last_sweep = std::time::Instant::now();
                    engine.on_tick(now, &mut out);
                } else {
                    engine.on_clock(now, &mut out);
                }
            }
            Some(req) = requests.recv() => {
                beat.busy();
                let now = clock.now(Timestamp::now());
                reply = answer(req, &mut engine, overrides.as_mut(), now, &mut out);
            }
        }
        keep(&mut engine, &out, persist.as_ref(), reply).await;
        publish(&site, &engine, &mut out, &events).await;
    }
    // A clean stop keeps the latest values too, not only the last change.
    if let Some(p) = persist {
        p.finish(&engine);
    }
}

/// Keeps what was decided on disk before its events go on: the judge awaits the state
/// writer (the runtime's worker is free meanwhile). A command's answer goes after the
/// write too (at once when there is no state file).
async fn keep(engine: &mut Engine, out: &[Event], persist: Option<&Persist>, reply: Option<Then>) {
    match persist {
        Some(p) => {
            if let Some(written) = p.keep(engine, out, reply) {
                let _ = written.await;
            }
        }
        None => reply.into_iter().for_each(|r| r()),
    }
}

/// Answers one request: a command (persisting a threshold change in the overrides
/// file) or a query. A command's answer is returned, to be sent once its state is kept.
fn answer(
    req: Request,
    engine: &mut Engine,
    overrides: Option<&mut Overrides>,
    now: Timestamp,
    out: &mut Vec<Event>,
) -> Option<Then> {
    match req {
        Request::Command(cmd, reply) => {
            let before = out.len();
            let mut result = engine.on_command(&cmd, now, out);
            if let (Ok(()), Command::Thresholds { changes, .. }, Some(o)) =
                (&result, &cmd, overrides)
            {
                if let Err(e) = o.record(changes) {
                    // Applied but not persisted: say so, the operator must know.
                    error!(error = %e, path = %o.path.display(), "threshold change applied but not persisted");
                    result = Err(CommandError::NotPersisted {
                        path: o.path.display().to_string(),
                        error: e.to_string(),
                    });
                }
            }
            match &result {
                Ok(()) => info!(?cmd, "command applied"),
                Err(e) => warn!(?cmd, error = %e, "command rejected"),
            }
            let answer = result.map(|()| out[before..].to_vec());
            return Some(Box::new(move || {
                let _ = reply.send(answer);
            }));
        }
        Request::State(reply) => {
            let _ = reply.send(state_view(engine.site(), engine, now));
        }
        Request::Alarms(reply) => {
            let _ = reply.send(engine.alarm_views());
        }
        Request::Thresholds(reply) => {
            let settings = engine.site().points.iter();
            let _ = reply.send(
                settings
                    .map(|p| (p.id.to_string(), AlarmSettings::clone(&p.alarms)))
                    .collect(),
            );
        }
        Request::RestateLevels => engine.restate_levels(now, out),
    }
    None
}

/// The engine's clock: reading times, never going backwards (a batch acquired a moment
/// before the last tick must not move time back).
#[derive(Default)]
struct Clock {
    last: i64,
}

impl Clock {
    fn now(&mut self, t: Timestamp) -> Timestamp {
        self.last = self.last.max(t.0);
        Timestamp(self.last)
    }
}

/// Logs the decided events and hands them on, in order, waiting while the consumer is
/// behind (back-pressure, never a drop).
async fn publish(
    site: &Site,
    engine: &Engine,
    out: &mut Vec<Event>,
    events: &mpsc::Sender<Arc<Event>>,
) {
    if out.is_empty() {
        return;
    }
    // An alarm changed: the list of those standing follows, as of the latest change.
    if let Some(ts) = out.iter().rev().find_map(|e| match e {
        Event::Alarm(a) => Some(a.ts),
        _ => None,
    }) {
        out.push(engine.active_alarms(ts));
    }
    for e in out.drain(..) {
        match &e {
            Event::ActiveAlarms(_) => {}
            Event::Alarm(a) => {
                info!(point = %a.point, hazard_source = %a.hazard_source, alarm = a.alarm.as_str(), action = ?a.action,
                    class = ?a.class, value = ?a.value, limit = ?a.limit, by = ?a.by, "alarm");
                metrics::counter!("hazgate_alarm_events_total", "action" => format!("{:?}", a.action).to_lowercase()).increment(1);
            }
            Event::Risk(r) if r.snapshot => {}
            Event::Risk(r) => {
                let scope = match &r.scope {
                    RiskScope::HazardSource(id) => id.to_string(),
                    RiskScope::Enterprise => "enterprise".to_string(),
                };
                info!(scope, from = r.from.as_str(), to = r.to.as_str(), reasons = ?r.reasons.iter().map(|x| &x.rule).collect::<Vec<_>>(), "risk level changed");
            }
            Event::SpecialOperation(s) => {
                info!(hazard_source = %s.hazard_source, active = s.active, kind = %s.kind, by = %s.by, "special operation");
            }
            Event::Thresholds(t) => {
                info!(point = %t.point, by = %t.by, old = ?t.old, new = ?t.new, "alarm settings changed");
            }
        }
        // A closed channel means no consumer (no uplink configured): the state stays
        // queryable, and the log above has the event.
        let _ = events.send(Arc::new(e)).await;
    }
    record_gauges(site, engine);
}

fn record_gauges(site: &Site, engine: &Engine) {
    let c = engine.alarm_counts();
    for (state, n) in [
        ("active_unacknowledged", c.active_unacknowledged),
        ("active_acknowledged", c.active_acknowledged),
        ("returned_unacknowledged", c.returned_unacknowledged),
        ("shelved", c.shelved),
        ("out_of_service", c.out_of_service),
    ] {
        metrics::gauge!("hazgate_alarms", "state" => state).set(f64::from(n));
    }
    for (i, hs) in site.hazard_sources.iter().enumerate() {
        metrics::gauge!("hazgate_risk_level", "hazard_source" => hs.id.to_string())
            .set(f64::from(engine.source_level(i).colour.level()));
    }
    metrics::gauge!("hazgate_risk_level", "hazard_source" => "enterprise")
        .set(f64::from(engine.enterprise_level().colour.level()));
}

pub fn state_view(site: &Site, engine: &Engine, now: Timestamp) -> StateView {
    let g = &site.gateway;
    StateView {
        ts: now,
        park_id: g.park_id.clone(),
        enterprise_id: g.enterprise_id.clone(),
        enterprise_name: g.enterprise_name.clone(),
        gateway_id: g.gateway_id.clone(),
        enterprise: engine.enterprise_level().clone(),
        hazard_sources: site
            .hazard_sources
            .iter()
            .enumerate()
            .map(|(i, hs)| SourceView {
                id: hs.id.to_string(),
                name: hs.name.clone(),
                kind: hs.kind,
                level: hs.level,
                risk: engine.source_level(i).clone(),
                special_operation: engine.special_operation(i).map(|s| SpecialOperationView {
                    kind: s.kind.clone(),
                    by: s.by.clone(),
                    since: s.since,
                }),
            })
            .collect(),
        alarm_counts: engine.alarm_counts(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        judge::engine::AlarmAction,
        model::{load_site, SiteSource, DEMO_SITE_TOML},
        reading::{Quality, RangeFlag, Raw, Reading, Value},
    };

    /// Under load the judge waits for a slow consumer rather than drop: thousands of
    /// alarm changes while nobody reads (more than the channel holds) all arrive, in
    /// order, once the consumer reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_consumer_loses_no_event_the_judge_waits() {
        let site = Arc::new(
            load_site(SiteSource::Text {
                name: "demo",
                toml: DEMO_SITE_TOML,
            })
            .unwrap(),
        );
        let bypass = site.point_by_id("BP-101").unwrap().index;
        // Small batches, a deep store buffer: the judge, not the store, is the bottleneck.
        let store = LatestStore::new(site.points.len(), 1 << 14);
        let cancel = CancellationToken::new();
        let mut judge = spawn_judge(site.clone(), store.clone(), cancel.clone());
        let toggles = 3 * EVENT_BACKLOG as i64;
        let producer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..toggles {
                    store.publish(vec![Reading {
                        point: bypass,
                        value: Some(Value::Discrete(i % 2 == 0)),
                        quality: Quality::Good,
                        ts: Timestamp(1_000 + i),
                        raw: Raw::None,
                        range: RangeFlag::Within,
                    }]);
                    // Let the judge keep up with the store (its broadcast would lag).
                    if i % 256 == 0 {
                        tokio::task::yield_now().await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        };
        // Nobody reads for a while: the channel fills, the judge must wait.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut actions = Vec::new();
        while actions.len() < toggles as usize {
            let e = tokio::time::timeout(Duration::from_secs(20), judge.events.recv())
                .await
                .expect("the events keep coming")
                .expect("the judge is alive");
            if let Event::Alarm(a) = e.as_ref() {
                if a.point.as_str() == "BP-101" && a.alarm.as_str() == "discrete" {
                    actions.push(a.action);
                }
            }
        }
        producer.await.unwrap();
        cancel.cancel();
        let _ = judge.task.await;
        assert_eq!(actions.len(), toggles as usize);
        for (i, a) in actions.iter().enumerate() {
            let want = if i % 2 == 0 {
                AlarmAction::Raised
            } else {
                AlarmAction::Cleared
            };
            assert_eq!(
                *a, want,
                "event {i} of {toggles}: none lost, none reordered"
            );
        }
    }

    fn demo_site() -> Arc<Site> {
        Arc::new(
            load_site(SiteSource::Text {
                name: "demo",
                toml: DEMO_SITE_TOML,
            })
            .unwrap(),
        )
    }

    fn bypass(site: &Site, on: bool, ts: i64) -> Reading {
        Reading {
            point: site.point_by_id("BP-101").unwrap().index,
            value: Some(Value::Discrete(on)),
            quality: Quality::Good,
            ts: Timestamp(ts),
            raw: Raw::None,
            range: RangeFlag::Within,
        }
    }

    /// A judge keeping its state in `dir`, and that state file's path.
    fn judge_with_state(
        dir: &std::path::Path,
        site: &Arc<Site>,
        store: &LatestStore,
        cancel: &CancellationToken,
    ) -> (Judge, PathBuf) {
        let path = dir.join("state.json");
        let files = JudgeFiles {
            overrides: None,
            state: Some(super::super::state::StateFile::open(&path).unwrap()),
        };
        let judge = spawn_judge_with(site.clone(), store.clone(), files, cancel.clone());
        (judge, path)
    }

    async fn next_alarm(judge: &mut Judge, action: AlarmAction) -> Arc<Event> {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(5), judge.events.recv())
                .await
                .expect("an alarm event within 5 s")
                .expect("the judge is alive");
            if matches!(e.as_ref(), Event::Alarm(a) if a.action == action) {
                return e;
            }
        }
    }

    /// An operator's acknowledgement is not decided again from readings, so its answer
    /// comes only once the state file holds it: a power cut right after "ok" keeps it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commands_answer_comes_once_its_state_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let site = demo_site();
        let store = LatestStore::new(site.points.len(), 64);
        let cancel = CancellationToken::new();
        let (mut judge, path) = judge_with_state(dir.path(), &site, &store, &cancel);
        store.publish(vec![bypass(&site, true, 1_000)]);
        next_alarm(&mut judge, AlarmAction::Raised).await;
        let ack = Command::Acknowledge {
            point: "BP-101".into(),
            alarm: None,
            by: "op-wang".into(),
        };
        let answer = judge.handle.command(ack).await.unwrap();
        assert!(answer.is_ok(), "{answer:?}");
        // Read at once, before anything else can write it.
        let saved = std::fs::read_to_string(&path).unwrap();
        assert!(
            saved.contains("op-wang"),
            "the acknowledgement on disk: {saved}"
        );
        cancel.cancel();
        let _ = judge.task.await;
    }

    /// The judge awaits its state writer without holding the runtime's worker: with the
    /// writer stuck (the lock it reports under is held) on a one-worker runtime, as
    /// `hazgate run` has, other tasks (polling, sending) still run, and the alarm goes
    /// out as soon as the state including it is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    #[allow(clippy::await_holding_lock)] // held on purpose: it is what sticks the writer
    async fn the_worker_runs_on_while_the_state_writer_is_stuck() {
        let dir = tempfile::tempdir().unwrap();
        let site = demo_site();
        let store = LatestStore::new(site.points.len(), 64);
        let cancel = CancellationToken::new();
        let (mut judge, path) = judge_with_state(dir.path(), &site, &store, &cancel);
        let problem = judge.handle.state_problem.clone();
        let stuck = problem.lock().unwrap();
        store.publish(vec![bypass(&site, true, 1_000)]);
        // Another task on the one worker keeps its pace while the judge waits.
        let ticks = tokio::spawn(async {
            let mut n = 0;
            while n < 20 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                n += 1;
            }
            n
        });
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), ticks)
                .await
                .ok()
                .map(Result::unwrap),
            Some(20),
            "the worker ran other tasks"
        );
        // And the alarm has waited for its state, still unconfirmed.
        while let Ok(e) = judge.events.try_recv() {
            assert!(
                !matches!(e.as_ref(), Event::Alarm(_)),
                "sent before its state: {e:?}"
            );
        }
        drop(stuck);
        let raised = next_alarm(&mut judge, AlarmAction::Raised).await;
        assert!(matches!(raised.as_ref(), Event::Alarm(a) if a.point.as_str() == "BP-101"));
        let saved = std::fs::read_to_string(&path).unwrap();
        assert!(
            saved.contains("BP-101"),
            "the raise on disk before the event: {saved}"
        );
        cancel.cancel();
        let _ = judge.task.await;
    }
}
