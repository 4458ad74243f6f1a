//! The `ixn-server` binary under hostile and unlucky conditions: two servers on one data
//! directory, a bad log level, an unwritable stderr, a dying engine, hostile frames measured in
//! the process's resident memory, and file descriptors running out. Each test is bounded in
//! time.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_client::Client;
use ixn_codec::{BytesMut, ClientType, Codec, ErrorCode, Message, MessageId, attr};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

use common::{frame, read_until_closed};
use ixn_testkit::Banner;

const BIN: &str = env!("CARGO_BIN_EXE_ixn-server");

fn register() -> Message {
    common::register("desk", ClientType::AgentApplication)
}

/// A running server, killed when dropped.
struct Server {
    /// Killed when the server is dropped.
    child: ixn_testkit::Reaped,
    tcp: String,
    http: Option<String>,
}

impl Server {
    /// Starts the binary with `args` (through `sh -c` with `prefix` first, for ulimit), waits
    /// for its listening lines.
    fn start(prefix: &str, args: &[&str], stderr: Stdio) -> Self {
        let mut line = format!("{prefix} exec '{BIN}'");
        for a in args {
            line.push_str(&format!(" '{a}'"));
        }
        let mut child = Command::new("sh")
            .args(["-c", &line])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let web = args.contains(&"--http") && !args.contains(&"off");
        let banner = Banner::read(&mut out, web).unwrap_or_else(|e| panic!("{e}"));
        let tcp = banner.native.to_string();
        let http = banner.web.map(|a| a.to_string());
        // Keep reading stdout so that the server never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = out.read_to_string(&mut sink);
        });
        Self {
            child: ixn_testkit::Reaped(child),
            tcp,
            http,
        }
    }

    /// Peak resident memory (VmHWM) in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .unwrap();
        kb * 1024
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        common::wait_exit(&mut self.child, within)
    }
}

fn ephemeral() -> Vec<&'static str> {
    logging_at("warn")
}

/// An ephemeral server's arguments, logging at `level`.
fn logging_at(level: &str) -> Vec<&str> {
    vec![
        "--listen",
        "127.0.0.1:0",
        "--http",
        "off",
        "--ephemeral",
        "--log-level",
        level,
    ]
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ixn-process-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Problem 1: a second server on the same data directory exits with a clear error and changes
/// nothing; the first keeps serving and keeps what it acknowledged.
#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = tmp("locked");
    let d = dir.to_str().unwrap();
    let args = ["--listen", "127.0.0.1:0", "--http", "off", "--data-dir", d];
    let first = Server::start("", &args, Stdio::null());
    let rt = rt();
    let submit = |id: &str| {
        Message::new(MessageId::REQUEST_SUBMIT)
            .with(attr::TENANT_ID, 101)
            .with(attr::MEDIA_TYPE, "email")
            .with(attr::INTERACTION_TYPE, "Inbound")
            .with(attr::QUEUE, "Inbound")
            .with(attr::INTERACTION_ID, id.to_owned())
    };
    let mut c = rt.block_on(Client::connect(first.tcp.as_str())).unwrap();
    rt.block_on(c.register("emailsrv", ClientType::MediaServer))
        .unwrap();
    rt.block_on(c.request_ok(submit("IX-BEFORE"))).unwrap();
    let files = |dir: &PathBuf| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.display().to_string(), std::fs::read(&p).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let before = files(&dir);
    let second = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--http", "off", "--data-dir", d])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(d), "names the directory: {err}");
    assert!(
        err.contains(&format!("pid {}", first.child.id())),
        "names the holder's pid: {err}"
    );
    assert_eq!(files(&dir), before, "the second server changed nothing");
    // The first goes on, and what it acknowledges survives its restart.
    rt.block_on(c.request_ok(submit("IX-AFTER"))).unwrap();
    drop(c);
    drop(first);
    let again = Server::start("", &args, Stdio::null());
    let mut c = rt.block_on(Client::connect(again.tcp.as_str())).unwrap();
    rt.block_on(c.register("emailsrv", ClientType::MediaServer))
        .unwrap();
    for id in ["IX-BEFORE", "IX-AFTER"] {
        let r = rt
            .block_on(
                c.request(
                    Message::new(MessageId::REQUEST_GET_INTERACTION_PROPERTIES)
                        .with(attr::INTERACTION_ID, id),
                ),
            )
            .unwrap();
        assert_eq!(r.id, MessageId::EVENT_INTERACTION_PROPERTIES, "{id}: {r:?}");
    }
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Problem 9: when the engine task dies, the process says why and exits non-zero instead of
/// accepting connections it cannot serve.
#[test]
fn a_dead_engine_stops_the_process_with_an_error() {
    let mut server = Server::start("IXN_FAULT=engine-panic", &ephemeral(), Stdio::piped());
    let rt = rt();
    let mut c = rt.block_on(Client::connect(server.tcp.as_str())).unwrap();
    let _ = rt.block_on(c.register("desk", ClientType::AgentApplication));
    let code = server.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1));
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("the engine task ended unexpectedly") && err.contains("panicked"),
        "{err}"
    );
}

