//! The contract's JSON Schemas (`docs/schema/`, embedded at build time): every message
//! is checked against the same schemas the gateway's messages are tested with, so the
//! centre accepts exactly what `docs/mqtt.md` promises, and a refusal says where.

use std::sync::LazyLock;

use serde_json::Value;

macro_rules! schema {
    ($file:literal) => {
        LazyLock::new(|| {
            let schema: Value =
                serde_json::from_str(include_str!(concat!("../../docs/schema/", $file)))
                    .expect("embedded schema is JSON: every_embedded_schema_compiles");
            jsonschema::validator_for(&schema)
                .expect("embedded schema compiles: every_embedded_schema_compiles")
        })
    };
}

static TELEMETRY: LazyLock<jsonschema::Validator> = schema!("telemetry.json");
static SAMPLES: LazyLock<jsonschema::Validator> = schema!("samples.json");
static POINTS: LazyLock<jsonschema::Validator> = schema!("points.json");
static ALARM: LazyLock<jsonschema::Validator> = schema!("alarm.json");
static RISK: LazyLock<jsonschema::Validator> = schema!("risk.json");
static SPECIAL: LazyLock<jsonschema::Validator> = schema!("special-operation.json");
static THRESHOLDS: LazyLock<jsonschema::Validator> = schema!("thresholds.json");
static REPLY: LazyLock<jsonschema::Validator> = schema!("command-reply.json");
static STATUS: LazyLock<jsonschema::Validator> = schema!("status.json");
static ACTIVE_ALARMS: LazyLock<jsonschema::Validator> = schema!("active-alarms.json");

fn validator(message_type: &str) -> Option<&'static jsonschema::Validator> {
    Some(match message_type {
        "telemetry" => &TELEMETRY,
        "samples" => &SAMPLES,
        "points" => &POINTS,
        "alarm" => &ALARM,
        "risk" => &RISK,
        "special_operation" => &SPECIAL,
        "thresholds" => &THRESHOLDS,
        "status" => &STATUS,
        "command_reply" => &REPLY,
        "active_alarms" => &ACTIVE_ALARMS,
        _ => return None,
    })
}

/// The first way `v` breaks the schema of `message_type`, if it does.
pub fn violation(message_type: &str, v: &Value) -> Option<String> {
    let Some(schema) = validator(message_type) else {
        return Some(format!("no schema for `{message_type}`"));
    };
    // is_valid stops at the first failure and builds no error: the common case is cheap.
    if schema.is_valid(v) {
        return None;
    }
    schema
        .iter_errors(v)
        .next()
        .map(|e| format!("{message_type} at {}: {e}", e.instance_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Stream;

    /// The schemas are compiled into the binary: this proves the `expect`s in
    /// `schema!` can not fire, for every type a topic may carry.
    #[test]
    fn every_embedded_schema_compiles() {
        for stream in Stream::PUBLISHED {
            for t in stream.types() {
                let v = validator(t).unwrap_or_else(|| panic!("no schema for {t}"));
                assert!(
                    !v.is_valid(&serde_json::json!({})),
                    "{t} rejects an empty object"
                );
            }
        }
    }
}
