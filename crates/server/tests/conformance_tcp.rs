//! The conformance suite over real TCP: a fresh in-process server per scenario on an ephemeral
//! loopback port, for the project's copy (`.ci/run` runs the shared folder with `ixn conformance`).

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_conformance::{Running, Scenario, Tcp, load_dir, run_all};
use std::path::Path;

fn run(dir: &Path) {
    run_mode(dir, false);
    run_mode(dir, true);
}

/// Each scenario against a fresh server: ephemeral, or durable with a fresh data directory.
fn run_mode(dir: &Path, durable: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let handle = rt.handle().clone();
    // Tests run in parallel in one process: each run gets its own directory.
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let data = std::env::temp_dir().join(format!(
        "ixn-conformance-durable-{}-{run}",
        std::process::id()
    ));
    let mut n = 0;
    let mut tcp = Tcp::new(|s: &Scenario| {
        let addr = "127.0.0.1:0".parse().unwrap();
        let started = if durable {
            n += 1;
            let dir = data.join(n.to_string());
            let r = ixn_server::recover(&dir, s.config.clone(), 1).map_err(|e| e.to_string())?;
            handle.block_on(ixn_server::start_engine(
                addr,
                r.engine,
                Some(Box::new(r.store)),
                ixn_server::Options::default(),
            ))
        } else {
            handle.block_on(ixn_server::start(
                addr,
                s.config.clone(),
                ixn_server::Options::default(),
            ))
        }
        .map_err(|e| e.to_string())?;
        Ok(Running {
            addr: started.addr,
            guard: Box::new(started),
        })
    });
    let scenarios = load_dir(dir).unwrap();
    let mut report = Vec::new();
    let summary = run_all(&scenarios, &mut tcp, &mut report).unwrap();
    let text = String::from_utf8(report).unwrap();
    eprintln!(
        "{} over TCP ({}):\n{text}",
        dir.display(),
        if durable { "durable" } else { "ephemeral" }
    );
    assert_eq!(summary.failed, 0, "{text}");
    assert!(summary.passed >= 18, "{text}");
    let _ = std::fs::remove_dir_all(&data);
}

/// Waits until the server at `addr` is active: a registration of an application no
/// configuration has gets InvalidClient from an active server, NotActive from a standby.
fn wait_active(handle: &tokio::runtime::Handle, addr: std::net::SocketAddr) {
    handle.block_on(async {
        loop {
            let mut c = ixn_client::Client::connect(addr).await.unwrap();
            match c
                .register("no-such-application", ixn_codec::ClientType::MediaServer)
                .await
            {
                Err(ixn_client::Error::EventError {
                    code: ixn_codec::ErrorCode::NotActive,
                    ..
                }) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                _ => return,
            }
        }
    });
}

/// Each scenario against a fresh server on a fresh PostgreSQL database (a throwaway cluster;
/// skipped, saying so, without PostgreSQL unless IXN_REQUIRE_POSTGRES is set).
fn run_postgres(dir: &Path) {
    let Some(pg) = ixn_testkit::pg::start_or_skip("conformance") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let handle = rt.handle().clone();
    let mut n = 0;
    let mut tcp = Tcp::new(|s: &Scenario| {
        n += 1;
        let url = pg.database(&format!("c{n}")).map_err(|e| e.to_string())?;
        let shared = ixn_server::SharedStore {
            url,
            lease: ixn_server::DEFAULT_LEASE,
            advertised: String::new(),
        };
        let started = handle
            .block_on(ixn_server::start_shared(
                "127.0.0.1:0".parse().unwrap(),
                s.config.clone(),
                shared,
                ixn_server::Options::default(),
            ))
            .map_err(|e| e.to_string())?;
        wait_active(&handle, started.addr);
        Ok(Running {
            addr: started.addr,
            guard: Box::new(started),
        })
    });
    let scenarios = load_dir(dir).unwrap();
    let mut report = Vec::new();
    let summary = run_all(&scenarios, &mut tcp, &mut report).unwrap();
    let text = String::from_utf8(report).unwrap();
    eprintln!("{} over TCP (PostgreSQL store):\n{text}", dir.display());
    assert_eq!(summary.failed, 0, "{text}");
    assert!(summary.passed >= 18, "{text}");
}

#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn project_copy_passes_on_the_postgres_store() {
    run_postgres(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance"));
}

#[test]
fn project_copy_passes_over_tcp() {
    run(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance"));
}
