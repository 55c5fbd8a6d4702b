//! Ingest's HTTP endpoint: `/healthz` for the load balancer, `/metrics` for
//! Prometheus, and the command-centre screen (`/screen`, `/screen/events`).

use std::sync::{atomic::Ordering, Arc};

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use super::{
    screen::{ScreenHub, SCRIPT, STYLE},
    service::Health,
};

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
        .layer(middleware::map_response(security_headers))
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
