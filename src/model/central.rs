//! `central.toml`: where the centre's ingest subscribes, where it writes, where it serves.
//!
//! Every instance of a scaled-out ingest reads the same file except `mqtt.client_id`
//! (stable per instance: its persistent session holds what it has not acknowledged).

use std::{net::SocketAddr, path::Path};

use serde::{Deserialize, Serialize};

use crate::model::{
    alarm_loop::AlarmLoopConfig,
    load::load_toml,
    mqtt::{MqttEndpoint, Protocol, TlsConfig, TlsFileError},
    problems::{At, FieldError, Problems},
    LoadError, SiteSource,
};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub mqtt: MqttConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub screen: ScreenConfig,
    #[serde(default)]
    pub clock: ClockConfig,
    /// The alarm-handling loop (journal, feedback, deadlines); off when absent.
    #[serde(default)]
    pub alarm_loop: Option<AlarmLoopConfig>,
}

/// Gateways' clocks, measured from their status messages.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// A gateway whose clock is further than this from the centre's is reported (log,
    /// `/healthz`, `hazgate_ingest_gateway_clock_offset_seconds`).
    #[serde(default = "default_clock_tolerance")]
    pub tolerance_s: u64,
    /// Store such a gateway's readings and events at its time less the measured
    /// offset (the centre's time), instead of only reporting it. Off by default: the
    /// estimate needs a few status messages, so the first data of a gateway that
    /// starts off are stored unshifted.
    #[serde(default)]
    pub restamp: bool,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            tolerance_s: default_clock_tolerance(),
            restamp: false,
        }
    }
}

fn default_clock_tolerance() -> u64 {
    60
}

/// The command-centre screen (`/screen`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenConfig {
    /// A hazard source not heard of for this long is shown grey as stale. Gateways
    /// restate every level each integrity period (60 s by default): three periods.
    #[serde(default = "default_stale_after")]
    pub stale_after_s: u64,
    /// Park plans (一图): an SVG drawing per park whose shapes name the enterprise or
    /// hazard source they stand for, coloured live on the screen.
    #[serde(default)]
    pub plans: Vec<PlanConfig>,
}

impl Default for ScreenConfig {
    fn default() -> Self {
        Self {
            stale_after_s: default_stale_after(),
            plans: Vec::new(),
        }
    }
}

/// One park's plan: `svg` (relative to `central.toml`'s directory) is an SVG whose
/// elements carry `data-source="{enterprise}/{hazard source}"` or
/// `data-enterprise="{enterprise}"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    pub park: String,
    pub svg: std::path::PathBuf,
}

/// Largest plan drawing: a park's layout, not a satellite image.
pub const MAX_PLAN_BYTES: usize = 4 << 20;

impl PlanConfig {
    /// Reads the drawing, `svg` taken relative to `dir`; the error names the fix.
    pub fn read(&self, dir: &Path) -> Result<String, String> {
        let path = dir.join(&self.svg);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if text.len() > MAX_PLAN_BYTES {
            return Err(format!(
                "{} is {} bytes; at most {MAX_PLAN_BYTES} (simplify the drawing)",
                path.display(),
                text.len()
            ));
        }
        if !text.contains("<svg") {
            return Err(format!(
                "{} is not an SVG drawing (no <svg>)",
                path.display()
            ));
        }
        if !text.contains("data-source=") && !text.contains("data-enterprise=") {
            return Err(format!(
                "{}: no shape names what it stands for: give shapes data-source=\"ENTERPRISE/HS-ID\" or data-enterprise=\"ENTERPRISE\"",
                path.display()
            ));
        }
        Ok(text)
    }
}

