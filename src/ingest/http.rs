//! Ingest's HTTP endpoint: `/healthz` for the load balancer, `/metrics` for
//! Prometheus, and the command-centre screen (`/screen`, `/screen/events`).

use std::sync::{atomic::Ordering, Arc};

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use super::{screen::ScreenHub, service::Health};

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    prometheus: Option<PrometheusHandle>,
    screen: ScreenHub,
}

/// Serves until `cancel`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Arc<Health>,
    prometheus: Option<PrometheusHandle>,
    screen: ScreenHub,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/screen", get(|| async { ScreenHub::page() }))
        .route(
            "/screen/events",
            get(|State(s): State<AppState>| async move { s.screen.events() }),
        )
        .with_state(AppState {
            health,
            prometheus,
            screen,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

/// 200 when connected to the broker and the last store write succeeded, else 503;
/// the body says which part is down.
async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    let mqtt = s.health.mqtt_connected.load(Ordering::Relaxed);
    let store = s.health.store_ok.load(Ordering::Relaxed);
    let code = if mqtt && store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if code == StatusCode::OK { "ok" } else { "degraded" },
        "mqtt_connected": mqtt,
        "store_ok": store,
        "unacknowledged_messages": s.health.unacked.load(Ordering::Relaxed),
    });
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
