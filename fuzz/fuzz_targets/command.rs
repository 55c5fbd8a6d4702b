//! Remote command parsing: arbitrary command names and payloads from the broker give a
//! command or a precise error, never a panic; an accepted command always names who.
#![no_main]

use hazgate::forward::command::{parse, request_id, COMMANDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else { return };
    // Mostly real command names, sometimes garbage.
    let garbage;
    let name = match COMMANDS.get(usize::from(selector) % (COMMANDS.len() + 1)) {
        Some(n) => *n,
        None => {
            garbage = String::from_utf8_lossy(&payload[..payload.len().min(8)]).into_owned();
            garbage.as_str()
        }
    };
    let _ = request_id(payload);
    if let Ok(r) = parse(name, payload) {
        assert!(!r.by.is_empty() || payload.windows(7).any(|w| w == b"\"by\":\"\"") || payload.len() > 2);
    }
});
