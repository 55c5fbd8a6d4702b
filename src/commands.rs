//! The one command path. Operator commands arrive over MQTT (`…/cmd/{name}`) and the
//! local API (`POST /api/v1/commands/{name}`) in one wire form — a command name and a
//! JSON object — and take one way: [`execute`] parses and validates them before
//! anything changes, applies them through the judge, and appends them, accepted or
//! not, to the audit log, naming the channel and who sent them.
//!
//! Parsing is pure and total (fuzzed by `fuzz/fuzz_targets/command.rs`): any bytes give
//! a command or a precise error, and the request id is recovered whenever the payload
//! is a JSON object carrying one, so even a rejected request gets its answer matched.

use std::{
    fs::OpenOptions,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use crate::auth::Role;
use crate::{
    judge::{
        engine::{Event, ThresholdChange},
        service::JudgeHandle,
        Command,
    },
    model::alarm::AlarmKind,
    reading::Timestamp,
};

/// Larger payloads are refused unread: no command needs more.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// Command names accepted on `cmd/{name}`.
pub const COMMANDS: &[&str] = &[
    "ack",
    "shelve",
    "unshelve",
    "out-of-service",
    "special-operation",
    "thresholds",
    "feedback",
];

/// The role a command needs; `None` for an unknown command.
pub fn required_role(name: &str) -> Option<Role> {
    match name {
        "ack" | "shelve" | "unshelve" | "special-operation" | "feedback" => Some(Role::Operator),
        "out-of-service" | "thresholds" => Some(Role::Engineer),
        _ => None,
    }
}

/// The kinds of special operation (特殊作业) of GB 30871-2022, by the ids a command
/// names them with.
pub const SPECIAL_OPERATIONS: &[(&str, &str)] = &[
    ("hot_work", "动火作业 hot work"),
    ("confined_space", "受限空间作业 confined-space entry"),
    (
        "blind_plate",
        "盲板抽堵作业 blind-plate insertion / removal",
    ),
    ("work_at_height", "高处作业 work at height"),
    ("lifting", "吊装作业 lifting"),
    (
        "temporary_electricity",
        "临时用电作业 temporary electricity",
    ),
    ("excavation", "动土作业 excavation"),
    ("road_closure", "断路作业 road closure"),
];

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub request_id: Option<String>,
    pub by: String,
    pub command: Command,
}

impl Request {
    /// Makes `by` the sender, in the request and in its command.
    fn set_by(&mut self, by: &str) {
        self.by = by.to_string();
        match &mut self.command {
            Command::Acknowledge { by: b, .. }
            | Command::Shelve { by: b, .. }
            | Command::Unshelve { by: b, .. }
            | Command::OutOfService { by: b, .. }
            | Command::Thresholds { by: b, .. }
            | Command::SpecialOperation { by: b, .. }
            | Command::Feedback { by: b, .. } => *b = by.to_string(),
        }
    }
}

