//! High availability on PostgreSQL, with the real `ixn-server` binary and a real PostgreSQL (a
//! throwaway cluster; without PostgreSQL installed these tests say that they did not run, and
//! fail when IXN_REQUIRE_POSTGRES is set, as in `.ci/run`):
//!
//! - failover: two servers on one database, agents placing, moving, changing and stopping
//!   interactions; the active server is killed (SIGKILL) at random moments, 20 times; the
//!   clients find the new active server on their own, and every acknowledged change is there;
//! - fencing: the active server frozen (SIGSTOP) until the standby takes over, then thawed:
//!   it acknowledges nothing more and stands by, naming the new active server;
//! - the database restarting under load: nothing is acknowledged while it is down, and the
//!   server serves again once it is back.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_client::{Client, Registration};
use ixn_codec::{ClientType, Codec, ErrorCode, KvList, Message, MessageId, attr};
use std::io::BufReader;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::workload::{Rng, Track, check, next_request, observe, submit};

const BIN: &str = env!("CARGO_BIN_EXE_ixn-server");
const AGENTS: [(&str, &str); 3] = [("a1", "p1"), ("a2", "p2"), ("a3", "p3")];
/// How long a client waits for a server of the list to be active.
const PATIENCE: Duration = Duration::from_secs(30);

struct Server {
    /// Killed when the server is dropped.
    child: ixn_testkit::Reaped,
    addr: String,
}

