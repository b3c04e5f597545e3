//! Fuzz target `smtp`: see `mailflow::fuzzing::smtp` for what it drives and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailflow::fuzzing::smtp(data));
