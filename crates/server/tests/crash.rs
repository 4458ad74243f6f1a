//! Crash test of the real `ixn-server` binary with a data directory: agents submit, place,
//! move to a queue, pull, change and stop interactions concurrently while every acknowledged
//! state is recorded; the server is killed with SIGKILL at random moments, restarted, and every
//! acknowledged change must be there (an interaction's in-flight request may or may not have
//! happened, but nothing half-applied). Then a torn tail and a corrupt middle of the journal.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_client::Client;
use ixn_codec::{ClientType, Message, MessageId, attr};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
// A started server, killed when dropped.
use common::workload::{Rng, Track, check, next_request, submit};
use ixn_testkit::Reaped as Server;

const BIN: &str = env!("CARGO_BIN_EXE_ixn-server");
const ROUNDS: usize = 20;
const AGENTS: [(&str, &str); 3] = [("a1", "p1"), ("a2", "p2"), ("a3", "p3")];

/// Starts the server on `dir`; with `one_cpu`, confined to one CPU (`taskset`), where it syncs
/// each group commit on its store thread instead of pipelining the syncs.
fn start(dir: &Path, one_cpu: bool) -> (Server, String) {
    let mut cmd = if one_cpu {
        let mut c = Command::new("taskset");
        c.args(["-c", &first_allowed_cpu(), BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let mut child = cmd
        // A small compaction threshold, so that kills also land during runtime compactions.
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http",
            "off",
            "--log-level",
            "info",
            "--compact-at",
            "16384",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(compactions_log(dir)))
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start the server (one CPU: {one_cpu}; taskset is in util-linux): {e}")
        });
    let addr = ixn_testkit::Banner::read(&mut BufReader::new(child.stdout.take().unwrap()), false)
        .unwrap_or_else(|e| panic!("{e}"))
        .native
        .to_string();
    (Server(child), addr)
}

/// The servers' logs (appended), to count runtime compactions.
fn compactions_log(dir: &Path) -> std::fs::File {
    let path = dir.with_extension("log");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// The first CPU this process may run on (from /proc/self/status).
fn first_allowed_cpu() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    list.split([',', '-']).next().unwrap().to_owned()
}

/// The live journal file of a data directory.
fn journal_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .unwrap()
}

