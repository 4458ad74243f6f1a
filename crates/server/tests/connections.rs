//! The server over real loopback sockets: malformed input, limits, many connections, a slow
//! consumer, graceful shutdown. Every test is bounded in time.

// Test code: a panic is how a check fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stderr
)]

use ixn_client::Client;
use ixn_codec::{
    ClientType, Codec, ErrorCode, KvList, Message, MessageId, WorkbinContentOperation, attr,
};
use ixn_config::{Config, ConfigFile, Limits};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

mod common;

use common::{demo, desk, media, read_until_closed, start};

const LIMIT: Duration = Duration::from_secs(60);

fn workbin(ty: &'static str, key: &'static str, owner: String) -> KvList {
    KvList::new()
        .with(attr::WORKBIN_TYPE_ID, ty)
        .with(key, owner)
}

async fn subscribe(c: &Client, wb: KvList) {
    c.request_ok(Message::new(MessageId::REQUEST_WORKBIN_NOTIFICATIONS).with(attr::WORKBIN, wb))
        .await
        .unwrap();
}

async fn submit(c: &Client, id: &str) {
    c.request_ok(
        Message::new(MessageId::REQUEST_SUBMIT)
            .with(attr::TENANT_ID, 101)
            .with(attr::MEDIA_TYPE, "email")
            .with(attr::INTERACTION_TYPE, "Inbound")
            .with(attr::QUEUE, "Inbound")
            .with(attr::INTERACTION_ID, id.to_owned())
            .with(attr::USER_DATA, KvList::new().with("Body", "x".repeat(200))),
    )
    .await
    .unwrap();
}

