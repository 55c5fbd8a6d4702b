//! The subcommands, each a thin composition of library stages.

pub mod check;
#[cfg(feature = "edge")]
pub mod demo;
#[cfg(feature = "edge")]
mod demo_view;
#[cfg(feature = "edge")]
pub mod export;
#[cfg(feature = "centre")]
pub mod ingest;
mod memory;
#[cfg(feature = "edge")]
pub mod poll;
#[cfg(feature = "edge")]
pub mod run;
pub mod service;
#[cfg(feature = "edge")]
pub mod simulate;
pub mod token;
#[cfg(feature = "edge")]
pub mod tune;

use std::{path::Path, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[cfg(feature = "edge")]
use crate::{
    cli::ScenarioArgs,
    sim::{Scenario, Timing},
};
use clap::Parser as _;

use crate::{
    cli::{Cli, Command, LogArgs, LogFormat, PointsAction},
    model::{
        load::{compile_site, load_site_file},
        Site, SiteSource,
    },
};

/// Structured logs on stderr; RUST_LOG wins over `--log-level`.
pub fn init_logging(args: &LogArgs) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&args.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into log files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match (args.log_format, to_journal()) {
        // journald stamps each line itself: a second time would only push the message
        // right in `journalctl` (JSON keeps its `timestamp` field for its readers).
        (LogFormat::Text, true) => builder.without_time().try_init(),
        (LogFormat::Text, false) => builder.try_init(),
        (LogFormat::Json, _) => builder.json().try_init(),
    };
}

/// Whether stderr is systemd's journal stream: `JOURNAL_STREAM` (`DEV:INODE`, set by
/// systemd for a service) names the very file stderr is (not one a parent had).
fn to_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2")
        .is_ok_and(|m| stream.to_string_lossy() == format!("{}:{}", m.dev(), m.ino()))
}

/// Installs the process-wide Prometheus recorder behind `/metrics`.
pub fn install_metrics() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed; /metrics will be empty");
            None
        }
    }
}

/// Loads and validates a site file, with `HAZGATE__…` overrides.
///
/// Parsing makes a transient tree many times the size of the compiled site (≈ 300 MB
/// for 50,000 points); had the site's small allocations (its ids, one per point) been
/// made among the tree's nodes, each would keep a page of the freed tree resident. So
/// the file is parsed on a thread of its own (another malloc arena) and compiled here,
/// into this thread's arena; the parsing arena is then all free and handed back. (A
/// copy of the compiled site did not do it: the ids are shared, not copied.) At 50,000
/// points in TOML: steady RSS 122 → 102 MB (`bench/sidebyside.sh`).
/// A time given on the command line as `--{name}`: RFC 3339 or milliseconds since 1970.
#[cfg(feature = "edge")]
pub fn cli_time(s: &str, name: &str) -> anyhow::Result<i64> {
    crate::api::history::parse_time(s).with_context(|| {
        format!("--{name} `{s}`: expected RFC 3339 (2026-11-30T08:00:00Z) or milliseconds")
    })
}

pub fn load(path: &Path) -> anyhow::Result<Arc<Site>> {
    let coalescing = memory::CoalescingFrees::new();
    let (name, file, origins) = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("load-site".into())
            .spawn_scoped(s, || load_site_file(SiteSource::Path(path), true))
            .map(|h| h.join())
    })
    .map_err(|e| anyhow::anyhow!("cannot start a thread to load the site file: {e}"))?
    .map_err(|_| anyhow::anyhow!("loading the site file panicked"))?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let site = compile_site(name, &file, &origins).map_err(|e| anyhow::anyhow!("{e}"));
    drop((file, origins));
    drop(coalescing);
    memory::release_freed_memory();
    let site = site?;
    for w in &site.warnings {
        tracing::warn!(field = %w.path, "site file: {}", w.message);
    }
    Ok(Arc::new(site))
}

/// Binds the scenario options to a site.
#[cfg(feature = "edge")]
pub fn scenario(site: &Site, args: &ScenarioArgs) -> anyhow::Result<Scenario> {
    let secs = |s: f64, what: &str| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(s)
            .with_context(|| format!("--{what} must be a non-negative number of seconds"))
    };
    let timing = Timing {
        start_after: secs(args.start_after, "start-after")?,
        ramp: secs(args.ramp, "ramp")?,
        recover_after: args
            .recover_after
            .map(|s| secs(s, "recover-after"))
            .transpose()?,
    };
    Scenario::bind(site, args.scenario, timing, args.target.as_deref()).map_err(anyhow::Error::msg)
}

/// Cancels `token` on SIGINT or SIGTERM (or after `limit`, if given).
pub fn cancel_on_signal(token: CancellationToken, limit: Option<Duration>) {
    tokio::spawn(async move {
        let limit = async {
            match limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown_signal() => tracing::info!("shutdown requested"),
            () = limit => {}
        }
        token.cancel();
    });
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Seconds → Duration for optional CLI limits.
pub fn opt_secs(s: Option<f64>) -> anyhow::Result<Option<Duration>> {
    s.map(|s| {
        Duration::try_from_secs_f64(s)
            .context("a duration must be a non-negative number of seconds")
    })
    .transpose()
}

/// Parses arguments, sets up logging and runs the chosen command.
pub fn main() -> ExitCode {
    memory::limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(&cli.log);
    let mut builder = match cli.command.worker_threads() {
        // The daemon: every task on the thread that runs main (see worker_threads).
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hazgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            #[cfg(feature = "edge")]
            Command::Run {
                config,
                stats_interval,
                api,
                no_watch,
            } => run::run(&config, stats_interval, api.as_deref(), !no_watch).await,
            Command::Check { files } => check::check(&files),
            #[cfg(feature = "centre")]
            Command::Ingest { config } => ingest::ingest(&config).await,
            #[cfg(feature = "centre")]
            Command::Report { config, month, out } => {
                ingest::report(&config, &month, out.as_deref())
            }
            #[cfg(feature = "edge")]
            Command::Export {
                config,
                from,
                to,
                points,
                format,
                out,
            } => export::export(
                &config,
                &from,
                to.as_deref(),
                &points,
                format,
                out.as_deref(),
            ),
            Command::Token(args) => token::token(args),
            Command::Gases { config } => check::gases(config.as_deref()),
            Command::Points {
                action: PointsAction::Export { config, out },
            } => check::export_points(&config, out.as_deref()),
            #[cfg(feature = "edge")]
            Command::Simulate(args) => simulate::simulate(args).await,
            #[cfg(feature = "edge")]
            Command::Poll {
                config,
                device,
                json,
                watch,
            } => {
                poll::poll(poll::PollArgs {
                    config: &config,
                    device: device.as_deref(),
                    json,
                    watch,
                })
                .await
            }
            #[cfg(feature = "edge")]
            Command::Demo(args) => demo::demo(args).await,
            #[cfg(feature = "edge")]
            Command::Tune(args) => tune::tune(&args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hazgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
