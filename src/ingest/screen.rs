//! The command-centre screen (`/screen`): the four-colour map of enterprises and hazard
//! sources, the major-risk list (重大风险清单), the live alarm feed and the gateways
//! offline, pushed to the page over Server-Sent Events.
//!
//! The screen needs the *whole* park, while a shared subscription gives each ingest
//! instance only a share; so it watches the broker on a subscription of its own
//! (clean session, not shared): the retained per-source risk levels give the full
//! picture the moment it connects, then alarms, risk and status keep it live. The page
//! and its script are embedded in the binary (no CDN: control rooms are often offline).

use std::{
    collections::{BTreeMap, VecDeque},
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::response::{
    sse::{Event as SseEvent, KeepAlive, Sse},
    Html,
};
use rumqttc::{AsyncClient, QoS};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::subscriber::{self, Seen};
use crate::{
    contract::{
        every_gateway,
        wire::{Alarm, GatewayState, Risk, Scope},
        Stream, Topic,
    },
    model::central::MqttConfig,
};

/// The page: HTML, CSS and script in one file.
pub const PAGE: &str = include_str!("screen.html");
/// The page's style and script, served from files of their own so the page's Content
/// Security Policy allows no inline script or style.
pub const STYLE: &str = include_str!("screen.css");
pub const SCRIPT: &str = include_str!("screen.js");

/// How many alarm events the feed keeps.
const FEED_LEN: usize = 50;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceTile {
    pub id: String,
    pub colour: String,
    pub reasons: Vec<String>,
    pub since: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EnterpriseTile {
    pub park: String,
    pub enterprise: String,
    pub gateway: String,
    /// The enterprise's own level (its retained `risk/enterprise`), blue until known.
    pub colour: String,
    pub sources: Vec<SourceTile>,
    pub online: Option<bool>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlarmLine {
    pub ts: String,
    pub enterprise: String,
    pub hazard_source: String,
    pub point: String,
    pub alarm: String,
    pub class: String,
    pub action: String,
    pub value: Option<f64>,
    pub limit: Option<f64>,
}

impl AlarmLine {
    fn new(enterprise: String, a: &Alarm<'_>) -> Self {
        Self {
            ts: a.ts.to_rfc3339(),
            enterprise,
            hazard_source: a.hazard_source.to_string(),
            point: a.point.to_string(),
            alarm: a.alarm.as_str().to_string(),
            class: a.class.as_str().to_string(),
            action: a.action.as_str().to_string(),
            value: a.value,
            limit: a.limit,
        }
    }
}

/// Everything the page shows.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Picture {
    pub enterprises: Vec<EnterpriseTile>,
    pub alarms: VecDeque<AlarmLine>,
}

/// The park's live picture, built from MQTT messages.
#[derive(Default)]
pub struct Screen {
    /// (park, enterprise, gateway) → sources by id.
    sources: BTreeMap<(String, String, String), BTreeMap<String, SourceTile>>,
    enterprise_colour: BTreeMap<(String, String, String), String>,
    online: BTreeMap<(String, String, String), bool>,
    alarms: VecDeque<AlarmLine>,
}

impl Screen {
    /// Takes one message; true when the picture changed.
    pub fn apply(&mut self, prefix: &str, topic: &str, payload: &[u8]) -> bool {
        let Some(topic) = Topic::parse(prefix, topic) else {
            return false;
        };
        let g = topic.gateway;
        let key = (
            g.park.to_string(),
            g.enterprise.to_string(),
            g.gateway.to_string(),
        );
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return false;
        };
        match (topic.stream, v["type"].as_str()) {
            (Stream::RiskOf, Some("risk")) => match Risk::deserialize(&v["risk"]) {
                Ok(r) => self.apply_risk(key, &r),
                Err(_) => false,
            },
            (Stream::Alarm, Some("alarm")) => match Alarm::deserialize(&v["alarm"]) {
                Ok(a) => {
                    self.alarms.push_front(AlarmLine::new(key.1, &a));
                    self.alarms.truncate(FEED_LEN);
                    true
                }
                Err(_) => false,
            },
            (Stream::Status, Some("status")) => match GatewayState::deserialize(&v["state"]) {
                Ok(state) => {
                    let online = state == GatewayState::Online;
                    self.online.insert(key, online) != Some(online)
                }
                Err(_) => false,
            },
            _ => false,
        }
    }

    fn apply_risk(&mut self, key: (String, String, String), r: &Risk<'_>) -> bool {
        let colour = r.to.as_str().to_string();
        let id = match (r.scope, &r.id) {
            (Scope::Enterprise, _) => {
                self.enterprise_colour.insert(key, colour);
                return true;
            }
            (Scope::HazardSource, Some(id)) if !id.is_empty() => id.to_string(),
            (Scope::HazardSource, _) => return false,
        };
        let tile = SourceTile {
            id: id.clone(),
            colour,
            reasons: r
                .reasons
                .iter()
                .map(|x| format!("{} ({})", x.rule, x.colour.as_str()))
                .collect(),
            since: r.ts.to_rfc3339(),
        };
        self.sources.entry(key).or_default().insert(id, tile);
        true
    }

    pub fn picture(&self) -> Picture {
        let mut keys: Vec<&(String, String, String)> = self
            .sources
            .keys()
            .chain(self.online.keys())
            .chain(self.enterprise_colour.keys())
            .collect();
        keys.sort();
        keys.dedup();
        Picture {
            enterprises: keys
                .into_iter()
                .map(|k| EnterpriseTile {
                    park: k.0.clone(),
                    enterprise: k.1.clone(),
                    gateway: k.2.clone(),
                    colour: self
                        .enterprise_colour
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| "blue".into()),
                    sources: self
                        .sources
                        .get(k)
                        .map(|m| m.values().cloned().collect())
                        .unwrap_or_default(),
                    online: self.online.get(k).copied(),
                })
                .collect(),
            alarms: self.alarms.clone(),
        }
    }
}

