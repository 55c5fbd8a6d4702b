//! The alarm-handling loop at the centre (预警处置反馈): the [`Ledger`] fed by the
//! screen's watcher, kept in the [`Journal`], and the feedback path — checked, written,
//! then sent to the enterprise's gateway as a `feedback` command, whose answer is
//! recorded too. Feedback the gateway has not answered is sent again on every connect.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use rumqttc::{AsyncClient, QoS};
use serde::Deserialize;
use serde_json::Value;
use tracing::{error, info, warn};

use super::{
    journal::Journal,
    ledger::{Counts, Entry, Feedback, FeedbackError, FeedbackRequest, Ledger, Occurrence},
    points::loop_counts,
    writer::PointWriter,
};
use crate::{
    contract::{
        topic::GatewayPath,
        wire::{Alarm, CommandReply, GatewayState, Standing},
        Stream, Topics,
    },
    model::alarm_loop::{AlarmLoopConfig, Cause},
    reading::Timestamp,
};

pub struct AlarmLoop {
    ledger: Mutex<Ledger>,
    journal: Journal,
    prefix: String,
    client: Mutex<Option<AsyncClient>>,
    /// Request ids of feedback commands: the start time and a counter, unique per run.
    next_request: AtomicU64,
    run_id: i64,
    /// False after a journal write failed, until one succeeds (`/healthz`).
    pub journal_ok: AtomicBool,
}

/// Why feedback was not taken or not kept.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    Refused(#[from] FeedbackError),
    #[error("the alarm journal cannot be written ({0}); nothing was recorded")]
    Journal(std::io::Error),
}

