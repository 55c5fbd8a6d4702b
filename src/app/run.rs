//! `hazgate run`: the gateway daemon.

use std::{path::Path, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    acquire::{spawn_acquisition, AcquireStats, LatestStore},
    api::{self, ApiState},
    judge::service::spawn_judge_with,
};

pub async fn run(config: &Path, stats_interval: u64, api_addr: &str) -> anyhow::Result<ExitCode> {
    let site = super::load(config)?;
    info!(
        park = %site.gateway.park_id,
        enterprise = %site.gateway.enterprise_id,
        gateway = %site.gateway.gateway_id,
        points = site.points.len(),
        "hazgate starting"
    );
    let listener = match api_addr {
        "off" => None,
        addr => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind the local API on {addr} (--api)"))?,
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
    // Batches a slow subscriber may lag before resynchronising from the latest values.
    let store = LatestStore::new(site.points.len(), 256);
    let stats = Arc::new(AcquireStats::new(&site));
    let overrides = crate::judge::service::Overrides::beside(config);
    let (judge, judge_task) =
        spawn_judge_with(site.clone(), store.clone(), Some(overrides), cancel.clone());
    let uplink_task = site.uplink.clone().map(|cfg| {
        tokio::spawn(crate::forward::session::run_uplink(
            site.clone(),
            cfg,
            store.clone(),
            judge.clone(),
            cancel.clone(),
        ))
    });
    let mut tasks = spawn_acquisition(site.clone(), store, stats.clone(), cancel.clone());
    let api_task = listener.map(|l| {
        let state = ApiState {
            judge,
            stats: stats.clone(),
            prometheus,
            started: std::time::Instant::now(),
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
    while tasks.join_next().await.is_some() {}
    if let Some(t) = uplink_task {
        match t.await {
            Ok(Err(e)) => warn!(error = %e, "uplink failed"),
            Err(e) => warn!(error = %e, "uplink task ended abnormally"),
            Ok(Ok(())) => {}
        }
    }
    let _ = judge_task.await;
    if let Some(t) = api_task {
        if let Ok(Err(e)) = t.await {
            warn!(error = %e, "local API ended with an error");
        }
    }
    log_stats(&stats, None);
    info!("hazgate stopped");
    Ok(ExitCode::SUCCESS)
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
