//! Command-line interface: the clap definitions. [`crate::app::main`] parses them and
//! runs the command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[cfg(feature = "edge")]
use crate::sim::ScenarioKind;

#[derive(Debug, Parser)]
#[command(
    name = "hazgate",
    version,
    about = "Edge gateway for major-hazard-source monitoring (重大危险源监测预警)"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter (tracing EnvFilter syntax); RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[cfg(feature = "edge")]
    /// Run the gateway daemon: poll every device of the site continuously.
    Run {
        #[arg(long, short)]
        config: PathBuf,
        /// Seconds between acquisition statistics log lines (0 = never).
        #[arg(long, default_value_t = 60)]
        stats_interval: u64,
        /// Address of the local HTTP API (state, alarms, commands, /healthz, /metrics);
        /// `off` to disable. Overrides `[api] listen` of the site file (default
        /// 127.0.0.1:8088).
        #[arg(long)]
        api: Option<String>,
        /// Do not reload when the site file changes on disk (SIGHUP still reloads).
        #[arg(long)]
        no_watch: bool,
    },
    /// Validate site files; prints every problem as `file: field.path: message`.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    #[cfg(feature = "edge")]
    /// Serve a site file's devices as Modbus slaves, with a scripted scenario.
    Simulate(SimulateArgs),
    #[cfg(feature = "edge")]
    /// Commissioning read: poll every device once and print each point.
    Poll {
        #[arg(long, short)]
        config: PathBuf,
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// Re-poll every second, redrawing the table with changes highlighted.
        #[arg(long)]
        watch: bool,
    },
    #[cfg(feature = "edge")]
    /// Run the built-in demo site: simulator and gateway in one process, live view.
    Demo(DemoArgs),
    #[cfg(feature = "centre")]
    /// Central ingest: subscribe to the gateways (shared subscription) and write to the
    /// time-series store (InfluxDB v2 write API); acknowledges only what is stored.
    Ingest {
        #[arg(long, short)]
        config: PathBuf,
    },
    #[cfg(feature = "centre")]
    /// The monthly alarm-handling report from the centre's alarm journal, as CSV: per
    /// enterprise and park, alarms raised, not cleared (未销警), feedback late or missing
    /// (未反馈), feedback times, online rate.
    Report {
        /// central.toml (its `[alarm_loop]` names the journal).
        #[arg(long, short)]
        config: PathBuf,
        /// The month, `YYYY-MM`, in the zone of `report_utc_offset_h`.
        #[arg(long)]
        month: String,
        /// Where to write the CSV; standard output if not given.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    #[cfg(feature = "edge")]
    /// The gateway's history (`[history]`) from one time to another, as CSV, JSON lines
    /// or line protocol; reads the files while the daemon writes them.
    Export {
        /// The site file (its `[history]` names the directory; its points name the
        /// readings).
        #[arg(long, short)]
        config: PathBuf,
        /// From, RFC 3339 (`2026-11-30T08:00:00+08:00`) or milliseconds since 1970.
        #[arg(long)]
        from: String,
        /// To (inclusive); default now.
        #[arg(long)]
        to: Option<String>,
        /// Only these points (repeat); default every point.
        #[arg(long = "point")]
        points: Vec<String>,
        /// `csv` (readings), `jsonl` (readings and events) or `line-protocol`
        /// (readings, the store schema's `reading` measurement).
        #[arg(long, default_value = "csv")]
        format: ExportFormat,
        /// Where to write; standard output if not given.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    #[cfg(feature = "edge")]
    /// Replay a history through the judge with today's settings and candidate settings:
    /// alarm figures side by side, what a candidate would miss, suggestions; a terminal
    /// summary, JSON and a self-contained HTML report (docs/tune.md).
    Tune(TuneArgs),
    /// The local API's bearer tokens: add (printed once), list, revoke.
    Token(TokenArgs),
    /// Point tables: `export` writes a site's points as CSV (the columns `points_csv`
    /// reads), to edit in a spreadsheet.
    Points {
        #[command(subcommand)]
        action: PointsAction,
    },
    /// Print the gas table in force: built-in, with a site file's `[[gases]]`.
    Gases {
        /// Include this site file's own gases.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

impl Command {
    /// Runtime workers. The gateway daemon runs on one: its work per second is small
    /// and mostly waiting on sockets, and a second worker only added cross-thread
    /// wake-ups (−18 % CPU and −3 MB RSS with one at 10,000 points, `bench/sidebyside.sh`).
    /// Its disk writes (spool, judge state) and site loads have threads of their own.
    /// The centre's ingest, the simulator and the demo keep two.
    pub fn worker_threads(&self) -> usize {
        match self {
            #[cfg(feature = "edge")]
            Self::Run { .. } => 1,
            _ => 2,
        }
    }
}

/// `hazgate tune`.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// The site file: today's settings, the points, and (`[history]`) the gateway's
    /// history, read unless another source is named.
    #[arg(long, short)]
    pub config: PathBuf,
    /// From, RFC 3339 or milliseconds since 1970.
    #[arg(long)]
    pub from: String,
    /// To; default now.
    #[arg(long)]
    pub to: Option<String>,
    /// A change of today's settings, `POINT.FIELD=VALUE` (repeat; all together make one
    /// candidate): `--set GT-101.h=18 --set GT-101.deadband=2`.
    #[arg(long = "set")]
    pub sets: Vec<String>,
    /// A candidate file (repeat for more candidates): `name = "…"` and `[[points]] id =
    /// "GT-101"`, `alarms = { h = 18 }`, as in the site file.
    #[arg(long = "candidate")]
    pub candidates: Vec<PathBuf>,
    /// Read the history from a `hazgate export --format jsonl` file instead.
    #[arg(long, conflicts_with_all = ["victoriametrics", "influxql"])]
    pub input: Option<PathBuf>,
    /// Read the history from the centre's VictoriaMetrics (its base URL; the export
    /// API), for this gateway's points.
    #[arg(long, conflicts_with = "influxql")]
    pub victoriametrics: Option<String>,
    /// Read the history from the centre's InfluxDB 1.x (its base URL; `/query`).
    #[arg(long, requires = "database")]
    pub influxql: Option<String>,
    /// The InfluxDB database of `--influxql`.
    #[arg(long)]
    pub database: Option<String>,
    /// Seconds of history replayed before `--from` to settle the judge (alarms already
    /// standing at the start), not counted.
    #[arg(long, default_value_t = 900)]
    pub warmup_s: u64,
    /// An alarm that returns to normal sooner than this is fleeting.
    #[arg(long, default_value_t = 10.0)]
    pub fleeting_s: f64,
    /// Alarm and colour changes within this much are the same change (one poll).
    #[arg(long, default_value_t = 1000)]
    pub tolerance_ms: i64,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write the `thresholds` command of the chosen candidate here (see `--choose`),
    /// carrying the report's id into the audit log when it is applied.
    #[arg(long)]
    pub emit_command: Option<PathBuf>,
    /// Which candidate `--emit-command` writes: 1 for the first (the `--set` flags count
    /// first when given).
    #[arg(long, default_value_t = 1)]
    pub choose: usize,
}

/// What `hazgate export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    LineProtocol,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The site file whose tokens these are (`[api] tokens_path`, else
    /// `{site file}.tokens.json`).
    #[arg(long, short, conflicts_with = "file")]
    pub config: Option<PathBuf>,
    /// The tokens file itself.
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[command(subcommand)]
    pub action: TokenAction,
}

#[derive(Debug, Subcommand)]
pub enum PointsAction {
    /// Every point of the site file (its CSV tables included) as one site-wide table,
    /// each row naming its hazard source.
    Export {
        #[arg(long, short)]
        config: PathBuf,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token for NAME (who it is, e.g. `op-zhang`); prints it once.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: TokenRole,
    },
    /// The tokens' names, roles and creation times (never the tokens).
    List,
    /// Remove NAME's token: refused from the next request on.
    Revoke { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TokenRole {
    /// Reads only (from other machines; reads on the gateway itself need no token).
    Viewer,
    /// Acknowledge, shelve, unshelve, special operations.
    Operator,
    /// Also thresholds and out of service.
    Engineer,
}

#[cfg(feature = "edge")]
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scripted behaviour of the simulated site.
    #[arg(long, value_enum, default_value_t = ScenarioKind::Steady)]
    pub scenario: ScenarioKind,
    /// Point id (or device id for dead-device / exception) the scenario acts on;
    /// default: the first that fits.
    #[arg(long)]
    pub target: Option<String>,
    /// Seconds of normal operation before the event.
    #[arg(long, default_value_t = 5.0)]
    pub start_after: f64,
    /// Seconds a ramp takes to reach its peak.
    #[arg(long, default_value_t = 60.0)]
    pub ramp: f64,
    /// End the event after this many seconds and return to normal.
    #[arg(long)]
    pub recover_after: Option<f64>,
}

#[cfg(feature = "edge")]
#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[arg(long, short)]
    pub config: PathBuf,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Serve channel CHANNEL on another address or path than the site file says,
    /// e.g. `--serve rs485-1=/tmp/hazgate/ttyB` (the other end of a socat pty pair)
    /// or `--serve tcp-main=127.0.0.1:15020`. Repeatable.
    #[arg(long, value_name = "CHANNEL=ADDR|PATH")]
    pub serve: Vec<String>,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Serve nothing: record this many days of the site into its `[history]` instead,
    /// on a clock of its own (as fast as the machine goes), judged as the gateway
    /// judges live — a history for trying `hazgate tune` (and its benchmark).
    #[arg(long, conflicts_with = "serve")]
    pub record_days: Option<f64>,
    /// The recording's poll period, ms.
    #[arg(long, default_value_t = 1000, requires = "record_days")]
    pub record_poll_ms: i64,
    /// When the recording starts (RFC 3339 or ms); default: so that it ends now.
    #[arg(long, requires = "record_days")]
    pub record_start: Option<String>,
    /// A scripted stretch in the recording, `chatter:POINT:FROM_S:TO_S:AROUND:AMPLITUDE`,
    /// `hold:POINT:FROM_S:TO_S:VALUE` or `fault:POINT:FROM_S:TO_S` (seconds from the
    /// start). Repeatable.
    #[arg(long = "record-pattern", requires = "record_days")]
    pub record_patterns: Vec<String>,
}

#[cfg(feature = "edge")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A site file instead of the built-in demo site.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds between screen refreshes.
    #[arg(long, default_value_t = 1.0)]
    pub refresh: f64,
    /// Risk de-escalation hold in seconds for the demo (a real site uses the site
    /// file's `risk.hold_s`, 600 s by default), so the walk back down is visible.
    #[arg(long, default_value_t = 20.0)]
    pub hold: f64,
}
