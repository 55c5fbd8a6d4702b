//! Central ingest's message decoding: arbitrary payloads on every gateway topic give
//! points or a refusal with a known cause, never a panic. Accepted messages stay within
//! the size limit, and every emitted line parses as line protocol — a known measurement,
//! the gateway's identity tags, at least one well-typed field and an integer timestamp —
//! one line per point.
//!
//! Shared by the cargo-fuzz target and the corpus replay under `cargo test`.

use std::sync::LazyLock;

use hazgate::{
    contract::{
        samples::{table_id, PointInfo},
        wire::Id,
        GatewayPath,
    },
    ingest::{message::decode, tables::Tables},
    model::PointKind,
};

/// One registry across inputs, as at a running centre: a point-table page one input
/// teaches can be used by a later input's samples.
/// It knows one table from the start, for the corpus's samples to use.
static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    let tables = Tables::default();
    let points: Vec<PointInfo<'static>> = ["P0", "P1", "P2"]
        .into_iter()
        .map(|p| PointInfo {
            point: Id(p.into()),
            hazard_source: Id("HS".into()),
            device: Id("D".into()),
            kind: PointKind::Analog,
            unit: "kPa".into(),
        })
        .collect();
    let gw = GatewayPath {
        park: "P1",
        enterprise: "E1",
        gateway: "G1",
    };
    let name = table_id(points.iter());
    tables
        .learn(gw, &name, 0, 3, &points)
        .expect("a table hashing to its own name is learnt");
    tables
});

const TOPICS: [&str; 9] = [
    "hazgate/v1/P1/E1/G1/telemetry",
    "hazgate/v1/P1/E1/G1/points/0123456789abcdef/0",
    "hazgate/v1/P1/E1/G1/alarm",
    "hazgate/v1/P1/E1/G1/risk",
    "hazgate/v1/P1/E1/G1/status",
    "hazgate/v1/P1/E1/G1/cmd/ack",
    "hazgate/v1/P1/E1/G1/risk/HS-01",
    "hazgate/v1/P1/E1/G1/cmd/ack/reply",
    "hazgate/v1/P1/E1/G1/alarms",
];
const CAUSES: [&str; 8] = [
    "unknown_table",
    "bad_table",
    "unknown_topic",
    "too_large",
    "not_json",
    "wrong_type",
    "schema_invalid",
    "identity_mismatch",
];
const MEASUREMENTS: [&str; 7] = [
    "seq_gap",
    "reading",
    "alarm",
    "risk",
    "gateway_status",
    "special_operation",
    "threshold_change",
];

/// Checks one input; true when it was accepted (so a corpus can show it reaches the
/// accepting path, not only the refusals).
pub fn check(data: &[u8]) -> bool {
    let Some((&selector, payload)) = data.split_first() else {
        return false;
    };
    let topic = TOPICS[usize::from(selector) % TOPICS.len()];
    match decode("hazgate", topic, payload, 64 * 1024, 0, &TABLES) {
        Ok(d) => {
            assert!(payload.len() <= 64 * 1024);
            let text = std::str::from_utf8(&d.lines).expect("line protocol is UTF-8");
            assert!(text.is_empty() || text.ends_with('\n'));
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), d.points, "one line per point");
            for l in lines {
                line(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
            }
            true
        }
        Err(r) => {
            assert!(CAUSES.contains(&r.cause), "{r:?}");
            false
        }
    }
}

/// Splits at unescaped `sep` outside double quotes.
fn split(s: &str, sep: char) -> Vec<String> {
    let (mut out, mut cur, mut esc, mut quoted) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        if esc {
            cur.push('\\');
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == '"' {
            quoted = !quoted;
            cur.push(c);
        } else if c == sep && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    assert!(!esc && !quoted, "a dangling escape or quote");
    out.push(cur);
    out
}

/// Checks one line: `measurement,tag=v,… field=v,… timestamp`.
fn line(l: &str) -> Result<(), String> {
    let parts = split(l, ' ');
    let [head, fields, ts] = parts.as_slice() else {
        return Err(format!("{} space-separated parts, not 3", parts.len()));
    };
    ts.parse::<i64>().map_err(|e| format!("timestamp: {e}"))?;
    let head = split(head, ',');
    if !MEASUREMENTS.contains(&head[0].as_str()) {
        return Err(format!("measurement `{}`", head[0]));
    }
    let mut keys = Vec::new();
    for tag in &head[1..] {
        let kv = split(tag, '=');
        if kv.len() != 2 || kv[0].is_empty() || kv[1].is_empty() {
            return Err(format!("tag `{tag}`"));
        }
        keys.push(kv[0].clone());
    }
    for k in ["enterprise", "gateway", "park"] {
        if !keys.iter().any(|x| x == k) {
            return Err(format!("no `{k}` tag"));
        }
    }
    for field in split(fields, ',') {
        let kv = split(&field, '=');
        let [k, v] = kv.as_slice() else {
            return Err(format!("field `{field}`"));
        };
        let typed = (v.starts_with('"') && v.ends_with('"') && v.len() >= 2)
            || v.strip_suffix('i')
                .is_some_and(|n| n.parse::<i64>().is_ok())
            || [
                "t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE",
            ]
            .contains(&v.as_str())
            || v.parse::<f64>().is_ok_and(f64::is_finite);
        if k.is_empty() || !typed {
            return Err(format!("field `{field}`"));
        }
    }
    Ok(())
}