fn default_stale_after() -> u64 {
    180
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// Stable and unique per instance: the broker keeps this instance's unacknowledged
    /// messages in its persistent session across restarts.
    pub client_id: String,
    /// Shared-subscription group: instances in one group split the stream.
    #[serde(default = "default_group")]
    pub group: String,
    /// The gateways' topic prefix (`{prefix}/v1/…`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default = "default_keepalive")]
    pub keepalive_s: u64,
    /// Where malformed or schema-invalid messages are parked (with their topic and cause).
    #[serde(default = "default_dead_letter")]
    pub dead_letter_topic: String,
    /// Larger messages are dead-lettered unread (a gateway's batch is ≈ 70 KiB).
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
    /// Count gaps in each gateway's streams (`stream_seq`): a metric and a `seq_gap`
    /// point per gap. Exact with one instance in the group; with several, each sees a
    /// share of every stream and would count the others' messages as lost — set false.
    #[serde(default = "default_true")]
    pub count_seq_gaps: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Base URL of the InfluxDB v2 write API (`/api/v2/write` is appended), without a
    /// path: the influxdb2 crate drops one silently.
    pub url: String,
    pub org: String,
    pub bucket: String,
    /// API token; better from the environment: `HAZGATE__STORE__TOKEN`.
    #[serde(default)]
    pub token: String,
    /// A batch is written when it holds this many points …
    #[serde(default = "default_batch_points")]
    pub batch_max_points: usize,
    /// … or when its oldest message has waited this long.
    #[serde(default = "default_batch_ms")]
    pub batch_max_ms: u64,
    /// One write attempt may take this long before it counts as failed and is retried.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// How the screen reads trends back (its drill-down to a point): `victoriametrics`
    /// (the Prometheus query API) or `influxql` (`/query`). Unset: no trends.
    #[serde(default)]
    pub query: Option<QueryApi>,
    /// Where that API is, when not at `url` (e.g. an InfluxDB 1.x beside a
    /// VictoriaMetrics, or `http://vmselect:8481/select/0/prometheus`).
    #[serde(default)]
    pub query_url: Option<String>,
    /// The InfluxQL database; default: `bucket`.
    #[serde(default)]
    pub database: Option<String>,
}

/// A store's query API (`[store] query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryApi {
    /// VictoriaMetrics: `/api/v1/query` and `/api/v1/query_range` (MetricsQL).
    VictoriaMetrics,
    /// InfluxDB: `/query` (InfluxQL).
    InfluxQl,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `/healthz`, `/metrics` and the screen; `off` to disable.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer tokens for the screen and `/metrics` (`hazgate token --file …`): default
    /// `{central.toml}.tokens.json`. `/healthz` stays open for load balancers.
    #[serde(default)]
    pub tokens_path: Option<std::path::PathBuf>,
    /// Whether a client on the loopback address needs no token (a screen on the same
    /// machine). Set false behind a reverse proxy on the same machine, whose requests
    /// all come from loopback.
    #[serde(default = "default_true")]
    pub loopback_open: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tokens_path: None,
            loopback_open: true,
        }
    }
}

fn default_mqtt_port() -> u16 {
    1883
}
fn default_group() -> String {
    "hazgate-ingest".into()
}
fn default_prefix() -> String {
    "hazgate".into()
}
fn default_keepalive() -> u64 {
    30
}
fn default_dead_letter() -> String {
    "hazgate-ingest/dead-letter".into()
}
fn default_max_message() -> usize {
    1 << 20
}
fn default_batch_points() -> usize {
    20_000
}
fn default_batch_ms() -> u64 {
    200
}
fn default_timeout() -> u64 {
    10
}
fn default_listen() -> String {
    "127.0.0.1:8090".into()
}

impl MqttConfig {
    /// This instance's broker connection as `client_id` (the screen's own session has
    /// an id of its own); MQTT 3.1.1, which shared subscriptions work over.
    pub fn endpoint(&self, client_id: String) -> MqttEndpoint {
        MqttEndpoint {
            host: self.host.clone(),
            port: self.port,
            protocol: Protocol::V311,
            client_id,
            credentials: self
                .username
                .clone()
                .map(|u| (u, self.password.clone().unwrap_or_default())),
            tls: self.tls.clone(),
            keepalive: std::time::Duration::from_secs(self.keepalive_s),
        }
    }

    /// rumqttc options as `client_id`; the caller sets what differs (session kind,
    /// acks, packet sizes).
    pub fn options(&self, client_id: String) -> Result<rumqttc::MqttOptions, TlsFileError> {
        self.endpoint(client_id).v311_options()
    }
}

