//! Ingest's HTTP endpoint: `/healthz` for the load balancer, `/metrics` for
//! Prometheus, and the command-centre screen (`/screen`, `/screen/events`).

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
};

use axum::{
    extract::{ConnectInfo, Query, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Extension, Json, Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use super::{
    alarm_loop::LoopError,
    ledger::{FeedbackError, FeedbackRequest},
    screen::{ScreenHub, SCRIPT, STYLE},
    service::Health,
    store_query::{QueryError, Selector},
};
use crate::{
    auth::{self, Role},
    contract::{vocab::is_id, GatewayPath},
};

/// Who a request comes from, when it brought a valid token (the guard sets it).
#[derive(Clone)]
struct Caller {
    name: String,
    role: Role,
}

/// What every answer says to a browser: scripts and styles only from here (none
/// inline), no data sent to others, not framed elsewhere, never sniffed, no referrer.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    prometheus: Option<PrometheusHandle>,
    screen: ScreenHub,
    access: Arc<Access>,
}

/// Who may see the screen and the metrics: the token scheme of the gateway's local API
/// (`crate::auth`), any role. A browser brings its token once, as `/screen?token=…`,
/// and keeps it in an HttpOnly, SameSite=Strict cookie.
pub struct Access {
    pub tokens: PathBuf,
    pub loopback_open: bool,
    pub backoff: auth::Backoff,
}

const COOKIE: &str = "hazgate_token";

/// Serves until `cancel`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Arc<Health>,
    prometheus: Option<PrometheusHandle>,
    screen: ScreenHub,
    access: Access,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let state = AppState {
        health,
        prometheus,
        screen,
        access: Arc::new(access),
    };
    let guarded = Router::new()
        .route("/metrics", get(metrics))
        .route("/screen", get(|| async { ScreenHub::page() }))
        .route(
            "/screen/screen.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route(
            "/screen/screen.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
            }),
        )
        .route(
            "/screen/events",
            get(|State(s): State<AppState>| async move { s.screen.events() }),
        )
        .route("/screen/feedback", post(feedback))
        .route("/screen/loop", get(alarm_loop))
        .route("/screen/plan/{park}", get(plan))
        .route("/screen/points", get(points))
        .route("/screen/trend", get(trend))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard));
    let app = Router::new()
        .route("/healthz", get(healthz))
        .merge(guarded)
        .layer(middleware::map_response(security_headers))
        .with_state(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { cancel.cancelled().await })
    .await
}

/// The token a request brings: `Authorization: Bearer`, the cookie, or `?token=`.
fn presented(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(t) = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_string());
    }
    let from_cookie = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("hazgate_token="));
    if let Some(t) = from_cookie {
        return Some(t.to_string());
    }
    req.uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string)
}

/// Lets through loopback clients (where open) and anyone with a valid token; a token
/// brought in the page's address becomes a cookie, and the address loses it.
async fn guard(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let a = &s.access;
    let mut req = req;
    let token = presented(&req);
    if a.loopback_open && peer.ip().is_loopback() && token.is_none() {
        return next.run(req).await;
    }
    let Some(token) = token else {
        return (
            StatusCode::UNAUTHORIZED,
            "a token is needed: open /screen?token=… once (hazgate token add NAME --role viewer), or send Authorization: Bearer …",
        )
            .into_response();
    };
    let Ok((name, role)) =
        auth::authenticate(&a.tokens, &a.backoff, peer.ip(), &token, "screen").await
    else {
        return (StatusCode::UNAUTHORIZED, "the token is not recognised").into_response();
    };
    req.extensions_mut().insert(Caller { name, role });
    if req.uri().path() == "/screen" && req.uri().query().is_some_and(|q| q.contains("token=")) {
        let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/screen");
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/screen".to_string()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response();
    }
    next.run(req).await
}

