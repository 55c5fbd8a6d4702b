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
    time::{Duration, Instant},
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

use super::{
    alarm_loop::AlarmLoop,
    clock::Clocks,
    ledger::{Counts, Occurrence},
    store_query::StoreQuery,
    subscriber::{self, Seen},
};
use crate::{
    contract::{
        every_gateway,
        wire::{Alarm, AlarmState, GatewayState, Risk, Scope, Standing},
        Stream, Topic,
    },
    model::{alarm_loop::Cause, central::MqttConfig},
    reading::Timestamp,
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
    /// The source's name, when its gateway gives it (v1.5).
    pub name: Option<String>,
    /// The last colour the gateway gave.
    pub colour: String,
    pub reasons: Vec<String>,
    pub since: String,
    /// Whether the colour is current: `live`; `offline` (its gateway said so, or its
    /// will did); `stale` (no word of it for longer than the limit). A source that is
    /// not live is shown grey, with `state_since` — never as its last colour, never blue.
    pub state: TileState,
    pub state_since: Option<String>,
}

/// Whether a tile's colour is current.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TileState {
    Live,
    Offline,
    Stale,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EnterpriseTile {
    pub park: String,
    pub enterprise: String,
    /// The enterprise's name, when its gateway gives it (v1.5).
    pub name: Option<String>,
    pub gateway: String,
    /// The enterprise's own level (its retained `risk/enterprise`), blue until known.
    pub colour: String,
    pub sources: Vec<SourceTile>,
    pub online: Option<bool>,
    /// The gateway's clock minus the centre's, when beyond the tolerance: its data is
    /// stored at a time that is not true.
    pub clock_offset_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlarmLine {
    pub ts: String,
    pub park: String,
    /// The enterprise's name where known, else its id.
    pub enterprise: String,
    pub hazard_source: String,
    pub point: String,
    pub alarm: String,
    pub class: String,
    pub action: String,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub unit: Option<String>,
    /// ISA-18.2 state after this event, and who acted (acknowledged, shelved).
    pub state: String,
    pub by: Option<String>,
    /// When this occurrence was raised (its first event on this screen).
    pub raised: String,
}

impl AlarmLine {
    fn new(park: String, enterprise: String, a: &Alarm<'_>) -> Self {
        Self {
            ts: a.ts.to_rfc3339(),
            park,
            enterprise,
            hazard_source: a.hazard_source.to_string(),
            point: a.point.to_string(),
            alarm: a.alarm.as_str().to_string(),
            class: a.class.as_str().to_string(),
            action: a.action.as_str().to_string(),
            value: a.value,
            limit: a.limit,
            unit: a.unit.as_deref().map(str::to_string),
            state: a.state.as_str().to_string(),
            by: a.by.as_deref().map(str::to_string),
            raised: a.ts.to_rfc3339(),
        }
    }
}

/// Everything the page shows.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
pub struct Picture {
    pub enterprises: Vec<EnterpriseTile>,
    pub alarms: VecDeque<AlarmLine>,
    /// The alarm list (两单之报警清单): every alarm not back to normal, unacknowledged
    /// first, then returned-unacknowledged, then acknowledged; oldest first in each.
    pub active: Vec<AlarmLine>,
    /// With the alarm loop on: the ledger's occurrences (not cleared, or cleared in
    /// the last day without feedback), with acknowledgement and feedback, which the
    /// page lists instead of `active` — they survive the centre's restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurrences: Option<Vec<Occurrence>>,
    /// The loop's counters per enterprise, then per park.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loop_counts: Vec<Counts>,
    /// The causes an operator chooses from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    /// Parks with a plan (一图), served at `/screen/plan/{park}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<String>,
    /// Whether a source's points and their trends can be read from the store
    /// (`/screen/points`, `/screen/trend`: `[store] query`).
    pub trends: bool,
}

type GatewayKey = (String, String, String);

/// The park's live picture, built from MQTT messages.
pub struct Screen {
    /// (park, enterprise, gateway) → sources by id, each with when it was last heard of.
    sources: BTreeMap<GatewayKey, BTreeMap<String, (SourceTile, Instant, Timestamp)>>,
    enterprise_colour: BTreeMap<GatewayKey, String>,
    /// Enterprises' names, from status and enterprise risk messages (v1.5).
    names: BTreeMap<GatewayKey, String>,
    /// A gateway's last status, and when it came (wall clock, for the page).
    online: BTreeMap<GatewayKey, (bool, String)>,
    alarms: VecDeque<AlarmLine>,
    /// Alarm occurrences not back to normal, by gateway and alarm id.
    active: BTreeMap<(GatewayKey, String), AlarmLine>,
    /// A source not heard of for this long is stale: gateways restate every level each
    /// integrity period, so a few periods without word means its data is not current.
    stale_after: Duration,
}

impl Default for Screen {
    fn default() -> Self {
        Self::new(Duration::from_secs(180))
    }
}

impl Screen {
    pub fn new(stale_after: Duration) -> Self {
        Self {
            sources: BTreeMap::new(),
            enterprise_colour: BTreeMap::new(),
            names: BTreeMap::new(),
            online: BTreeMap::new(),
            alarms: VecDeque::new(),
            active: BTreeMap::new(),
            stale_after,
        }
    }

    /// Takes one message; true when the picture changed.
    pub fn apply(&mut self, prefix: &str, topic: &str, payload: &[u8]) -> bool {
        let Some(topic) = Topic::parse(prefix, topic) else {
            return false;
        };
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return false;
        };
        self.apply_message(&topic, &v)
    }

    /// A gateway's standing alarms (v1.6) are its alarm list: a screen started during
    /// an alarm lists it, and one that missed a clear stops listing it.
    fn apply_standing(&mut self, key: GatewayKey, list: &[Standing<'_>]) -> bool {
        let who = self
            .names
            .get(&key)
            .cloned()
            .unwrap_or_else(|| key.1.clone());
        let lines: BTreeMap<(GatewayKey, String), AlarmLine> = list
            .iter()
            .map(|a| {
                let line = AlarmLine {
                    ts: a.acknowledged_at.unwrap_or(a.raised).to_rfc3339(),
                    park: key.0.clone(),
                    enterprise: who.clone(),
                    hazard_source: a.hazard_source.to_string(),
                    point: a.point.to_string(),
                    alarm: a.alarm.as_str().to_string(),
                    class: a.class.as_str().to_string(),
                    action: if a.acknowledged_by.is_some() {
                        "acknowledged"
                    } else {
                        "raised"
                    }
                    .to_string(),
                    value: a.value,
                    limit: a.limit,
                    unit: a.unit.as_deref().map(str::to_string),
                    state: a.state.as_str().to_string(),
                    by: a.acknowledged_by.as_deref().map(str::to_string),
                    raised: a.raised.to_rfc3339(),
                };
                ((key.clone(), a.alarm_id.to_string()), line)
            })
            .collect();
        let before: Vec<_> = self
            .active
            .iter()
            .filter(|((k, _), _)| *k == key)
            .map(|(k, l)| (k.clone(), l.state.clone(), l.by.clone()))
            .collect();
        let after: Vec<_> = lines
            .iter()
            .map(|(k, l)| (k.clone(), l.state.clone(), l.by.clone()))
            .collect();
        if before == after {
            return false;
        }
        self.active.retain(|(k, _), _| *k != key);
        self.active.extend(lines);
        true
    }

    /// Takes one message, its topic and JSON already read.
    pub fn apply_message(&mut self, topic: &Topic<'_>, v: &Value) -> bool {
        let g = topic.gateway;
        let key = (
            g.park.to_string(),
            g.enterprise.to_string(),
            g.gateway.to_string(),
        );
        match (topic.stream, v["type"].as_str()) {
            (Stream::RiskOf, Some("risk")) => match Risk::deserialize(&v["risk"]) {
                Ok(r) => self.apply_risk(key, &r),
                Err(_) => false,
            },
            (Stream::Alarm, Some("alarm")) => match Alarm::deserialize(&v["alarm"]) {
                Ok(a) => {
                    let who = self
                        .names
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| key.1.clone());
                    let line = AlarmLine::new(key.0.clone(), who, &a);
                    if let Some(id) = a.alarm_id.as_deref() {
                        let k = (key, id.to_string());
                        if a.state == AlarmState::Normal {
                            self.active.remove(&k);
                        } else {
                            let mut current = line.clone();
                            if let Some(before) = self.active.get(&k) {
                                current.raised.clone_from(&before.raised);
                                if current.by.is_none() {
                                    current.by.clone_from(&before.by);
                                }
                            }
                            self.active.insert(k, current);
                        }
                    }
                    self.alarms.push_front(line);
                    self.alarms.truncate(FEED_LEN);
                    true
                }
                Err(_) => false,
            },
            (Stream::ActiveAlarms, Some("active_alarms")) => {
                match Vec::<Standing<'_>>::deserialize(&v["alarms"]) {
                    Ok(list) => self.apply_standing(key, &list),
                    Err(_) => false,
                }
            }
            (Stream::Status, Some("status")) => match GatewayState::deserialize(&v["state"]) {
                Ok(state) => {
                    let named = self.name(&key, v["enterprise_name"].as_str());
                    let online = state == GatewayState::Online;
                    if self.online.get(&key).is_some_and(|(o, _)| *o == online) {
                        return named;
                    }
                    let since = v["ts"]
                        .as_str()
                        .map_or_else(|| Timestamp::now().to_rfc3339(), str::to_string);
                    self.online.insert(key, (online, since));
                    true
                }
                Err(_) => false,
            },
            _ => false,
        }
    }

    /// Records an enterprise's name; true if it changed.
    fn name(&mut self, key: &GatewayKey, name: Option<&str>) -> bool {
        match name.filter(|n| !n.is_empty()) {
            Some(n) if self.names.get(key).map(String::as_str) != Some(n) => {
                self.names.insert(key.clone(), n.to_string());
                true
            }
            _ => false,
        }
    }

    fn apply_risk(&mut self, key: (String, String, String), r: &Risk<'_>) -> bool {
        let colour = r.to.as_str().to_string();
        let id = match (r.scope, &r.id) {
            (Scope::Enterprise, _) => {
                self.name(&key, r.name.as_deref());
                self.enterprise_colour.insert(key, colour);
                return true;
            }
            (Scope::HazardSource, Some(id)) if !id.is_empty() => id.to_string(),
            (Scope::HazardSource, _) => return false,
        };
        let tile = SourceTile {
            id: id.clone(),
            name: r
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            colour,
            reasons: r
                .reasons
                .iter()
                .map(|x| format!("{} ({})", x.rule, x.colour.as_str()))
                .collect(),
            // Since when the colour holds (v1.3), not when it was last restated.
            since: r.since.unwrap_or(r.ts).to_rfc3339(),
            state: TileState::Live,
            state_since: None,
        };
        self.sources
            .entry(key)
            .or_default()
            .insert(id, (tile, Instant::now(), Timestamp::now()));
        true
    }

    /// A source's tile as of `now`: grey when its gateway is offline or it has not been
    /// heard of for `stale_after`.
    fn tile_at(
        &self,
        key: &GatewayKey,
        (tile, seen, seen_at): &(SourceTile, Instant, Timestamp),
        now: Instant,
    ) -> SourceTile {
        let mut t = tile.clone();
        if let Some((false, since)) = self.online.get(key) {
            t.state = TileState::Offline;
            t.state_since = Some(since.clone());
        } else if now.saturating_duration_since(*seen) > self.stale_after {
            t.state = TileState::Stale;
            t.state_since = Some(seen_at.to_rfc3339());
        }
        t
    }

    /// The alarm list: unacknowledged first, then returned-unacknowledged, then
    /// acknowledged; the longest-standing first in each.
    fn alarm_list(&self) -> Vec<AlarmLine> {
        let rank = |s: &str| match s {
            "active_unacknowledged" => 0,
            "returned_unacknowledged" => 1,
            _ => 2,
        };
        let mut list: Vec<AlarmLine> = self.active.values().cloned().collect();
        list.sort_by(|a, b| {
            rank(&a.state)
                .cmp(&rank(&b.state))
                .then_with(|| a.raised.cmp(&b.raised))
        });
        list
    }

    pub fn picture(&self) -> Picture {
        self.picture_at(Instant::now())
    }

    pub fn picture_at(&self, now: Instant) -> Picture {
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
                    name: self.names.get(k).cloned(),
                    gateway: k.2.clone(),
                    colour: self
                        .enterprise_colour
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| "blue".into()),
                    sources: self
                        .sources
                        .get(k)
                        .map(|m| {
                            m.values()
                                .map(|entry| self.tile_at(k, entry, now))
                                .collect()
                        })
                        .unwrap_or_default(),
                    online: self.online.get(k).map(|(o, _)| *o),
                    clock_offset_s: None,
                })
                .collect(),
            alarms: self.alarms.clone(),
            active: self.alarm_list(),
            ..Picture::default()
        }
    }
}

