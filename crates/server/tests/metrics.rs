//! Metrics at `/metrics`: values move as requests flow, the scrape taken under load passes
//! `promtool check metrics` (Debian's prometheus package; `.ci/run` installs it and sets
//! IXN_REQUIRE_PROMTOOL so that its absence fails), `--metrics` serves them on a listener of
//! their own, and the journal's sync histogram counts group commits.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use ixn_codec::{ClientType, Message, MessageId, attr};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` over a new connection; returns the status line's code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head.to_owned(), body.to_owned())
}

/// The value of the sample `name{labels}` (exact label text), if present.
fn value(scrape: &str, sample: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Checks `scrape` with `promtool check metrics`; says plainly when promtool is absent (and
/// fails then if IXN_REQUIRE_PROMTOOL is set, as `.ci/run` does).
fn promtool_check(scrape: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("IXN_REQUIRE_PROMTOOL").is_none(),
                "promtool is required (IXN_REQUIRE_PROMTOOL) but cannot run: {e}"
            );
            // Straight to stderr: the harness does not capture it, so a plain run shows it.
            let _ = writeln!(
                std::io::stderr(),
                "NOT RUN: promtool check metrics (promtool cannot run: {e}; on Debian: apt install prometheus)"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape ---\n{scrape}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn submit(id: &str) -> Message {
    Message::new(MessageId::REQUEST_SUBMIT)
        .with(attr::TENANT_ID, 101)
        .with(attr::MEDIA_TYPE, "email")
        .with(attr::INTERACTION_TYPE, "Inbound")
        .with(attr::QUEUE, "Inbound")
        .with(attr::INTERACTION_ID, id.to_owned())
}

fn place(id: &str) -> Message {
    Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
        .with(attr::INTERACTION_ID, id.to_owned())
        .with(
            attr::WORKBIN,
            ixn_codec::KvList::new()
                .with("WorkbinTypeId", "Drafts")
                .with("WorkbinAgentId", "a1"),
        )
}

fn drafts() -> ixn_codec::KvList {
    ixn_codec::KvList::new()
        .with("WorkbinTypeId", "Drafts")
        .with("WorkbinAgentId", "a1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_requests_and_pass_promtool_under_load() {
    let config = common::demo(|_| {});
    let dir = std::env::temp_dir().join(format!("ixn-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let recovered = ixn_server::recover(&dir, Arc::clone(&config), 7).unwrap();
    let http = ixn_server::bind_http("127.0.0.1:0".parse().unwrap(), &config)
        .await
        .unwrap();
    let web = http.local_addr().unwrap();
    let started = ixn_server::start_engine(
        "127.0.0.1:0".parse().unwrap(),
        recovered.engine,
        Some(Box::new(recovered.store)),
        ixn_server::Options {
            http: Some(http),
            // Polling for syncs whatever this machine's CPU quota.
            sync_poll: ixn_tcp::DEFAULT_SYNC_POLL,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let addr = started.addr;

    let (code, head, before) = get(web, "/metrics").await;
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert_eq!(
        value(
            &before,
            r#"ixn_requests_total{message="RequestSubmit",outcome="EventAck"}"#
        ),
        None
    );

    // A subscriber, and a media server placing interactions in its workbin while scrapes run.
    let desk = common::desk(addr, "a1", "p1").await;
    desk.request_ok(
        Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS).with(attr::WORKBIN, drafts()),
    )
    .await
    .unwrap();
    let media = common::media(addr, "emailsrv").await;
    const N: usize = 300;
    let load = tokio::spawn(async move {
        for i in 0..N {
            let id = format!("IX-M-{i}");
            media.request_ok(submit(&id)).await.unwrap();
            media.request_ok(place(&id)).await.unwrap();
        }
        media
    });
    let mut under_load = String::new();
    while !load.is_finished() {
        let (code, _, scrape) = get(web, "/metrics").await;
        assert_eq!(code, 200);
        under_load = scrape;
    }
    let media = load.await.unwrap();
    promtool_check(&under_load);

    // An unknown application, and a malformed frame: refused and counted.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(b"\x00\x00\x00\x08garbage!")
        .await
        .unwrap();
    assert_eq!(common::read_until_closed(&mut garbage).await.len(), 1);
    let mut rogue = ixn_client::Client::connect(addr).await.unwrap();
    assert!(
        rogue
            .register("rogue", ClientType::AgentApplication)
            .await
            .is_err()
    );

    let (_, _, after) = get(web, "/metrics").await;
    promtool_check(&after);
    let n = f64::from(u32::try_from(N).unwrap());
    let v = |s: &str| value(&after, s).unwrap_or_else(|| panic!("no {s} in\n{after}"));
    assert_eq!(
        v(r#"ixn_requests_total{message="RequestSubmit",outcome="EventAck"}"#),
        n
    );
    assert_eq!(
        v(r#"ixn_requests_total{message="RequestPlaceInWorkbin",outcome="EventAck"}"#),
        n
    );
    assert_eq!(
        v(
            r#"ixn_requests_total{message="RequestRegisterClient",outcome="EventError:InvalidClient"}"#
        ),
        1.0
    );
    assert_eq!(v(r#"ixn_disconnects_total{reason="invalid_client"}"#), 1.0);
    assert_eq!(v(r#"ixn_disconnects_total{reason="malformed_frame"}"#), 1.0);
    assert!(v("ixn_notifications_total") >= n, "{after}");
    assert_eq!(v(r#"ixn_interactions{state="in_workbin"}"#), n);
    assert_eq!(v(r#"ixn_interactions{state="queued"}"#), 0.0);
    assert_eq!(v("ixn_subscriptions"), 1.0);
    assert_eq!(v("ixn_agents_logged_in"), 1.0);
    assert_eq!(v(r#"ixn_clients{type="MediaServer"}"#), 1.0);
    assert_eq!(
        v(r#"ixn_clients{type="Proxy"}"#),
        1.0,
        "the web API's proxy"
    );
    assert!(v("ixn_connections_open") >= 2.0);
    // Every submit and move was synced before it was acknowledged.
    assert!(v("ixn_journal_sync_seconds_count") >= 1.0);
    // Each round handed to the store is timed until its sync was reported: every sync covers
    // one round or more, and a round waits at least as long as the sync that covers it.
    assert!(v("ixn_journal_commit_seconds_count") >= v("ixn_journal_sync_seconds_count"));
    assert!(v("ixn_journal_commit_seconds_sum") > 0.0);
    // The engine task waited for those syncs by polling (each polling ends one way or another).
    let polls: f64 = ["synced", "input", "timeout"]
        .iter()
        .filter_map(|o| {
            value(
                &after,
                &format!(r#"ixn_journal_sync_polls_total{{outcome="{o}"}}"#),
            )
        })
        .sum();
    assert!(polls >= 1.0, "{after}");
    assert!(v("ixn_journal_batch_changes_sum") >= 2.0 * n);
    assert!(v(r#"ixn_http_requests_total{route="/metrics",method="GET",status="200"}"#) >= 2.0);

    drop((desk, media));
    started.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn metrics_on_their_own_listener() {
    let config = common::demo(|l| l.max_connections = 1);
    let http = ixn_server::bind_http("127.0.0.1:0".parse().unwrap(), &config)
        .await
        .unwrap();
    let web = http.local_addr().unwrap();
    let metrics = ixn_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let at = metrics.local_addr().unwrap();
    let started = ixn_server::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        ixn_server::Options {
            http: Some(http),
            metrics: Some(metrics),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (code, _, scrape) = get(at, "/metrics").await;
    assert_eq!(code, 200);
    assert!(scrape.contains("ixn_connections_open 0"), "{scrape}");
    promtool_check(&scrape);
    // One connection is the cap: a second is refused, and counted.
    let held = common::media(started.addr, "emailsrv").await;
    let mut extra = TcpStream::connect(started.addr).await.unwrap();
    let refused = common::read_until_closed(&mut extra).await;
    assert_eq!(refused.len(), 1);
    let (_, _, scrape) = get(at, "/metrics").await;
    assert!(
        scrape.contains("ixn_disconnects_total{reason=\"max_connections\"} 1\n"),
        "{scrape}"
    );
    assert!(scrape.contains("ixn_connections_open 1\n"), "{scrape}");
    drop(held);
    // Not on the web API's listener then.
    let (code, _, body) = get(web, "/metrics").await;
    assert_eq!(code, 404, "{body}");
    started.shutdown().await.unwrap();
}
