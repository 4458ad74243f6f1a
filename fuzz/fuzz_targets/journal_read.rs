#![no_main]
//! See `ixn_store::fuzzing::journal_read` for what this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ixn_store::fuzzing::journal_read(data));