/// The screen's shared state: the picture and a channel announcing each new one.
#[derive(Clone)]
pub struct ScreenHub {
    screen: Arc<Mutex<Screen>>,
    /// Gateways' clocks as ingest measures them, and how far off is worth showing.
    clocks: Arc<Clocks>,
    clock_tolerance_ms: i64,
    changed: broadcast::Sender<Arc<String>>,
    /// The picture last announced, so the clock's tick announces only a change (a
    /// source going stale).
    last: Arc<Mutex<Arc<String>>>,
    /// The alarm-handling loop, when configured: fed by the watcher, shown on the page.
    alarm_loop: Option<Arc<AlarmLoop>>,
    /// Park → its plan drawing (SVG), read at start-up.
    plans: Arc<BTreeMap<String, String>>,
    /// The store's query API, for the drill-down's points and trends.
    store: Option<Arc<StoreQuery>>,
    /// A message changed the picture since the last announcement: pictures go out at
    /// most every [`ANNOUNCE_EVERY`], however many messages come (a county's gateways
    /// restate thousands of levels a minute; each picture is the whole county).
    dirty: Arc<std::sync::atomic::AtomicBool>,
}

/// How often a changed picture is announced, at most.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(100);

impl Default for ScreenHub {
    fn default() -> Self {
        Self::new(Screen::default(), Arc::default(), 60_000)
    }
}

