//! `hazgate ingest`: the central ingest service (see [`crate::ingest`]).

use std::{path::Path, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::model::central::IngestConfig;

use crate::ingest::{
    alarm_loop::{self, AlarmLoop},
    http,
    journal::Journal,
    ledger::Ledger,
    report,
    screen::{self, ScreenHub},
    service::{run_ingest, Health},
    store_query::StoreQuery,
    writer::InfluxWriter,
};

pub async fn ingest(config: &Path) -> anyhow::Result<ExitCode> {
    let cfg = IngestConfig::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let prometheus = super::install_metrics();
    let cancel = CancellationToken::new();
    super::cancel_on_signal(cancel.clone(), None);
    // Fed while the runtime runs: ingest has no stage that waits on a device.
    let manager = super::service::ServiceManager::from_env();
    manager.watch(cancel.clone());
    let health = Arc::new(Health::default());
    // Nothing has failed yet: healthy until a write says otherwise.
    health
        .store_ok
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let server = match cfg.http_addr() {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind http.listen {addr}"))?;
            info!(%addr, "ingest HTTP: /healthz /metrics /screen");
            let mut hub = ScreenHub::new(
                screen::Screen::new(Duration::from_secs(cfg.screen.stale_after_s)),
                Arc::clone(&health.clocks),
                i64::try_from(cfg.clock.tolerance_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            );
            let dir = config.parent().unwrap_or(Path::new("."));
            let mut plans = std::collections::BTreeMap::new();
            for (i, p) in cfg.screen.plans.iter().enumerate() {
                let svg = p
                    .read(dir)
                    .map_err(|e| anyhow::anyhow!("screen.plans[{i}].svg: {e}"))?;
                plans.insert(p.park.clone(), svg);
            }
            hub = hub
                .with_plans(plans)
                .with_store_query(StoreQuery::new(&cfg.store));
            if let Some(l) = &cfg.alarm_loop {
                let opened = AlarmLoop::open(l, &cfg.mqtt.prefix).with_context(|| {
                    format!(
                        "alarm_loop.journal_dir: cannot use {}",
                        l.journal_dir.display()
                    )
                })?;
                let opened = Arc::new(opened);
                tokio::spawn(alarm_loop::store_counts(
                    Arc::clone(&opened),
                    InfluxWriter::new(&cfg.store),
                    Duration::from_secs(l.store_every_s),
                    cancel.clone(),
                ));
                hub = hub.with_loop(opened);
            }
            tokio::spawn(screen::watch(cfg.mqtt.clone(), hub.clone(), cancel.clone()));
            let access = http::Access {
                tokens: cfg
                    .http
                    .tokens_path
                    .clone()
                    .unwrap_or_else(|| crate::auth::beside(config)),
                loopback_open: cfg.http.loopback_open,
                backoff: Default::default(),
            };
            Some(tokio::spawn(http::serve(
                listener,
                health.clone(),
                prometheus,
                hub,
                access,
                cancel.clone(),
            )))
        }
    };
    info!(
        broker = %format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port),
        client_id = %cfg.mqtt.client_id,
        group = %cfg.mqtt.group,
        store = %cfg.store.url,
        bucket = %cfg.store.bucket,
        "hazgate ingest starting"
    );
    let writer = InfluxWriter::new(&cfg.store);
    manager.ready(&format!("ingesting {}:{}", cfg.mqtt.host, cfg.mqtt.port));
    let ran = run_ingest(cfg, writer, health, cancel.clone()).await;
    manager.stopping();
    ran.map_err(anyhow::Error::msg)?;
    cancel.cancel();
    if let Some(s) = server {
        let _ = s.await;
    }
    info!("hazgate ingest stopped");
    Ok(ExitCode::SUCCESS)
}

/// `hazgate report --month`: the month's alarm-handling figures from the journal.
pub fn report(config: &Path, month: &str, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = IngestConfig::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(l) = &cfg.alarm_loop else {
        anyhow::bail!(
            "{}: no [alarm_loop]: the report is made from its journal (journal_dir)",
            config.display()
        );
    };
    let (from, to) = report::month_bounds(month, l.report_utc_offset_h)
        .with_context(|| format!("--month `{month}`: expected YYYY-MM, e.g. 2026-11"))?;
    let mut ledger = Ledger::new(l);
    let replayed = Journal::replay(&l.journal_dir, |e| {
        ledger.apply(e);
    })
    .with_context(|| {
        format!(
            "cannot read the alarm journal in {}",
            l.journal_dir.display()
        )
    })?;
    if replayed.bad_lines > 0 {
        eprintln!(
            "hazgate: {} line(s) of the journal could not be read (see the log); the report leaves them out",
            replayed.bad_lines
        );
    }
    let csv = report::csv(&report::rows(
        &ledger,
        from,
        to,
        crate::reading::Timestamp::now(),
    ))?;
    match out {
        Some(p) => {
            std::fs::write(p, &csv).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => std::io::Write::write_all(&mut std::io::stdout(), &csv)?,
    }
    Ok(ExitCode::SUCCESS)
}
