//! Fuzz target `scenario`: see `mailflow::fuzzing::scenario` for what it drives and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailflow::fuzzing::scenario(data));