/// Problem 11: a log level that is not one is refused; an unwritable stderr does not stop the
/// server.
#[test]
fn log_levels_are_checked_and_logging_never_panics() {
    for bad in ["verbose", "ixn_server=loud", ""] {
        let out = Command::new(BIN)
            .args(["--ephemeral", "--listen", "127.0.0.1:0", "--log-level", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--log-level") && err.contains("trace"),
            "{err}"
        );
    }
    for good in ["debug", "warn,ixn_server=debug"] {
        // Starts (and prints where it listens); dropping it stops it.
        drop(Server::start("", &logging_at(good), Stdio::null()));
    }
    // stderr is /dev/full: every log write fails; the server serves and stops cleanly.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut s = Server::start("", &logging_at("debug"), Stdio::from(full));
    let rt = rt();
    let mut c = rt.block_on(Client::connect(s.tcp.as_str())).unwrap();
    rt.block_on(c.register("desk", ClientType::AgentApplication))
        .unwrap();
    let pong = rt
        .block_on(c.request(Message::new(MessageId::PING)))
        .unwrap();
    assert_eq!(pong.id, MessageId::PING);
    let status = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0));
}

/// Problem 12: a 16 MiB Ping made of millions of empty KVLists, before registration, is
/// refused without expanding in memory.
#[test]
fn a_frame_of_empty_lists_does_not_expand_in_memory() {
    let s = Server::start("", &ephemeral(), Stdio::null());
    let n = (16 * 1024 * 1024 - 10) / 7;
    let mut f = Vec::with_capacity(n * 7 + 10);
    f.extend_from_slice(&((6 + n * 7) as u32).to_be_bytes());
    f.extend_from_slice(&175u16.to_be_bytes());
    f.extend_from_slice(&(n as u32).to_be_bytes());
    for _ in 0..n {
        f.extend_from_slice(&[0, 0, 4, 0, 0, 0, 0]);
    }
    let rt = rt();
    rt.block_on(async {
        let mut c = TcpStream::connect(s.tcp.as_str()).await.unwrap();
        c.write_all(&f).await.unwrap();
        let got = read_until_closed(&mut c).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].id, MessageId::EVENT_ERROR);
        let text = got[0].attrs.get_str(attr::ERROR_DESCRIPTION).unwrap();
        assert!(text.contains("key-value pairs"), "{text}");
    });
    let peak = s.peak_rss();
    eprintln!(
        "peak RSS after a 16 MiB frame of empty KVLists: {} MB",
        peak / 1_000_000
    );
    // The frame itself is 16 MiB; decoding it whole took about 190 MB.
    assert!(peak < 100_000_000, "peak RSS {peak}");
}

/// Problem 6: 100 registered connections each parking a 16 MiB-minus-one frame: the server
/// stays under 300 MB and closes them all within 15 s.
#[test]
fn parked_partial_frames_do_not_hold_the_servers_memory() {
    let s = Server::start("", &ephemeral(), Stdio::null());
    let rt = rt();
    let started = Instant::now();
    let errors = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let addr = s.tcp.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = TcpStream::connect(addr.as_str()).await.unwrap();
                c.write_all(&frame(&register())).await.unwrap();
                let len: u32 = 16 * 1024 * 1024 - 1;
                let (mut rd, mut wr) = c.into_split();
                let writer = tokio::spawn(async move {
                    let _ = wr.write_all(&len.to_be_bytes()).await;
                    let chunk = vec![0u8; 1024 * 1024];
                    for _ in 0..15 {
                        if wr.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                    // Parked: one byte short of the frame, and the socket held open.
                    let _ = wr.write_all(&chunk[..1024 * 1024 - 2]).await;
                    std::future::pending::<()>().await;
                });
                let mut buf = Vec::new();
                let _ = rd.read_to_end(&mut buf).await;
                writer.abort();
                let mut bytes = BytesMut::from(&buf[..]);
                let mut limit_errors = 0;
                while let Ok(Some(m)) = Codec::default().decode(&mut bytes) {
                    if m.id == MessageId::EVENT_ERROR
                        && m.attrs.get_int(attr::ERROR_CODE)
                            == Some(ErrorCode::LimitExceeded.to_int())
                    {
                        limit_errors += 1;
                    }
                }
                limit_errors
            }));
        }
        let mut errors = 0;
        for t in tasks {
            errors += t.await.unwrap();
        }
        errors
    });
    let took = started.elapsed();
    let peak = s.peak_rss();
    eprintln!(
        "100 parked 16 MiB frames: all closed in {took:?}, peak RSS {} MB, {errors} LimitExceeded errors read",
        peak / 1_000_000
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(errors >= 1, "the ones that timed out were told why");
    assert!(peak < 300_000_000, "peak RSS {peak}");
    // The server is fine afterwards.
    let mut c = rt.block_on(Client::connect(s.tcp.as_str())).unwrap();
    rt.block_on(c.register("desk", ClientType::AgentApplication))
        .unwrap();
}

