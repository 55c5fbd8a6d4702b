//! Central ingest's message decoding (see `checks/ingest_message.rs`).
#![no_main]

#[path = "../checks/ingest_message.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
