//! The gateway's history files (see `checks/history_chunk.rs`).
#![no_main]

#[path = "../checks/history_chunk.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