impl IngestConfig {
    /// Loads `central.toml` with `HAZGATE__…` overrides and checks it; every problem
    /// names its field.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let (file, cfg): (String, IngestConfig) = load_toml(SiteSource::Path(path), true)?;
        let errors = cfg.problems();
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(LoadError { file, errors })
        }
    }

    /// `Some(addr)` unless the HTTP endpoint is `off`.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.listen.parse().ok()
    }

    fn problems(&self) -> Vec<FieldError> {
        let mut p = Problems::default();
        self.mqtt.check(&mut p.at("mqtt"));
        self.store.check(&mut p.at("store"));
        if let Some(l) = &self.alarm_loop {
            l.check(&mut p.at("alarm_loop"));
            if self.http.listen == "off" {
                p.push(
                    "alarm_loop",
                    "needs the HTTP side (feedback is given on the screen): set http.listen, e.g. \"127.0.0.1:8090\"",
                );
            }
        }
        for (i, plan) in self.screen.plans.iter().enumerate() {
            if self.screen.plans[..i].iter().any(|p| p.park == plan.park) {
                p.push(
                    format!("screen.plans[{i}].park"),
                    format!("`{}` has a plan already: one plan per park", plan.park),
                );
            }
        }
        if self.screen.stale_after_s == 0 {
            p.push(
                "screen.stale_after_s",
                "must be at least 1 (a few of the gateways' integrity periods, e.g. 180)",
            );
        }
        if self.http.listen != "off" && self.http_addr().is_none() {
            p.push(
                "http.listen",
                format!("`{}`: expected IP:PORT or off", self.http.listen),
            );
        }
        p.into_vec()
    }
}

impl MqttConfig {
    fn check(&self, p: &mut At<'_>) {
        let password_without_user = self.username.is_none() && self.password.is_some();
        self.endpoint(self.client_id.clone())
            .check(password_without_user, p);
        if self.client_id.trim().is_empty() {
            p.push("client_id", "must be set, stable and unique per instance");
        }
        for (field, value) in [("group", &self.group), ("prefix", &self.prefix)] {
            if value.is_empty() || value.contains(['+', '#', '/']) {
                p.push(field, format!("`{value}` must be non-empty, without + # /"));
            }
        }
        if self.dead_letter_topic.is_empty() || self.dead_letter_topic.contains(['+', '#']) {
            p.push("dead_letter_topic", "must be a topic without + or #");
        }
        if self.max_message_bytes < 1024 {
            p.push("max_message_bytes", "must be at least 1024");
        }
    }
}

impl StoreConfig {
    /// How long one write attempt may take before it counts as failed.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_s)
    }

    /// How long the oldest message of a batch may wait for the batch to be written.
    pub fn batch_max_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.batch_max_ms)
    }

    fn check(&self, p: &mut At<'_>) {
        if let Some(u) = &self.query_url {
            if let Err(e) = url_path(u) {
                p.push("query_url", e);
            }
            if self.query.is_none() {
                p.push(
                    "query",
                    "must be set with query_url: `victoriametrics` or `influxql`",
                );
            }
        }
        match url_path(&self.url) {
            Err(e) => p.push("url", e),
            Ok(path) if !path.is_empty() && path != "/" => p.push(
                "url",
                format!(
                    "`{}`: no path allowed (the influxdb2 client would drop `{path}`)",
                    self.url
                ),
            ),
            Ok(_) => {}
        }
        for (field, empty) in [
            ("org", self.org.is_empty()),
            ("bucket", self.bucket.is_empty()),
        ] {
            if empty {
                p.push(field, "must be set");
            }
        }
        for (field, zero) in [
            ("batch_max_points", self.batch_max_points == 0),
            ("batch_max_ms", self.batch_max_ms == 0),
            ("timeout_s", self.timeout_s == 0),
        ] {
            if zero {
                p.push(field, "must be at least 1");
            }
        }
    }
}

