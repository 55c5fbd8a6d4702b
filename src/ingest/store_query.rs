//! Reading back from the time-series store what ingest wrote: the points of a hazard
//! source with their last values, and one point's trend — for the screen's drill-down
//! (park → enterprise → hazard source → point trend).
//!
//! Two query APIs, because no one speaks to every store: VictoriaMetrics' Prometheus
//! API (`/api/v1/query`, `/api/v1/query_range`, MetricsQL) and InfluxQL
//! (`/query`: InfluxDB 1.x, and 2.x / 3.x with a DBRP mapping). The queries are built
//! and the answers read by pure functions ([`Api::points_queries`], [`Api::trend_query`],
//! [`read_points`], [`read_trend`]); [`StoreQuery`] only carries them over HTTP.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use crate::contract::GatewayPath;

pub use crate::model::central::QueryApi as Api;

/// One point of a hazard source, as the store last has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointNow {
    pub point: String,
    pub kind: String,
    pub unit: Option<String>,
    /// The last value within the look-back; absent when none was read.
    pub value: Option<f64>,
    /// The last quality code (`docs/storage.md`: 0 good, 1 comm_failure, …).
    pub quality: Option<i64>,
}

/// A point's trend: the highest value in each step (a gas peak is never averaged
/// away), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub step_s: u64,
    pub samples: Vec<(i64, f64)>,
}

/// Why the store gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the store could not be reached or answered {0}")]
    Http(#[from] reqwest::Error),
    #[error("the store answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the store's answer is not what its API returns: {0}")]
    Answer(String),
    #[error("no answer within {} s", .0.as_secs())]
    NoAnswer(Duration),
}

/// Which series: a gateway's, and within it a hazard source's or one point's.
pub struct Selector<'a> {
    pub gateway: GatewayPath<'a>,
    pub hazard_source: Option<&'a str>,
    pub point: Option<&'a str>,
}

impl Selector<'_> {
    fn labels(&self) -> Vec<(&'static str, &str)> {
        let g = self.gateway;
        let mut l = vec![
            ("park", g.park),
            ("enterprise", g.enterprise),
            ("gateway", g.gateway),
        ];
        if let Some(s) = self.hazard_source {
            l.push(("hazard_source", s));
        }
        if let Some(p) = self.point {
            l.push(("point", p));
        }
        l
    }

    /// `{park="…",…}` for PromQL / MetricsQL: `\` and `"` escaped.
    fn promql(&self, metric: &str) -> String {
        let inner: Vec<String> = self
            .labels()
            .into_iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        format!("{metric}{{{}}}", inner.join(","))
    }

    /// `"park" = '…' AND …` for InfluxQL: `\` and `'` escaped.
    fn influxql(&self) -> String {
        let inner: Vec<String> = self
            .labels()
            .into_iter()
            .map(|(k, v)| {
                format!(
                    "\"{k}\" = '{}'",
                    v.replace('\\', "\\\\").replace('\'', "\\'")
                )
            })
            .collect();
        inner.join(" AND ")
    }
}

/// A query for the API: a path under the query URL and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub path: &'static str,
    pub params: Vec<(&'static str, String)>,
}

/// At most this many samples in a trend: a wall screen is a few thousand pixels wide.
pub const TREND_SAMPLES: i64 = 600;

impl Api {
    /// The queries for a hazard source's points (value, then quality — one InfluxQL
    /// query gives both).
    pub fn points_queries(self, s: &Selector<'_>, lookback: Duration, db: &str) -> Vec<Query> {
        let lb = lookback.as_secs().max(1);
        match self {
            Api::VictoriaMetrics => ["reading_value", "reading_quality"]
                .into_iter()
                .map(|m| Query {
                    path: "/api/v1/query",
                    params: vec![("query", format!("last_over_time({}[{lb}s])", s.promql(m)))],
                })
                .collect(),
            Api::InfluxQl => vec![influxql(
                db,
                format!(
                    "SELECT last(\"value\") AS \"value\", last(\"quality\") AS \"quality\" \
                     FROM \"reading\" WHERE {} AND time > now() - {lb}s \
                     GROUP BY \"point\", \"kind\", \"unit\"",
                    s.influxql()
                ),
            )],
        }
    }