impl AlarmLoop {
    /// Rebuilds the ledger from the journal and opens it for writing.
    pub fn open(cfg: &AlarmLoopConfig, prefix: &str) -> std::io::Result<Self> {
        let journal = Journal::open(&cfg.journal_dir)?;
        let mut ledger = Ledger::new(cfg);
        let replayed = Journal::replay(&cfg.journal_dir, |e| {
            ledger.apply(e);
        })?;
        ledger.prune(Timestamp::now());
        info!(dir = %cfg.journal_dir.display(), entries = replayed.entries,
            bad_lines = replayed.bad_lines, "alarm journal replayed");
        Ok(Self {
            ledger: Mutex::new(ledger),
            journal,
            prefix: prefix.to_string(),
            client: Mutex::new(None),
            next_request: AtomicU64::new(0),
            run_id: Timestamp::now().0,
            journal_ok: AtomicBool::new(true),
        })
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Journals, then applies, one entry. A failed write is loud (log, metric,
    /// `/healthz`) and applies nothing: the caller does not acknowledge the message,
    /// so the broker delivers it again.
    fn record(&self, e: &Entry<'_>) -> std::io::Result<bool> {
        if let Err(err) = self.journal.append(e) {
            error!(error = %err, dir = %self.journal.dir().display(), "alarm journal write failed");
            metrics::counter!("hazgate_ingest_alarm_journal_failures_total").increment(1);
            self.journal_ok.store(false, Ordering::Relaxed);
            return Err(err);
        }
        self.journal_ok.store(true, Ordering::Relaxed);
        Ok(self.ledger().apply(e))
    }

    /// Takes one message of a gateway that the screen's watcher received: alarm
    /// events, status and command replies feed the ledger. True when it changed.
    pub fn observe(&self, g: &GatewayPath<'_>, stream: Stream, v: &Value) -> std::io::Result<bool> {
        let gateway = g.to_string();
        let at = Timestamp::now();
        let entry = match (stream, v["type"].as_str()) {
            (Stream::Alarm, Some("alarm")) => match Alarm::deserialize(&v["alarm"]) {
                Ok(alarm) if alarm.alarm_id.is_some() => Entry::Alarm { at, gateway, alarm },
                _ => return Ok(false),
            },
            (Stream::Status, Some("status")) => {
                let Ok(state) = GatewayState::deserialize(&v["state"]) else {
                    return Ok(false);
                };
                let online = state == GatewayState::Online;
                let name = v["enterprise_name"].as_str().filter(|n| !n.is_empty());
                if !self.ledger().is_status_change(&gateway, online, name) {
                    return Ok(false);
                }
                Entry::Status {
                    at,
                    gateway,
                    online,
                    enterprise_name: name.map(str::to_string),
                }
            }
            (Stream::ActiveAlarms, Some("active_alarms")) => {
                let (Ok(ts), Ok(alarms)) = (
                    Timestamp::deserialize(&v["ts"]),
                    Vec::<Standing<'_>>::deserialize(&v["alarms"]),
                ) else {
                    return Ok(false);
                };
                // A list is restated every integrity period: journaled only when it
                // tells the ledger something.
                if !self.ledger().is_standing_news(&gateway, ts, &alarms) {
                    return Ok(false);
                }
                Entry::Standing {
                    at,
                    gateway,
                    ts,
                    alarms,
                }
            }
            (Stream::Reply, Some("command_reply")) => match CommandReply::deserialize(v) {
                Ok(r) if r.command == "feedback" => Entry::Reply {
                    at,
                    gateway,
                    request_id: r.request_id.as_deref().unwrap_or_default().to_string(),
                    ok: r.ok,
                    error: r.error.as_deref().map(str::to_string),
                },
                _ => return Ok(false),
            },
            _ => return Ok(false),
        };
        self.record(&entry)
    }

    /// The watcher connected: feedback not yet answered goes (again) to its gateway.
    pub fn connected(&self, client: &AsyncClient) {
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(client.clone());
        let pending: Vec<(String, Feedback)> = self
            .ledger()
            .pending()
            .into_iter()
            .map(|(g, f)| (g.to_string(), f.clone()))
            .collect();
        for (gateway, f) in pending {
            self.send(&gateway, &f);
        }
    }

    /// Publishes a `feedback` command to `gateway`; the answer is recorded when it comes.
    fn send(&self, gateway: &str, f: &Feedback) {
        let Some(path) = GatewayPath::parse(gateway) else {
            return;
        };
        let topic = Topics::new(&self.prefix, path).command("feedback");
        let body = serde_json::json!({
            "request_id": f.request_id, "by": f.by, "alarm_id": f.alarm_id,
            "cause": f.cause, "measures": f.measures, "text": f.text,
        });
        let client = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let sent = client
            .as_ref()
            .map(|c| c.try_publish(topic, QoS::AtLeastOnce, false, body.to_string()));
        match sent {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                warn!(error = %e, gateway, "feedback not sent now; sent again on the next connect")
            }
            None => warn!(gateway, "not connected; feedback sent on connect"),
        }
    }

    /// Takes feedback from `by` (an authenticated operator): checked, journaled, shown,
    /// then sent to the gateway.
    pub fn feedback(&self, req: &FeedbackRequest, by: &str) -> Result<Occurrence, LoopError> {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("feedback-{}-{n}", self.run_id);
        let entry = self
            .ledger()
            .feedback(req, by, request_id, Timestamp::now())?;
        self.record(&entry).map_err(LoopError::Journal)?;
        let Entry::Feedback { feedback, .. } = &entry else {
            unreachable!("Ledger::feedback makes a feedback entry")
        };
        info!(gateway = %req.gateway, alarm_id = %req.alarm_id, by, cause = %req.cause, "feedback recorded");
        self.send(&req.gateway, feedback);
        let ledger = self.ledger();
        ledger
            .occurrence(&req.gateway, &req.alarm_id)
            .cloned()
            .ok_or_else(|| {
                LoopError::Refused(FeedbackError::UnknownAlarm {
                    gateway: req.gateway.clone(),
                    alarm_id: req.alarm_id.clone(),
                })
            })
    }

    /// What the alarm list shows, with the enterprises' names.
    pub fn listed(&self, now: Timestamp) -> Vec<Occurrence> {
        self.ledger().listed(now)
    }

    pub fn counts(&self, now: Timestamp) -> Vec<Counts> {
        self.ledger().counts(now)
    }

    pub fn causes(&self) -> Vec<Cause> {
        self.ledger().causes().to_vec()
    }

    /// Publishes the counters as metrics (per enterprise and per park).
    pub fn export_metrics(&self, now: Timestamp) {
        for c in self.counts(now) {
            let labels = [
                ("park", c.park.clone()),
                ("enterprise", c.enterprise.clone()),
            ];
            metrics::gauge!("hazgate_centre_alarms_not_cleared", &labels).set(c.not_cleared as f64);
            metrics::gauge!("hazgate_centre_feedback_overdue", &labels)
                .set(c.feedback_overdue as f64);
            metrics::gauge!("hazgate_centre_gateways_online", &labels).set(c.online as f64);
        }
    }
}

/// Writes the loop's counters to the store every `every` until `cancel`: the
/// dashboards' history of 未销警 / 未反馈 / online / feedback time. A failed write is
/// logged and counted (`hazgate_ingest_loop_counts_write_failures_total`) and not
/// retried: the next one, a period later, states the counters again.
pub async fn store_counts<W: PointWriter>(
    l: Arc<AlarmLoop>,
    writer: W,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Timestamp::now();
        let lines = loop_counts(&l.counts(now), now.0);
        if lines.is_empty() {
            continue;
        }
        match writer.write(Bytes::from(lines)).await {
            Ok(()) => metrics::counter!("hazgate_ingest_loop_counts_written_total").increment(1),
            Err(e) => {
                warn!(error = %e, "alarm loop: the counters could not be written to the store; next try in {} s", every.as_secs());
                metrics::counter!("hazgate_ingest_loop_counts_write_failures_total").increment(1);
            }
        }
    }
}