/// Why a request was refused before reaching the judge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "unknown command `{0}` (known: ack, shelve, unshelve, out-of-service, special-operation, thresholds, feedback)"
    )]
    Unknown(String),
    #[error("payload of {0} bytes is over the {MAX_COMMAND_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("payload is not a JSON object: {0}")]
    NotJson(String),
    #[error("invalid {command} request: {message}")]
    Invalid { command: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointArgs {
    #[serde(default)]
    request_id: Option<String>,
    /// Who: required over MQTT (the judge refuses an anonymous command); over the local
    /// API the token's name, whatever this says.
    #[serde(default)]
    by: String,
    point: String,
    #[serde(default)]
    alarm: Option<AlarmKind>,
    #[serde(default)]
    duration_s: Option<f64>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecialArgs {
    #[serde(default)]
    request_id: Option<String>,
    /// Who: required over MQTT (the judge refuses an anonymous command); over the local
    /// API the token's name, whatever this says.
    #[serde(default)]
    by: String,
    hazard_source: String,
    active: bool,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdArgs {
    #[serde(default)]
    request_id: Option<String>,
    /// Who: required over MQTT (the judge refuses an anonymous command); over the local
    /// API the token's name, whatever this says.
    #[serde(default)]
    by: String,
    changes: Vec<ThresholdChange>,
    /// The `hazgate tune` report the change was chosen in (`--emit-command`): kept in
    /// the audit line, so a change can be traced to the replay that justified it.
    #[serde(default)]
    #[allow(dead_code)] // read back from the payload by `tune_report`
    tune_report: Option<String>,
}

pub use crate::contract::wire::{MAX_CAUSE_CHARS, MAX_FEEDBACK_CHARS};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackArgs {
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    by: String,
    alarm_id: String,
    cause: String,
    #[serde(default)]
    measures: String,
    #[serde(default)]
    text: String,
}

impl FeedbackArgs {
    /// The first field over its length, as `(field, limit)`.
    fn too_long(&self) -> Option<(&'static str, usize)> {
        [
            ("cause", &self.cause, MAX_CAUSE_CHARS),
            ("measures", &self.measures, MAX_FEEDBACK_CHARS),
            ("text", &self.text, MAX_FEEDBACK_CHARS),
        ]
        .into_iter()
        .find(|(_, v, max)| v.chars().count() > *max)
        .map(|(f, _, max)| (f, max))
    }
}

/// A string field of a payload, if it is a JSON object with one.
fn payload_str(payload: &[u8], key: &str) -> Option<String> {
    if payload.len() > MAX_COMMAND_BYTES {
        return None;
    }
    let v: Json = serde_json::from_slice(payload).ok()?;
    v.get(key)?.as_str().map(str::to_string)
}

/// The request id of a payload, if it is a JSON object carrying a string `request_id`.
pub fn request_id(payload: &[u8]) -> Option<String> {
    payload_str(payload, "request_id")
}

/// The tune report a payload names (`tune_report`), at most 128 characters.
pub fn tune_report(payload: &[u8]) -> Option<String> {
    payload_str(payload, "tune_report").map(|s| s.chars().take(128).collect())
}

/// Parses the payload of `cmd/{name}`.
pub fn parse(name: &str, payload: &[u8]) -> Result<Request, ParseError> {
    if !COMMANDS.contains(&name) {
        return Err(ParseError::Unknown(name.chars().take(64).collect()));
    }
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(ParseError::TooLarge(payload.len()));
    }
    let value: Json =
        serde_json::from_slice(payload).map_err(|e| ParseError::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(ParseError::NotJson("expected an object".into()));
    }
    let invalid = |e: serde_json::Error| ParseError::Invalid {
        command: name.to_string(),
        message: e.to_string(),
    };
    let missing = |field: &str| ParseError::Invalid {
        command: name.to_string(),
        message: format!("missing field `{field}`"),
    };
    if name == "thresholds" {
        let a: ThresholdArgs = serde_json::from_value(value).map_err(invalid)?;
        return Ok(Request {
            request_id: a.request_id,
            by: a.by.clone(),
            command: Command::Thresholds {
                changes: a.changes,
                by: a.by,
            },
        });
    }
    if name == "feedback" {
        let a: FeedbackArgs = serde_json::from_value(value).map_err(invalid)?;
        if a.cause.trim().is_empty() {
            return Err(missing("cause"));
        }
        if let Some((field, max)) = a.too_long() {
            return Err(ParseError::Invalid {
                command: name.to_string(),
                message: format!("`{field}` is longer than {max} characters"),
            });
        }
        return Ok(Request {
            request_id: a.request_id,
            by: a.by.clone(),
            command: Command::Feedback {
                alarm_id: a.alarm_id,
                cause: a.cause,
                measures: a.measures,
                text: a.text,
                by: a.by,
            },
        });
    }
    if name == "special-operation" {
        let a: SpecialArgs = serde_json::from_value(value).map_err(invalid)?;
        if a.active && !SPECIAL_OPERATIONS.iter().any(|(id, _)| *id == a.kind) {
            return Err(ParseError::Invalid {
                command: name.to_string(),
                message: format!(
                    "kind `{}` is not a special operation of GB 30871-2022; one of: {}",
                    a.kind,
                    SPECIAL_OPERATIONS
                        .iter()
                        .map(|(id, _)| *id)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        return Ok(Request {
            request_id: a.request_id,
            by: a.by.clone(),
            command: Command::SpecialOperation {
                hazard_source: a.hazard_source,
                active: a.active,
                kind: a.kind,
                by: a.by,
            },
        });
    }
    let a: PointArgs = serde_json::from_value(value).map_err(invalid)?;
    let (point, alarm, by) = (a.point, a.alarm, a.by.clone());
    let command = match name {
        "ack" => Command::Acknowledge { point, alarm, by },
        "shelve" => Command::Shelve {
            point,
            alarm,
            duration_s: a.duration_s.ok_or_else(|| missing("duration_s"))?,
            by,
        },
        "unshelve" => Command::Unshelve { point, alarm, by },
        _ => Command::OutOfService {
            point,
            enabled: a.enabled.ok_or_else(|| missing("enabled"))?,
            by,
        },
    };
    Ok(Request {
        request_id: a.request_id,
        by: a.by,
        command,
    })
}

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Mqtt,
    LocalApi,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry<'a> {
    pub ts: Timestamp,
    pub channel: Channel,
    pub command: &'a str,
    pub request_id: Option<&'a str>,
    /// The `hazgate tune` report a thresholds change was chosen in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tune_report: Option<String>,
    /// Who: the local API's token name, or, over MQTT, the request's `by`; `null` when
    /// the request could not be read.
    pub by: Option<&'a str>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// The request as received (lossy UTF-8, truncated to [`AUDIT_REQUEST_BYTES`]).
    pub request: String,
    /// What changed: the judge's events (old → new states) for an accepted command.
    pub changes: Json,
}

/// Append-only JSON-lines audit log, fsynced per entry; one writer at a time, so lines
/// from both channels never interleave.
pub struct AuditLog {
    path: PathBuf,
    writing: Mutex<()>,
}

impl AuditLog {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            writing: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the log for appending (creating it and its directory), so a log that
    /// cannot be written is an error at start-up, not a surprise at the first command.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::new(path))
    }

    pub fn append(&self, entry: &AuditEntry<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.append_line(&line)
    }

    /// Appends `entry` off the async runtime (the write ends in an fsync); a failure is
    /// loud: logged, and counted in `hazgate_audit_write_failures_total`.
    pub async fn record(self: &Arc<Self>, entry: &AuditEntry<'_>) {
        let written = match serde_json::to_vec(entry) {
            Ok(mut line) => {
                line.push(b'\n');
                let log = self.clone();
                tokio::task::spawn_blocking(move || log.append_line(&line))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            }
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, path = %self.path.display(), "audit log write failed");
            metrics::counter!("hazgate_audit_write_failures_total").increment(1);
        }
    }

    fn append_line(&self, line: &[u8]) -> std::io::Result<()> {
        let _one_writer = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(line)?;
        f.sync_data()
    }
}

/// What became of a command.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request_id: Option<String>,
    /// The judge's events (the changes), or why nothing changed.
    pub result: Result<Vec<Event>, String>,
}

/// Parses, applies and audits one command. `by`, when given (the local API's token
/// name), is who sends it, whatever the payload says.
pub async fn execute(
    judge: &JudgeHandle,
    audit: &Arc<AuditLog>,
    channel: Channel,
    name: &str,
    payload: &[u8],
    by: Option<&str>,
) -> Outcome {
    let request = parse(name, payload).map(|mut r| {
        if let Some(by) = by {
            r.set_by(by);
        }
        r
    });
    let request_id = match &request {
        Ok(r) => r.request_id.clone(),
        Err(_) => request_id(payload),
    };
    let sender = by
        .map(str::to_string)
        .or_else(|| request.as_ref().ok().map(|r| r.by.clone()));
    let result: Result<Vec<Event>, String> = match request {
        Err(e) => Err(e.to_string()),
        Ok(r) => match judge.command(r.command).await {
            Ok(Ok(events)) => Ok(events),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        },
    };
    let error = result.as_ref().err().map(String::as_str);
    let entry = AuditEntry {
        ts: Timestamp::now(),
        channel,
        command: name,
        request_id: request_id.as_deref(),
        tune_report: (name == "thresholds")
            .then(|| tune_report(payload))
            .flatten(),
        by: sender.as_deref(),
        ok: error.is_none(),
        error,
        request: audit_text(payload),
        changes: match &result {
            Ok(events) => serde_json::to_value(events).unwrap_or_default(),
            Err(_) => Json::Null,
        },
    };
    audit.record(&entry).await;
    match error {
        None => {
            tracing::info!(?channel, command = name, ?request_id, by = ?sender, "command applied")
        }
        Some(e) => {
            tracing::warn!(?channel, command = name, ?request_id, by = ?sender, error = e, "command rejected")
        }
    }
    Outcome { request_id, result }
}

/// Records a command refused before it was read (the sender's role does not allow it).
pub async fn audit_refusal(
    audit: &Arc<AuditLog>,
    channel: Channel,
    name: &str,
    payload: &[u8],
    by: &str,
    error: &str,
) {
    let id = request_id(payload);
    let entry = AuditEntry {
        ts: Timestamp::now(),
        channel,
        command: name,
        request_id: id.as_deref(),
        tune_report: None,
        by: Some(by),
        ok: false,
        error: Some(error),
        request: audit_text(payload),
        changes: Json::Null,
    };
    audit.record(&entry).await;
    tracing::warn!(?channel, command = name, by, error, "command refused");
}

/// How much of a request the audit log keeps: all of any valid one (a feedback's
/// texts at their longest, in Chinese, are ≈ 3.3 KB).
pub const AUDIT_REQUEST_BYTES: usize = 4096;

/// The request bytes as an audit string.
pub fn audit_text(payload: &[u8]) -> String {
    let cut = &payload[..payload.len().min(AUDIT_REQUEST_BYTES)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_command() {
        let r = parse(
            "ack",
            br#"{"request_id":"r1","by":"op","point":"GT-101","alarm":"hh"}"#,
        )
        .unwrap();
        assert_eq!(r.request_id.as_deref(), Some("r1"));
        assert_eq!(
            r.command,
            Command::Acknowledge {
                point: "GT-101".into(),
                alarm: Some(AlarmKind::Hh),
                by: "op".into()
            }
        );
        assert!(matches!(
            parse("shelve", br#"{"by":"op","point":"P","duration_s":60}"#)
                .unwrap()
                .command,
            Command::Shelve { .. }
        ));
        assert!(matches!(
            parse(
                "out-of-service",
                br#"{"by":"op","point":"P","enabled":true}"#
            )
            .unwrap()
            .command,
            Command::OutOfService { enabled: true, .. }
        ));
        assert!(matches!(
            parse(
                "special-operation",
                br#"{"by":"op","hazard_source":"HS-01","active":true,"kind":"hot_work"}"#
            )
            .unwrap()
            .command,
            Command::SpecialOperation { active: true, .. }
        ));
        assert_eq!(
            parse(
                "feedback",
                r#"{"by":"李工","alarm_id":"GT-101:hh:1795419779123","cause":"real_leak","measures":"关阀","text":"法兰泄漏"}"#.as_bytes()
            )
            .unwrap()
            .command,
            Command::Feedback {
                alarm_id: "GT-101:hh:1795419779123".into(),
                cause: "real_leak".into(),
                measures: "关阀".into(),
                text: "法兰泄漏".into(),
                by: "李工".into()
            }
        );
    }

    #[test]
    fn rejects_bad_requests_precisely() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("ack", b"not json", "not a JSON object"),
            ("ack", b"[1,2]", "expected an object"),
            ("ack", br#"{"by":"op"}"#, "missing field `point`"),
            ("ack", br#"{"by":"op","point":7}"#, "invalid type"),
            (
                "ack",
                br#"{"by":"op","point":"P","alarm":"hhh"}"#,
                "unknown variant `hhh`",
            ),
            (
                "ack",
                br#"{"by":"op","point":"P","colour":"red"}"#,
                "unknown field `colour`",
            ),
            (
                "shelve",
                br#"{"by":"op","point":"P"}"#,
                "missing field `duration_s`",
            ),
            ("reboot", b"{}", "unknown command `reboot`"),
            (
                "feedback",
                br#"{"by":"op","alarm_id":"P:hh:1","cause":" "}"#,
                "missing field `cause`",
            ),
            (
                "feedback",
                br#"{"by":"op","cause":"leak"}"#,
                "missing field `alarm_id`",
            ),
            (
                "special-operation",
                br#"{"by":"op","hazard_source":"HS-01","active":true,"kind":"dancing"}"#,
                "kind `dancing` is not a special operation of GB 30871-2022; one of: hot_work, confined_space",
            ),
        ];
        for (name, payload, phrase) in cases {
            let e = parse(name, payload).unwrap_err().to_string();
            assert!(
                e.contains(phrase),
                "{name} {:?}: {e}",
                String::from_utf8_lossy(payload)
            );
        }
        let long = format!(
            r#"{{"by":"op","alarm_id":"P:hh:1","cause":"c","text":"{}"}}"#,
            "泄".repeat(MAX_FEEDBACK_CHARS + 1)
        );
        let e = parse("feedback", long.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("`text` is longer than 500 characters"), "{e}");
        let huge = vec![b' '; MAX_COMMAND_BYTES + 1];
        assert_eq!(
            parse("ack", &huge),
            Err(ParseError::TooLarge(MAX_COMMAND_BYTES + 1))
        );
        assert_eq!(
            request_id(br#"{"request_id":"x","point":1}"#).as_deref(),
            Some("x"),
            "id recovered from a bad request"
        );
    }
}