/// `POST /screen/feedback`: an operator's handling feedback on one alarm occurrence
/// (`{gateway, alarm_id, cause, measures?, text?}`), recorded under the token's name
/// and sent to the gateway. 403 without an operator's token (loopback access without
/// a token reads, but gives no feedback: feedback must say who).
async fn feedback(
    State(s): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: axum::body::Bytes,
) -> Response {
    let Some(l) = s.screen.alarm_loop() else {
        return loop_off();
    };
    let Some(Extension(who)) = caller.filter(|c| c.role >= Role::Operator) else {
        return (
            StatusCode::FORBIDDEN,
            "feedback needs an operator's token (hazgate token add NAME --role operator)",
        )
            .into_response();
    };
    let req: FeedbackRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a feedback request: {e}"),
            )
                .into_response()
        }
    };
    match l.feedback(&req, &who.name) {
        Ok(o) => (StatusCode::OK, Json(o)).into_response(),
        Err(e) => {
            let code = match &e {
                LoopError::Journal(_) => StatusCode::SERVICE_UNAVAILABLE,
                LoopError::Refused(FeedbackError::UnknownAlarm { .. }) => StatusCode::NOT_FOUND,
                LoopError::Refused(FeedbackError::AlreadyGiven { .. }) => StatusCode::CONFLICT,
                LoopError::Refused(_) => StatusCode::BAD_REQUEST,
            };
            (code, e.to_string()).into_response()
        }
    }
}

fn loop_off() -> Response {
    (
        StatusCode::NOT_FOUND,
        "the alarm loop is off: configure [alarm_loop] in central.toml",
    )
        .into_response()
}

/// What the drill-down asks for: a gateway, and a hazard source or a point of it.
#[derive(serde::Deserialize)]
struct DrillDown {
    park: String,
    enterprise: String,
    gateway: String,
    source: Option<String>,
    point: Option<String>,
    /// A trend's span back from now.
    #[serde(default = "default_minutes")]
    minutes: u32,
}

fn default_minutes() -> u32 {
    60
}

/// A trend reaches back at most 30 days (what the store keeps is the store's matter).
const MAX_TREND_MINUTES: u32 = 30 * 24 * 60;

/// A source's points carry their last value if the store has one this recent:
/// gateways restate every value each integrity period (60 s by default).
const POINTS_LOOKBACK: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl DrillDown {
    /// The store's selector, or what is wrong with the request.
    fn selector(&self, want_point: bool) -> Result<Selector<'_>, String> {
        let named = [
            ("park", Some(&self.park)),
            ("enterprise", Some(&self.enterprise)),
            ("gateway", Some(&self.gateway)),
            if want_point {
                ("point", self.point.as_ref())
            } else {
                ("source", self.source.as_ref())
            },
        ];
        for (name, v) in named {
            if !v.is_some_and(|v| is_id(v)) {
                return Err(format!(
                    "`{name}` must be an id (not empty; no `/`, `+`, `#` or spaces)"
                ));
            }
        }
        Ok(Selector {
            gateway: GatewayPath {
                park: &self.park,
                enterprise: &self.enterprise,
                gateway: &self.gateway,
            },
            hazard_source: if want_point {
                None
            } else {
                self.source.as_deref()
            },
            point: if want_point {
                self.point.as_deref()
            } else {
                None
            },
        })
    }
}

/// The store could not answer: logged and counted, and said (502).
fn store_failed(e: &QueryError) -> Response {
    tracing::warn!(error = %e, "screen: the store's query API failed");
    metrics::counter!("hazgate_ingest_store_query_failures_total").increment(1);
    (
        StatusCode::BAD_GATEWAY,
        format!("the store's query API failed: {e}"),
    )
        .into_response()
}

fn trends_off() -> Response {
    (
        StatusCode::NOT_FOUND,
        "trends are off: set [store] query = \"victoriametrics\" or \"influxql\" in central.toml",
    )
        .into_response()
}

