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

use crate::{
    acquire::{spawn_acquisition, AcquireStats, LatestStore},
    cli::DemoArgs,
    contract::wire::AlarmState,
    judge::{
        engine::{AlarmView, Event, RiskScope},
        service::{spawn_judge, Judge, StateView},
    },
    model::{load_site, risk::Colour, PointIndex, Site, SiteSource, Transport, DEMO_SITE_TOML},
    reading::{Quality, Timestamp},
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
    } = spawn_judge(gw_site.clone(), store.clone(), cancel.clone());
    let mut feed: VecDeque<String> = VecDeque::new();
    let mut acquisition = spawn_acquisition(gw_site.clone(), store.clone(), stats, cancel.clone());

    super::cancel_on_signal(cancel.clone(), super::opt_secs(args.duration)?);
    let refresh =
        Duration::try_from_secs_f64(args.refresh.max(0.1)).unwrap_or(Duration::from_secs(1));
    let tty = std::io::stdout().is_terminal();
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
                let frame = render(&gw_site, &store, &scenario.kind.to_string(), tty, &view);
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

const RESET: &str = "\x1b[0m";

fn quality_style(q: Quality) -> &'static str {
    match q {
        Quality::Good => "\x1b[32m",
        Quality::Stale => "\x1b[33m",
        _ => "\x1b[1;31m",
    }
}

/// What the judge says, for one frame.
pub struct View<'a> {
    pub state: &'a StateView,
    pub alarms: &'a [AlarmView],
    pub feed: &'a VecDeque<String>,
}

fn colour_style(c: Colour) -> &'static str {
    match c {
        Colour::Red => "\x1b[1;97;41m",
        Colour::Orange => "\x1b[1;30;48;5;208m",
        Colour::Yellow => "\x1b[1;30;43m",
        Colour::Blue => "\x1b[1;97;44m",
    }
}

fn colour_tag(c: Colour, tty: bool) -> String {
    let text = format!(" {} {} ", c.as_str().to_uppercase(), c.chinese());
    if tty {
        format!("{}{text}{RESET}", colour_style(c))
    } else {
        format!("[{}]", text.trim())
    }
}

/// A line of the event feed.
/// One line of the event feed; none for a restatement of an unchanged level.
pub fn describe_event(e: &Event) -> Option<String> {
    Some(match e {
        Event::Risk(r) if r.snapshot => return None,
        Event::Alarm(a) => format!(
            "{} {} {} {:?}{}",
            a.ts.to_rfc3339(),
            a.point,
            a.alarm.as_str().to_uppercase(),
            a.action,
            a.value.map(|v| format!(" at {v:.2}")).unwrap_or_default()
        ),
        Event::Risk(r) => format!(
            "{} {} {} → {}: {}",
            r.ts.to_rfc3339(),
            match &r.scope {
                RiskScope::HazardSource(id) => id.to_string(),
                RiskScope::Enterprise => "enterprise".into(),
            },
            r.from.as_str(),
            r.to.as_str(),
            r.reasons
                .first()
                .map(|x| x.rule.as_str())
                .unwrap_or("clear")
        ),
        Event::Thresholds(t) => format!(
            "{} {} thresholds changed by {}",
            t.ts.to_rfc3339(),
            t.point,
            t.by
        ),
        Event::SpecialOperation(s) => format!(
            "{} {} special operation {} ({})",
            s.ts.to_rfc3339(),
            s.hazard_source,
            if s.active { "started" } else { "ended" },
            s.kind
        ),
    })
}

/// One screen of the live view: colours, hazard sources, points, alarms, events.
pub fn render(
    site: &Site,
    store: &LatestStore,
    scenario: &str,
    tty: bool,
    view: &View<'_>,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let (clear, bold, reset) = if tty {
        ("\x1b[2J\x1b[H", "\x1b[1m", RESET)
    } else {
        ("", "", "")
    };
    let g = &site.gateway;
    let _ = writeln!(
        s,
        "{clear}{bold}hazgate demo{reset} — {} | park {} | enterprise {} | gateway {} | scenario {scenario} | {}",
        g.enterprise_name,
        g.park_id,
        g.enterprise_id,
        g.gateway_id,
        Timestamp::now().to_rfc3339()
    );
    let c = &view.state.alarm_counts;
    let _ = writeln!(
        s,
        "enterprise {}  alarms: {} active unack, {} active ack, {} returned unack, {} shelved, {} out of service",
        colour_tag(view.state.enterprise.colour, tty),
        c.active_unacknowledged,
        c.active_acknowledged,
        c.returned_unacknowledged,
        c.shelved,
        c.out_of_service
    );
    for (si, source) in site.hazard_sources.iter().enumerate() {
        let risk = view.state.hazard_sources.get(si).map(|h| &h.risk);
        let tag = risk.map(|r| colour_tag(r.colour, tty)).unwrap_or_default();
        let why = risk
            .and_then(|r| r.reasons.first())
            .map(|r| format!(" — {}", r.rule))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "\n{tag} {bold}{} {}{reset}  (major hazard level {}, {:?}){why}",
            source.id, source.name, source.level, source.kind
        );
        for &pi in &source.points {
            point_line(&mut s, site, store, pi, tty, view);
        }
    }
    let _ = writeln!(s, "\n{bold}events{reset}");
    for line in view.feed {
        let _ = writeln!(s, "  {line}");
    }
    if !tty {
        s.push_str("----\n");
    }
    s
}

/// One point's line: id, name, value, unit, quality and its alarms.
fn point_line(
    s: &mut String,
    site: &Site,
    store: &LatestStore,
    pi: PointIndex,
    tty: bool,
    view: &View<'_>,
) {
    use std::fmt::Write as _;
    let p = site.point(pi);
    let (value, quality) = match store.get(pi) {
        Some(r) => (
            r.value.map_or_else(|| "-".into(), |v| v.to_string()),
            Some(r.quality),
        ),
        None => ("…".into(), None),
    };
    let (qs, q_reset) = match (quality, tty) {
        (Some(q), true) => (quality_style(q), RESET),
        _ => ("", ""),
    };
    let qtext = quality.map_or_else(|| "waiting".to_string(), |q| q.to_string());
    let alarms: Vec<String> = view
        .alarms
        .iter()
        .filter(|a| a.point == p.id)
        .map(|a| {
            let st = match (a.out_of_service, a.shelved_until.is_some(), a.state) {
                (true, _, _) => "OOS",
                (_, true, _) => "shelved",
                (_, _, AlarmState::ActiveUnacknowledged) => "ACTIVE",
                (_, _, AlarmState::ActiveAcknowledged) => "active ack",
                (_, _, AlarmState::ReturnedUnacknowledged) => "returned",
                _ => "",
            };
            format!("{}:{st}", a.alarm.as_str().to_uppercase())
        })
        .collect();
    let _ = writeln!(
        s,
        "  {:<10} {:<28} {:>10} {:<6} {qs}{qtext}{q_reset} {}",
        p.id,
        truncate(&p.name, 28),
        value,
        p.unit,
        alarms.join(" ")
    );
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
