//! CSV point tables (see `checks/points_csv.rs`).
#![no_main]

#[path = "../checks/points_csv.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
