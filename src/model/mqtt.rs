//! What both sides need to reach a broker: the gateway's `[uplink]` and the centre's
//! `[mqtt]` each compile their connection fields into one [`MqttEndpoint`], checked by
//! one [`MqttEndpoint::check`] and turned into rumqttc options in one place.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::problems::At;

/// The MQTT protocol version spoken to the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum Protocol {
    /// MQTT 3.1.1: what every broker speaks; the default.
    #[default]
    #[serde(rename = "3.1.1", alias = "v3.1.1", alias = "4")]
    V311,
    /// MQTT 5: PUBACK reason codes, so a broker's refusal of a message is visible.
    #[serde(rename = "5", alias = "v5", alias = "5.0")]
    V5,
}

/// `tls` in `[uplink]` or `[mqtt]`.
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

/// A TLS file that could not be read, named.
#[derive(Debug, thiserror::Error)]
#[error("TLS file {}: {source}", path.display())]
pub struct TlsFileError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl TlsConfig {
    /// rumqttc's TLS settings (rustls), with the PEM files read.
    pub fn to_rumqttc(&self) -> Result<rumqttc::TlsConfiguration, TlsFileError> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|source| TlsFileError {
                path: p.clone(),
                source,
            })
        };
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

/// One broker connection, compiled from either side's file section.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttEndpoint {
    pub host: String,
    pub port: u16,
    pub protocol: Protocol,
    pub client_id: String,
    /// Username and password (empty when only a username is given).
    pub credentials: Option<(String, String)>,
    pub tls: Option<TlsConfig>,
    pub keepalive: Duration,
}

impl MqttEndpoint {
    /// Checks the connection fields; paths are relative to the caller's section.
    pub fn check(&self, password_without_user: bool, p: &mut At<'_>) {
        if self.host.trim().is_empty() {
            p.push("host", "must name the broker");
        }
        if self.port == 0 {
            p.push("port", "must not be 0");
        }
        if self.keepalive < Duration::from_secs(5) {
            p.push("keepalive_s", "must be at least 5");
        }
        if let Some(t) = &self.tls {
            if t.cert_file.is_some() != t.key_file.is_some() {
                p.push("tls", "cert_file and key_file go together");
            }
        }
        if password_without_user {
            p.push("password", "needs a username");
        }
    }

    /// MQTT 3.1.1 options: broker, keepalive, credentials, TLS. The caller sets what
    /// differs (session kind, inflight, packet sizes, Last Will).
    pub fn v311_options(&self) -> Result<rumqttc::MqttOptions, TlsFileError> {
        let mut o = rumqttc::MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        o.set_keep_alive(self.keepalive);
        if let Some((u, p)) = &self.credentials {
            o.set_credentials(u.clone(), p.clone());
        }
        if let Some(tls) = &self.tls {
            o.set_transport(rumqttc::Transport::Tls(tls.to_rumqttc()?));
        }
        Ok(o)
    }
}
