//! Fuzz target `pop3`: see `mailflow::fuzzing::pop3` for what it drives and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailflow::fuzzing::pop3(data));