/// The path of an `http://` or `https://` URL.
fn url_path(url: &str) -> Result<&str, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("`{url}` must start with http:// or https://"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> IngestConfig {
        let cfg: IngestConfig = toml::from_str(toml).unwrap();
        cfg
    }

    const MIN: &str = "[mqtt]\nhost = \"b\"\nclient_id = \"i-1\"\n[store]\nurl = \"http://vm:8428\"\norg = \"o\"\nbucket = \"b\"\n";

    /// The drill-down's query API: where it is must be a URL, and which API it speaks
    /// must be said; a name the screen cannot speak is refused by its spelling.
    #[test]
    fn the_query_api_is_named_and_its_url_checked() {
        let c = parse(&MIN.replace(
            "bucket = \"b\"\n",
            "bucket = \"b\"\nquery_url = \"vm:8481\"\n",
        ));
        let got: Vec<(String, String)> = c
            .problems()
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect();
        let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["store.query_url", "store.query"], "{got:?}");
        assert!(got[0].1.contains("must start with http://"), "{got:?}");
        let ok = parse(&MIN.replace(
            "bucket = \"b\"\n",
            "bucket = \"b\"\nquery = \"influxql\"\nquery_url = \"http://influx:8086\"\n",
        ));
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
        assert_eq!(ok.store.query, Some(QueryApi::InfluxQl));
        assert!(toml::from_str::<IngestConfig>(&MIN.replace(
            "bucket = \"b\"\n",
            "bucket = \"b\"\nquery = \"prometheus\"\n"
        ))
        .unwrap_err()
        .to_string()
        .contains("victoriametrics"));
    }

    #[test]
    fn a_minimal_file_takes_defaults_and_passes() {
        let c = parse(MIN);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.mqtt.group, "hazgate-ingest");
        assert_eq!(c.store.batch_max_ms, 200);
    }

    #[test]
    fn problems_name_their_field() {
        let c = parse(
            &MIN.replace("http://vm:8428", "http://vm:8428/influx")
                .replace("\"i-1\"", "\"\""),
        );
        let fields: Vec<String> = c.problems().into_iter().map(|e| e.path).collect();
        assert_eq!(fields, ["mqtt.client_id", "store.url"]);
        let c = parse(&MIN.replace("http://vm:8428", "vm:8428"));
        assert!(c.problems()[0].message.contains("http://"));
    }

    #[test]
    fn the_alarm_loops_problems_name_their_field_and_the_fix() {
        let c = parse(&format!(
            "{MIN}[http]\nlisten = \"off\"\n[alarm_loop]\njournal_dir = \"/var/lib/hazgate/alarms\"\n\
             causes = [{{ id = \"leak\", name = \"泄漏\" }}, {{ id = \"leak\", name = \"\" }}, {{ id = \"a b\", name = \"x\" }}]\n\
             feedback_deadline_min = {{ critical = 0, high = 60, low = 240 }}\nstore_every_s = 0\n"
        ));
        let got: Vec<(String, String)> = c
            .problems()
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect();
        let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "alarm_loop.causes[1].id",
                "alarm_loop.causes[1].name",
                "alarm_loop.causes[2].id",
                "alarm_loop.feedback_deadline_min.critical",
                "alarm_loop.store_every_s",
                "alarm_loop",
            ],
            "{got:?}"
        );
        assert!(got[0].1.contains("listed twice"), "{got:?}");
        assert!(got[4].1.contains("from 1 to 3600"), "{got:?}");
        assert!(got[5].1.contains("set http.listen"), "{got:?}");
        let defaults = parse(&format!("{MIN}[alarm_loop]\njournal_dir = \"a\"\n"));
        assert!(defaults.problems().is_empty(), "{:?}", defaults.problems());
        let l = defaults.alarm_loop.unwrap();
        assert_eq!(
            (
                l.feedback_deadline_min.critical,
                l.report_utc_offset_h,
                l.store_every_s
            ),
            (30, 8, 60)
        );
        assert!(l.causes.iter().any(|c| c.id == "false_alarm"));
    }

    #[test]
    fn a_plan_that_cannot_be_shown_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let plan = |svg: &str| PlanConfig {
            park: "P".into(),
            svg: svg.into(),
        };
        std::fs::write(
            dir.path().join("ok.svg"),
            "<svg><rect data-source=\"E/HS-1\"/></svg>",
        )
        .unwrap();
        std::fs::write(dir.path().join("png.svg"), "\u{89}PNG").unwrap();
        std::fs::write(dir.path().join("bare.svg"), "<svg><rect/></svg>").unwrap();
        assert!(plan("ok.svg").read(dir.path()).is_ok());
        let err = |f: &str| plan(f).read(dir.path()).unwrap_err();
        assert!(
            err("missing.svg").contains("cannot read"),
            "{}",
            err("missing.svg")
        );
        assert!(err("png.svg").contains("not an SVG"));
        assert!(err("bare.svg").contains("give shapes data-source="));
        let twice = parse(&format!(
            "{MIN}[[screen.plans]]\npark = \"P\"\nsvg = \"a.svg\"\n[[screen.plans]]\npark = \"P\"\nsvg = \"b.svg\"\n"
        ));
        let fields: Vec<String> = twice.problems().into_iter().map(|e| e.path).collect();
        assert_eq!(fields, ["screen.plans[1].park"]);
    }
}
