#![no_main]
//! See `ixn_core::condition::fuzz` for what this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ixn_core::condition::fuzz(data));
