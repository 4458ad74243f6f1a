//! The PostgreSQL store against a real PostgreSQL (a throwaway cluster): what an engine stores
//! comes back, group commits keep the last state of each interaction, migrations, and fencing.
//! Without PostgreSQL installed these tests say that they did not run (and fail when
//! IXN_REQUIRE_POSTGRES is set, as in `.ci/run`).

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ixn_codec::Message;
use ixn_core::{ConnId, Engine};
use ixn_pgstore::PgStore;
use ixn_store::Store;
use ixn_testkit::pg as cluster;
use std::sync::Arc;
use std::time::SystemTime;

fn engine() -> Engine {
    let cfg = ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo").unwrap();
    let mut e = Engine::new(Arc::new(cfg), 7);
    e.record_changes(true);
    e
}

/// Sends `json` requests on one connection; returns each request's changes.
fn run(e: &mut Engine, requests: &[&str]) -> Vec<Vec<Message>> {
    let mut batches = Vec::new();
    for r in requests {
        let mut out = Vec::new();
        e.handle(
            SystemTime::UNIX_EPOCH,
            ConnId(1),
            &Message::from_json(r).unwrap(),
            &mut out,
        );
        let reply = out[0].message().unwrap();
        assert_ne!(reply.name(), Some("EventError"), "{r}: {reply:?}");
        let mut changes = Vec::new();
        e.drain_changes(&mut changes);
        batches.push(changes);
    }
    batches
}

const REGISTER: &str = r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"emailsrv","ClientType":"MediaServer"}"#;

fn submit(id: &str) -> String {
    format!(
        r#"{{"message":"RequestSubmit","ReferenceId":2,"TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"{id}","UserData":{{"Subject":"s {id}"}}}}"#
    )
}

fn place(id: &str) -> String {
    format!(
        r#"{{"message":"RequestPlaceInWorkbin","ReferenceId":3,"InteractionId":"{id}","Workbin":{{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a1"}}}}"#
    )
}

fn stop(id: &str) -> String {
    format!(r#"{{"message":"RequestStopProcessing","ReferenceId":4,"InteractionId":"{id}"}}"#)
}

/// An engine rebuilt from what `store` holds.
fn reload(store: &mut PgStore) -> Engine {
    let mut e = engine();
    let mut r = ixn_core::durable::Restored::default();
    store.load(&mut |c| e.restore_one(c, &mut r)).unwrap();
    e
}

#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn what_the_engine_stores_comes_back_and_group_commits_keep_the_last_state() {
    let Some(pg) = cluster::start_or_skip("roundtrip") else {
        return;
    };
    let url = pg.database("roundtrip").unwrap();
    let (mut store, opened) = PgStore::open(&url, "test", "127.0.0.1:7000").unwrap();
    assert_eq!(opened.schema_before, 0);
    assert_eq!(opened.epoch, 1);

    let mut e = engine();
    let (a, b, c) = ("IX-A", "IX-B", "IX-C");
    let requests = [
        REGISTER.to_owned(),
        submit(a),
        submit(b),
        submit(c),
        place(a),
        place(b),
        stop(b),
    ];
    let requests: Vec<&str> = requests.iter().map(String::as_str).collect();
    let batches = run(&mut e, &requests);
    // All in one commit: b is put three times and deleted, a put twice.
    store.append(&batches).unwrap();
    let snapshot = e.snapshot();

    // A second server opening the store: the same state, and the next epoch.
    let (mut again, opened) = PgStore::open(&url, "test 2", "127.0.0.1:7001").unwrap();
    assert_eq!(opened.schema_before, ixn_pgstore::SCHEMA_VERSION);
    assert_eq!(opened.epoch, 2);
    let back = reload(&mut again);
    assert_eq!(back.snapshot(), snapshot);
    assert_eq!(back.stats().interactions, 2);

    // The rows say where each interaction is, by name, with a version per commit.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows = client
        .query("SELECT id, state, location, version, properties->>'InteractionId' FROM ixn_interactions ORDER BY id", &[])
        .unwrap();
    let rows: Vec<(String, String, String, i64, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "IX-A".into(),
                "InWorkbin".into(),
                "workbin Drafts agent a1".into(),
                1,
                "IX-A".into()
            ),
            (
                "IX-C".into(),
                "Queued".into(),
                "queue Inbound".into(),
                1,
                "IX-C".into()
            ),
        ]
    );

    // Compaction replaces everything with the snapshot.
    let requests = [stop(a)];
    let requests: Vec<&str> = requests.iter().map(String::as_str).collect();
    let mut e2 = back;
    e2.record_changes(true);
    run(&mut e2, &[REGISTER]);
    run(&mut e2, &requests);
    again.compact(&e2.snapshot()).unwrap();
    let (mut third, _) = PgStore::open(&url, "test 3", "x").unwrap();
    assert_eq!(reload(&mut third).snapshot(), e2.snapshot());
}

