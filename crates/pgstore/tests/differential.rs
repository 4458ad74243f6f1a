//! The random differential on the PostgreSQL store: random request sequences (the engine's
//! reference-model property test) whose changes are written through `PgStore` in group commits
//! of random sizes; what the database gives back must rebuild exactly the interactions and the
//! id generator the engine holds. Against a real PostgreSQL (a throwaway cluster; without
//! PostgreSQL installed the test says it did not run, and fails when IXN_REQUIRE_POSTGRES is
//! set, as in `.ci/run`).

// Test code: a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ixn_codec::Message;
use ixn_core::model::{Keeper, check_ops_with, op};
use ixn_pgstore::PgStore;
use ixn_testkit::Grouped;
use ixn_testkit::pg as cluster;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// The store under test: requests' changes appended `group` at a time (one transaction each,
/// as the server's group commit does).
struct Kept(Grouped<PgStore>);

impl Keeper for Kept {
    fn keep(&mut self, changes: &[Message]) -> Result<(), String> {
        self.0.queue(changes)
    }

    fn reload(&mut self) -> Result<Vec<Message>, String> {
        self.0.flush()?;
        let mut all = Vec::new();
        self.0
            .store_mut()
            .load(&mut |m| all.push(m))
            .map_err(|e| e.to_string())?;
        Ok(all)
    }
}

#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn the_postgres_store_keeps_what_the_model_says() {
    let Some(pg) = cluster::start_or_skip("differential") else {
        return;
    };
    let url = pg.database("differential").unwrap();
    let wipe = std::cell::RefCell::new(postgres::Client::connect(&url, postgres::NoTls).unwrap());
    let mut runner = TestRunner::new(Config {
        cases: ixn_testkit::proptest_cases(64),
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
            let mut keeper = Kept(Grouped::new(store, group));
            check_ops_with(&ops, &mut keeper).map_err(TestCaseError::fail)
        })
        .unwrap();
}
