//! Local HTTP API of the gateway, bound to 127.0.0.1 by default: current risk levels
//! and alarms for a local screen or a commissioning laptop, operator commands, a health
//! check and Prometheus metrics.
//!
//! | route | |
//! |---|---|
//! | `GET /api/v1/state` | enterprise and hazard-source colours with reasons, alarm counts |
//! | `GET /api/v1/alarms` | every alarm not quiet: active, unacknowledged, shelved, out of service |
//! | `GET /api/v1/thresholds` | the alarm settings in force per point (site file, overrides, remote changes) |
//! | `POST /api/v1/commands` | a judge command (JSON, see [`crate::judge::Command`]) |
//! | `GET /healthz` | `ok`; `degraded` while a device is down or the uplink spools; 503 if the judge is gone or the spool cannot be written |
//! | `GET /metrics` | Prometheus text format |

use std::{
    net::SocketAddr,
    sync::{atomic::Ordering, Arc},
    time::Instant,
};

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    acquire::AcquireStats,
    forward::health::UplinkHealth,
    judge::{service::JudgeHandle, Command},
};

#[derive(Clone)]
pub struct ApiState {
    pub judge: JudgeHandle,
    pub stats: Arc<AcquireStats>,
    /// The MQTT uplink's state, when the site has one.
    pub uplink: Option<Arc<UplinkHealth>>,
    pub prometheus: Option<PrometheusHandle>,
    pub started: Instant,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/state", get(get_state))
        .route("/api/v1/alarms", get(get_alarms))
        .route("/api/v1/thresholds", get(get_thresholds))
        .route("/api/v1/commands", post(post_command))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves the API on `listener` until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    info!(?addr, "local API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
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

async fn post_command(State(s): State<ApiState>, Json(cmd): Json<Command>) -> Response {
    match s.judge.command(cmd).await {
        Ok(Ok(events)) => Json(json!({"ok": true, "events": events})).into_response(),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": e.to_string()})),
        )
            .into_response(),
        Err(_) => unavailable(),
    }
}

/// `ok` when every device answers and the uplink (if any) is connected; `degraded`
/// while a device is down or the uplink is spooling (broker unreachable, messages wait
/// in the spool): both 200, the gateway still does its job. 503 when it cannot: the
/// judge is gone, or the spool cannot be written (messages at risk).
async fn healthz(State(s): State<ApiState>) -> Response {
    let down: Vec<String> = s
        .stats
        .devices
        .iter()
        .filter(|(_, c)| c.down.load(Ordering::Relaxed))
        .map(|(id, _)| id.to_string())
        .collect();
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