#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn a_server_that_was_replaced_can_never_commit_again() {
    let Some(pg) = cluster::start_or_skip("fencing") else {
        return;
    };
    let url = pg.database("fencing").unwrap();
    let (mut old, _) = PgStore::open(&url, "old", "a").unwrap();
    let mut e = engine();
    let batches = run(&mut e, &[REGISTER, &submit("IX-1")]);
    old.append(&batches).unwrap();

    let (mut new, opened) = PgStore::open(&url, "new", "b").unwrap();
    assert_eq!(opened.epoch, old.epoch() + 1);
    let batches = run(&mut e, &[&submit("IX-2")]);
    match old.append(&batches) {
        Err(ixn_store::Error::Fenced { mine, current }) => {
            assert_eq!((mine, current), (1, 2));
        }
        other => panic!("the replaced server committed: {other:?}"),
    }
    // Nothing of the refused commit is there; the new server writes.
    let back = reload(&mut new);
    assert_eq!(back.stats().interactions, 1);
    new.append(&batches).unwrap();
    assert_eq!(reload(&mut new).stats().interactions, 2);
}

#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn migrations_run_once_and_a_newer_schema_is_refused() {
    let Some(pg) = cluster::start_or_skip("migrations") else {
        return;
    };
    let url = pg.database("migrations").unwrap();
    let (_, first) = PgStore::open(&url, "a", "a").unwrap();
    let (_, second) = PgStore::open(&url, "b", "b").unwrap();
    assert_eq!((first.schema_before, second.schema_before), (0, 1));
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .execute("INSERT INTO ixn_schema_version (version) VALUES (99)", &[])
        .unwrap();
    let err = PgStore::open(&url, "c", "c").unwrap_err().to_string();
    assert!(err.contains("version 99") && err.contains("newer"), "{err}");

    // A wrong address is named, without the password.
    let err = PgStore::open(
        "postgres://u:secret@127.0.0.1:1/x?connect_timeout=2",
        "d",
        "d",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("u:***@127.0.0.1:1") && !err.contains("secret"),
        "{err}"
    );
}

/// A user who may not create the schema (PostgreSQL 15's default for a database the user does
/// not own) hears the database's own reason and what to grant: from the inspection `--check`
/// runs, and from a start; once the user owns the database, both work.
#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn missing_privileges_are_named_with_what_to_grant() {
    let Some(pg) = cluster::start_or_skip("privileges") else {
        return;
    };
    let mut admin = postgres::Client::connect(&pg.url("postgres"), postgres::NoTls).unwrap();
    admin
        .batch_execute("CREATE USER ixn_user PASSWORD 'secret'")
        .unwrap();
    admin.batch_execute("CREATE DATABASE ixn_priv").unwrap();
    let mut in_db = postgres::Client::connect(&pg.url("ixn_priv"), postgres::NoTls).unwrap();
    // As PostgreSQL 15 has it by default (older versions granted it to everyone).
    in_db
        .batch_execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        .unwrap();
    let url = pg.url("ixn_priv").replace("postgres@", "ixn_user:secret@");

    let e = ixn_pgstore::inspect(&url, std::time::Duration::from_secs(2)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("ixn_user may not create tables in database ixn_priv")
            && text.contains("ALTER DATABASE ixn_priv OWNER TO ixn_user"),
        "{text}"
    );
    let e = PgStore::open(&url, "test", "").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("permission denied for schema public") && text.contains("SQLSTATE 42501"),
        "the database's own reason, not `db error`: {text}"
    );

    admin
        .batch_execute("ALTER DATABASE ixn_priv OWNER TO ixn_user")
        .unwrap();
    in_db
        .batch_execute("GRANT CREATE ON SCHEMA public TO ixn_user")
        .unwrap();
    let inspected = ixn_pgstore::inspect(&url, std::time::Duration::from_secs(2)).unwrap();
    assert_eq!(inspected.schema, 0);
    PgStore::open(&url, "test", "").unwrap();
}
