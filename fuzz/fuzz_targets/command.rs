//! Remote command parsing: arbitrary command names and payloads from the broker give a
//! command or a precise error, never a panic; an accepted command came from a bounded
//! JSON object, carries the request id that object had, and names the same sender.
#![no_main]

use hazgate::forward::command::{parse, request_id, COMMANDS, MAX_COMMAND_BYTES};
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
    let id = request_id(payload);
    if let Ok(r) = parse(name, payload) {
        assert!(payload.len() <= MAX_COMMAND_BYTES);
        assert!(COMMANDS.contains(&name));
        assert_eq!(r.request_id, id, "the reply must carry the request's id");
        let by = r.command.by();
        assert_eq!(by, r.by);
    }
});
