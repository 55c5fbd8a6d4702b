//! `hazgate run`: the gateway daemon.
//!
//! SIGHUP, or a change of the site file on disk, reloads it: it is validated first (as
//! `hazgate check` does); a bad file is refused with its errors and the running
//! configuration kept. A good one restarts the pipeline (acquisition → judge → uplink,
//! local API) on the new site; the spool, its `seq` and the threshold overrides carry
//! over, alarm states are re-judged from the next readings.

use std::{net::SocketAddr, path::Path, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{
    acquire::{spawn_acquisition, AcquireStats, LatestStore},
    api::{self, ApiState},
    commands::AuditLog,
    forward::session::{run_uplink, UplinkFiles},
    history::{
        store::HistoryWriter,
        task::{run as history_task, HistoryHealth},
    },
    judge::{
        service::{spawn_judge_with, JudgeFiles, Overrides},
        state::StateFile,
    },
    model::{file::ApiConfig, problems::Problems, Site},
    vitals::Vitals,
};

pub async fn run(
    config: &Path,
    stats_interval: u64,
    api_flag: Option<&str>,
    watch: bool,
) -> anyhow::Result<ExitCode> {
    let mut site = super::load(config)?;
    let mut loaded = digest(&std::fs::read(config).unwrap_or_default());
    let prometheus = super::install_metrics();
    let cancel = CancellationToken::new();
    super::cancel_on_signal(cancel.clone(), None);
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel(1);
    forward_hangups(reload_tx.clone());
    trim_memory_periodically(cancel.clone());
    let _watcher = watch.then(|| watch_file(config, reload_tx));
    let started = std::time::Instant::now();
    let manager = super::service::ServiceManager::from_env();
    manager.watch(cancel.clone());
    loop {
        info!(
            park = %site.gateway.park_id,
            enterprise = %site.gateway.enterprise_id,
            gateway = %site.gateway.gateway_id,
            points = site.points.len(),
            "hazgate starting"
        );
        let generation = cancel.child_token();
        let pipeline = Pipeline::start(
            &site,
            config,
            api_flag,
            prometheus.clone(),
            started,
            stats_interval,
            &generation,
            manager.vitals.clone(),
        )
        .await?;
        manager.ready(&format!(
            "{} points on {} channels",
            site.points.len(),
            site.channels.len()
        ));
        let reload = loop {
            tokio::select! {
                () = cancel.cancelled() => break None,
                Some(cause) = reload_rx.recv() => {
                    let now = digest(&std::fs::read(config).unwrap_or_default());
                    if cause == ReloadCause::FileChanged && now == loaded {
                        continue; // touched or rewritten with the same bytes
                    }
                    loaded = now;
                    manager.reloading();
                    // Off the runtime: a large site takes seconds to load, and polling,
                    // judging and sending go on meanwhile on the one worker.
                    let path = config.to_path_buf();
                    let load = tokio::task::spawn_blocking(move || super::load(&path));
                    match load.await.unwrap_or_else(|e| Err(anyhow::anyhow!("loading stopped: {e}"))) {
                        Ok(new) => {
                            info!(?cause, "reloading the configuration");
                            break Some(new);
                        }
                        Err(e) => {
                            error!(?cause, error = %format!("{e:#}"), "reload refused; keeping the running configuration");
                            manager.ready("reload refused: running the previous configuration");
                        }
                    }
                }
            }
        };
        if reload.is_none() {
            manager.stopping();
        }
        generation.cancel();
        pipeline.stop().await;
        match reload {
            Some(new) => {
                info!(config = %config.display(), "configuration reloaded");
                site = new;
            }
            None => break,
        }
    }
    info!("hazgate stopped");
    Ok(ExitCode::SUCCESS)
}

/// Hands memory freed since to the kernel once a minute (the first ten seconds after
/// start, when start-up's transients are gone). glibc returns only the top of a heap by
/// itself; freed pages in the middle — the load, a reload, a backlog drained — stay
/// resident until trimmed (at 50,000 points: 153 → 143 MB). A trim walks the free
/// lists: microseconds.
fn trim_memory_periodically(cancel: CancellationToken) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut every = tokio::time::interval_at(start, Duration::from_secs(60));
        let mut code_released = false;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = every.tick() => {
                    super::memory::release_freed_memory();
                    if !std::mem::replace(&mut code_released, true) {
                        release_start_up_code();
                    }
                }
            }
        }
    });
}

