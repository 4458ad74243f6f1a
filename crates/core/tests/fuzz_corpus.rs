//! Replays the `core_ops` fuzz target's committed inputs on stable: the seed corpus
//! (`fuzz/seeds/core_ops`) and every crash ever found (`fuzz/regressions/core_ops`).

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::Path;

#[test]
fn core_ops_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seen = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join("core_ops")) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".gitkeep") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let ops = ixn_core::fuzzing::Op::from_bytes(&data);
            if let Err(e) = ixn_core::fuzzing::check_ops(&ops) {
                panic!("{}: {e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 3, "the core_ops seed corpus is missing");
}
