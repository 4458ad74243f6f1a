#![no_main]
//! See `ixn_core::model` for the invariants this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ixn_core::model::core_ops(data));
