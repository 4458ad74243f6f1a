//! The random differential on the PostgreSQL store: random request sequences (the engine's
//! reference-model property test) whose changes are written through `PgStore` in group commits
//! of random sizes; what the database gives back must rebuild exactly the interactions and the
//! id generator the engine holds. Against a real PostgreSQL (a throwaway cluster; without
//! PostgreSQL installed the test says it did not run, and fails when IXN_REQUIRE_POSTGRES is
//! set, as in `.ci/run`).

// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ixn_codec::Message;
use ixn_core::model::{Keeper, Op, check_ops_with};
use ixn_pgstore::{PgStore, cluster};
use ixn_store::Store;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Requests weighted towards those that build state (as the engine's own property test).
fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        3 => Just(0u8),  // register
        3 => Just(2u8),  // login
        3 => Just(5u8),  // subscribe
        3 => Just(7u8),  // submit
        4 => Just(8u8),  // place in workbin
        8 => 0u8..17,    // anything
    ];
    (kind, any::<u8>(), any::<u8>()).prop_map(|(k, c, a)| Op::from_parts(k, c, a))
}

/// The store under test: requests' changes queued and appended `group` at a time (one
/// transaction each, as the server's group commit does).
struct Grouped {
    store: PgStore,
    queued: Vec<Vec<Message>>,
    group: usize,
}

impl Grouped {
    fn flush(&mut self) -> Result<(), String> {
        if !self.queued.is_empty() {
            self.store.append(&self.queued).map_err(|e| e.to_string())?;
            self.queued.clear();
        }
        Ok(())
    }
}

impl Keeper for Grouped {
    fn keep(&mut self, changes: &[Message]) -> Result<(), String> {
        self.queued.push(changes.to_vec());
        if self.queued.len() >= self.group {
            self.flush()?;
        }
        Ok(())
    }

    fn reload(&mut self) -> Result<Vec<Message>, String> {
        self.flush()?;
        let mut all = Vec::new();
        self.store
            .load(&mut |m| all.push(m))
            .map_err(|e| e.to_string())?;
        Ok(all)
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
fn the_postgres_store_keeps_what_the_model_says() {
    let Some(pg) = cluster::start_or_skip("differential") else {
        return;
    };
    let url = pg.database("differential").unwrap();
    let wipe = std::cell::RefCell::new(postgres::Client::connect(&url, postgres::NoTls).unwrap());
    let mut runner = TestRunner::new(Config {
        cases: cases(64),
        ..Config::default()
    });
    let strategy = (proptest::collection::vec(op(), 1..60), 1usize..8);
    runner
        .run(&strategy, |(ops, group)| {
            // A fresh store per case (opening it also migrates a new database).
            let (store, _) = PgStore::open(&url, "differential", "").unwrap();
            wipe.borrow_mut()
                .batch_execute("TRUNCATE ixn_interactions; DELETE FROM ixn_meta")
                .unwrap();
            let mut keeper = Grouped {
                store,
                queued: Vec::new(),
                group,
            };
            check_ops_with(&ops, &mut keeper).map_err(TestCaseError::fail)
        })
        .unwrap();
}