    /// The query for one point's trend from `from` to `to` (ms), and its step.
    pub fn trend_query(self, s: &Selector<'_>, from: i64, to: i64, db: &str) -> (Query, u64) {
        let span_s = ((to - from).max(0) / 1000) as u64;
        let step = span_s.div_ceil(TREND_SAMPLES as u64).max(1);
        let q = match self {
            Api::VictoriaMetrics => Query {
                path: "/api/v1/query_range",
                params: vec![
                    (
                        "query",
                        format!("max_over_time({}[{step}s])", s.promql("reading_value")),
                    ),
                    ("start", format!("{:.3}", from as f64 / 1000.0)),
                    ("end", format!("{:.3}", to as f64 / 1000.0)),
                    ("step", format!("{step}s")),
                ],
            },
            Api::InfluxQl => influxql(
                db,
                format!(
                    "SELECT max(\"value\") FROM \"reading\" WHERE {} \
                     AND time >= {from}ms AND time <= {to}ms \
                     GROUP BY time({step}s) fill(none)",
                    s.influxql()
                ),
            ),
        };
        (q, step)
    }
}

impl Api {
    /// The query for every reading of a selection from `from` to `to` (ms), as stored:
    /// value, quality code and range flags (for `hazgate tune`'s replays).
    pub fn history_query(self, s: &Selector<'_>, from: i64, to: i64, db: &str) -> Query {
        match self {
            Api::VictoriaMetrics => Query {
                path: "/api/v1/export",
                params: vec![
                    (
                        "match[]",
                        s.promql("").replacen(
                            '{',
                            "{__name__=~\"reading_(value|quality|over_range|under_range)\",",
                            1,
                        ),
                    ),
                    ("start", format!("{:.3}", from as f64 / 1000.0)),
                    ("end", format!("{:.3}", to as f64 / 1000.0)),
                ],
            },
            Api::InfluxQl => influxql(
                db,
                format!(
                    "SELECT \"value\", \"quality\", \"over_range\", \"under_range\" \
                     FROM \"reading\" WHERE {} AND time >= {from}ms AND time <= {to}ms \
                     GROUP BY \"point\"",
                    s.influxql()
                ),
            ),
        }
    }
}

/// One reading as the store holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredReading {
    pub point: String,
    pub ts: i64,
    pub value: Option<f64>,
    /// The contract's quality code (good 0 … stale 4).
    pub quality: Option<i64>,
    pub over_range: bool,
    pub under_range: bool,
}

/// The readings from the answer to [`Api::history_query`], by time then point.
pub fn read_history(api: Api, body: &[u8]) -> Result<Vec<StoredReading>, QueryError> {
    let mut by_key: BTreeMap<(i64, String), StoredReading> = BTreeMap::new();
    fn slot<'m>(
        m: &'m mut BTreeMap<(i64, String), StoredReading>,
        point: &str,
        ts: i64,
    ) -> &'m mut StoredReading {
        m.entry((ts, point.to_string()))
            .or_insert_with(|| StoredReading {
                point: point.to_string(),
                ts,
                ..StoredReading::default()
            })
    }
    match api {
        Api::VictoriaMetrics => {
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let e: VmExport =
                    serde_json::from_slice(line).map_err(|e| QueryError::Answer(e.to_string()))?;
                let (Some(name), Some(point)) = (e.metric.get("__name__"), e.metric.get("point"))
                else {
                    continue;
                };
                for (t, v) in e.timestamps.iter().zip(&e.values) {
                    let v = v.as_f64().filter(|x| x.is_finite());
                    set_field(
                        slot(&mut by_key, point, *t),
                        name.trim_start_matches("reading_"),
                        v,
                    );
                }
            }
        }
        Api::InfluxQl => {
            for series in influx(body)? {
                let Some(point) = series.tags.get("point") else {
                    continue;
                };
                for row in &series.values {
                    let Some(t) = row.first().and_then(serde_json::Value::as_i64) else {
                        continue;
                    };
                    for (col, v) in series.columns.iter().zip(row).skip(1) {
                        set_field(slot(&mut by_key, point, t), col, v.as_f64());
                    }
                }
            }
        }
    }
    Ok(by_key.into_values().collect())
}

