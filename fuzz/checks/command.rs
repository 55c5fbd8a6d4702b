//! Remote command parsing: arbitrary command names and payloads from the broker give a
//! command or a precise error, never a panic. An accepted command came from a bounded
//! JSON object under a known name; what it carries (sender, request id, point or hazard
//! source) is what that object says, read independently here; and it survives a round
//! trip through its own wire form unchanged.
//!
//! Shared by the cargo-fuzz target and the corpus replay under `cargo test`.

use hazgate::{
    commands::{parse, COMMANDS, MAX_COMMAND_BYTES},
    judge::Command,
};

/// Checks one input; true when it was accepted (so a corpus can show it reaches the
/// accepting path, not only the refusals).
pub fn check(data: &[u8]) -> bool {
    let Some((&selector, payload)) = data.split_first() else {
        return false;
    };
    // Mostly real command names, sometimes garbage.
    let garbage;
    let name = match COMMANDS.get(usize::from(selector) % (COMMANDS.len() + 1)) {
        Some(n) => *n,
        None => {
            garbage = String::from_utf8_lossy(&payload[..payload.len().min(8)]).into_owned();
            garbage.as_str()
        }
    };
    let Ok(r) = parse(name, payload) else {
        return false;
    };
    assert!(payload.len() <= MAX_COMMAND_BYTES);
    assert!(COMMANDS.contains(&name));
    let v: serde_json::Value = serde_json::from_slice(payload).expect("accepted, so JSON");
    let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
    assert_eq!(
        r.request_id.as_deref(),
        text("request_id"),
        "the request's id"
    );
    // Absent, it is empty: the local API fills it from the token, the judge refuses an
    // anonymous command.
    assert_eq!(
        r.by.as_str(),
        text("by").unwrap_or(""),
        "the request's sender"
    );
    assert_eq!(r.command.by(), r.by, "the command names the same sender");
    match &r.command {
        Command::Acknowledge { point, .. }
        | Command::Shelve { point, .. }
        | Command::Unshelve { point, .. }
        | Command::OutOfService { point, .. } => assert_eq!(Some(point.as_str()), text("point")),
        Command::SpecialOperation { hazard_source, .. } => {
            assert_eq!(Some(hazard_source.as_str()), text("hazard_source"))
        }
        Command::Feedback {
            alarm_id,
            cause,
            measures,
            text: notes,
            ..
        } => {
            assert_eq!(Some(alarm_id.as_str()), text("alarm_id"));
            assert_eq!(Some(cause.as_str()), text("cause"));
            assert!(!cause.trim().is_empty(), "a cause is required");
            assert_eq!(measures.as_str(), text("measures").unwrap_or(""));
            assert_eq!(notes.as_str(), text("text").unwrap_or(""));
            assert!(cause.chars().count() <= hazgate::commands::MAX_CAUSE_CHARS);
            assert!(notes.chars().count() <= hazgate::commands::MAX_FEEDBACK_CHARS);
        }
        Command::Thresholds { changes, .. } => assert_eq!(
            Some(changes.len()),
            v.get("changes")
                .and_then(serde_json::Value::as_array)
                .map(Vec::len)
        ),
    }
    let wire = serde_json::to_value(&r.command).expect("a command serialises");
    let back: Command = serde_json::from_value(wire).expect("and parses back");
    assert_eq!(back, r.command, "round trip through the wire form");
    true
}
