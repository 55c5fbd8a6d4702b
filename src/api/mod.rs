//! Local HTTP API of the gateway, bound to 127.0.0.1 by default: current risk levels
//! and alarms for a local screen or a commissioning laptop, operator commands, a health
//! check and Prometheus metrics.
//!
//! | route | |
//! |---|---|
//! | `GET /api/v1/state` | enterprise and hazard-source colours with reasons, alarm counts |
//! | `GET /api/v1/alarms` | every alarm not quiet: active, unacknowledged, shelved, out of service |
//! | `GET /api/v1/thresholds` | the alarm settings in force per point (site file, overrides, remote changes) |
//! | `POST /api/v1/commands/{name}` | a command, as over MQTT (see [`crate::commands`]); needs a bearer token whose role allows it |
//! | `GET /healthz` | `ok`; `degraded` while a device is down or the uplink spools; 503 if the judge is gone, a stage (the judge, a channel) is hung, or the spool cannot be written |
//! | `GET /metrics` | Prometheus text format |

pub mod history;
pub mod serve;

use std::{
    net::IpAddr,
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
    time::Instant,
};

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Extension, Json, Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use self::serve::Peer;
use crate::{
    acquire::AcquireStats,
    auth::{self, Refusal, Role},
    commands::{self, required_role, AuditLog, Channel, COMMANDS, MAX_COMMAND_BYTES},
    forward::health::UplinkHealth,
    judge::service::JudgeHandle,
    vitals::Vitals,
};

#[derive(Clone)]
pub struct ApiState {
    pub judge: JudgeHandle,
    pub stats: Arc<AcquireStats>,
    /// The MQTT uplink's state, when the site has one.
    pub uplink: Option<Arc<UplinkHealth>>,
    pub prometheus: Option<PrometheusHandle>,
    pub started: Instant,
    /// The gateway's one audit log (shared with the MQTT commands).
    pub audit: Arc<AuditLog>,
    /// The bearer tokens, read at each check (a revoke takes effect at once).
    pub tokens: PathBuf,
    pub backoff: Arc<auth::Backoff>,
    /// The history, when the site keeps one: its directory and how it is doing.
    pub history: Option<history::HistoryAccess>,
    /// Whether the judge and every channel are working (not hung).
    pub vitals: Vitals,
}

pub fn router(state: ApiState) -> Router {
    let reads = Router::new()
        .route("/api/v1/state", get(get_state))
        .route("/api/v1/alarms", get(get_alarms))
        .route("/api/v1/thresholds", get(get_thresholds))
        .route("/api/v1/history", get(history::get_history))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard_reads));
    Router::new()
        .route("/api/v1/commands/{name}", post(post_command))
        .layer(DefaultBodyLimit::max(MAX_COMMAND_BYTES))
        .merge(reads)
        .layer(middleware::map_response(no_store))
        .with_state(state)
}

/// Answers are live state: never cached, never sniffed.
async fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Reads are open on the loopback address (a local screen, a commissioning laptop on the
/// gateway); from anywhere else they need a token too.
async fn guard_reads(
    State(s): State<ApiState>,
    Extension(Peer(peer)): Extension<Peer>,
    req: Request,
    next: Next,
) -> Response {
    if !peer.ip().is_loopback() {
        if let Err(refused) = authenticate(&s, peer.ip(), req.headers()).await {
            return refused;
        }
    }
    next.run(req).await
}

fn refuse(code: StatusCode, error: String) -> Response {
    let mut r = (code, Json(json!({"ok": false, "error": error}))).into_response();
    if code == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hazgate\""),
        );
    }
    r
}

/// Who presents the request's bearer token: its name and role. A bad token is answered
/// late (see [`auth::Backoff`]).
async fn authenticate(
    s: &ApiState,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<(String, Role), Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "a bearer token is needed (Authorization: Bearer …; make one with `hazgate token add NAME --role ROLE`)".into(),
        ));
    };
    auth::authenticate(&s.tokens, &s.backoff, peer, presented, "local_api")
        .await
        .map_err(|r| match r {
            Refusal::Unusable(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            Refusal::NotRecognised => refuse(
                StatusCode::UNAUTHORIZED,
                "the token is not recognised".into(),
            ),
        })
}