/// Once, after start-up: see [`super::memory::release_start_up_code`].
fn release_start_up_code() {
    match super::memory::release_start_up_code() {
        Ok(bytes) => tracing::debug!(bytes, "start-up code handed back to the kernel"),
        Err(e) => tracing::warn!(
            error = %e,
            "could not hand start-up code back to the kernel (needs Linux 5.4); \
             its pages stay resident"
        ),
    }
}

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReloadCause {
    Hangup,
    FileChanged,
}

/// Sends a reload request for every SIGHUP (never where there is no SIGHUP).
fn forward_hangups(tx: tokio::sync::mpsc::Sender<ReloadCause>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            warn!("cannot watch SIGHUP: reload by restarting");
            return;
        };
        while hup.recv().await.is_some() {
            let _ = tx.try_send(ReloadCause::Hangup);
        }
    });
    #[cfg(not(unix))]
    drop(tx);
}

/// How long the site file must be quiet before a change counts: an editor or a
/// deployment tool writes a file in several steps (truncate, write, rename).
const WATCH_DEBOUNCE: Duration = Duration::from_secs(1);

/// Watches the site file and sends a reload request after it changed. The directory is
/// watched, not the file, so a file replaced by rename (how editors and configuration
/// tools save) is still seen; other files there — the threshold overrides beside it —
/// are ignored. The returned watcher must be kept alive.
fn watch_file(
    config: &Path,
    tx: tokio::sync::mpsc::Sender<ReloadCause>,
) -> Option<notify_debouncer_mini::Debouncer<notify_debouncer_mini::notify::RecommendedWatcher>> {
    use notify_debouncer_mini::{new_debouncer, notify::RecursiveMode, DebounceEventResult};
    let path = std::path::absolute(config).ok()?;
    let (dir, name) = (path.parent()?.to_path_buf(), path.file_name()?.to_owned());
    let mut debouncer =
        match new_debouncer(WATCH_DEBOUNCE, move |res: DebounceEventResult| match res {
            Ok(events) if events.iter().any(|e| e.path.file_name() == Some(&name)) => {
                let _ = tx.try_send(ReloadCause::FileChanged);
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "config file watch error"),
        }) {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "cannot watch the config file: reload with SIGHUP");
                return None;
            }
        };
    if let Err(e) = debouncer.watcher().watch(&dir, RecursiveMode::NonRecursive) {
        warn!(error = %e, dir = %dir.display(), "cannot watch the config directory: reload with SIGHUP");
        return None;
    }
    Some(debouncer)
}

