//! Helpers shared by the command line's tests: the binaries, a server started as a user would,
//! `ixn` runs, and reading a child's output line by line.

#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) const IXN: &str = env!("CARGO_BIN_EXE_ixn");

pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ixn-server binary next to ixn (built on demand when the test runs alone).
pub(crate) fn server_bin() -> PathBuf {
    let bin = Path::new(IXN).with_file_name("ixn-server");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "ixn-server"])
            .current_dir(workspace())
            .status()
            .unwrap();
        assert!(status.success());
    }
    bin
}

pub(crate) use ixn_testkit::{Banner, Reaped};

/// Starts `ixn-server` (demo configuration) on an ephemeral port; returns it and its address.
pub(crate) fn server() -> (Reaped, String) {
    server_with(&["--ephemeral"])
}

/// Like [`server`], with `extra` arguments instead of `--ephemeral`.
pub(crate) fn server_with(extra: &[&str]) -> (Reaped, String) {
    let listen: &[&str] = if extra.contains(&"--listen") {
        &[]
    } else {
        &["--listen", "127.0.0.1:0"]
    };
    let mut child = Command::new(server_bin())
        .args(listen)
        .args(["--http", "off", "--log-level", "warn"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = Banner::read(&mut BufReader::new(child.stdout.take().unwrap()), false)
        .unwrap_or_else(|e| panic!("{e}"))
        .native
        .to_string();
    (Reaped(child), addr)
}

pub(crate) fn ixn(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(IXN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn lines_of(
    stream: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next line containing `what` (the wait is on the line; 60 s only guard a hang).
pub(crate) fn line_with(lines: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no line with {what:?}"));
        if line.contains(what) {
            return line;
        }
    }
}