fn set_field(r: &mut StoredReading, field: &str, v: Option<f64>) {
    match field {
        "value" => r.value = v.filter(|x| x.is_finite()),
        "quality" => r.quality = v.map(|q| q as i64),
        "over_range" => r.over_range = v.is_some_and(|x| x != 0.0),
        "under_range" => r.under_range = v.is_some_and(|x| x != 0.0),
        _ => {}
    }
}

/// One series of VictoriaMetrics' `/api/v1/export` (a JSON object per line).
#[derive(Deserialize)]
struct VmExport {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<serde_json::Value>,
    #[serde(default)]
    timestamps: Vec<i64>,
}

/// An InfluxQL statement against `db`, times in milliseconds.
fn influxql(db: &str, q: String) -> Query {
    Query {
        path: "/query",
        params: vec![("db", db.to_string()), ("epoch", "ms".into()), ("q", q)],
    }
}

/// Prometheus API answers (VictoriaMetrics).
#[derive(Deserialize)]
struct PromAnswer {
    status: String,
    #[serde(default)]
    data: Option<PromData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct PromData {
    result: Vec<PromSeries>,
}

#[derive(Deserialize)]
struct PromSeries {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// InfluxQL answers.
#[derive(Deserialize)]
struct InfluxAnswer {
    #[serde(default)]
    results: Vec<InfluxResult>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct InfluxResult {
    #[serde(default)]
    series: Vec<InfluxSeries>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct InfluxSeries {
    #[serde(default)]
    tags: BTreeMap<String, String>,
    columns: Vec<String>,
    values: Vec<Vec<serde_json::Value>>,
}

fn prom(body: &[u8]) -> Result<Vec<PromSeries>, QueryError> {
    let a: PromAnswer =
        serde_json::from_slice(body).map_err(|e| QueryError::Answer(e.to_string()))?;
    match (a.status.as_str(), a.data) {
        ("success", Some(d)) => Ok(d.result),
        _ => Err(QueryError::Answer(
            a.error.unwrap_or_else(|| format!("status {}", a.status)),
        )),
    }
}

fn influx(body: &[u8]) -> Result<Vec<InfluxSeries>, QueryError> {
    let a: InfluxAnswer =
        serde_json::from_slice(body).map_err(|e| QueryError::Answer(e.to_string()))?;
    if let Some(e) = a.error {
        return Err(QueryError::Answer(e));
    }
    let mut out = Vec::new();
    for r in a.results {
        if let Some(e) = r.error {
            return Err(QueryError::Answer(e));
        }
        out.extend(r.series);
    }
    Ok(out)
}

/// A number as the Prometheus API writes one (a string; `NaN` is no value).
fn prom_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The points from the answers to [`Api::points_queries`], sorted by point.
pub fn read_points(api: Api, bodies: &[Vec<u8>]) -> Result<Vec<PointNow>, QueryError> {
    fn entry<'p>(
        points: &'p mut BTreeMap<String, PointNow>,
        tags: &BTreeMap<String, String>,
    ) -> Option<&'p mut PointNow> {
        let name = tags.get("point")?.clone();
        Some(points.entry(name.clone()).or_insert_with(|| PointNow {
            point: name,
            kind: tags.get("kind").cloned().unwrap_or_default(),
            unit: tags.get("unit").filter(|u| !u.is_empty()).cloned(),
            value: None,
            quality: None,
        }))
    }
    let mut points: BTreeMap<String, PointNow> = BTreeMap::new();
    match api {
        Api::VictoriaMetrics => {
            for (i, body) in bodies.iter().enumerate() {
                for s in prom(body)? {
                    let x = s.value.as_ref().and_then(|(_, v)| prom_number(v));
                    if let Some(p) = entry(&mut points, &s.metric) {
                        if i == 0 {
                            p.value = x;
                        } else {
                            p.quality = x.map(|q| q as i64);
                        }
                    }
                }
            }
        }
        Api::InfluxQl => {
            for body in bodies {
                for s in influx(body)? {
                    let col = |name: &str| s.columns.iter().position(|c| c == name);
                    let (value, quality) = (col("value"), col("quality"));
                    let Some(row) = s.values.first() else {
                        continue;
                    };
                    if let Some(p) = entry(&mut points, &s.tags) {
                        p.value = value.and_then(|i| row.get(i)?.as_f64());
                        p.quality = quality.and_then(|i| row.get(i)?.as_i64());
                    }
                }
            }
        }
    }
    Ok(points.into_values().collect())
}

/// The samples from the answer to [`Api::trend_query`], oldest first.
pub fn read_trend(api: Api, body: &[u8]) -> Result<Vec<(i64, f64)>, QueryError> {
    let mut out: Vec<(i64, f64)> = match api {
        Api::VictoriaMetrics => prom(body)?
            .into_iter()
            .flat_map(|s| s.values)
            .filter_map(|(t, v)| Some(((t * 1000.0).round() as i64, prom_number(&v)?)))
            .collect(),
        Api::InfluxQl => influx(body)?
            .into_iter()
            .flat_map(|s| s.values)
            .filter_map(|row| Some((row.first()?.as_i64()?, row.get(1)?.as_f64()?)))
            .collect(),
    };
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

/// The store's query API, over HTTP.
pub struct StoreQuery {
    http: reqwest::Client,
    base: String,
    api: Api,
    db: String,
    token: String,
    timeout: Duration,
}

impl StoreQuery {
    /// `None` when `[store] query` is not set: the screen then offers no trends.
    pub fn new(cfg: &crate::model::central::StoreConfig) -> Option<Self> {
        let api = cfg.query?;
        Some(Self {
            http: reqwest::Client::new(),
            base: cfg
                .query_url
                .clone()
                .unwrap_or_else(|| cfg.url.clone())
                .trim_end_matches('/')
                .to_string(),
            api,
            db: cfg.database.clone().unwrap_or_else(|| cfg.bucket.clone()),
            token: cfg.token.clone(),
            timeout: cfg.timeout(),
        })
    }

    /// A reader of the store at `base` (no token: `HAZGATE_STORE_TOKEN` when set).
    pub fn at(api: Api, base: &str, db: &str, timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            api,
            db: db.to_string(),
            token: std::env::var("HAZGATE_STORE_TOKEN").unwrap_or_default(),
            timeout,
        }
    }

    async fn get(&self, q: &Query) -> Result<Vec<u8>, QueryError> {
        let mut req = self
            .http
            .get(format!("{}{}", self.base, q.path))
            .query(&q.params);
        if !self.token.is_empty() {
            req = req.header("Authorization", format!("Token {}", self.token));
        }
        let send = async {
            let r = req.send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            if !status.is_success() {
                return Err(QueryError::Status {
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&body).chars().take(300).collect(),
                });
            }
            Ok(body.to_vec())
        };
        tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| QueryError::NoAnswer(self.timeout))?
    }

