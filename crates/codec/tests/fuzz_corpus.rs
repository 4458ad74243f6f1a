//! Replays the fuzz targets' committed inputs on stable: the seed corpus (`fuzz/seeds/`) and
//! every crash ever found (`fuzz/regressions/`, one file per crash, named after its target).

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(
        !seeds.is_empty(),
        "no seed corpus for {target}: run the fuzz_seeds example"
    );
    for file in seeds.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} fails on {}", file.display());
    }
}

#[test]
fn decode_frame_corpus() {
    replay("decode_frame", ixn_codec::fuzzing::decode_frame);
}

#[test]
fn roundtrip_corpus() {
    replay("roundtrip", ixn_codec::fuzzing::roundtrip);
}

#[test]
fn decoder_chunked_corpus() {
    replay("decoder_chunked", ixn_codec::fuzzing::decoder_chunked);
}
