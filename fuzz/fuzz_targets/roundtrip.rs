#![no_main]
//! See `ixn_codec::fuzzing::roundtrip` for what this target checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ixn_codec::fuzzing::roundtrip(data));