impl ScreenHub {
    pub fn new(screen: Screen, clocks: Arc<Clocks>, clock_tolerance_ms: i64) -> Self {
        Self {
            screen: Arc::new(Mutex::new(screen)),
            clocks,
            clock_tolerance_ms,
            changed: broadcast::channel(64).0,
            last: Arc::default(),
            alarm_loop: None,
            plans: Arc::default(),
            store: None,
            dirty: Arc::default(),
        }
    }

    /// Shows `plans` (park → SVG) on the page.
    pub fn with_plans(mut self, plans: BTreeMap<String, String>) -> Self {
        self.plans = Arc::new(plans);
        self
    }

    /// A park's plan drawing.
    pub fn plan(&self, park: &str) -> Option<String> {
        self.plans.get(park).cloned()
    }

    /// Offers the drill-down's points and trends, read from the store through `q`.
    pub fn with_store_query(mut self, q: Option<StoreQuery>) -> Self {
        self.store = q.map(Arc::new);
        self
    }

    pub fn store_query(&self) -> Option<&Arc<StoreQuery>> {
        self.store.as_ref()
    }

    /// Feeds `l` from the watcher and shows it on the page.
    pub fn with_loop(mut self, l: Arc<AlarmLoop>) -> Self {
        self.alarm_loop = Some(l);
        self
    }