impl Server {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

/// A free loopback port (so that a server restarts on the address its clients know).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(url: &str, port: u16, log: &std::path::Path) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--http", "off"])
        .args(["--store", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let addr = ixn_testkit::Banner::read(&mut BufReader::new(child.stdout.take().unwrap()), false)
        .unwrap_or_else(|e| panic!("{e}"))
        .native
        .to_string();
    Server {
        child: ixn_testkit::Reaped(child),
        addr,
    }
}

fn log_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("ixn-failover-{name}-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

async fn connect(
    addrs: &[String],
    name: &str,
    kind: ClientType,
) -> Result<Client, ixn_client::Error> {
    Client::connect_active(
        addrs,
        Codec::trusting(ixn_codec::Limits::default()),
        None,
        Registration {
            name,
            kind,
            password: None,
        },
        PATIENCE,
    )
    .await
}

/// Which address holds the store now (the leader row), once it is not expired.
fn active_addr(url: &str) -> Option<String> {
    let (mut lead, _) =
        ixn_pgstore::Leadership::connect(url, "test", "", Duration::from_secs(2)).unwrap();
    let row = lead.observe().unwrap();
    (!row.expired && !row.advertised.is_empty()).then_some(row.advertised)
}

/// Registers as the agent's desktop on the active server and logs the agent in.
async fn desk(addrs: &[String], agent: &str, place: &str) -> Result<Client, ixn_client::Error> {
    let c = connect(addrs, "desk", ClientType::AgentApplication).await?;
    c.request_ok(
        Message::new(MessageId::REQUEST_AGENT_LOGIN)
            .with(attr::TENANT_ID, 101)
            .with(attr::AGENT_ID, agent.to_owned())
            .with(attr::PLACE_ID, place.to_owned()),
    )
    .await?;
    Ok(c)
}

/// Checks every acknowledged state against the active server (see `workload::check`);
/// returns how many interactions were checked.
async fn verify(addrs: &[String], tracks: &[Arc<Mutex<Track>>], round: usize) -> usize {
    let m = connect(addrs, "emailsrv", ClientType::MediaServer)
        .await
        .unwrap();
    let found = check(&m, tracks, &format!("round {round}")).await;
    m.close().await.unwrap();
    found.interactions
}

/// One agent working until told to stop. After a broken connection it finds the active server
/// on its own (the address list), logs in again, reports the moment, and waits for the
/// checker's go-ahead (a round number) before going on.
#[allow(clippy::too_many_arguments)]
async fn drive(
    addrs: Vec<String>,
    agent: &'static str,
    place: &'static str,
    track: Arc<Mutex<Track>>,
    acked: tokio::sync::watch::Sender<usize>,
    reconnected: tokio::sync::mpsc::UnboundedSender<Instant>,
    mut go: tokio::sync::watch::Receiver<usize>,
    seed: u64,
) {
    let mut rng = Rng(seed | 1);
    let mut c = desk(&addrs, agent, place).await.unwrap();
    let mut round = 0usize;
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
            Ok(reply)
                if reply.attrs.get_int(attr::ERROR_CODE) == Some(ErrorCode::NotActive.to_int()) => {
            }
            Ok(reply) => panic!("{agent}: unexpected {reply:?}"),
            Err(_) => {
                // The server went away: `pending` stays in flight. Find the active one.
                c = desk(&addrs, agent, place).await.unwrap();
                let _ = reconnected.send(Instant::now());
                round += 1;
                if go.wait_for(|r| *r >= round).await.is_err() {
                    return;
                }
                if *go.borrow() == usize::MAX {
                    return;
                }
            }
        }
        if *go.borrow() == usize::MAX {
            return;
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn no_acknowledged_change_is_lost_across_failovers() {
    const ROUNDS: usize = 20;
    let Some(cluster) = ixn_testkit::pg::start_or_skip("failover") else {
        return;
    };
    let url = cluster.database("failover").unwrap();
    let log = log_path("kills");
    let ports = [free_port(), free_port()];
    let mut servers: Vec<Option<Server>> = vec![Some(start(&url, ports[0], &log))];
    servers.push(Some(start(&url, ports[1], &log)));
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!(
        "failover test seed {seed}; server logs in {}",
        log.display()
    );
    let mut rng = Rng(seed | 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tracks: Vec<Arc<Mutex<Track>>> = AGENTS
        .iter()
        .map(|_| Arc::new(Mutex::new(Track::default())))
        .collect();
    let (acked, _) = tokio::sync::watch::channel(0usize);
    let (go, _) = tokio::sync::watch::channel(0usize);
    let (reconnected_tx, mut reconnected) = tokio::sync::mpsc::unbounded_channel();
    let drivers: Vec<_> = AGENTS
        .iter()
        .zip(&tracks)
        .map(|((agent, place), t)| {
            rt.spawn(drive(
                addrs.clone(),
                agent,
                place,
                Arc::clone(t),
                acked.clone(),
                reconnected_tx.clone(),
                go.subscribe(),
                rng.next(),
            ))
        })
        .collect();
    let mut failovers = Vec::new();
    let mut checked = 0;
    for round in 1..=ROUNDS {
        // Load, then a kill of the active server once a number of requests (drawn from the
        // seed) were acknowledged: an event, not a wall-clock moment.
        let goal = *acked.borrow() + 100 + rng.below(300) as usize;
        rt.block_on(async {
            let mut seen = acked.subscribe();
            tokio::time::timeout(Duration::from_secs(60), seen.wait_for(|n| *n >= goal))
                .await
                .expect("the drivers stopped making progress")
                .unwrap();
        });
        let active = active_addr(&url).expect("a server is active");
        let i = addrs.iter().position(|a| *a == active).unwrap();
        let killed = Instant::now();
        servers[i] = None; // SIGKILL
        // Every driver finds the new active server on its own.
        let mut last = killed;
        for _ in AGENTS {
            let at = rt
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(60), reconnected.recv()).await
                })
                .expect("a driver did not reconnect")
                .unwrap();
            last = last.max(at);
        }
        let first_served = last.duration_since(killed);
        failovers.push(first_served);
        // The killed server comes back, as a standby.
        servers[i] = Some(start(&url, ports[i], &log));
        // The drivers wait while the checker looks at every acknowledged state.
        checked += rt.block_on(verify(&addrs, &tracks, round));
        go.send_replace(round);
    }
    go.send_replace(usize::MAX);
    rt.block_on(async {
        for d in drivers {
            tokio::time::timeout(Duration::from_secs(60), d)
                .await
                .unwrap()
                .unwrap();
        }
    });
    checked += rt.block_on(verify(&addrs, &tracks, ROUNDS + 1));
    failovers.sort();
    let ops: usize = tracks.iter().map(|t| t.lock().unwrap().ops).sum();
    eprintln!(
        "{ROUNDS} failovers; every client served again after p50 {:?}, max {:?}; {ops} acknowledged requests; {checked} interaction checks; nothing acknowledged was lost",
        percentile(&failovers, 0.5),
        failovers[failovers.len() - 1]
    );
    assert!(
        failovers[failovers.len() - 1] < Duration::from_secs(5),
        "a standby takes over within 5 s: {failovers:?}"
    );
    drop(servers);
    drop(cluster);
    // The servers' log is kept only when the test fails.
    let _ = std::fs::remove_file(&log);
}

/// The fencing test: a frozen active server that a standby replaced acknowledges nothing more
/// when it wakes up, and stands by naming the new active server.
#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn a_frozen_active_server_acknowledges_nothing_after_a_takeover() {
    let Some(cluster) = ixn_testkit::pg::start_or_skip("fencing") else {
        return;
    };
    let url = cluster.database("fencing").unwrap();
    let log = log_path("fencing");
    let a = start(&url, free_port(), &log);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let old = rt.block_on(async {
        let c = connect(
            std::slice::from_ref(&a.addr),
            "emailsrv",
            ClientType::MediaServer,
        )
        .await
        .unwrap();
        c.request_ok(submit("before")).await.unwrap();
        c
    });
    let b = start(&url, free_port(), &log);
    assert_eq!(active_addr(&url).as_deref(), Some(a.addr.as_str()));
    a.signal("-STOP");
    // B takes over (its clients are served)...
    let new = rt.block_on(connect(
        std::slice::from_ref(&b.addr),
        "emailsrv",
        ClientType::MediaServer,
    ));
    let new = new.expect("the standby took over");
    a.signal("-CONT");
    // ...and A, woken, acknowledges nothing: its old client's request fails or is refused.
    let reply = rt.block_on(old.request(submit("after")));
    match &reply {
        Err(_) => {}
        Ok(r) => assert!(
            r.id == MessageId::EVENT_ERROR
                && r.attrs.get_int(attr::ERROR_CODE) == Some(ErrorCode::NotActive.to_int()),
            "a fenced server acknowledged: {r:?}"
        ),
    }
    rt.block_on(async {
        assert!(
            observe(&new, "before").await.is_some(),
            "acknowledged before the freeze"
        );
        assert!(
            observe(&new, "after").await.is_none(),
            "nothing written by the fenced server"
        );
        // A stands by and names B from its first answer on: its requests wait while its
        // leadership loop reads who holds the store (never an answer naming nobody while B
        // serves, nor naming A itself).
        for attempt in 0..20 {
            let mut c = Client::connect(a.addr.as_str()).await.unwrap();
            let e = c
                .register("emailsrv", ClientType::MediaServer)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    ixn_client::Error::EventError {
                        code: ErrorCode::NotActive,
                        ..
                    }
                ),
                "{e}"
            );
            assert_eq!(
                ixn_client::active_server_of(&e).as_deref(),
                Some(b.addr.as_str()),
                "answer {attempt} of the woken server: {e}"
            );
        }
        let named = b.addr.clone();
        assert_eq!(named, b.addr);
    });
    drop(cluster);
    // The servers' log is kept only when the test fails.
    let _ = std::fs::remove_file(&log);
}

