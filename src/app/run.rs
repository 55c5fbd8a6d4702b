//! `hazgate run`: the gateway daemon.
//!
//! SIGHUP reloads the site file: it is validated first (as `hazgate check` does); a bad
//! file is refused with its errors and the running configuration kept. A good one
//! restarts the pipeline (acquisition → judge → uplink, local API) on the new site; the
//! spool, its `seq` and the threshold overrides carry over, alarm states are re-judged
//! from the next readings.

use std::{net::SocketAddr, path::Path, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{
    acquire::{spawn_acquisition, AcquireStats, LatestStore},
    api::{self, ApiState},
    judge::service::{spawn_judge_with, Overrides},
    model::Site,
};

pub async fn run(config: &Path, stats_interval: u64, api_addr: &str) -> anyhow::Result<ExitCode> {
    let mut site = super::load(config)?;
    let api_addr: Option<SocketAddr> = match api_addr {
        "off" => None,
        a => Some(
            a.parse()
                .with_context(|| format!("--api {a}: expected IP:PORT or off"))?,
        ),
    };
    let prometheus = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()
    {
        Ok(h) => Some(h),
        Err(e) => {
            warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
            None
        }
    };
    let cancel = CancellationToken::new();
    super::cancel_on_signal(cancel.clone(), None);
    let mut hangup = hangup_signal();
    let started = std::time::Instant::now();
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
            api_addr,
            prometheus.clone(),
            started,
            stats_interval,
            &generation,
        )
        .await?;
        let reload = loop {
            tokio::select! {
                () = cancel.cancelled() => break None,
                _ = hangup.recv() => match super::load(config) {
                    Ok(new) => break Some(new),
                    Err(e) => error!(error = %format!("{e:#}"), "reload refused; keeping the running configuration"),
                },
            }
        };
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

/// SIGHUP as a stream (never fires where there is no SIGHUP).
fn hangup_signal() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            warn!("cannot watch SIGHUP: reload by restarting");
            return;
        };
        while hup.recv().await.is_some() {
            let _ = tx.try_send(());
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// One generation of the running stages.
struct Pipeline {
    acquisition: tokio::task::JoinSet<()>,
    judge: tokio::task::JoinHandle<()>,
    uplink: Option<tokio::task::JoinHandle<Result<(), crate::forward::session::UplinkError>>>,
    api: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    stats: Arc<AcquireStats>,
}

impl Pipeline {
    #[allow(clippy::too_many_arguments)]
    async fn start(
        site: &Arc<Site>,
        config: &Path,
        api_addr: Option<SocketAddr>,
        prometheus: Option<PrometheusHandle>,
        started: std::time::Instant,
        stats_interval: u64,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let listener = match api_addr {
            None => None,
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot bind the local API on {addr} (--api)"))?,
            ),
        };
        // Batches a slow subscriber may lag before resynchronising from the latest values.
        let store = LatestStore::new(site.points.len(), 256);
        let stats = Arc::new(AcquireStats::new(site));
        let (judge, judge_task) = spawn_judge_with(
            site.clone(),
            store.clone(),
            Some(Overrides::beside(config)),
            cancel.clone(),
        );
        let uplink = site.uplink.clone().map(|cfg| {
            tokio::spawn(crate::forward::session::run_uplink(
                site.clone(),
                cfg,
                store.clone(),
                judge.clone(),
                cancel.clone(),
            ))
        });
        let acquisition = spawn_acquisition(site.clone(), store, stats.clone(), cancel.clone());
        let api = listener.map(|l| {
            let state = ApiState {
                judge,
                stats: stats.clone(),
                prometheus,
                started,
            };
            tokio::spawn(api::serve(l, state, cancel.clone()))
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
            judge: judge_task,
            uplink,
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
        if let Some(t) = self.api {
            if let Ok(Err(e)) = t.await {
                warn!(error = %e, "local API ended with an error");
            }
        }
        log_stats(&self.stats, None);
    }
}

/// Logs acquisition rates and poll jitter once per `every`.
pub async fn report_stats(stats: Arc<AcquireStats>, every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => log_stats(&stats, Some(every)),
        }
    }
}

fn log_stats(stats: &AcquireStats, window: Option<Duration>) {
    let mut jitter = stats.drain_jitter();
    jitter.sort_unstable();
    let pct = |q: f64| -> u32 {
        if jitter.is_empty() {
            0
        } else {
            jitter[((jitter.len() - 1) as f64 * q).round() as usize]
        }
    };
    let readings = stats.total(|c| &c.readings);
    info!(
        window_s = window.map_or(0.0, |w| w.as_secs_f64()),
        readings,
        good_readings = stats.total(|c| &c.good_readings),
        requests = stats.total(|c| &c.requests),
        timeouts = stats.total(|c| &c.timeouts),
        exceptions = stats.total(|c| &c.exceptions),
        polls_failed = stats.total(|c| &c.polls_failed),
        jitter_samples = jitter.len(),
        jitter_p50_us = pct(0.5),
        jitter_p99_us = pct(0.99),
        "acquisition stats"
    );
}
