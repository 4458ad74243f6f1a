#![no_main]
//! See `ixn_gateway::fuzzing::bayeux` for what this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ixn_gateway::fuzzing::bayeux(data));