    pub fn alarm_loop(&self) -> Option<&Arc<AlarmLoop>> {
        self.alarm_loop.as_ref()
    }

    /// Announces the picture if it differs from the last one announced.
    fn announce(&self) {
        let now = self.snapshot();
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if *last != now {
            *last = Arc::clone(&now);
            let _ = self.changed.send(now);
        }
    }

    fn snapshot(&self) -> Arc<String> {
        let mut picture = self.screen.lock().map(|s| s.picture()).unwrap_or_default();
        let offsets = self.clocks.offsets();
        for e in &mut picture.enterprises {
            e.clock_offset_s = offsets
                .get(&format!("{}/{}/{}", e.park, e.enterprise, e.gateway))
                .filter(|ms| ms.abs() > self.clock_tolerance_ms)
                .map(|ms| *ms as f64 / 1000.0);
        }
        picture.plans = self.plans.keys().cloned().collect();
        picture.trends = self.store.is_some();
        if let Some(l) = &self.alarm_loop {
            let now = Timestamp::now();
            picture.occurrences = Some(l.listed(now));
            picture.loop_counts = l.counts(now);
            picture.causes = l.causes();
        }
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

/// Watches the broker for the screen until `cancel`. With the alarm loop on, the
/// session is persistent and at QoS 1, and a message is acknowledged only once the
/// loop's journal holds it: alarm events reach the ledger across the centre's restarts.
pub async fn watch(cfg: MqttConfig, hub: ScreenHub, cancel: CancellationToken) {
    let mut o = match cfg.options(format!("{}-screen", cfg.client_id)) {
        Ok(o) => o,
        Err(e) => {
            warn!(error = %e, "screen: cannot connect; no screen");
            return;
        }
    };
    let lasting = hub.alarm_loop.is_some();
    o.set_clean_session(!lasting)
        .set_manual_acks(lasting)
        .set_max_packet_size(cfg.max_message_bytes.max(1 << 20), 1 << 16);
    let (client, mut eventloop) = AsyncClient::new(o, 64);
    // Changes go out every ANNOUNCE_EVERY; time alone turns a source stale (and an
    // alarm's feedback overdue): look once a second.
    let ticking = hub.clone();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
        let per_second = (Duration::from_secs(1).as_millis() / ANNOUNCE_EVERY.as_millis()) as u32;
        let mut n = 0u32;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    n = (n + 1) % per_second;
                    if n == 0 {
                        ticking.tick();
                    } else if ticking.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
                        ticking.announce();
                    }
                }
            }
        }
    });
    let mut streams = vec![
        Stream::RiskOf,
        Stream::Alarm,
        Stream::Status,
        Stream::ActiveAlarms,
    ];
    if lasting {
        streams.push(Stream::Reply);
    }
    let filters: Vec<String> = streams
        .into_iter()
        .map(|s| every_gateway(&cfg.prefix, s))
        .collect();
    let qos = if lasting {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let on = |seen| match seen {
        Seen::Connected { .. } => {
            info!("screen watching the broker");
            if let Some(l) = &hub.alarm_loop {
                l.connected(&client);
            }
        }
        Seen::Message(p) => {
            if hub.take(&cfg.prefix, &p.topic, &p.payload) && lasting {
                if let Err(e) = client.try_ack(&p) {
                    warn!(error = %e, "screen: cannot acknowledge a message");
                }
            }
        }
        Seen::Down { error, retry_in } => {
            warn!(error = %error, retry_in_ms = retry_in.as_millis() as u64,
                "screen: broker connection down; retrying");
        }
    };
    subscriber::run(&mut eventloop, &client, &filters, qos, &cancel, on).await;
}