/// One agent working on its own interactions until the connection breaks.
async fn drive(
    addr: String,
    agent: &'static str,
    place: &'static str,
    track: Arc<Mutex<Track>>,
    acked: tokio::sync::watch::Sender<usize>,
    seed: u64,
) {
    let Ok(mut c) = Client::connect(addr.as_str()).await else {
        return;
    };
    if c.register("desk", ClientType::AgentApplication)
        .await
        .is_err()
    {
        return;
    }
    let login = Message::new(MessageId::REQUEST_AGENT_LOGIN)
        .with(attr::TENANT_ID, 101)
        .with(attr::AGENT_ID, agent)
        .with(attr::PLACE_ID, place);
    if c.request_ok(login).await.is_err() {
        return;
    }
    let mut rng = Rng(seed | 1);
    loop {
        let (msg, id, after) = next_request(&mut track.lock().unwrap(), agent, &mut rng);
        track.lock().unwrap().pending = Some((id.clone(), after.clone()));
        match c.request(msg).await {
            Ok(reply) if reply.id != MessageId::EVENT_ERROR => {
                let mut t = track.lock().unwrap();
                t.acked.insert(id, after);
                t.pending = None;
                t.ops += 1;
                drop(t);
                acked.send_modify(|n| *n += 1);
            }
            Ok(reply) => panic!("{agent}: unexpected {reply:?}"),
            Err(_) => return, // the server went away; `pending` stays in flight
        }
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ixn-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn no_acknowledged_change_is_lost_across_kills() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tmp("kills");
    let seed = match std::env::var("IXN_CRASH_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("IXN_CRASH_SEED={s:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!(
        "crash test seed {seed} (IXN_CRASH_SEED={seed} replays the same requests and kill points, counted in acknowledged requests)"
    );
    let mut rng = Rng(seed | 1);
    let tracks: Vec<Arc<Mutex<Track>>> = AGENTS
        .iter()
        .map(|_| Arc::new(Mutex::new(Track::default())))
        .collect();
    let started = Instant::now();
    let (mut checked, mut in_flight_applied) = (0usize, 0usize);
    // Requests acknowledged so far, all drivers together.
    let (acked, _) = tokio::sync::watch::channel(0usize);
    for round in 0..=ROUNDS {
        // Every other run on one CPU: the store thread then syncs each group itself.
        let (server, addr) = start(&dir, round % 2 == 1);
        // Every acknowledged state is there; an in-flight request may or may not have happened.
        rt.block_on(async {
            let mut m = Client::connect(addr.as_str()).await.unwrap();
            m.register("emailsrv", ClientType::MediaServer)
                .await
                .unwrap();
            let found = check(&m, &tracks, &format!("round {round} (seed {seed})")).await;
            checked += found.interactions;
            in_flight_applied += found.in_flight_applied;
            m.close().await.unwrap();
        });
        if round == ROUNDS {
            break;
        }
        // Load, then a kill once the drivers have had a number of requests acknowledged (drawn
        // from the seed): an event, not a wall-clock moment. Each round writes more than
        // --compact-at, so every round compacts at least once while running, and the kill
        // may land in one.
        let goal = *acked.borrow() + 150 + rng.below(400) as usize;
        let drivers: Vec<_> = AGENTS
            .iter()
            .zip(&tracks)
            .map(|((agent, place), t)| {
                let acked = acked.clone();
                rt.spawn(drive(
                    addr.clone(),
                    agent,
                    place,
                    Arc::clone(t),
                    acked,
                    rng.next(),
                ))
            })
            .collect();
        rt.block_on(async {
            let mut seen = acked.subscribe();
            tokio::time::timeout(Duration::from_secs(60), seen.wait_for(|n| *n >= goal))
                .await
                .expect("the drivers stopped making progress")
                .unwrap();
        });
        drop(server); // SIGKILL
        rt.block_on(async {
            for d in drivers {
                tokio::time::timeout(Duration::from_secs(10), d)
                    .await
                    .unwrap()
                    .unwrap();
            }
        });
    }
    let ops: usize = tracks.iter().map(|t| t.lock().unwrap().ops).sum();
    eprintln!(
        "{ROUNDS} kills, {ops} acknowledged requests, {checked} interaction checks, {in_flight_applied} in-flight requests found applied, {:?}",
        started.elapsed()
    );
    assert!(
        ops > ROUNDS * 10,
        "the drivers did real work ({ops} requests)"
    );
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    let compactions = log.matches("journal compacted").count();
    eprintln!("{compactions} runtime compactions during the run");
    assert!(compactions > 0, "the kills also cover runtime compactions");
    let inline = log
        .matches("group commit: the store thread syncs each group itself")
        .count();
    let pipelined = log
        .matches("group commit: syncs pipelined on flush threads")
        .count();
    let want = if std::thread::available_parallelism().unwrap().get() == 1 {
        (ROUNDS + 1, 0)
    } else {
        (ROUNDS / 2, ROUNDS / 2 + 1)
    };
    assert_eq!(
        (inline, pipelined),
        want,
        "runs on one CPU sync inline, the others pipelined"
    );
    let _ = std::fs::remove_file(dir.with_extension("log"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn torn_tail_is_reported_and_ignored_and_corruption_stops_the_start() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tmp("files");
    let (server, addr) = start(&dir, false);
    rt.block_on(async {
        let mut m = Client::connect(addr.as_str()).await.unwrap();
        m.register("emailsrv", ClientType::MediaServer)
            .await
            .unwrap();
        for i in 0..50 {
            m.request_ok(submit(format!("T{i}"))).await.unwrap();
        }
    });
    drop(server);
    let journal = journal_file(&dir);
    // A torn tail: the start of a record that was never finished.
    let mut bytes = std::fs::read(&journal).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(b"IXNR\x00\x00\x01\x00\x12\x34");
    std::fs::write(&journal, &bytes).unwrap();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--http", "off", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(out);
    let mut first = String::new();
    let mut lines = BufReader::new(server.0.stdout.take().unwrap());
    lines.read_line(&mut first).unwrap();
    let mut rest = String::new();
    lines.read_line(&mut rest).unwrap();
    lines.read_line(&mut rest).unwrap();
    lines.read_line(&mut rest).unwrap();
    assert!(rest.contains("(50 interactions loaded)"), "{rest}");
    let _ = server.0.kill();
    let stderr = server.0.stderr.take().map(|e| {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(e), &mut s);
        s
    });
    let stderr = stderr.unwrap();
    assert!(stderr.contains("torn write"), "{stderr}");
    drop(server);

    // Corruption in the middle of the (compacted) journal: the start is refused, naming the
    // file and the offset.
    let (server, addr) = start(&dir, false);
    rt.block_on(async {
        let mut m = Client::connect(addr.as_str()).await.unwrap();
        m.register("emailsrv", ClientType::MediaServer)
            .await
            .unwrap();
        m.request_ok(
            Message::new(MessageId::REQUEST_STOP_PROCESSING).with(attr::INTERACTION_ID, "T0"),
        )
        .await
        .unwrap();
    });
    drop(server);
    let journal = journal_file(&dir);
    assert!(std::fs::metadata(&journal).unwrap().len() > good as u64 / 2);
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[30] ^= 0x40; // inside the first record (the compacted snapshot)
    std::fs::write(&journal, &bytes).unwrap();
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--http", "off", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt record at byte offset 8")
            && err.contains(&journal.display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(dir.with_extension("log"));
}

#[test]
fn sigterm_and_sigint_stop_the_binary_gracefully_with_exit_code_0() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for signal in ["-TERM", "-INT"] {
        let mut child = ixn_testkit::Reaped(
            Command::new(BIN)
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    // The web API too: a signal stops it as gracefully.
                    "--http",
                    "127.0.0.1:0",
                    "--ephemeral",
                    "--log-level",
                    "warn",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let addr =
            ixn_testkit::Banner::read(&mut BufReader::new(child.stdout.take().unwrap()), false)
                .unwrap_or_else(|e| panic!("{e}"))
                .native
                .to_string();
        // A connected client is closed by the shutdown, not left hanging.
        let mut c = rt.block_on(Client::connect(addr.as_str())).unwrap();
        rt.block_on(c.register("desk", ClientType::AgentApplication))
            .unwrap();
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = common::wait_exit(&mut child, Duration::from_secs(10));
        assert_eq!(code, Some(0), "{signal}");
        assert!(
            rt.block_on(c.next_notification()).is_none(),
            "{signal}: the connection was closed"
        );
    }
}