    /// A hazard source's points with their last values within `lookback`.
    pub async fn points(
        &self,
        s: &Selector<'_>,
        lookback: Duration,
    ) -> Result<Vec<PointNow>, QueryError> {
        let mut bodies = Vec::new();
        for q in self.api.points_queries(s, lookback, &self.db) {
            bodies.push(self.get(&q).await?);
        }
        read_points(self.api, &bodies)
    }

    /// Every stored reading of a selection from `from` to `to` (ms).
    pub async fn history(
        &self,
        s: &Selector<'_>,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredReading>, QueryError> {
        let body = self
            .get(&self.api.history_query(s, from, to, &self.db))
            .await?;
        read_history(self.api, &body)
    }

    /// One point's trend from `from` to `to` (ms).
    pub async fn trend(&self, s: &Selector<'_>, from: i64, to: i64) -> Result<Trend, QueryError> {
        let (q, step_s) = self.api.trend_query(s, from, to, &self.db);
        let body = self.get(&q).await?;
        Ok(Trend {
            step_s,
            samples: read_trend(self.api, &body)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel<'a>(point: Option<&'a str>) -> Selector<'a> {
        Selector {
            gateway: GatewayPath {
                park: "P",
                enterprise: "E\"1",
                gateway: "G'1\\",
            },
            hazard_source: Some("HS-01"),
            point,
        }
    }

    /// An id may hold quotes and backslashes (the contract forbids only `/ + #` and
    /// white space): they are escaped, never ending the string early.
    #[test]
    fn ids_are_escaped_in_both_languages() {
        let s = sel(Some("GT-1"));
        assert_eq!(
            s.promql("reading_value"),
            r#"reading_value{park="P",enterprise="E\"1",gateway="G'1\\",hazard_source="HS-01",point="GT-1"}"#
        );
        assert_eq!(
            s.influxql(),
            r#""park" = 'P' AND "enterprise" = 'E"1' AND "gateway" = 'G\'1\\' AND "hazard_source" = 'HS-01' AND "point" = 'GT-1'"#
        );
    }

    #[test]
    fn a_trend_has_at_most_its_sample_budget_and_steps_of_a_second_or_more() {
        let s = sel(Some("GT-1"));
        let (_, step) = Api::VictoriaMetrics.trend_query(&s, 0, 3_600_000, "db");
        assert_eq!(step, 6);
        let (_, step) = Api::InfluxQl.trend_query(&s, 0, 60_000, "db");
        assert_eq!(step, 1);
        let (q, step) = Api::InfluxQl.trend_query(&s, 0, 30 * 86_400_000, "db");
        assert_eq!(step, 4320);
        assert!(
            q.params[2].1.contains("GROUP BY time(4320s) fill(none)"),
            "{q:?}"
        );
    }

    #[test]
    fn answers_are_read_and_errors_named() {
        let vm_value = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"point":"GT-2","kind":"toxic_gas","unit":"ppm"},"value":[1700000000,"12.5"]},
            {"metric":{"point":"GT-1","kind":"combustible_gas"},"value":[1700000000,"NaN"]}]}}"#;
        let vm_quality = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"point":"GT-1","kind":"combustible_gas"},"value":[1700000000,"1"]}]}}"#;
        let p = read_points(
            Api::VictoriaMetrics,
            &[vm_value.to_vec(), vm_quality.to_vec()],
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].point.as_str(), p[0].value, p[0].quality),
            ("GT-1", None, Some(1))
        );
        assert_eq!(
            (p[1].unit.as_deref(), p[1].value),
            (Some("ppm"), Some(12.5))
        );
        let iq = br#"{"results":[{"statement_id":0,"series":[{"name":"reading",
            "tags":{"point":"GT-1","kind":"combustible_gas","unit":"%LEL"},
            "columns":["time","value","quality"],"values":[[0,60.5,0]]}]}]}"#;
        let p = read_points(Api::InfluxQl, &[iq.to_vec()]).unwrap();
        assert_eq!((p[0].value, p[0].quality), (Some(60.5), Some(0)));
        let t = read_trend(
            Api::InfluxQl,
            br#"{"results":[{"series":[{"name":"reading","columns":["time","max"],"values":[[2000,2.5],[1000,1.5]]}]}]}"#,
        )
        .unwrap();
        assert_eq!(t, [(1000, 1.5), (2000, 2.5)]);
        let t = read_trend(
            Api::VictoriaMetrics,
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1.5,"3"]]}]}}"#,
        )
        .unwrap();
        assert_eq!(t, [(1500, 3.0)]);
        for (api, body, says) in [
            (
                Api::InfluxQl,
                &br#"{"results":[{"error":"database not found: x"}]}"#[..],
                "database not found",
            ),
            (
                Api::VictoriaMetrics,
                br#"{"status":"error","error":"cannot parse"}"#,
                "cannot parse",
            ),
            (Api::VictoriaMetrics, b"<html>", "not what its API returns"),
        ] {
            let e = read_trend(api, body).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
