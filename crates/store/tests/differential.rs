//! The random differential on the journal: random request sequences (the engine's
//! reference-model property test, with Move changes on) whose changes are appended in group
//! commits of random sizes through [`Compacting`], which compacts from its shadow as often as it
//! may; the journal, reopened, must rebuild exactly the interactions and the id generator the
//! engine holds.

// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ixn_codec::Message;
use ixn_core::model::{Keeper, check_ops_with, op};
use ixn_store::{Compacting, Journal, Store};
use ixn_testkit::Grouped;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::PathBuf;

/// The journal under test, through [`Compacting`]: the first call (the new engine's snapshot)
/// is what recovery compacts to; then requests' changes are appended `group` at a time.
struct Journaled {
    dir: PathBuf,
    grouped: Option<Grouped<Compacting<Journal>>>,
    group: usize,
    min_bytes: u64,
}

impl Keeper for Journaled {
    fn keep(&mut self, changes: &[Message]) -> Result<(), String> {
        match &mut self.grouped {
            Some(g) => g.queue(changes),
            None => {
                let (mut journal, _) = Journal::open(&self.dir).map_err(|e| e.to_string())?;
                journal.compact(changes).map_err(|e| e.to_string())?;
                let store = Compacting::new(journal, changes, self.min_bytes);
                self.grouped = Some(Grouped::new(store, self.group));
                Ok(())
            }
        }
    }

    fn reload(&mut self) -> Result<Vec<Message>, String> {
        if let Some(g) = self.grouped.take() {
            drop(g.into_store()?);
        }
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

#[test]
fn the_journal_keeps_what_the_model_says() {
    let dir = std::env::temp_dir().join(format!("ixn-store-differential-{}", std::process::id()));
    let mut runner = TestRunner::new(Config {
        cases: ixn_testkit::proptest_cases(128),
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
            let mut keeper = Journaled {
                dir: dir.clone(),
                grouped: None,
                group,
                min_bytes,
            };
            check_ops_with(&ops, &mut keeper).map_err(TestCaseError::fail)
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
