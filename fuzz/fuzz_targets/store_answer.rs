//! The store's answers to the drill-down's queries (see `checks/store_answer.rs`).
#![no_main]

#[path = "../checks/store_answer.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
