//! The random differential on the journal: random request sequences (the engine's
//! reference-model property test, with Move changes on) whose changes are appended in group
//! commits of random sizes through [`Compacting`], which compacts from its shadow as often as it
//! may; the journal, reopened, must rebuild exactly the interactions and the id generator the
//! engine holds.

// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ixn_codec::Message;
use ixn_core::model::{Keeper, Op, check_ops_with};
use ixn_store::{Compacting, Journal, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::PathBuf;

/// Requests weighted towards those that build state and move it (as the engine's own test).
fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        3 => Just(0u8),  // register
        3 => Just(2u8),  // login
        3 => Just(7u8),  // submit
        6 => Just(8u8),  // place in workbin
        8 => 0u8..17,    // anything
    ];
    (kind, any::<u8>(), any::<u8>()).prop_map(|(k, c, a)| Op::from_parts(k, c, a))
}

/// Requests' changes queued and appended `group` at a time, as the server's group commit does.
struct Grouped {
    dir: PathBuf,
    store: Option<Compacting<Journal>>,
    queued: Vec<Vec<Message>>,
    group: usize,
    min_bytes: u64,
}

impl Grouped {
    fn flush(&mut self) -> Result<(), String> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.queued);
        match &mut self.store {
            Some(s) => s.append_owned(batches).map_err(|e| e.to_string()),
            None => Err("no store".into()),
        }
    }
}

impl Keeper for Grouped {
    fn keep(&mut self, changes: &[Message]) -> Result<(), String> {
        if self.store.is_none() {
            // The first call is the new engine's snapshot: what recovery compacts to.
            let (mut journal, _) = Journal::open(&self.dir).map_err(|e| e.to_string())?;
            journal.compact(changes).map_err(|e| e.to_string())?;
            self.store = Some(Compacting::new(journal, changes, self.min_bytes));
            return Ok(());
        }
        self.queued.push(changes.to_vec());
        if self.queued.len() >= self.group {
            self.flush()?;
        }
        Ok(())
    }

    fn reload(&mut self) -> Result<Vec<Message>, String> {
        self.flush()?;
        drop(self.store.take());
        let (_, opened) = Journal::open(&self.dir).map_err(|e| e.to_string())?;
        if opened.torn_tail.is_some() {
            return Err(format!("a torn tail after a clean close: {opened:?}"));
        }
        Ok(opened.changes)
    }

    fn moves(&self) -> bool {
        true
    }
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn the_journal_keeps_what_the_model_says() {
    let dir = std::env::temp_dir().join(format!("ixn-store-differential-{}", std::process::id()));
    let mut runner = TestRunner::new(Config {
        cases: cases(128),
        ..Config::default()
    });
    // Compaction from 0 bytes (after every append that at least doubles the live state) or
    // never, so that both Moves in the journal and Moves folded into a compaction are read.
    let strategy = (
        proptest::collection::vec(op(), 1..80),
        1usize..8,
        prop_oneof![Just(0u64), Just(u64::MAX)],
    );
    runner
        .run(&strategy, |(ops, group, min_bytes)| {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut keeper = Grouped {
                dir: dir.clone(),
                store: None,
                queued: Vec::new(),
                group,
                min_bytes,
            };
            check_ops_with(&ops, &mut keeper).map_err(TestCaseError::fail)
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