/// `GET /screen/points?park&enterprise&gateway&source`: a hazard source's points with
/// their last values (within 15 min), from the store.
async fn points(State(s): State<AppState>, Query(d): Query<DrillDown>) -> Response {
    let Some(q) = s.screen.store_query() else {
        return trends_off();
    };
    let sel = match d.selector(false) {
        Ok(sel) => sel,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    match q.points(&sel, POINTS_LOOKBACK).await {
        Ok(p) => Json(serde_json::json!({
            "lookback_s": POINTS_LOOKBACK.as_secs(),
            "points": p,
        }))
        .into_response(),
        Err(e) => store_failed(&e),
    }
}

/// `GET /screen/trend?park&enterprise&gateway&point&minutes=60`: one point's trend,
/// the highest value per step (at most 600 steps), from the store.
async fn trend(State(s): State<AppState>, Query(d): Query<DrillDown>) -> Response {
    let Some(q) = s.screen.store_query() else {
        return trends_off();
    };
    if !(1..=MAX_TREND_MINUTES).contains(&d.minutes) {
        return (
            StatusCode::BAD_REQUEST,
            format!("`minutes` must be from 1 to {MAX_TREND_MINUTES}"),
        )
            .into_response();
    }
    let sel = match d.selector(true) {
        Ok(sel) => sel,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let to = crate::reading::Timestamp::now().0;
    let from = to - i64::from(d.minutes) * 60_000;
    match q.trend(&sel, from, to).await {
        Ok(t) => Json(serde_json::json!({
            "from": from,
            "to": to,
            "aggregate": "max",
            "step_s": t.step_s,
            "samples": t.samples,
        }))
        .into_response(),
        Err(e) => store_failed(&e),
    }
}

/// `GET /screen/plan/{park}`: the park's plan drawing. The page inlines it to colour
/// its shapes; the Content-Security-Policy keeps any script in it from running.
async fn plan(
    State(s): State<AppState>,
    axum::extract::Path(park): axum::extract::Path<String>,
) -> Response {
    match s.screen.plan(&park) {
        Some(svg) => (
            [(header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")],
            svg,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no plan for park `{park}`")).into_response(),
    }
}

/// `GET /screen/loop`: the alarm list with acknowledgement and feedback, the loop's
/// counters per enterprise and park, and the causes to choose from.
async fn alarm_loop(State(s): State<AppState>) -> Response {
    let Some(l) = s.screen.alarm_loop() else {
        return loop_off();
    };
    let now = crate::reading::Timestamp::now();
    Json(serde_json::json!({
        "occurrences": l.listed(now),
        "counts": l.counts(now),
        "causes": l.causes(),
    }))
    .into_response()
}

/// 200 when connected to the broker and the last store write succeeded, else 503;
/// the body says which part is down.
async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    let mqtt = s.health.mqtt_connected.load(Ordering::Relaxed);
    let store = s.health.store_ok.load(Ordering::Relaxed);
    let journal = s
        .screen
        .alarm_loop()
        .map(|l| l.journal_ok.load(Ordering::Relaxed));
    let code = if mqtt && store && journal != Some(false) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let clocks: serde_json::Map<String, serde_json::Value> = s
        .health
        .clocks
        .offsets()
        .into_iter()
        .map(|(g, ms)| (g, serde_json::json!(ms as f64 / 1000.0)))
        .collect();
    let mut body = serde_json::json!({
        "status": if code == StatusCode::OK { "ok" } else { "degraded" },
        "mqtt_connected": mqtt,
        "store_ok": store,
        "unacknowledged_messages": s.health.unacked.load(Ordering::Relaxed),
        "gateway_clock_offset_s": clocks,
    });
    // Only where the loop runs: there is no journal to report on otherwise.
    if let Some(ok) = journal {
        body["alarm_journal_ok"] = serde_json::json!(ok);
    }
    (code, Json(body))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    match s.prometheus {
        Some(h) => (StatusCode::OK, h.render()),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed".into(),
        ),
    }
}
