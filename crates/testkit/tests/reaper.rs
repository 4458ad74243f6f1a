//! A cluster does not outlive its test process: killed with SIGKILL (as a timeout kills a
//! test), the process leaves nothing running and nothing on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ixn_testkit::Reaped;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn a_killed_test_leaves_no_cluster_running() {
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_hold-cluster"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if let Some(why) = line.strip_prefix("UNAVAILABLE ") {
        assert!(
            std::env::var_os("IXN_REQUIRE_POSTGRES").is_none(),
            "PostgreSQL is required (IXN_REQUIRE_POSTGRES) but cannot start: {why}"
        );
        eprintln!("NOT RUN: the cluster reaper test ({})", why.trim());
        return;
    }
    let mut words = line
        .trim()
        .strip_prefix("CLUSTER ")
        .unwrap()
        .rsplitn(2, ' ');
    let port: u16 = words.next().unwrap().parse().unwrap();
    let dir = std::path::PathBuf::from(words.next().unwrap());
    assert!(dir.join("data/postmaster.pid").exists(), "the cluster runs");
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("the server accepts");

    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();

    // The reaper's end is an event seen from outside: the directory goes away once the server
    // stopped. The deadline only guards a hang.
    let deadline = Instant::now() + Duration::from_secs(60);
    while dir.exists() {
        assert!(
            Instant::now() < deadline,
            "{} outlived its test",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on the cluster's port any more"
    );
}
