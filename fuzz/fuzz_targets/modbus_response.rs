//! The whole response path of a poll (see `checks/modbus_response.rs`).
#![no_main]

#[path = "../checks/modbus_response.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
