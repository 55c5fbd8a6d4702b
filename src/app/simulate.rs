//! `hazgate simulate`: serve a site's devices as Modbus slaves with a scenario.

use std::{collections::HashMap, process::ExitCode};

use anyhow::{bail, Context as _};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    cli::SimulateArgs,
    sim::{self, Listen, Simulator},
};

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let site = super::load(&args.config)?;
    let scenario = super::scenario(&site, &args.scenario)?;
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