/// Problem 4: with a hard limit of 2,048 descriptors and 3,000 idle HTTP sockets attempted, a
/// native client is served at once and a new HTTP client within 60 s; the store keeps working.
#[test]
fn idle_http_sockets_cannot_use_up_the_descriptors() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tmp("fds");
    let d = dir.to_str().unwrap();
    let s = Server::start(
        "ulimit -n 2048 &&",
        &[
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
            d,
            "--log-level",
            "warn",
            "--compact-at",
            "4096",
        ],
        Stdio::null(),
    );
    let http = s.http.clone().unwrap();
    let rt = rt();
    rt.block_on(async {
        let mut idle = Vec::new();
        for _ in 0..3000 {
            match TcpStream::connect(http.as_str()).await {
                Ok(c) => idle.push(c),
                Err(e) => panic!("connect {}: {e}", idle.len()),
            }
        }
        // A native client, at once, and the store works (with compactions under way).
        let started = Instant::now();
        let mut c = Client::connect(s.tcp.as_str()).await.unwrap();
        c.register("emailsrv", ClientType::MediaServer)
            .await
            .unwrap();
        for i in 0..200 {
            c.request_ok(
                Message::new(MessageId::REQUEST_SUBMIT)
                    .with(attr::TENANT_ID, 101)
                    .with(attr::MEDIA_TYPE, "email")
                    .with(attr::INTERACTION_TYPE, "Inbound")
                    .with(attr::QUEUE, "Inbound")
                    .with(attr::INTERACTION_ID, format!("IX-FD-{i}"))
                    .with(
                        attr::USER_DATA,
                        ixn_codec::KvList::new().with("B", "x".repeat(100)),
                    ),
            )
            .await
            .unwrap();
        }
        // Change them over and over: the journal passes twice the live state and compacts
        // (a new generation, in a new file), descriptors notwithstanding.
        let generation = || {
            std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| {
                    let name = e.unwrap().file_name().to_string_lossy().into_owned();
                    name.strip_prefix("journal-")?
                        .strip_suffix(".log")?
                        .parse::<u64>()
                        .ok()
                })
                .max()
                .unwrap()
        };
        let before = generation();
        for round in 0..4 {
            for i in 0..200 {
                c.request_ok(
                    Message::new(MessageId::REQUEST_CHANGE_PROPERTIES)
                        .with(attr::INTERACTION_ID, format!("IX-FD-{i}"))
                        .with(
                            attr::CHANGED_PROPERTIES,
                            ixn_codec::KvList::new().with("Round", round),
                        ),
                )
                .await
                .unwrap();
            }
        }
        assert!(generation() > before, "the journal compacted");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // A new HTTP client within 60 s.
        let started = Instant::now();
        let mut h = TcpStream::connect(http.as_str()).await.unwrap();
        h.write_all(b"GET /api/v2/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), h.read_to_end(&mut reply))
            .await
            .expect("the new HTTP client was not served within 60 s")
            .unwrap();
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 404"), "{text}");
        eprintln!(
            "new HTTP client served after {:?} with 3,000 idle sockets",
            started.elapsed()
        );
        drop(idle);
    });
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ixn-server --check`: a summary and exit 0 when a start would succeed, exit 2 naming the
/// problem when it would not; it writes nothing and works beside a running server.
#[test]
fn check_validates_without_starting_or_writing() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The demo configuration and a directory that does not exist yet (not created by a check).
    let dir = tmp("check");
    let d = dir.to_str().unwrap();
    let (code, out, err) = run(&["--check", "--data-dir", d]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("agents 4") && out.contains("workbin types 5"),
        "{out}"
    );
    assert!(out.contains("no journal yet"), "{out}");
    assert!(!dir.exists(), "a check creates nothing");
    // Beside a running server holding the directory: what it stored, and nothing changed.
    let args = ["--listen", "127.0.0.1:0", "--http", "off", "--data-dir", d];
    let server = Server::start("", &args, Stdio::null());
    let rt = rt();
    let mut c = rt.block_on(Client::connect(server.tcp.as_str())).unwrap();
    rt.block_on(c.register("emailsrv", ClientType::MediaServer))
        .unwrap();
    for id in ["IX-C1", "IX-C2"] {
        rt.block_on(
            c.request_ok(
                Message::new(MessageId::REQUEST_SUBMIT)
                    .with(attr::TENANT_ID, 101)
                    .with(attr::MEDIA_TYPE, "email")
                    .with(attr::INTERACTION_TYPE, "Inbound")
                    .with(attr::QUEUE, "Inbound")
                    .with(attr::INTERACTION_ID, id),
            ),
        )
        .unwrap();
    }
    let journal = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap();
    let before = std::fs::read(&journal).unwrap();
    let (code, out, err) = run(&["--check", "--http", "off", "--data-dir", d]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("2 interactions stored"), "{out}");
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        before,
        "the check wrote nothing"
    );
    drop(c);
    drop(server);
    // A damaged record in the middle: exit 2, naming the file and the offset.
    // (The start compacted the journal into a first record; the two submits follow it.)
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&journal, &bytes).unwrap();
    let (code, out, err) = run(&["--check", "--http", "off", "--data-dir", d]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("corrupt record at byte offset 8"), "{err}");
    // A configuration with a mistake: exit 2 naming the file and the line.
    let bad = dir.with_extension("toml");
    std::fs::write(&bad, "[[tenant]]\nid = 101\nname = \"x\"\n[[agent]]\nid = \"\"\nuser_id = \"802396ae32494a8b8a617a9103d968bb\"\ntenant = 101\n").unwrap();
    let (code, _, err) = run(&["--check", "--config", bad.to_str().unwrap(), "--ephemeral"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(bad.to_str().unwrap()) && err.contains("line"),
        "{err}"
    );
    // An empty configuration: nothing could ever register.
    std::fs::write(&bad, "").unwrap();
    let (code, _, err) = run(&["--check", "--config", bad.to_str().unwrap(), "--ephemeral"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("defines no [[application]]"), "{err}");
    let _ = std::fs::remove_file(&bad);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Flags a user types: host names, sizes and durations with units; a data directory that is a
/// file is named as such; the banner says how to stop the server.
#[test]
fn flags_take_host_names_units_and_say_what_is_wrong() {
    let mut child = ixn_testkit::Reaped(
        Command::new(BIN)
            .args([
                "--ephemeral",
                "--listen",
                "localhost:0",
                "--http",
                "off",
                "--compact-at",
                "64MB",
                "--drain-timeout",
                "1500ms",
                "--log-level",
                "info",
                "--log-format",
                "json",
                "--workers",
                "3",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    for _ in 0..5 {
        out.read_line(&mut banner).unwrap();
    }
    assert!(banner.starts_with("ixn-server listening on "), "{banner}");
    assert!(banner.contains("Ctrl-C or SIGTERM"), "{banner}");
    // --workers sets how many threads serve connections (3 is not this machine's default
    // unless it has 3 CPUs): the started runtime's count, as the log gives it.
    let logs = BufReader::new(child.stderr.take().unwrap());
    let workers = logs
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("threads serving connections"))
        .expect("the log says how many threads serve connections");
    assert!(workers.contains(r#""workers":3"#), "{workers}");
    drop(child);
    let file = tmp("data-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(BIN).args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--http", "off", "--data-dir", file.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is a file, not a directory"), "{err}");
    let (code, err) = run(&["--ephemeral", "--compact-at", "64XB"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown unit"), "{err}");
    let (code, err) = run(&["--ephemeral", "--listen", "7000"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("give HOST:PORT"), "{err}");
    let (code, err) = run(&["--ephemeral", "--sync-poll", "20ms"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("give 0 (off) to 10ms"), "{err}");
    let (code, err) = run(&["--ephemeral", "--sync-poll", "soon"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("write seconds, or e.g. 5s"), "{err}");
    for workers in ["0", "many", "100000"] {
        let (code, err) = run(&["--ephemeral", "--workers", workers]);
        assert_eq!(code, Some(2), "--workers {workers}");
        assert!(
            err.contains(&format!(
                "{workers:?} is not a number of threads; give 1 to 1024"
            )),
            "{err}"
        );
    }
    let (code, err) = run(&["--ephemeral", "--lease", "100ms"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("too short for a lease: give at least 200ms"),
        "{err}"
    );
    // A port in use: a restart would not cure it, so exit 2 (no supervisor restart loop).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&["--ephemeral", "--http", "off", "--listen", &port]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("cannot listen on {port}")), "{err}");
    drop(taken);
    let _ = std::fs::remove_file(&file);
}
