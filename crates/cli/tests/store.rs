//! Servers on PostgreSQL, as a user runs them (a throwaway PostgreSQL cluster; without
//! PostgreSQL installed these tests say that they did not run, and fail when
//! IXN_REQUIRE_POSTGRES is set, as in `.ci/run`): `ixn store migrate` moves a journal's
//! interactions into a database and back, refusing to overwrite; `ixn watch --reconnect` with
//! two servers' addresses follows a failover on its own.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use std::process::{Command, Stdio};

mod common;
use common::*;

const SUBMIT: &str = r#"{"message":"RequestSubmit","TenantId":101,"MediaType":"email","InteractionType":"Inbound","Queue":"Inbound","InteractionId":"IX-MOVE-1","UserData":{"Subject":"Moving"}}"#;
const PLACE: &str = r#"{"message":"RequestPlaceInWorkbin","InteractionId":"IX-MOVE-1","Workbin":{"WorkbinTypeId":"Drafts","WorkbinAgentId":"a1"}}"#;
const GET: &str = r#"{"message":"RequestGetInteractionProperties","InteractionId":"IX-MOVE-1"}"#;

/// The interaction as a server at `addr` (a list) reports it: the JSON reply line.
fn properties(addr: &str) -> String {
    let (code, out, err) = ixn(&["send", "--addr", addr, "--as", "emailsrv:MediaServer", GET]);
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn migrate_moves_a_journal_into_postgres_and_back() {
    let Some(pg) = ixn_testkit::pg::start_or_skip("ixn store migrate") else {
        return;
    };
    let url = pg.database("moved").unwrap();
    let base = std::env::temp_dir().join(format!("ixn-cli-migrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (data, copy) = (base.join("data"), base.join("copy"));
    let (d, c) = (data.to_str().unwrap(), copy.to_str().unwrap());
    {
        let (_server, addr) = server_with(&["--data-dir", d]);
        let (code, out, err) = ixn(&[
            "send",
            "--addr",
            &addr,
            "--as",
            "emailsrv:MediaServer",
            SUBMIT,
            PLACE,
        ]);
        assert_eq!(code, 0, "{out}{err}");
    }
    // Into the database.
    let (code, out, err) = ixn(&["store", "migrate", "--from", d, "--to", &url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("moved 1 interactions from"), "{out}");
    // Not twice without --replace; --replace replaces.
    let (code, _, err) = ixn(&["store", "migrate", "--from", d, "--to", &url]);
    assert_eq!(code, 2);
    assert!(
        err.contains("already holds 1 interactions") && err.contains("--replace"),
        "{err}"
    );
    let (code, out, err) = ixn(&["store", "migrate", "--from", d, "--to", &url, "--replace"]);
    assert_eq!(code, 0, "{out}{err}");
    // A server on the database serves it.
    let (server, addr) = server_with(&["--store", &url]);
    let got = properties(&addr);
    assert!(
        got.contains(r#""InteractionState":"InWorkbin""#) && got.contains(r#""Subject":"Moving""#),
        "{got}"
    );
    // Nothing is written under an active server.
    let (code, _, err) = ixn(&["store", "migrate", "--from", d, "--to", &url, "--replace"]);
    assert_eq!(code, 2);
    assert!(err.contains("a server is active"), "{err}");
    // Out of the database, while its server runs (one consistent snapshot).
    let (code, out, err) = ixn(&["store", "migrate", "--from", &url, "--to", c]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("moved 1 interactions from PostgreSQL"),
        "{out}"
    );
    drop(server);
    let (code, _, err) = ixn(&["store", "migrate", "--from", &url, "--to", c]);
    assert_eq!(code, 2);
    assert!(err.contains("already holds a journal"), "{err}");
    let (_server, addr) = server_with(&["--data-dir", c]);
    assert_eq!(properties(&addr), got);
    // Two directories (or two databases) are not a migration.
    let (code, _, err) = ixn(&["store", "migrate", "--from", d, "--to", c]);
    assert_eq!(code, 2);
    assert!(
        err.contains("one must be a data directory and the other a PostgreSQL URL"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// `ixn watch --reconnect --addr A,B`: the active server is killed; the watch finds the other
/// one once it took over, says that notifications may have been missed, and shows what is
/// placed next.
#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn watch_follows_a_failover_between_two_servers() {
    let Some(pg) = ixn_testkit::pg::start_or_skip("ixn watch failover") else {
        return;
    };
    let url = pg.database("failover").unwrap();
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let first = server_with(&["--store", &url, "--listen", &a]).0;
    // The first is active once it serves (ixn send waits for a takeover in progress).
    let (code, out, err) = ixn(&["send", "--addr", &a, "--as", "emailsrv:MediaServer", SUBMIT]);
    assert_eq!(code, 0, "{out}{err}");
    let _second = server_with(&["--store", &url, "--listen", &b]);
    let both = format!("{b},{a}"); // the standby first: the watch must follow its answer
    let mut child = Command::new(IXN)
        .args(["watch", "--reconnect", "--addr", &both])
        .args(["--agent", "a1", "--place", "p1", "--workbin", "Drafts"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    let _watch = Reaped(child);
    line_with(&err, "watching Drafts");
    drop(first); // SIGKILL of the active server
    line_with(&err, "reconnected and subscribed again");
    let marker = line_with(&out, "reconnected");
    assert!(marker.contains("may have been missed"), "{marker}");
    let (code, o, e) = ixn(&[
        "send",
        "--addr",
        &both,
        "--as",
        "emailsrv:MediaServer",
        PLACE,
    ]);
    assert_eq!(code, 0, "{o}{e}");
    let placed = line_with(&out, "IX-MOVE-1");
    assert!(placed.contains("PlacedIn"), "{placed}");
}
