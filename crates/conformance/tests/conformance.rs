//! The conformance suite against the embedded engine: the project's copy (`conformance/`)
//! (`.ci/run` runs the shared folder beside the checkout, when it exists, with `ixn conformance`).

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_conformance::{Embedded, load_dir, run_all};
use std::path::Path;

fn run(dir: &Path) {
    let scenarios = load_dir(dir).unwrap();
    let mut report = Vec::new();
    let summary = run_all(&scenarios, &mut Embedded, &mut report).unwrap();
    let text = String::from_utf8(report).unwrap();
    eprintln!("{}:\n{text}", dir.display());
    assert_eq!(summary.failed, 0, "{text}");
    assert!(summary.passed >= 18, "{text}");
    assert!(text.ends_with(&format!("{} passed, 0 failed\n", summary.passed)));
}

#[test]
fn project_copy_passes_embedded() {
    run(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance"));
}
