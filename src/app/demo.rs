//! `hazgate demo`: the built-in demo site, simulated and polled in one process, with a
//! live terminal view. Needs no external server: TCP channels are served on loopback
//! ports chosen by the OS, RTU channels on an in-process pseudo-terminal pair.

use std::{
    collections::HashMap,
    io::{IsTerminal, Write},
    net::SocketAddr,
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use std::collections::VecDeque;

use super::demo_view::{describe_event, render, Frame, View};
use crate::{
    acquire::{spawn_acquisition, AcquireStats, LatestStore},
    cli::DemoArgs,
    judge::service::{spawn_judge, Judge},
    model::{load_site, Site, SiteSource, Transport, DEMO_SITE_TOML},
    sim::{self, Endpoint, Listen, Simulator},
};

pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let site = match &args.config {
        Some(path) => super::load(path)?,
        None => Arc::new(
            load_site(SiteSource::Text {
                name: "demo-site.toml",
                toml: DEMO_SITE_TOML,
            })
            .map_err(|e| anyhow::anyhow!("built-in demo site: {e}"))?,
        ),
    };
    let scenario = super::scenario(&site, &args.scenario)?;
    let site = {
        let mut s = (*site).clone();
        s.risk.hold = Duration::try_from_secs_f64(args.hold.max(0.0)).unwrap_or_default();
        Arc::new(s)
    };
    // The gateway stops first, so its last poll does not race the simulator's exit.
    let cancel = CancellationToken::new();
    let sim_cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();

    let simulator = Simulator::new(site.clone(), scenario.clone());
    let local = serve_locally(&site, &simulator, &sim_cancel, &mut tasks).await?;
    let gw_site = local.gateway_site(&site);
    let store = LatestStore::new(gw_site.points.len(), 256);
    let stats = Arc::new(AcquireStats::new(&gw_site));
    let Judge {
        handle: judge,
        mut events,
        task: judge_task,
        ..
    } = spawn_judge(gw_site.clone(), store.clone(), cancel.clone());
    let mut feed: VecDeque<String> = VecDeque::new();
    let mut acquisition = spawn_acquisition(gw_site.clone(), store.clone(), stats, cancel.clone());

    super::cancel_on_signal(cancel.clone(), super::opt_secs(args.duration)?);
    let refresh =
        Duration::try_from_secs_f64(args.refresh.max(0.1)).unwrap_or(Duration::from_secs(1));
    let tty = std::io::stdout().is_terminal();
    let about = scenario.describe(&gw_site);
    eprintln!("scenario {about}");
    let focus = scenario.focus_source(&gw_site);
    let mut tick = tokio::time::interval(refresh);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(e) = events.recv() => {
                if let Some(line) = describe_event(&e) {
                    feed.push_back(line);
                    if feed.len() > 8 {
                        feed.pop_front();
                    }
                }
            }
            _ = tick.tick() => {
                let (Ok(state), Ok(alarms)) = (judge.state().await, judge.alarms().await) else { break };
                let view = View { state: &state, alarms: &alarms, feed: &feed };
                let frame = Frame {
                    scenario: &about,
                    focus,
                    fit: tty.then(terminal_size),
                };
                let frame = render(&gw_site, &store, &frame, &view);
                let mut out = std::io::stdout().lock();
                // A closed stdout (e.g. `| head`) ends the demo rather than panicking.
                if out.write_all(frame.as_bytes()).and_then(|()| out.flush()).is_err() {
                    cancel.cancel();
                }
            }
        }
    }
    // The feed is not read any more: the judge must not wait for it.
    drop(events);
    while acquisition.join_next().await.is_some() {}
    let _ = judge_task.await;
    sim_cancel.cancel();
    while tasks.join_next().await.is_some() {}
    drop(local);
    Ok(ExitCode::SUCCESS)
}

/// The simulator's endpoints, and the gateway-side pty ends kept open for the run so
/// the simulator's side never sees a hang-up between reconnects.
struct Local {
    endpoints: Vec<Endpoint>,
    pty_paths: HashMap<usize, String>,
    _held_open: Vec<tokio_serial::SerialStream>,
}

/// Serves every channel of `site` locally: TCP channels on loopback ports, RTU
/// channels on pseudo-terminal pairs.
async fn serve_locally(
    site: &Site,
    simulator: &Arc<Simulator>,
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Local> {
    let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut listen = HashMap::new();
    let mut pty_paths = HashMap::new();
    let mut held_open = Vec::new();
    for (ci, ch) in site.channels.iter().enumerate() {
        match ch.transport {
            Transport::Rtu { .. } => {
                let (sim_end, gw_end) = tokio_serial::SerialStream::pair()
                    .context("cannot create a pseudo-terminal pair for the RTU channel")?;
                let path = tokio_serial::SerialPort::name(&gw_end)
                    .context("the pseudo-terminal has no device path")?;
                pty_paths.insert(ci, path);
                held_open.push(gw_end);
                listen.insert(ci, Listen::Port(sim_end));
            }
            _ => {
                listen.insert(ci, Listen::Addr(loopback));
            }
        }
    }
    let endpoints = sim::start(simulator, listen, cancel, tasks).await?;
    Ok(Local {
        endpoints,
        pty_paths,
        _held_open: held_open,
    })
}

impl Local {
    /// The gateway's view of the same site, pointed at the local endpoints.
    fn gateway_site(&self, site: &Site) -> Arc<Site> {
        let mut gw_site: Site = site.clone();
        for (ci, ch) in gw_site.channels.iter_mut().enumerate() {
            match (&mut ch.transport, &self.endpoints[ci]) {
                (Transport::Tcp { host, port }, Endpoint::Tcp(a))
                | (Transport::RtuOverTcp { host, port }, Endpoint::RtuOverTcp(a)) => {
                    *host = a.ip().to_string();
                    *port = a.port();
                }
                (Transport::Rtu { path, .. }, _) => {
                    if let Some(p) = self.pty_paths.get(&ci) {
                        path.clone_from(p);
                    }
                }
                _ => {}
            }
        }
        Arc::new(gw_site)
    }
}

/// The terminal's rows and columns (80 × 40 when it will not say).
fn terminal_size() -> (usize, usize) {
    match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(ws) if ws.ws_row > 0 && ws.ws_col > 0 => {
            (usize::from(ws.ws_row), usize::from(ws.ws_col))
        }
        _ => (40, 80),
    }
}