/// The screen's shared state: the picture and a channel announcing each new one.
#[derive(Clone)]
pub struct ScreenHub {
    screen: Arc<Mutex<Screen>>,
    changed: broadcast::Sender<Arc<String>>,
}

impl Default for ScreenHub {
    fn default() -> Self {
        Self {
            screen: Arc::default(),
            changed: broadcast::channel(64).0,
        }
    }
}

impl ScreenHub {
    fn snapshot(&self) -> Arc<String> {
        let picture = self.screen.lock().map(|s| s.picture()).unwrap_or_default();
        Arc::new(serde_json::to_string(&picture).unwrap_or_default())
    }

    /// The SSE stream: the current picture at once, then each new one.
    pub fn events(&self) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
        let first = self.snapshot();
        let rx = self.changed.subscribe();
        let hub = self.clone();
        let stream = futures_util::stream::unfold(
            (Some(first), rx, hub),
            |(first, mut rx, hub)| async move {
                if let Some(f) = first {
                    return Some((Ok(SseEvent::default().data(f.as_str())), (None, rx, hub)));
                }
                let data = match rx.recv().await {
                    Ok(d) => d,
                    // A slow page missed pictures: the latest one is all it needs.
                    Err(broadcast::error::RecvError::Lagged(_)) => hub.snapshot(),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                Some((Ok(SseEvent::default().data(data.as_str())), (None, rx, hub)))
            },
        );
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    }

    pub fn page() -> Html<&'static str> {
        Html(PAGE)
    }
}

/// Watches the broker for the screen until `cancel`.
pub async fn watch(cfg: MqttConfig, hub: ScreenHub, cancel: CancellationToken) {
    let mut o = match cfg.options(format!("{}-screen", cfg.client_id)) {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "screen: cannot connect; no screen");
            return;
        }
    };
    o.set_clean_session(true)
        .set_max_packet_size(cfg.max_message_bytes.max(1 << 20), 1 << 16);
    let (client, mut eventloop) = AsyncClient::new(o, 16);
    let filters =
        [Stream::RiskOf, Stream::Alarm, Stream::Status].map(|s| every_gateway(&cfg.prefix, s));
    let on = |seen| match seen {
        Seen::Connected { .. } => info!("screen watching the broker"),
        Seen::Message(p) => {
            let changed = hub
                .screen
                .lock()
                .map(|mut s| s.apply(&cfg.prefix, &p.topic, &p.payload))
                .unwrap_or(false);
            if changed {
                let _ = hub.changed.send(hub.snapshot());
            }
        }
        Seen::Down { error, retry_in } => {
            warn!(error = %error, retry_in_ms = retry_in.as_millis() as u64,
                "screen: broker connection down; retrying");
        }
    };
    subscriber::run(
        &mut eventloop,
        &client,
        &filters,
        QoS::AtMostOnce,
        &cancel,
        on,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A risk message as a gateway sends it (the enterprise's without an `id`).
    fn risk(id: &str, scope: &str, to: &str) -> Vec<u8> {
        let id = if id.is_empty() {
            String::new()
        } else {
            format!(r#""id":"{id}","#)
        };
        format!(r#"{{"type":"risk","risk":{{"ts":"2026-11-23T07:00:00.000Z","scope":"{scope}",{id}"from":"blue","to":"{to}","reasons":[{{"rule":"high alarm","colour":"{to}","alarms":[],"since":"2026-11-23T07:00:00.000Z"}}]}}}}"#).into_bytes()
    }

    #[test]
    fn retained_levels_alarms_and_status_build_the_picture() {
        let mut s = Screen::default();
        let base = "hazgate/v1/P/E1/G1";
        assert!(s.apply(
            "hazgate",
            &format!("{base}/risk/HS-01"),
            &risk("HS-01", "hazard_source", "orange")
        ));
        assert!(s.apply(
            "hazgate",
            &format!("{base}/risk/enterprise"),
            &risk("", "enterprise", "orange")
        ));
        assert!(s.apply(
            "hazgate",
            &format!("{base}/status"),
            br#"{"type":"status","state":"offline"}"#
        ));
        assert!(
            !s.apply(
                "hazgate",
                &format!("{base}/status"),
                br#"{"type":"status","state":"offline"}"#
            ),
            "no change"
        );
        assert!(!s.apply("hazgate", &format!("{base}/risk/HS-02"), b"garbage"));
        assert!(!s.apply(
            "hazgate",
            &format!("{base}/risk/HS-02"),
            &risk("HS-02", "hazard_source", "purple")
        ));
        let p = s.picture();
        assert_eq!(p.enterprises.len(), 1);
        let e = &p.enterprises[0];
        assert_eq!((e.colour.as_str(), e.online), ("orange", Some(false)));
        assert_eq!(e.sources[0].colour, "orange");
        assert_eq!(e.sources[0].reasons, ["high alarm (orange)"]);
    }
}