/// `POST /api/v1/commands/{name}`: the command's JSON as over MQTT; `by` is the token's
/// name. 401 without a valid token, 403 when its role does not allow the command,
/// 400 with a precise error when the command is refused, 413 over 16 KiB.
async fn post_command(
    State(s): State<ApiState>,
    Extension(Peer(peer)): Extension<Peer>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, role) = match authenticate(&s, peer.ip(), &headers).await {
        Ok(w) => w,
        Err(refused) => return refused,
    };
    let Some(needed) = required_role(&name) else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("unknown command `{name}` (known: {})", COMMANDS.join(", ")),
        );
    };
    if role < needed {
        let error = format!(
            "`{who}` is a {} token; {name} needs {}",
            role.as_str(),
            needed.as_str()
        );
        commands::audit_refusal(&s.audit, Channel::LocalApi, &name, &body, &who, &error).await;
        return refuse(StatusCode::FORBIDDEN, error);
    }
    let outcome = commands::execute(
        &s.judge,
        &s.audit,
        Channel::LocalApi,
        &name,
        &body,
        Some(&who),
    )
    .await;
    match outcome.result {
        Ok(events) => Json(json!({"ok": true, "request_id": outcome.request_id, "events": events}))
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "request_id": outcome.request_id, "error": e})),
        )
            .into_response(),
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "the judge is not running"})),
    )
        .into_response()
}

async fn get_state(State(s): State<ApiState>) -> Response {
    match s.judge.state().await {
        Ok(v) => Json(v).into_response(),
        Err(_) => unavailable(),
    }
}

async fn get_thresholds(State(s): State<ApiState>) -> Response {
    match s.judge.thresholds().await {
        Ok(v) => Json(v).into_response(),
        Err(_) => unavailable(),
    }
}

async fn get_alarms(State(s): State<ApiState>) -> Response {
    match s.judge.alarms().await {
        Ok(v) => Json(v).into_response(),
        Err(_) => unavailable(),
    }
}

/// `ok` when every device answers and the uplink (if any) is connected; `degraded`
/// while a device is down or the uplink is spooling (broker unreachable, messages wait
/// in the spool): both 200, the gateway still does its job. 503 when it cannot: the
/// judge is gone, a stage is hung (`crate::vitals`: answered without asking the judge),
/// or the spool cannot be written (messages at risk).
async fn healthz(State(s): State<ApiState>) -> Response {
    let down: Vec<String> = s
        .stats
        .devices
        .iter()
        .filter(|(_, c)| c.down.load(Ordering::Relaxed))
        .map(|(id, _)| id.to_string())
        .collect();
    // A hung stage is reported, not waited for: a hung judge would never answer.
    let stalled = s.vitals.stalled();
    if !stalled.is_empty() {
        let body = json!({
            "status": "failed",
            "stalled": stalled.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    if s.judge.state().await.is_err() {
        return unavailable();
    }
    let uplink = s.uplink.as_ref().map(|u| u.report());
    let state = uplink.as_ref().map_or("connected", |u| u.state);
    let judge_state = s.judge.state_problem();
    let (code, status) = match (state, down.is_empty() && judge_state.is_none()) {
        ("failed", _) => (StatusCode::SERVICE_UNAVAILABLE, "failed"),
        ("connected", true) => (StatusCode::OK, "ok"),
        _ => (StatusCode::OK, "degraded"),
    };
    let body = json!({
        "status": status,
        "uptime_s": s.started.elapsed().as_secs(),
        "devices_total": s.stats.devices.len(),
        "devices_down": down,
        "uplink": uplink,
        // What is wrong with keeping the judge's state (acknowledgements, shelves…).
        "judge_state_problem": judge_state,
    });
    let mut body = body;
    if let Some(h) = &s.history {
        let ok = h.health.ok.load(Ordering::Relaxed);
        body["history_ok"] = json!(ok);
        body["history_error"] = json!(h.health.error());
        if !ok && status == "ok" {
            body["status"] = json!("degraded");
        }
    }
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<ApiState>) -> Response {
    if let Some(u) = &s.uplink {
        u.record_gauges();
    }
    let body = s
        .prometheus
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
