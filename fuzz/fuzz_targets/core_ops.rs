#![no_main]
//! See `ixn_core::fuzzing` for the invariants this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ixn_core::fuzzing::core_ops(data));
