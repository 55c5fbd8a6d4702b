//! `[uplink]` in the site file: where and how the gateway publishes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::link::Protocol;

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
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificate the broker's certificate must chain to.
    pub ca_file: PathBuf,
    /// PEM client certificate and key, for brokers that require them.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// rumqttc's TLS settings (rustls), with the PEM files read; an unreadable file is
    /// an error naming it.
    pub fn to_rumqttc(&self) -> Result<rumqttc::TlsConfiguration, (PathBuf, std::io::Error)> {
        let read = |p: &PathBuf| std::fs::read(p).map_err(|e| (p.clone(), e));
        let client_auth = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            _ => None,
        };
        Ok(rumqttc::TlsConfiguration::Simple {
            ca: read(&self.ca_file)?,
            alpn: None,
            client_auth,
        })
    }
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

impl UplinkConfig {
    /// Problems as (field, message).
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if self.host.trim().is_empty() {
            v.push(("host", "must name the broker".to_string()));
        }
        if self.port == 0 {
            v.push(("port", "must not be 0".to_string()));
        }
        if self.prefix.is_empty() || self.prefix.contains(['+', '#']) {
            v.push((
                "prefix",
                format!("`{}` must be non-empty, without + or #", self.prefix),
            ));
        }
        if self.keepalive_s < 5 {
            v.push(("keepalive_s", "must be at least 5".to_string()));
        }
        if self.spool_max_bytes < 64 << 10 {
            v.push(("spool_max_bytes", "must be at least 64 KiB".to_string()));
        }
        if self.integrity_period_s == 0 {
            v.push(("integrity_period_s", "must be at least 1".to_string()));
        }
        if !(self.publish_deadband_pct.is_finite() && self.publish_deadband_pct >= 0.0) {
            v.push(("publish_deadband_pct", "must be ≥ 0".to_string()));
        }
        if self.max_readings_per_message == 0 {
            v.push(("max_readings_per_message", "must be at least 1".to_string()));
        }
        if self.inflight == 0 {
            v.push(("inflight", "must be at least 1".to_string()));
        }
        if let Some(t) = &self.tls {
            if t.cert_file.is_some() != t.key_file.is_some() {
                v.push(("tls", "cert_file and key_file go together".to_string()));
            }
        }
        if self.username.is_none() && self.password.is_some() {
            v.push(("password", "needs a username".to_string()));
        }
        v
    }
}
