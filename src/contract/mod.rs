//! The MQTT contract between gateway and centre, version `v1` (`docs/mqtt.md`): the
//! one home of topic names ([`topic`]) and payloads ([`wire`]). The gateway converts
//! its judge's events into these types and serialises them; the centre decodes into
//! the same types ([`incoming`]). The JSON Schemas in `docs/schema/` describe the same messages for
//! other implementations; tests hold the types and the schemas to each other.
//!
//! Minor versions are additive: 1.1 `device`, 1.2 `over_range` / `under_range`,
//! 1.3 `stream_seq`, `alarm_id`, `at_restart`, `since`, `snapshot`; 1.4 `samples` and
//! the point table; 1.5 `risk.name`, `status.enterprise_name`, `alarm.unit`; 1.6 the
//! retained list of standing alarms (`alarms`, type `active_alarms`).

pub mod incoming;
pub mod samples;
pub mod topic;
pub mod vocab;
pub mod wire;

pub use incoming::Incoming;

pub use topic::{every_gateway, GatewayPath, Stream, Topic, Topics};

/// The contract's major version, the second topic level.
pub const VERSION: &str = "v1";
/// The newest minor version this build speaks.
pub const MINOR: &str = "1.6";
