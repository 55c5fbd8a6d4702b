//! `[uplink]` in the site file: where and how the gateway publishes.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::{
    mqtt::{MqttEndpoint, Protocol, TlsConfig},
    problems::At,
};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    /// The park's MQTT broker.
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// MQTT protocol version: `"3.1.1"` (default) or `"5"`.
    #[serde(default)]
    pub protocol: Protocol,
    /// First topic level (`{prefix}/v1/{park}/{enterprise}/{gateway}/…`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Defaults to `hazgate-{gateway_id}`: stable, so the broker knows us again.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default = "default_keepalive")]
    pub keepalive_s: u64,
    /// The durable spool file.
    #[serde(default = "default_spool_path")]
    pub spool_path: PathBuf,
    /// Append-only audit log of every remote command, accepted or not (JSON lines).
    #[serde(default = "default_audit_path")]
    pub audit_path: PathBuf,
    /// Payload bytes the spool may hold before dropping the oldest telemetry.
    #[serde(default = "default_spool_bytes")]
    pub spool_max_bytes: u64,
    /// A full snapshot of every point is sent this often (seconds).
    #[serde(default = "default_integrity")]
    pub integrity_period_s: u64,
    /// A reading is sent when it moves by more than this percentage of its span (or
    /// changes at all without a span), or when its quality changes.
    #[serde(default)]
    pub publish_deadband_pct: f64,
    #[serde(default = "default_batch")]
    pub max_readings_per_message: usize,
    /// QoS 1 messages awaiting PUBACK at once.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// How readings are sent: `readings` (self-describing, ~150 bytes each) or
    /// `samples` (v1.4: values by index into a retained point table, a few bytes each).
    #[serde(default)]
    pub telemetry: TelemetryForm,
}

/// The form of telemetry messages (`docs/mqtt.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TelemetryForm {
    /// `type: telemetry`, every reading with its names: any v1 consumer reads it.
    #[default]
    Readings,
    /// `type: samples` with the point table on `points/{table}/{first}`.
    Samples,
}

fn default_port() -> u16 {
    1883
}
fn default_prefix() -> String {
    "hazgate".into()
}
fn default_keepalive() -> u64 {
    30
}
fn default_spool_path() -> PathBuf {
    PathBuf::from("/var/lib/hazgate/spool.redb")
}
fn default_audit_path() -> PathBuf {
    PathBuf::from("/var/lib/hazgate/audit.jsonl")
}
fn default_spool_bytes() -> u64 {
    64 << 20
}
fn default_integrity() -> u64 {
    60
}
fn default_batch() -> usize {
    500
}
fn default_inflight() -> u16 {
    32
}

/// `[uplink]` compiled: what the uplink runs on, in typed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Uplink {
    /// The broker, with the client id resolved.
    pub endpoint: MqttEndpoint,
    pub prefix: String,
    pub spool_path: PathBuf,
    pub audit_path: PathBuf,
    pub spool_max_bytes: u64,
    /// A full snapshot of every point, and every level restated, this often.
    pub integrity_period: Duration,
    pub publish_deadband_pct: f64,
    pub max_readings_per_message: usize,
    pub inflight: u16,
    pub telemetry: TelemetryForm,
}

impl UplinkConfig {
    /// The section compiled for the gateway `gateway_id` (checked by
    /// [`UplinkConfig::validate`] first).
    pub fn compile(&self, gateway_id: &str) -> Uplink {
        Uplink {
            endpoint: self.endpoint(gateway_id),
            prefix: self.prefix.clone(),
            spool_path: self.spool_path.clone(),
            audit_path: self.audit_path.clone(),
            spool_max_bytes: self.spool_max_bytes,
            integrity_period: Duration::from_secs(self.integrity_period_s),
            publish_deadband_pct: self.publish_deadband_pct,
            max_readings_per_message: self.max_readings_per_message,
            inflight: self.inflight,
            telemetry: self.telemetry,
        }
    }

    /// The broker connection; the client id defaults to `hazgate-{gateway_id}`, stable
    /// so the broker knows the gateway again.
    pub fn endpoint(&self, gateway_id: &str) -> MqttEndpoint {
        MqttEndpoint {
            host: self.host.clone(),
            port: self.port,
            protocol: self.protocol,
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| format!("hazgate-{gateway_id}")),
            credentials: self
                .username
                .clone()
                .map(|u| (u, self.password.clone().unwrap_or_default())),
            tls: self.tls.clone(),
            keepalive: Duration::from_secs(self.keepalive_s),
        }
    }

    /// Checks the section; paths are relative to it.
    pub fn validate(&self, p: &mut At<'_>) {
        let password_without_user = self.username.is_none() && self.password.is_some();
        self.endpoint("").check(password_without_user, p);
        if self.prefix.is_empty() || self.prefix.contains(['+', '#']) {
            p.push(
                "prefix",
                format!("`{}` must be non-empty, without + or #", self.prefix),
            );
        }
        if self.spool_max_bytes < 64 << 10 {
            p.push("spool_max_bytes", "must be at least 64 KiB");
        }
        if self.integrity_period_s == 0 {
            p.push("integrity_period_s", "must be at least 1");
        }
        if !(self.publish_deadband_pct.is_finite() && self.publish_deadband_pct >= 0.0) {
            p.push("publish_deadband_pct", "must be ≥ 0");
        }
        if self.max_readings_per_message == 0 {
            p.push("max_readings_per_message", "must be at least 1");
        }
        if self.inflight == 0 {
            p.push("inflight", "must be at least 1");
        }
    }
}
