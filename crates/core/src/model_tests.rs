//! Property tests: random sequences of requests from several clients, good and bad, checked
//! against the reference model in `crate::model` (see its documentation for the invariants);
//! and the `core_ops` fuzz target's committed inputs replayed on stable. Unit tests, so that
//! the model and the engine's inspection hooks stay out of the library's public build.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use crate::model::{Op, check_ops, op};
use proptest::prelude::*;
use std::path::Path;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(8192)))]

    #[test]
    fn engine_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        if let Err(e) = check_ops(&ops) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// A scripted sequence through the main paths, so a regression shows without shrinking.
#[test]
fn a_day_in_the_contact_center() {
    use Op::*;
    let ops = [
        Register { c: 0, app: 0 },
        Login {
            c: 0,
            agent: 0,
            place: 0,
        }, // a1 at p1
        Subscribe {
            c: 0,
            wb: 0,
            props: true,
        }, // Drafts/a1
        Register { c: 1, app: 1 }, // media server
        Submit { c: 1, ix: 0 },
        Place { c: 1, ix: 0, wb: 0 }, // PlacedIn to c0
        Change { c: 1, ix: 0 },       // PropertiesChanged to c0
        Register { c: 2, app: 0 },
        Login {
            c: 2,
            agent: 3,
            place: 2,
        }, // sup1
        Subscribe {
            c: 2,
            wb: 0,
            props: false,
        },
        Place { c: 1, ix: 0, wb: 4 }, // to Team/Sales: TakenOut to c0 and c2
        Pull { c: 0, ix: 0 },
        Content { c: 0, wb: 0 },
        Stop { c: 0, ix: 0 },
        Submit { c: 1, ix: 3 },       // generated id
        Place { c: 1, ix: 3, wb: 1 }, // Drafts/a2
        Disconnect { c: 0 },
        Pull { c: 2, ix: 3 }, // supervisor pulls from a2's Drafts
        Bad {
            c: 3,
            unknown_id: true,
        }, // unregistered: closed
        Register { c: 3, app: 2 }, // rogue: closed
    ];
    check_ops(&ops).unwrap();
}

/// Byte strings the fuzzer starts from run clean (any bytes are a valid op sequence).
#[test]
fn fixed_byte_strings_run_clean() {
    for seed in [
        &b""[..],
        b"\x00\x00\x00",
        b"\x10\x01\x02\x07\x01\x03",
        &[0xffu8; 90],
    ] {
        crate::model::core_ops(seed);
    }
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Replays the seed corpus (`fuzz/seeds/core_ops`) and every crash ever found
/// (`fuzz/regressions/core_ops`).
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
            let ops = Op::from_bytes(&data);
            if let Err(e) = check_ops(&ops) {
                panic!("{}: {e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 3, "the core_ops seed corpus is missing");
}

/// A supervisor's snapshots through the main paths: a locked snapshot, another client refused,
/// a page, a move with failures, the release ending the locks, a disconnect ending the rest.
#[test]
fn a_supervisors_snapshots() {
    use Op::*;
    let ops = [
        Register { c: 1, app: 1 }, // media server
        Submit { c: 1, ix: 0 },
        Submit { c: 1, ix: 1 },
        Place { c: 1, ix: 1, wb: 0 }, // Drafts/a1
        Register { c: 0, app: 0 },
        Login {
            c: 0,
            agent: 3,
            place: 2,
        }, // sup1: sees queues and a1's Drafts
        Subscribe {
            c: 0,
            wb: 0,
            props: false,
        },
        Snap { c: 0, a: 130 }, // everything, locked
        Page { c: 0 },
        Queue { c: 1, ix: 0 }, // refused: locked by c0
        Lock {
            c: 1,
            ix: 0,
            snap: false,
        }, // refused
        Submit { c: 1, ix: 2 }, // not in the snapshot
        Stop { c: 1, ix: 2 },
        MoveAll { c: 0, to: 4 }, // to Team/Sales: both move
        Release { c: 0 },        // the locks end
        Queue { c: 1, ix: 0 },
        Snap { c: 0, a: 2 }, // the queue, unlocked
        Lock {
            c: 0,
            ix: 0,
            snap: true,
        },
        MoveAll { c: 1, to: 0 }, // c1 has no snapshot
        Pull { c: 1, ix: 0 },    // a media server cannot pull
        Disconnect { c: 0 },
        Lock {
            c: 1,
            ix: 0,
            snap: false,
        },
        Unlock { c: 1, ix: 0 },
        Unlock { c: 1, ix: 0 }, // not locked
        Snap { c: 1, a: 4 },    // does not parse
    ];
    check_ops(&ops).unwrap();
}
