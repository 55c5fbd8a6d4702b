//! `[alarm_loop]` in `central.toml`: the centre's alarm-handling loop (预警处置反馈) —
//! where its journal is kept, which handling causes an operator may choose, and how
//! soon each class of alarm must have its feedback.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{alarm::AlarmClass, problems::At};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmLoopConfig {
    /// The alarm journal: one JSON-lines file a month (`alarms-2026-11.jsonl`), every
    /// alarm event, feedback, gateway answer and online change, fsynced per entry. The
    /// ledger is rebuilt from it at start-up; `hazgate report` reads it.
    pub journal_dir: PathBuf,
    /// The causes an operator chooses from when giving feedback.
    #[serde(default = "default_causes")]
    pub causes: Vec<Cause>,
    /// Minutes from an alarm's raise within which its feedback is due; past it without
    /// feedback, the alarm counts as 未反馈.
    #[serde(default)]
    pub feedback_deadline_min: Deadlines,
    /// The monthly report's months are in this time zone, hours east of UTC (China
    /// Standard Time: 8).
    #[serde(default = "default_utc_offset")]
    pub report_utc_offset_h: i8,
    /// The counters (per enterprise and park) are written to the store this often, as
    /// the `alarm_loop` measurement the dashboards read.
    #[serde(default = "default_store_every")]
    pub store_every_s: u64,
}

/// One handling cause: an id (kept in the journal, sent to the gateway) and what the
/// screen shows.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    pub id: String,
    pub name: String,
}

/// Feedback deadlines by alarm class, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    pub critical: u32,
    pub high: u32,
    pub low: u32,
}

impl Default for Deadlines {
    /// A critical alarm (HH, an interlock, a leak turning a source red) is followed up
    /// within half an hour; the others within the shift's first hours.
    fn default() -> Self {
        Self {
            critical: 30,
            high: 60,
            low: 240,
        }
    }
}

impl Deadlines {
    pub fn ms(&self, class: AlarmClass) -> i64 {
        let min = match class {
            AlarmClass::Critical => self.critical,
            AlarmClass::High => self.high,
            AlarmClass::Low => self.low,
        };
        i64::from(min) * 60_000
    }
}

fn default_causes() -> Vec<Cause> {
    [
        ("real_leak", "真实泄漏 real leak"),
        ("process_upset", "工艺波动 process upset"),
        ("maintenance", "检维修 maintenance"),
        ("special_operation", "特殊作业 special operation"),
        ("sensor_fault", "仪表故障 sensor fault"),
        ("false_alarm", "误报 false alarm"),
        ("other", "其他 other"),
    ]
    .into_iter()
    .map(|(id, name)| Cause {
        id: id.into(),
        name: name.into(),
    })
    .collect()
}

fn default_utc_offset() -> i8 {
    8
}

fn default_store_every() -> u64 {
    60
}

/// Longest cause id: the gateway's `feedback` command takes at most this many
/// characters (`contract::wire::MAX_CAUSE_CHARS`; config types sit below the contract).
const MAX_CAUSE_ID: usize = 64;

impl AlarmLoopConfig {
    pub fn check(&self, p: &mut At<'_>) {
        if self.journal_dir.as_os_str().is_empty() {
            p.push(
                "journal_dir",
                "must name a directory, e.g. /var/lib/hazgate/alarms",
            );
        }
        if self.causes.is_empty() {
            p.push(
                "causes",
                "must list at least one cause, e.g. { id = \"real_leak\", name = \"真实泄漏 real leak\" }",
            );
        }
        for (i, c) in self.causes.iter().enumerate() {
            let ok = !c.id.is_empty()
                && c.id.len() <= MAX_CAUSE_ID
                && c.id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                p.push(
                    &format!("causes[{i}].id"),
                    format!("`{}`: 1–{MAX_CAUSE_ID} of a–z, 0–9, _ and -", c.id),
                );
            }
            if self.causes[..i].iter().any(|d| d.id == c.id) {
                p.push(
                    &format!("causes[{i}].id"),
                    format!("`{}` is listed twice", c.id),
                );
            }
            if c.name.trim().is_empty() {
                p.push(
                    &format!("causes[{i}].name"),
                    "must say what the screen shows",
                );
            }
        }
        let d = self.feedback_deadline_min;
        for (class, min) in [("critical", d.critical), ("high", d.high), ("low", d.low)] {
            if min == 0 {
                p.push(
                    &format!("feedback_deadline_min.{class}"),
                    "must be at least 1 minute (e.g. critical = 30)",
                );
            }
        }
        if !(1..=3600).contains(&self.store_every_s) {
            p.push(
                "store_every_s",
                format!("{}: must be from 1 to 3600 (e.g. 60)", self.store_every_s),
            );
        }
        if !(-12..=14).contains(&self.report_utc_offset_h) {
            p.push("report_utc_offset_h", "must be from -12 to 14 (China: 8)");
        }
    }
}