/// One generation of the running stages.
struct Pipeline {
    acquisition: tokio::task::JoinSet<()>,
    judge: tokio::task::JoinHandle<()>,
    uplink: Option<tokio::task::JoinHandle<Result<(), crate::forward::session::UplinkError>>>,
    history: Option<tokio::task::JoinHandle<()>>,
    api: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    stats: Arc<AcquireStats>,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    async fn start(
        site: &Arc<Site>,
        config: &Path,
        api_flag: Option<&str>,
        prometheus: Option<PrometheusHandle>,
        started: std::time::Instant,
        stats_interval: u64,
        cancel: &CancellationToken,
        vitals: Vitals,
    ) -> anyhow::Result<Self> {
        let listener = api_listener(site, api_flag).await?;
        // The uplink's files first: a spool or audit log that cannot be opened stops the
        // start-up with the reason, before anything is polled and then silently lost.
        let files = match &site.uplink {
            Some(cfg) => Some(UplinkFiles::open(cfg).context("the uplink cannot start")?),
            None => None,
        };
        let audit = audit_log(site, config, files.as_ref())?;
        // Likewise the judge's state: read, and known writable, before anything runs.
        let state_path = site
            .gateway
            .state_path
            .clone()
            .unwrap_or_else(|| StateFile::beside(config));
        let state = StateFile::open(&state_path).context("the judge cannot keep its state")?;
        // Batches a slow subscriber may lag before resynchronising from the latest
        // values. The history takes them a few times a second (paced to an eighth of
        // this): a slot is a few words, and a batch is dropped once all have read it.
        let store = LatestStore::new(site.points.len(), 1024);
        let stats = Arc::new(AcquireStats::new(site));
        // The judge's event channel exists from here on: whatever it decides from the
        // first poll waits for the uplink (bounded: the judge waits rather than drop).
        let judge = spawn_judge_with(
            site.clone(),
            store.clone(),
            JudgeFiles {
                overrides: Some(
                    site.gateway
                        .overrides_path
                        .clone()
                        .unwrap_or_else(|| Overrides::beside(config)),
                ),
                state: Some(state),
            },
            cancel.clone(),
        );
        // The history, when kept: opened before anything runs, like the spool.
        let history_writer = match &site.history {
            Some(cfg) => Some((
                cfg.clone(),
                HistoryWriter::open(cfg)
                    .with_context(|| format!("history.path: cannot use {}", cfg.path.display()))?,
            )),
            None => None,
        };
        let (events, history_events) = tee_events(judge.events, history_writer.is_some());
        let history_health = history_writer.as_ref().map(|_| HistoryHealth::new());
        let history = match (history_writer, history_events, &history_health) {
            (Some((cfg, writer)), Some(events), Some(health)) => Some(tokio::spawn(history_task(
                site.clone(),
                cfg,
                writer,
                store.clone(),
                events,
                health.clone(),
                cancel.clone(),
            ))),
            _ => None,
        };
        if let (Some(f), Some(h)) = (&files, &history_health) {
            let h = h.clone();
            f.health.report_history(Box::new(move || h.error()));
        }
        let mut uplink_health = None;
        let uplink = match (site.uplink.clone(), files) {
            (Some(cfg), Some(files)) => {
                uplink_health = Some(files.health.clone());
                Some(tokio::spawn(run_uplink(
                    site.clone(),
                    cfg,
                    files,
                    store.clone(),
                    judge.handle.clone(),
                    events,
                    cancel.clone(),
                )))
            }
            // No uplink: the events are logged by the judge and nobody waits for them.
            _ => None,
        };
        // From now on the service manager's watchdog watches this generation's judge
        // and channels.
        vitals.watch(
            std::iter::once(judge.beat.clone())
                .chain(stats.channels.iter().cloned())
                .collect(),
        );
        let acquisition = spawn_acquisition(site.clone(), store, stats.clone(), cancel.clone());
        let api = listener.map(|(l, tls)| {
            let state = ApiState {
                judge: judge.handle,
                stats: stats.clone(),
                uplink: uplink_health,
                prometheus,
                started,
                audit,
                tokens: site
                    .api
                    .tokens_path
                    .clone()
                    .unwrap_or_else(|| crate::auth::beside(config)),
                backoff: Arc::default(),
                vitals,
                history: match (&site.history, &history_health) {
                    (Some(cfg), Some(health)) => Some(api::history::HistoryAccess {
                        dir: cfg.path.clone(),
                        health: health.clone(),
                        site: site.clone(),
                    }),
                    _ => None,
                },
            };
            let router = api::router(state);
            tokio::spawn(api::serve::serve(l, tls, router, cancel.clone()))
        });
        if stats_interval > 0 {
            tokio::spawn(report_stats(
                stats.clone(),
                Duration::from_secs(stats_interval),
                cancel.clone(),
            ));
        }
        Ok(Self {
            acquisition,
            judge: judge.task,
            uplink,
            history,
            api,
            stats,
        })
    }

    /// Waits for every stage to finish (after its cancellation).
    async fn stop(mut self) {
        while self.acquisition.join_next().await.is_some() {}
        if let Some(t) = self.uplink {
            match t.await {
                Ok(Err(e)) => warn!(error = %e, "uplink failed"),
                Err(e) => warn!(error = %e, "uplink task ended abnormally"),
                Ok(Ok(())) => {}
            }
        }
        let _ = self.judge.await;
        // After the judge: its last events are in the history's last window.
        if let Some(t) = self.history {
            let _ = t.await;
        }
        if let Some(t) = self.api {
            if let Ok(Err(e)) = t.await {
                warn!(error = %e, "local API ended with an error");
            }
        }
        log_stats(&self.stats);
    }
}