async fn place(c: &Client, id: &str, wb: KvList) {
    c.request_ok(
        Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
            .with(attr::INTERACTION_ID, id.to_owned())
            .with(attr::WORKBIN, wb),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn garbage_and_oversize_frames_get_an_error_and_a_close_and_others_carry_on() {
    timeout(LIMIT, async {
        let server = start(demo(|l| l.max_frame_len = 4096)).await;
        let mut ok = desk(server.addr, "a1", "p1").await;
        for (what, bytes) in [
            ("garbage", b"\x00\x00\x00\x08garbage!".to_vec()),
            (
                "bad tag",
                vec![0, 0, 0, 10, 0, 175, 0, 0, 0, 1, 0, 1, b'k', 9],
            ),
            ("oversize", vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
        ] {
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            s.write_all(&bytes).await.unwrap();
            let got = read_until_closed(&mut s).await;
            assert_eq!(got.len(), 1, "{what}: {got:?}");
            assert_eq!(got[0].id, MessageId::EVENT_ERROR, "{what}");
            let text = got[0]
                .attrs
                .get_str(attr::ERROR_DESCRIPTION)
                .unwrap()
                .to_string();
            assert!(text.starts_with("malformed frame"), "{what}: {text}");
        }
        // The established client is unaffected.
        let pong = ok.request(Message::new(MessageId::PING)).await.unwrap();
        assert_eq!(pong.id, MessageId::PING);
        assert!(ok.notifications().try_recv().is_err());
        ok.close().await.unwrap();
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

/// On tokio's virtual clock (the server's timers follow it): time moves only when every task
/// is idle, so the deadline is checked exactly, not within a wall-clock window.
#[tokio::test(start_paused = true)]
async fn registration_timeout_closes_silent_connections_only() {
    timeout(LIMIT, async {
        let server = start(demo(|l| l.registration_timeout_secs = 1)).await;
        let started = tokio::time::Instant::now();
        // Registers and then sends nothing at all (an idle media server): its registration
        // timeout must end at registration.
        let mut idle = Client::connect(server.addr).await.unwrap();
        idle.register("emailsrv", ClientType::MediaServer)
            .await
            .unwrap();
        let mut silent = TcpStream::connect(server.addr).await.unwrap();
        let registered = desk(server.addr, "a1", "p1").await;
        // The silent connection is closed at its deadline; by then the idle one's (armed
        // earlier) has passed too.
        assert!(read_until_closed(&mut silent).await.is_empty());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(2),
            "closed after {waited:?} of virtual time"
        );
        for c in [&idle, &registered] {
            let pong = c.request(Message::new(MessageId::PING)).await.unwrap();
            assert_eq!(
                pong.id,
                MessageId::PING,
                "a registered connection is not timed out"
            );
            // And the engine still serves it (not only the connection's own Ping answer).
            let info = c
                .request(
                    Message::new(MessageId::REQUEST_WORKBIN_TYPES_INFO).with(attr::TENANT_ID, 101),
                )
                .await
                .unwrap();
            assert_ne!(info.id, MessageId::EVENT_ERROR, "{info:?}");
        }
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connections_beyond_the_limit_get_an_error_saying_so_and_others_are_unaffected() {
    timeout(LIMIT, async {
        let server = start(demo(|l| l.max_connections = 2)).await;
        let a = desk(server.addr, "a1", "p1").await;
        let b = desk(server.addr, "a2", "p2").await;
        let mut third = TcpStream::connect(server.addr).await.unwrap();
        // It may even have sent its registration already.
        let mut reg = ixn_codec::BytesMut::new();
        Codec::default()
            .encode(
                &Message::new(MessageId::REQUEST_REGISTER_CLIENT)
                    .with(attr::CLIENT_NAME, "desk")
                    .with(attr::CLIENT_TYPE, ClientType::AgentApplication.to_int()),
                &mut reg,
            )
            .unwrap();
        third.write_all(&reg).await.unwrap();
        let got = read_until_closed(&mut third).await;
        assert_eq!(got.len(), 1, "one error, then the close: {got:?}");
        assert_eq!(got[0].id, MessageId::EVENT_ERROR);
        assert_eq!(
            got[0].attrs.get_int(attr::ERROR_CODE),
            Some(ErrorCode::LimitExceeded.to_int())
        );
        let text = got[0].attrs.get_str(attr::ERROR_DESCRIPTION).unwrap();
        assert!(
            text.contains("full") && text.contains("max_connections"),
            "{text}"
        );
        for c in [&a, &b] {
            assert_eq!(
                c.request(Message::new(MessageId::PING)).await.unwrap().id,
                MessageId::PING
            );
        }
        // Once one leaves (closed: the server has dropped its clients), a new connection is
        // accepted; the server frees the place just after the close, so a refusal may come
        // first, and then another try.
        a.close().await.unwrap();
        let c = loop {
            let mut c = Client::connect(server.addr).await.unwrap();
            if c.register("desk", ClientType::AgentApplication)
                .await
                .is_ok()
            {
                break c;
            }
        };
        assert_eq!(
            c.request(Message::new(MessageId::PING)).await.unwrap().id,
            MessageId::PING
        );
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections_register_and_subscribe() {
    timeout(LIMIT, async {
        const N: usize = 1000;
        let cfg =
            Arc::new(Config::validate(ConfigFile::synthetic(N, 10, Limits::default())).unwrap());
        let server = start(cfg).await;
        let addr = server.addr;
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                tokio::spawn(async move {
                    let c = desk(addr, &format!("agent{i}"), &format!("place{i}")).await;
                    subscribe(
                        &c,
                        workbin("Drafts", attr::WORKBIN_AGENT_ID, format!("agent{i}")),
                    )
                    .await;
                    c
                })
            })
            .collect();
        let mut clients = Vec::with_capacity(N);
        for t in tasks {
            clients.push(t.await.unwrap());
        }
        let m = media(addr, "media").await;
        for i in [0usize, 499, 999] {
            let id = format!("IX{i}");
            submit(&m, &id).await;
            place(
                &m,
                &id,
                workbin("Drafts", attr::WORKBIN_AGENT_ID, format!("agent{i}")),
            )
            .await;
            let n = timeout(Duration::from_secs(10), clients[i].next_notification())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                n.attrs
                    .get_list(attr::INTERACTION)
                    .unwrap()
                    .get_str(attr::INTERACTION_ID)
                    .unwrap(),
                id.as_str()
            );
        }
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_is_disconnected_while_others_keep_receiving() {
    timeout(LIMIT, async {
        // The bound is far below the default (10,000) but leaves the reading subscriber room:
        // on a loaded 2-core machine its writer task can fall a few hundred messages behind
        // (seen once with 200), which must not count as not reading.
        let server = start(demo(|l| {
            l.outbound_queue_messages = 2_000;
            l.outbound_queue_bytes = 4 << 20;
        }))
        .await;
        // The stalled one registers and subscribes with raw frames, then never reads again.
        let mut stalled = TcpStream::connect(server.addr).await.unwrap();
        let codec = Codec::default();
        let mut buf = ixn_codec::BytesMut::new();
        for json in [
            r#"{"message":"RequestRegisterClient","ReferenceId":1,"ClientName":"desk","ClientType":"AgentApplication"}"#,
            r#"{"message":"RequestAgentLogin","ReferenceId":2,"TenantId":101,"AgentId":"a2","PlaceId":"p2"}"#,
            r#"{"message":"RequestWorkbinNotifications","ReferenceId":3,"Workbin":{"WorkbinTypeId":"Team","WorkbinGroupId":"Sales"}}"#,
        ] {
            codec.encode(&Message::from_json(json).unwrap(), &mut buf).unwrap();
        }
        stalled.write_all(&buf).await.unwrap();
        let mut reader = desk(server.addr, "a1", "p1").await;
        subscribe(&reader, workbin("Team", attr::WORKBIN_GROUP_ID, "Sales".into())).await;
        let m = media(server.addr, "emailsrv").await;
        submit(&m, "IXS").await;
        const MOVES: usize = 20_000;
        let team = workbin("Team", attr::WORKBIN_GROUP_ID, "Sales".into());
        let drafts = workbin("Drafts", attr::WORKBIN_AGENT_ID, "a3".into());
        let started = Instant::now();
        let count = tokio::spawn(async move {
            let mut n = 0usize;
            while n < MOVES {
                let msg = timeout(Duration::from_secs(20), reader.next_notification()).await.unwrap().unwrap();
                let op = msg.attrs.get_int(attr::WORKBIN_CONTENT_OPERATION).unwrap();
                let want = if n.is_multiple_of(2) { WorkbinContentOperation::PlacedIn } else { WorkbinContentOperation::TakenOut };
                assert_eq!(op, want.to_int(), "notification {n} out of order");
                n += 1;
            }
            n
        });
        for i in 0..MOVES {
            place(&m, "IXS", if i.is_multiple_of(2) { team.clone() } else { drafts.clone() }).await;
        }
        assert_eq!(count.await.unwrap(), MOVES, "the reading subscriber got every notification");
        eprintln!("{MOVES} moves with a stalled subscriber in {:?}", started.elapsed());
        // The stalled connection was closed by the server: draining it ends in end-of-stream.
        let got = read_until_closed(&mut stalled).await;
        assert!(got.len() < MOVES, "the stalled subscriber was cut off, got {}", got.len());
        server.shutdown().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_delivers_queued_notifications() {
    timeout(LIMIT, async {
        let server = start(demo(|_| {})).await;
        let mut sub = desk(server.addr, "a1", "p1").await;
        subscribe(&sub, workbin("Drafts", attr::WORKBIN_AGENT_ID, "a1".into())).await;
        let m = media(server.addr, "emailsrv").await;
        const N: usize = 2000;
        for i in 0..N {
            let id = format!("IXG{i}");
            submit(&m, &id).await;
            place(
                &m,
                &id,
                workbin("Drafts", attr::WORKBIN_AGENT_ID, "a1".into()),
            )
            .await;
        }
        // Every place was acknowledged, so its notification is queued; now stop the server.
        server.shutdown().await.unwrap();
        let mut got = 0;
        while let Some(n) = timeout(Duration::from_secs(10), sub.next_notification())
            .await
            .unwrap()
        {
            assert_eq!(n.id, MessageId::EVENT_WORKBIN_CONTENT_CHANGED);
            got += 1;
        }
        assert_eq!(
            got, N,
            "every queued notification was delivered before the close"
        );
        let err = m.request(Message::new(MessageId::PING)).await.unwrap_err();
        assert!(
            matches!(err, ixn_client::Error::Closed | ixn_client::Error::Codec(_)),
            "{err}"
        );
        let _ = ErrorCode::Internal;
    })
    .await
    .unwrap();
}

/// A store whose disk is gone.
struct FailingStore;

impl ixn_server::Store for FailingStore {
    fn append(&mut self, _: &[Vec<Message>]) -> Result<(), ixn_store::Error> {
        Err(ixn_store::Error::Io {
            path: "/dev/full".into(),
            source: std::io::Error::other("no space left on device"),
        })
    }
    fn compact(&mut self, _: &[Message]) -> Result<(), ixn_store::Error> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_acknowledges_nothing_more_and_stops_the_server() {
    timeout(LIMIT, async {
        let mut engine = ixn_core::Engine::new(demo(|_| {}), 1);
        engine.record_changes(true);
        let server = ixn_server::start_engine(
            "127.0.0.1:0".parse().unwrap(),
            engine,
            Some(Box::new(FailingStore)),
            ixn_server::Options::default(),
        )
        .await
        .unwrap();
        let m = media(server.addr, "emailsrv").await; // registering stores nothing: acknowledged
        let submit = Message::new(MessageId::REQUEST_SUBMIT)
            .with(attr::TENANT_ID, 101)
            .with(attr::MEDIA_TYPE, "email")
            .with(attr::INTERACTION_TYPE, "Inbound")
            .with(attr::QUEUE, "Inbound");
        let err = m.request(submit).await.unwrap_err();
        assert!(
            matches!(err, ixn_client::Error::Closed),
            "the change was never acknowledged: {err}"
        );
        let stopped = server.shutdown().await;
        assert!(
            matches!(stopped, Err(ixn_server::Error::StoreFailed)),
            "{stopped:?}"
        );
    })
    .await
    .unwrap();
}

/// Pings are answered by the connection itself when nothing of it is at the engine; pipelined
/// with requests that go to the engine, every reply still comes in request order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_pings_and_requests_are_answered_in_order() {
    let server = start(demo(|_| {})).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let codec = Codec::default();
    let ping = |r: i32| Message::new(MessageId::PING).with(attr::REFERENCE_ID, r);
    let mut expected = Vec::new();
    let mut buf = ixn_codec::BytesMut::new();
    let mut r = 0;
    // Pings first (answered locally), a registration (engine), pings behind it (must wait for
    // it), a content request that fails (engine), more pings, and so on, in one write.
    for round in 0..50 {
        for _ in 0..3 {
            r += 1;
            codec.encode(&ping(r), &mut buf).unwrap();
            expected.push((MessageId::PING, r));
        }
        r += 1;
        let req = if round == 0 {
            Message::new(MessageId::REQUEST_REGISTER_CLIENT)
                .with(attr::CLIENT_NAME, "desk")
                .with(attr::CLIENT_TYPE, ClientType::AgentApplication.to_int())
        } else {
            Message::new(MessageId::REQUEST_GET_WORKBIN_CONTENT).with(
                attr::WORKBIN,
                KvList::new().with(attr::WORKBIN_TYPE_ID, "Drafts"),
            )
        };
        codec
            .encode(&req.with(attr::REFERENCE_ID, r), &mut buf)
            .unwrap();
        let reply = if round == 0 {
            MessageId::EVENT_ACK
        } else {
            MessageId::EVENT_ERROR // not logged in
        };
        expected.push((reply, r));
    }
    s.write_all(&buf).await.unwrap();
    let mut got = Vec::new();
    let mut rbuf = ixn_codec::BytesMut::new();
    timeout(LIMIT, async {
        while got.len() < expected.len() {
            s.read_buf(&mut rbuf).await.unwrap();
            while let Some(m) = codec.decode(&mut rbuf).unwrap() {
                got.push((m.id, m.reference_id().unwrap()));
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got, expected);
    server.shutdown().await.unwrap();
}
