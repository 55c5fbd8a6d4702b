//! `hazgate simulate`: serve a site's devices as Modbus slaves with a scenario, or
//! (`--record-days`) record days of them into the site's history.

use std::{collections::HashMap, process::ExitCode};

use anyhow::{bail, Context as _};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    cli::SimulateArgs,
    sim::{self, Listen, Simulator},
    tune::record::{self, Pattern, Plan},
};

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let site = super::load(&args.config)?;
    let scenario = super::scenario(&site, &args.scenario)?;
    if let Some(days) = args.record_days {
        return record(&args, site, scenario, days).await;
    }
    let mut listen = HashMap::new();
    for spec in &args.serve {
        let (channel, target) = spec
            .split_once('=')
            .with_context(|| format!("--serve {spec}: expected CHANNEL=ADDR or CHANNEL=PATH"))?;
        let Some(ci) = site.channels.iter().position(|c| c.id.as_str() == channel) else {
            bail!(
                "--serve {spec}: no channel `{channel}` in {}",
                args.config.display()
            );
        };
        let how = match target.parse() {
            Ok(addr) => Listen::Addr(addr),
            Err(_) if target.starts_with('/') => Listen::Path(target.to_string()),
            Err(_) => bail!("--serve {spec}: `{target}` is neither IP:PORT nor an absolute path"),
        };
        listen.insert(ci, how);
    }
    let sim = Simulator::new(site.clone(), scenario.clone());
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let endpoints = sim::start(&sim, listen, &cancel, &mut tasks).await?;
    info!(scenario = %scenario.describe(&site), ?endpoints, "simulator running");
    super::cancel_on_signal(cancel.clone(), super::opt_secs(args.duration)?);
    cancel.cancelled().await;
    tasks.shutdown().await;
    info!(requests = sim.requests(), "simulator stopped");
    Ok(ExitCode::SUCCESS)
}

/// `--record-days`: the site's history filled with simulated days.
async fn record(
    args: &SimulateArgs,
    site: std::sync::Arc<crate::model::Site>,
    scenario: sim::Scenario,
    days: f64,
) -> anyhow::Result<ExitCode> {
    let cfg = site
        .history
        .clone()
        .with_context(|| format!("{}: no [history] to record into", args.config.display()))?;
    anyhow::ensure!(
        days > 0.0 && days <= 400.0,
        "--record-days: from above 0 to 400"
    );
    anyhow::ensure!(args.record_poll_ms >= 10, "--record-poll-ms: at least 10");
    let duration_ms = (days * 86_400_000.0) as i64;
    let start = match &args.record_start {
        Some(s) => super::cli_time(s, "record-start")?,
        None => crate::reading::Timestamp::now().0 - duration_ms,
    };
    let mut patterns = Vec::new();
    for p in &args.record_patterns {
        patterns.push(pattern(&site, p).with_context(|| format!("--record-pattern `{p}`"))?);
    }
    let plan = Plan {
        scenario,
        patterns,
        start,
        duration_ms,
        poll_ms: args.record_poll_ms,
        seed: 1,
    };
    let began = std::time::Instant::now();
    let events = tokio::task::spawn_blocking(move || record::record(&site, &plan, &cfg)).await??;
    info!(
        days,
        events = events.len(),
        seconds = began.elapsed().as_secs_f64(),
        "history recorded"
    );
    Ok(ExitCode::SUCCESS)
}

/// `chatter:POINT:FROM_S:TO_S:AROUND:AMPLITUDE`, `hold:POINT:FROM_S:TO_S:VALUE` or
/// `fault:POINT:FROM_S:TO_S`.
fn pattern(site: &crate::model::Site, spec: &str) -> anyhow::Result<Pattern> {
    let f: Vec<&str> = spec.split(':').collect();
    let point = site
        .point_by_id(f.get(1).copied().unwrap_or(""))
        .context("no such point")?
        .index;
    let num = |i: usize| -> anyhow::Result<f64> {
        f.get(i)
            .and_then(|x| x.parse::<f64>().ok())
            .filter(|x| x.is_finite())
            .with_context(|| format!("field {} is not a number", i + 1))
    };
    let (from, to) = ((num(2)? * 1000.0) as i64, (num(3)? * 1000.0) as i64);
    Ok(match f[0] {
        "chatter" => Pattern::Chatter {
            point,
            from,
            to,
            around: num(4)?,
            amplitude: num(5)?,
        },
        "hold" => Pattern::Hold {
            point,
            from,
            to,
            value: num(4)?,
        },
        "fault" => Pattern::Fault { point, from, to },
        k => bail!("`{k}`: expected chatter, hold or fault"),
    })
}
