//! Central ingest's message decoding: arbitrary payloads on every gateway topic give
//! points or a refusal with a known cause, never a panic; accepted messages stay within
//! the size limit and every point is a well-formed line of line protocol.
#![no_main]

use hazgate::ingest::message::decode;
use libfuzzer_sys::fuzz_target;

const TOPICS: [&str; 5] = [
    "hazgate/v1/P1/E1/G1/telemetry",
    "hazgate/v1/P1/E1/G1/alarm",
    "hazgate/v1/P1/E1/G1/risk",
    "hazgate/v1/P1/E1/G1/status",
    "hazgate/v1/P1/E1/G1/cmd/ack",
];
const CAUSES: [&str; 7] = [
    "unknown_topic",
    "too_large",
    "not_json",
    "wrong_type",
    "schema_invalid",
    "identity_mismatch",
    "schema_invalid",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else { return };
    let topic = TOPICS[usize::from(selector) % TOPICS.len()];
    match decode("hazgate", topic, payload, 64 * 1024, 0) {
        Ok(d) => {
            assert!(payload.len() <= 64 * 1024);
            // One line per point, each ending in a newline and none inside a line.
            assert_eq!(d.lines.iter().filter(|b| **b == b'\n').count(), d.points);
            assert!(d.lines.is_empty() || d.lines.ends_with(b"\n"));
        }
        Err(r) => assert!(CAUSES.contains(&r.cause), "{r:?}"),
    }
});
