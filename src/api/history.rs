//! `GET /api/v1/history?point=GT-101&from=…&to=…`: one point's stored readings, for a
//! local screen's trend (times as RFC 3339 or milliseconds; default the last hour).

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use crate::{
    history::store,
    reading::{Timestamp, Value},
};

/// What the API needs of the history: where it is, how it is doing, whose points.
#[derive(Clone)]
pub struct HistoryAccess {
    pub dir: std::path::PathBuf,
    pub health: std::sync::Arc<crate::history::task::HistoryHealth>,
    pub site: std::sync::Arc<crate::model::Site>,
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    point: String,
    from: Option<String>,
    to: Option<String>,
}

/// At most this many readings in one answer: ask for a shorter span beyond it.
const MAX_READINGS: usize = 100_000;

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// A time as RFC 3339 or milliseconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| {
        let t = humantime::parse_rfc3339_weak(s).ok()?;
        let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(ms).ok()
    })
}

pub async fn get_history(State(s): State<ApiState>, Query(q): Query<HistoryQuery>) -> Response {
    let Some(h) = s.history.clone() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "this gateway keeps no history: add [history] to the site file"})),
        )
            .into_response();
    };
    let dir = h.dir.clone();
    let Some(point) = h
        .site
        .point_by_id(&q.point)
        .map(|p| (p.index, p.unit.to_string()))
    else {
        return bad(format!("no point `{}` in this site", q.point));
    };
    let now = Timestamp::now().0;
    let time = |v: &Option<String>, default: i64, name: &str| match v {
        None => Ok(default),
        Some(t) => parse_time(t)
            .ok_or_else(|| format!("`{name}`: `{t}` is neither RFC 3339 nor milliseconds")),
    };
    let (from, to) = match (
        time(&q.from, now - 3_600_000, "from"),
        time(&q.to, now, "to"),
    ) {
        (Ok(f), Ok(t)) if f <= t => (f, t),
        (Ok(_), Ok(_)) => return bad("`from` is after `to`".into()),
        (Err(e), _) | (_, Err(e)) => return bad(e),
    };
    let (index, unit) = point;
    let read =
        tokio::task::spawn_blocking(move || store::readings(&dir, from, to, |p| p == index)).await;
    let (readings, notes) = match read {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": format!("cannot read the history: {e}")})),
            )
                .into_response()
        }
        Err(e) => panic!("the history reader failed: {e}"),
    };
    if readings.len() > MAX_READINGS {
        return bad(format!(
            "{} readings: more than {MAX_READINGS}; ask for a shorter span",
            readings.len()
        ));
    }
    let samples: Vec<serde_json::Value> = readings
        .iter()
        .map(|r| {
            let v = r.value.map(|v| match v {
                Value::Analog(x) => json!(x),
                Value::Discrete(b) => json!(b),
            });
            json!([r.ts.0, v, r.quality.as_str()])
        })
        .collect();
    Json(json!({
        "point": q.point,
        "unit": unit,
        "from": from,
        "to": to,
        "samples": samples,
        "damaged": notes.damaged,
    }))
    .into_response()
}
