//! Writing points to the time-series store.
//!
//! Behind a small trait so the batching, retry and acknowledgement logic does not
//! depend on one client crate (the influxdb2 crate is a community crate with no
//! timeout, batching or retries of its own: those live in [`super::service`]).

use std::time::Duration;

use bytes::Bytes;
use influxdb2::api::write::TimestampPrecision;

use crate::model::central::StoreConfig;

/// A store that accepts a batch of line protocol (ms timestamps), all or nothing.
///
/// The batch is rendered once and handed over as shared bytes, so a retry costs no
/// re-encoding.
pub trait PointWriter: Send + Sync + 'static {
    fn write(
        &self,
        lines: Bytes,
    ) -> impl std::future::Future<Output = Result<(), WriteError>> + Send;
}

/// Why a batch was not stored (it is then retried).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The store refused the batch or could not be reached.
    #[error(transparent)]
    Store(#[from] influxdb2::RequestError),
    #[error("no answer within {} s", .0.as_secs())]
    NoAnswer(Duration),
}

/// The InfluxDB v2 write API (`POST /api/v2/write`, line protocol, ms precision):
/// InfluxDB 2.x / 3.x, VictoriaMetrics, and anything else that speaks it.
pub struct InfluxWriter {
    client: influxdb2::Client,
    org: String,
    bucket: String,
    timeout: Duration,
}

impl InfluxWriter {
    pub fn new(cfg: &StoreConfig) -> Self {
        Self {
            client: influxdb2::Client::new(cfg.url.clone(), cfg.org.clone(), cfg.token.clone()),
            org: cfg.org.clone(),
            bucket: cfg.bucket.clone(),
            timeout: cfg.timeout(),
        }
    }
}

impl PointWriter for InfluxWriter {
    async fn write(&self, lines: Bytes) -> Result<(), WriteError> {
        // Success is exactly HTTP 204 (the crate's rule); anything else is an error.
        match tokio::time::timeout(
            self.timeout,
            self.client.write_line_protocol_with_precision(
                &self.org,
                &self.bucket,
                lines,
                TimestampPrecision::Milliseconds,
            ),
        )
        .await
        {
            Ok(result) => Ok(result?),
            Err(_) => Err(WriteError::NoAnswer(self.timeout)),
        }
    }
}