impl ScreenHub {
    /// Takes one message into the loop's ledger and the picture, announcing a change;
    /// false when the loop's journal could not keep it (it is then not acknowledged,
    /// and comes again).
    fn take(&self, prefix: &str, topic: &str, payload: &[u8]) -> bool {
        let (Some(topic), Ok(v)) = (
            Topic::parse(prefix, topic),
            serde_json::from_slice::<Value>(payload),
        ) else {
            return true;
        };
        let mut changed = false;
        if let Some(l) = &self.alarm_loop {
            match l.observe(&topic.gateway, topic.stream, &v) {
                Ok(c) => changed = c,
                Err(_) => return false,
            }
        }
        changed |= self
            .screen
            .lock()
            .map(|mut s| s.apply_message(&topic, &v))
            .unwrap_or(false);
        if changed {
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        true
    }

    /// Once a second: what time alone changes (and any change), announced.
    fn tick(&self) {
        self.dirty
            .store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(l) = &self.alarm_loop {
            l.export_metrics(Timestamp::now());
        }
        self.announce();
    }
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

    /// A source's colour is current only while its gateway is online and it has been
    /// heard of within the limit; otherwise it is offline or stale, with since when.
    #[test]
    fn offline_and_silent_sources_are_not_shown_live() {
        let mut s = Screen::new(Duration::from_secs(180));
        let base = "hazgate/v1/P/E1/G1";
        s.apply(
            "hazgate",
            &format!("{base}/risk/HS-01"),
            &risk("HS-01", "hazard_source", "blue"),
        );
        let t0 = Instant::now();
        let state = |s: &Screen, at: Instant| {
            let p = s.picture_at(at);
            let t = &p.enterprises[0].sources[0];
            (t.state, t.state_since.is_some(), t.colour.clone())
        };
        assert_eq!(state(&s, t0), (TileState::Live, false, "blue".into()));
        let later = t0 + Duration::from_secs(181);
        assert_eq!(state(&s, later), (TileState::Stale, true, "blue".into()));
        // Heard of again (a restatement): live.
        s.apply(
            "hazgate",
            &format!("{base}/risk/HS-01"),
            &risk("HS-01", "hazard_source", "blue"),
        );
        assert_eq!(state(&s, Instant::now()).0, TileState::Live);
        // Its gateway's will says offline: offline, whatever the time.
        s.apply(
            "hazgate",
            &format!("{base}/status"),
            br#"{"type":"status","ts":"2026-11-23T07:05:00.000Z","state":"offline"}"#,
        );
        let p = s.picture_at(Instant::now());
        let t = &p.enterprises[0].sources[0];
        assert_eq!(
            (t.state, t.state_since.as_deref()),
            (TileState::Offline, Some("2026-11-23T07:05:00.000Z"))
        );
    }

    fn alarm(
        id: &str,
        point: &str,
        action: &str,
        state: &str,
        ts: &str,
        by: Option<&str>,
    ) -> Vec<u8> {
        let by = by.map_or("null".to_string(), |b| format!("\"{b}\""));
        format!(r#"{{"type":"alarm","alarm":{{"ts":"{ts}","alarm_id":"{id}","point":"{point}","hazard_source":"HS-01","alarm":"hh","class":"critical","action":"{action}","state":"{state}","value":41.0,"limit":40.0,"by":{by},"bad_quality":false,"shelved":false,"out_of_service":false}}}}"#).into_bytes()
    }

    /// A gateway's list of standing alarms (v1.6) is its part of the alarm list: a
    /// screen started during an alarm lists it; a later list without it ends it; the
    /// same list again is no change.
    #[test]
    fn a_list_of_standing_alarms_is_the_gateways_alarm_list() {
        let mut s = Screen::default();
        let t = "hazgate/v1/P/E1/G1/alarms";
        let item = |id: &str, point: &str, by: &str| {
            let (state, by, at) = if by.is_empty() {
                (
                    "active_unacknowledged",
                    "null".to_string(),
                    "null".to_string(),
                )
            } else {
                (
                    "active_acknowledged",
                    format!("\"{by}\""),
                    "\"2026-11-23T07:01:00.000Z\"".to_string(),
                )
            };
            format!(
                r#"{{"alarm_id":"{id}","point":"{point}","hazard_source":"HS-01","alarm":"hh","class":"critical","state":"{state}","raised":"2026-11-23T07:00:00.000Z","value":41.0,"limit":40.0,"acknowledged_by":{by},"acknowledged_at":{at},"shelved":false,"out_of_service":false,"unit":"%LEL"}}"#
            )
        };
        let list = |items: &[String]| {
            format!(
                r#"{{"type":"active_alarms","ts":"2026-11-23T07:02:00.000Z","alarms":[{}]}}"#,
                items.join(",")
            )
            .into_bytes()
        };
        let two = list(&[item("A:hh:1", "A", ""), item("B:hh:1", "B", "op-li")]);
        assert!(s.apply("hazgate", t, &two));
        assert!(!s.apply("hazgate", t, &two), "restated: no change");
        let p = s.picture();
        let got: Vec<(&str, &str, Option<&str>, &str)> = p
            .active
            .iter()
            .map(|a| {
                (
                    a.point.as_str(),
                    a.state.as_str(),
                    a.by.as_deref(),
                    a.raised.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "A",
                    "active_unacknowledged",
                    None,
                    "2026-11-23T07:00:00.000Z"
                ),
                (
                    "B",
                    "active_acknowledged",
                    Some("op-li"),
                    "2026-11-23T07:00:00.000Z"
                ),
            ]
        );
        assert_eq!(p.active[0].unit.as_deref(), Some("%LEL"));
        assert!(s.apply("hazgate", t, &list(&[item("B:hh:1", "B", "op-li")])));
        assert_eq!(s.picture().active.len(), 1, "A ended");
        assert!(s.apply("hazgate", t, &list(&[])));
        assert!(s.picture().active.is_empty());
    }

    /// The alarm list holds every occurrence not back to normal: unacknowledged first,
    /// the oldest first; an acknowledgement keeps who gave it, a clear to normal ends it.
    #[test]
    fn the_alarm_list_follows_each_occurrence() {
        let mut s = Screen::default();
        let t = "hazgate/v1/P/E1/G1/alarm";
        let ids = |s: &Screen| -> Vec<(String, String, Option<String>)> {
            s.picture()
                .active
                .iter()
                .map(|a| (a.point.clone(), a.state.clone(), a.by.clone()))
                .collect()
        };
        s.apply(
            "hazgate",
            t,
            &alarm(
                "A:hh:1",
                "A",
                "raised",
                "active_unacknowledged",
                "2026-11-23T07:00:00.000Z",
                None,
            ),
        );
        s.apply(
            "hazgate",
            t,
            &alarm(
                "B:hh:2",
                "B",
                "raised",
                "active_unacknowledged",
                "2026-11-23T07:01:00.000Z",
                None,
            ),
        );
        s.apply(
            "hazgate",
            t,
            &alarm(
                "A:hh:1",
                "A",
                "acknowledged",
                "active_acknowledged",
                "2026-11-23T07:02:00.000Z",
                Some("op"),
            ),
        );
        assert_eq!(
            ids(&s),
            [
                ("B".into(), "active_unacknowledged".into(), None),
                ("A".into(), "active_acknowledged".into(), Some("op".into()))
            ]
        );
        s.apply(
            "hazgate",
            t,
            &alarm(
                "A:hh:1",
                "A",
                "cleared",
                "normal",
                "2026-11-23T07:03:00.000Z",
                None,
            ),
        );
        assert_eq!(
            ids(&s),
            [("B".into(), "active_unacknowledged".into(), None)]
        );
        let raised = s.picture().active[0].raised.clone();
        s.apply(
            "hazgate",
            t,
            &alarm(
                "B:hh:2",
                "B",
                "cleared",
                "returned_unacknowledged",
                "2026-11-23T07:04:00.000Z",
                None,
            ),
        );
        let b = &s.picture().active[0];
        assert_eq!(
            (b.state.as_str(), b.raised.as_str()),
            ("returned_unacknowledged", raised.as_str()),
            "raised when first seen"
        );
    }
}
