//! Fuzz target `imap`: see `mailflow::fuzzing::imap` for what it drives and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailflow::fuzzing::imap(data));
