//! Fuzz target `dns`: see `mailflow::fuzzing::dns` for what it drives and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailflow::fuzzing::dns(data));