/// The judge's events for the uplink and, when the history is kept, a copy for it.
/// The uplink's copy keeps the judge's back-pressure (the judge waits rather than
/// drop); the history's is never waited for — a copy it cannot take is counted and
/// logged as lost from the history.
fn tee_events(
    mut from: crate::judge::service::Events,
    history: bool,
) -> (
    crate::judge::service::Events,
    Option<crate::judge::service::Events>,
) {
    if !history {
        return (from, None);
    }
    let (to_uplink, uplink_rx) = tokio::sync::mpsc::channel(256);
    let (to_history, history_rx) = tokio::sync::mpsc::channel(4096);
    tokio::spawn(async move {
        let mut uplink_gone = false;
        while let Some(e) = from.recv().await {
            if to_history.try_send(e.clone()).is_err() {
                metrics::counter!("hazgate_history_events_lost_total").increment(1);
                warn!("the history fell behind: an event is not in it");
            }
            if !uplink_gone && to_uplink.send(e).await.is_err() {
                uplink_gone = true;
            }
        }
    });
    (uplink_rx, Some(history_rx))
}

/// One audit log for both command channels: the uplink's, or the API's own.
fn audit_log(
    site: &Site,
    config: &Path,
    uplink: Option<&UplinkFiles>,
) -> anyhow::Result<Arc<AuditLog>> {
    if let Some(f) = uplink {
        return Ok(f.audit.clone());
    }
    let path = site
        .api
        .audit_path
        .clone()
        .unwrap_or_else(|| crate::model::beside(config, ".audit.jsonl"));
    let log = AuditLog::open(&path).with_context(|| {
        format!(
            "cannot open the audit log {} (set [api] audit_path to a writable place)",
            path.display()
        )
    })?;
    Ok(Arc::new(log))
}

/// The local API's listener (and TLS), where it is not `off`: the `--api` flag, else
/// `[api] listen`, else 127.0.0.1:8088. An address the network can reach without TLS
/// is refused, as `hazgate check` refuses it in the site file.
async fn api_listener(
    site: &Site,
    flag: Option<&str>,
) -> anyhow::Result<Option<(tokio::net::TcpListener, Option<tokio_rustls::TlsAcceptor>)>> {
    let listen = flag
        .or(site.api.listen.as_deref())
        .unwrap_or(ApiConfig::DEFAULT_LISTEN);
    let mut problems = Problems::default();
    site.api.check_listen(listen, &mut problems.at("api"));
    if let Some(problem) = problems.into_vec().into_iter().next() {
        anyhow::bail!("the local API cannot start: {problem}");
    }
    if listen == "off" {
        return Ok(None);
    }
    let addr: SocketAddr = listen.parse().context("the local API address")?;
    let tls = match (&site.api.cert_file, &site.api.key_file) {
        (Some(cert), Some(key)) => Some(
            api::serve::tls_acceptor(cert, key).context("the local API cannot start its TLS")?,
        ),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the local API on {addr} (--api / [api] listen)"))?;
    Ok(Some((listener, tls)))
}

/// Logs acquisition rates and poll jitter once per `every`.
pub async fn report_stats(stats: Arc<AcquireStats>, every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => log_stats(&stats),
        }
    }
}

/// One statistics line: counters since start, poll-start jitter over the window since
/// the previous line (also for the last line, at shutdown).
fn log_stats(stats: &AcquireStats) {
    let jitter = stats.drain_jitter();
    info!(
        window_s = (jitter.window.as_secs_f64() * 10.0).round() / 10.0,
        readings = stats.total(|c| &c.readings),
        good_readings = stats.total(|c| &c.good_readings),
        requests = stats.total(|c| &c.requests),
        timeouts = stats.total(|c| &c.timeouts),
        exceptions = stats.total(|c| &c.exceptions),
        polls_failed = stats.total(|c| &c.polls_failed),
        jitter_samples = jitter.samples,
        jitter_p50_us = jitter.p50_us,
        jitter_p99_us = jitter.p99_us,
        "acquisition stats"
    );
}

/// What tells a rewrite with the same bytes from a change: a 64-bit digest, not the
/// file kept in memory (9.5 MB for a 50,000-point site).
fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}