/// The database restarts under load: nothing is acknowledged while it is down; the server
/// serves again once it is back, with every acknowledged change.
#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn the_database_restarting_stops_acknowledgements_until_it_is_back() {
    let Some(cluster) = ixn_testkit::pg::start_or_skip("db-restart") else {
        return;
    };
    let url = cluster.database("restart").unwrap();
    let log = log_path("db-restart");
    let a = start(&url, free_port(), &log);
    let addrs = vec![a.addr.clone()];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = rt.block_on(async {
        let c = connect(&addrs, "emailsrv", ClientType::MediaServer)
            .await
            .unwrap();
        for i in 0..50 {
            c.request_ok(submit(format!("up-{i}"))).await.unwrap();
        }
        c
    });
    // --check reads the database without changing it.
    let out = Command::new(BIN)
        .args(["--check", "--store", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("schema version 1, 50 interactions stored")
            && text.contains(&format!("active server {}", a.addr)),
        "{text}"
    );
    cluster.stop().unwrap();
    // While it is down, no request that changes something is acknowledged.
    let reply = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), c.request(submit("down"))).await
    });
    match reply {
        Ok(Err(_)) => {}
        Ok(Ok(r)) => assert_eq!(
            r.id,
            MessageId::EVENT_ERROR,
            "acknowledged without a database: {r:?}"
        ),
        Err(_) => panic!("the request neither failed nor was answered within 30 s"),
    }
    let out = Command::new(BIN)
        .args(["--check", "--store", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--check without a database");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    cluster.restart().unwrap();
    // Until it serves again, the server answers NotActive, never naming itself as the active
    // server (a client following the hint would loop back to it).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = ping(&a.addr);
        if reply.id == MessageId::PING {
            break;
        }
        assert_eq!(
            reply.attrs.get_int(attr::ERROR_CODE),
            Some(ErrorCode::NotActive.to_int()),
            "{reply:?}"
        );
        assert_ne!(
            reply
                .attrs
                .get_str(attr::ACTIVE_SERVER)
                .map(|s| s.to_string()),
            Some(a.addr.clone()),
            "a stepped-down server names itself as the active server"
        );
        assert!(Instant::now() < deadline, "{} never served again", a.addr);
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.block_on(async {
        // The client finds the server serving again on its own.
        let c = connect(&addrs, "emailsrv", ClientType::MediaServer)
            .await
            .unwrap();
        for i in 0..50 {
            assert!(
                observe(&c, &format!("up-{i}")).await.is_some(),
                "up-{i} lost"
            );
        }
        c.request_ok(submit("back")).await.unwrap();
        assert!(observe(&c, "back").await.is_some());
    });
    drop(a);
    drop(cluster);
    // The servers' log is kept only when the test fails.
    let _ = std::fs::remove_file(&log);
}

/// Mistakes with `--store` say what is wrong and what to give, never showing a password.
#[test]
fn a_bad_or_unreachable_store_is_refused_clearly() {
    let out = Command::new(BIN)
        .args(["--store", "mysql://db/ixn"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("neither `journal` nor a PostgreSQL URL") && err.contains("postgres://"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["--store", "postgres://ixn:secret@127.0.0.1:1/ixn"])
        .args(["--listen", "127.0.0.1:0", "--http", "off"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to PostgreSQL at postgres://ixn:***@127.0.0.1:1/ixn")
            && !err.contains("secret"),
        "{err}"
    );
}

/// The client library's `Resilient`: after the active server dies, it finds the new one on its
/// own, logs in and subscribes again, says so, and hears what happens next.
#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn a_resilient_client_logs_in_and_subscribes_again_after_a_failover() {
    let Some(cluster) = ixn_testkit::pg::start_or_skip("resilient") else {
        return;
    };
    let url = cluster.database("resilient").unwrap();
    let log = log_path("resilient");
    let ports = [free_port(), free_port()];
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let first = start(&url, ports[0], &log);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut desk = rt.block_on(async {
        let mut desk = ixn_client::Resilient::connect(
            &addrs,
            Codec::trusting(ixn_codec::Limits::default()),
            None,
            Registration {
                name: "desk",
                kind: ClientType::AgentApplication,
                password: None,
            },
            PATIENCE,
        )
        .await
        .unwrap();
        desk.setup(
            Message::new(MessageId::REQUEST_AGENT_LOGIN)
                .with(attr::TENANT_ID, 101)
                .with(attr::AGENT_ID, "a1")
                .with(attr::PLACE_ID, "p1"),
        )
        .await
        .unwrap();
        desk.setup(
            Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS).with(
                attr::WORKBIN,
                KvList::new()
                    .with(attr::WORKBIN_TYPE_ID, "Drafts")
                    .with(attr::WORKBIN_AGENT_ID, "a1"),
            ),
        )
        .await
        .unwrap();
        desk
    });
    let _second = start(&url, ports[1], &log);
    drop(first); // SIGKILL of the active server
    rt.block_on(async {
        match desk.next_event().await {
            ixn_client::Event::Reconnected { why } => eprintln!("reconnected after: {why}"),
            other => panic!("expected a reconnection, got {other:?}"),
        }
        let media = connect(&addrs, "emailsrv", ClientType::MediaServer)
            .await
            .unwrap();
        media.request_ok(submit("IX-R")).await.unwrap();
        media
            .request_ok(
                Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                    .with(attr::INTERACTION_ID, "IX-R")
                    .with(
                        attr::WORKBIN,
                        KvList::new()
                            .with(attr::WORKBIN_TYPE_ID, "Drafts")
                            .with(attr::WORKBIN_AGENT_ID, "a1"),
                    ),
            )
            .await
            .unwrap();
        match desk.next_event().await {
            ixn_client::Event::Notification(m) => {
                assert_eq!(m.id, MessageId::EVENT_WORKBIN_CONTENT_CHANGED, "{m:?}");
                let json = m.to_json().unwrap();
                assert!(
                    json.contains("\"IX-R\"") && json.contains("PlacedIn"),
                    "{json}"
                );
            }
            other => panic!("expected the PlacedIn notification, got {other:?}"),
        }
    });
    drop(cluster);
    // The servers' log is kept only when the test fails.
    let _ = std::fs::remove_file(&log);
}

/// Sends a plain Ping (a ReferenceId only: the form an active server's connection answers
/// without its engine) on a new connection to `addr` and returns the reply.
fn ping(addr: &str) -> Message {
    use std::io::{Read, Write};
    let codec = Codec::default();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let ping = Message::new(MessageId::PING).with(attr::REFERENCE_ID, 7);
    s.write_all(&codec.encode_to_bytes(&ping).unwrap()).unwrap();
    let mut buf = ixn_codec::BytesMut::new();
    loop {
        if let Some(m) = codec.decode(&mut buf).unwrap() {
            return m;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "{addr} closed the connection before replying");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A standby answers every Ping, the plain one included, with EventError NotActive naming the
/// active server, so that a health probe that connects and pings tells a standby from the
/// active server; the active server answers with a Ping.
#[cfg_attr(
    ixn_no_postgres,
    ignore = "needs PostgreSQL: no initdb under /usr/lib/postgresql/*/bin or IXN_PG_BINDIR (apt install postgresql)"
)]
#[test]
fn a_standby_answers_a_ping_with_not_active_naming_the_active_server() {
    let Some(cluster) = ixn_testkit::pg::start_or_skip("standby-ping") else {
        return;
    };
    let url = cluster.database("standby_ping").unwrap();
    let log = log_path("standby-ping");
    let a = start(&url, free_port(), &log);
    // The first server takes the store over and serves (it answers a Ping with a Ping; the
    // leader row names it a moment before its engine is loaded), then the second starts.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = ping(&a.addr);
        assert_eq!(reply.reference_id(), Some(7));
        if reply.id == MessageId::PING {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} never served: {reply:?}",
            a.addr
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = start(&url, free_port(), &log);

    // Every answer of the standby is NotActive; once its leadership loop has read the leader
    // row (right after it starts), the answer names the active server.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = ping(&b.addr);
        assert_eq!(reply.id, MessageId::EVENT_ERROR, "the standby: {reply:?}");
        assert_eq!(reply.reference_id(), Some(7));
        assert_eq!(
            reply.attrs.get_int(attr::ERROR_CODE),
            Some(ErrorCode::NotActive.to_int()),
            "{reply:?}"
        );
        if reply.attrs.get_str(attr::ACTIVE_SERVER).map(|s| s.as_ref()) == Some(a.addr.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never named {}: {reply:?}",
            a.addr
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop((a, b));
    let _ = std::fs::remove_file(&log);
}
