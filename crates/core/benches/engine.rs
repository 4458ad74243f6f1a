//! Engine benchmarks (no codec, no I/O: pre-built messages in, outputs out).
//!
//! - `login_subscribe`: register, log in, subscribe, close, on a fresh connection each time.
//! - `place_in_workbin/{1,10,1000}`: a media server moves an interaction between two group
//!   workbins; one of them has N subscribers, so every request builds one notification for N.
//! - `content_1000`: RequestGetWorkbinContent of a workbin holding 1,000 interactions.
//! - `mixed/{empty,populated}`: the same cycle of eight requests (place, change properties,
//!   get properties, content, subscribe, cancel, pull, back to the queue) against an engine
//!   holding only its actors, and against one with 10,000 logged-in agents, 100,000
//!   interactions and 50,000 subscriptions. The ratio of the two is the scaling figure.
//!
//! `cargo bench -p ixn-core` (add `-- --quick` for a short run).

// Bench code: a panic is how a broken setup shows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ixn_codec::{KvList, Message, MessageId, attr};
use ixn_config::{Config, ConfigFile, Limits, SYNTHETIC_AGENT_WORKBINS};
use ixn_core::{ConnId, Engine, Output};
use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

const NOW: SystemTime = SystemTime::UNIX_EPOCH;

struct Bench {
    engine: Engine,
    out: Vec<Output>,
    next_ref: i32,
}

impl Bench {
    fn new(agents: usize, groups: usize) -> Self {
        let limits = Limits {
            max_interactions_per_workbin: 1_000_000,
            max_interactions: 2_000_000,
            max_stored_bytes: 8 << 30,
            ..Limits::default()
        };
        let cfg = Config::validate(ConfigFile::synthetic(agents, groups, limits)).unwrap();
        Self {
            engine: Engine::new(Arc::new(cfg), 1),
            out: Vec::with_capacity(2048),
            next_ref: 1,
        }
    }

    /// Sends and returns the reply (first output), checking it is not an error.
    fn send(&mut self, conn: u64, msg: Message) -> Message {
        self.out.clear();
        self.engine.handle(NOW, ConnId(conn), &msg, &mut self.out);
        // A snapshot taken a slice at a time: its answer comes from `work`.
        while self.out.is_empty() && self.engine.has_work() {
            self.engine.work(NOW, &mut self.out);
        }
        let reply = self.out[0].message().unwrap();
        assert_ne!(reply.id, MessageId::EVENT_ERROR, "{msg:?} -> {reply:?}");
        reply
    }

    fn req(&mut self, id: MessageId) -> Message {
        self.next_ref = self.next_ref.wrapping_add(1);
        Message::new(id).with(attr::REFERENCE_ID, self.next_ref)
    }

    fn register(&mut self, conn: u64, app: &str, kind: i32) {
        let m = self
            .req(MessageId::REQUEST_REGISTER_CLIENT)
            .with(attr::CLIENT_NAME, app)
            .with(attr::CLIENT_TYPE, kind);
        self.send(conn, m);
    }

    fn agent(&mut self, conn: u64, i: usize) {
        self.register(conn, "desk", 1);
        let m = login(self.req(MessageId::REQUEST_AGENT_LOGIN), i);
        self.send(conn, m);
    }

    fn subscribe(&mut self, conn: u64, wb: KvList) {
        let m = self
            .req(MessageId::REQUEST_WORKBIN_NOTIFICATIONS)
            .with(attr::WORKBIN, wb);
        self.send(conn, m);
    }

    fn submit(&mut self, conn: u64) -> String {
        let m = self
            .req(MessageId::REQUEST_SUBMIT)
            .with(attr::TENANT_ID, 101)
            .with(attr::MEDIA_TYPE, "email")
            .with(attr::INTERACTION_TYPE, "Inbound")
            .with(attr::QUEUE, "Inbound")
            .with(
                attr::USER_DATA,
                KvList::new()
                    .with("Subject", "Invoice 42")
                    .with("Priority", 3),
            );
        self.send(conn, m)
            .attrs
            .get_str(attr::INTERACTION_ID)
            .unwrap()
            .to_string()
    }

    fn place(&mut self, conn: u64, id: &str, wb: KvList) {
        let m = place(self.req(MessageId::REQUEST_PLACE_IN_WORKBIN), id, wb);
        self.send(conn, m);
    }
}

fn login(m: Message, i: usize) -> Message {
    m.with(attr::TENANT_ID, 101)
        .with(attr::AGENT_ID, format!("agent{i}"))
        .with(attr::PLACE_ID, format!("place{i}"))
}

fn place(m: Message, id: &str, wb: KvList) -> Message {
    m.with(attr::INTERACTION_ID, id).with(attr::WORKBIN, wb)
}

fn agent_bin(ty: &str, i: usize) -> KvList {
    KvList::new()
        .with(attr::WORKBIN_TYPE_ID, ty)
        .with(attr::WORKBIN_AGENT_ID, format!("agent{i}"))
}

fn team(g: usize) -> KvList {
    KvList::new()
        .with(attr::WORKBIN_TYPE_ID, "Team")
        .with(attr::WORKBIN_GROUP_ID, format!("group{g}"))
}

const MEDIA: u64 = 1_000_000;

fn login_subscribe(c: &mut Criterion) {
    let mut b = Bench::new(10_000, 100);
    let mut i = 0usize;
    let mut conn = 0u64;
    let mut g = c.benchmark_group("login_subscribe");
    g.throughput(Throughput::Elements(1));
    g.bench_function("register_login_subscribe_close", |bench| {
        bench.iter(|| {
            conn += 1;
            i = (i + 1) % 10_000;
            b.agent(conn, i);
            b.subscribe(conn, agent_bin("Drafts", i));
            b.engine.close(ConnId(conn), &mut b.out);
        })
    });
    g.finish();
}

fn place_in_workbin(c: &mut Criterion) {
    let mut g = c.benchmark_group("place_in_workbin");
    g.throughput(Throughput::Elements(1));
    for subscribers in [1usize, 10, 1000] {
        // Group 0 holds the subscribers; group 1 has none.
        let mut b = Bench::new(2 * subscribers, 2);
        for s in 0..subscribers {
            let agent = 2 * s; // even agents are in group0
            b.agent(agent as u64, agent);
            b.subscribe(agent as u64, team(0));
        }
        b.register(MEDIA, "media", 2);
        let id = b.submit(MEDIA);
        let to_a = place(
            Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN).with(attr::REFERENCE_ID, 1),
            &id,
            team(0),
        );
        let to_b = place(
            Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN).with(attr::REFERENCE_ID, 2),
            &id,
            team(1),
        );
        let mut flip = false;
        let mut ran = false;
        g.bench_function(BenchmarkId::from_parameter(subscribers), |bench| {
            bench.iter(|| {
                ran = true;
                flip = !flip;
                b.out.clear();
                b.engine.handle(
                    NOW,
                    ConnId(MEDIA),
                    if flip { &to_a } else { &to_b },
                    &mut b.out,
                );
                black_box(&b.out);
            })
        });
        // (Not when a filter left this benchmark out.)
        assert!(
            !ran || b.out.len() == 1 + subscribers,
            "every place notifies every subscriber"
        );
    }
    g.finish();
}

fn content_1000(c: &mut Criterion) {
    let mut b = Bench::new(10, 1);
    b.agent(0, 0);
    b.register(MEDIA, "media", 2);
    for _ in 0..1000 {
        let id = b.submit(MEDIA);
        b.place(MEDIA, &id, agent_bin("Drafts", 0));
    }
    let req = Message::new(MessageId::REQUEST_GET_WORKBIN_CONTENT)
        .with(attr::REFERENCE_ID, 9)
        .with(attr::WORKBIN, agent_bin("Drafts", 0));
    let mut g = c.benchmark_group("content");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1000_interactions", |bench| {
        bench.iter(|| {
            b.out.clear();
            b.engine.handle(NOW, ConnId(0), &req, &mut b.out);
            black_box(&b.out);
        })
    });
    // Checked on a reply of its own (a filter may have left the benchmark out).
    b.out.clear();
    b.engine.handle(NOW, ConnId(0), &req, &mut b.out);
    let reply = b.out[0].message().unwrap();
    assert_eq!(
        reply.attrs.get_list(attr::INTERACTIONS).unwrap().len(),
        1000
    );
    g.finish();
}

/// An engine with `agents` logged-in agents each subscribed to its five agent workbins, and
/// `interactions` interactions spread over the agents' Drafts.
fn populated(agents: usize, interactions: usize) -> Bench {
    let mut b = Bench::new(agents.max(2), (agents / 100).max(1));
    for i in 0..agents {
        b.agent(i as u64, i);
        for ty in SYNTHETIC_AGENT_WORKBINS {
            b.subscribe(i as u64, agent_bin(ty, i));
        }
    }
    b.register(MEDIA, "media", 2);
    for n in 0..interactions {
        let id = b.submit(MEDIA);
        b.place(MEDIA, &id, agent_bin("Drafts", n % agents.max(1)));
    }
    b
}

/// The mixed cycle: agent0 (conn 0) works on one interaction of its own.
fn mixed_cycle(b: &mut Bench) -> Vec<(u64, Message)> {
    let id = b.submit(MEDIA);
    let r = |id: MessageId, n: i32| Message::new(id).with(attr::REFERENCE_ID, n);
    vec![
        (
            MEDIA,
            place(
                r(MessageId::REQUEST_PLACE_IN_WORKBIN, 1),
                &id,
                agent_bin("Review", 0),
            ),
        ),
        (
            MEDIA,
            r(MessageId::REQUEST_CHANGE_PROPERTIES, 2)
                .with(attr::INTERACTION_ID, id.as_str())
                .with(attr::ADDED_PROPERTIES, KvList::new().with("Step", 1)),
        ),
        (
            0,
            r(MessageId::REQUEST_GET_INTERACTION_PROPERTIES, 3)
                .with(attr::INTERACTION_ID, id.as_str()),
        ),
        (
            0,
            r(MessageId::REQUEST_GET_WORKBIN_CONTENT, 4)
                .with(attr::WORKBIN, agent_bin("Review", 0)),
        ),
        (
            0,
            r(MessageId::REQUEST_WORKBIN_NOTIFICATIONS, 5).with(attr::WORKBIN, team(0)),
        ),
        (
            0,
            r(MessageId::REQUEST_CANCEL_WORKBIN_NOTIFICATIONS, 6).with(attr::WORKBIN, team(0)),
        ),
        (
            0,
            r(MessageId::REQUEST_PULL, 7)
                .with(attr::VIEW_ID, "_system_")
                .with(
                    attr::PULL_PARAMETERS,
                    KvList::new().with(attr::PULL_ID, id.as_str()),
                ),
        ),
        (
            MEDIA,
            r(MessageId::REQUEST_PLACE_IN_QUEUE, 8)
                .with(attr::INTERACTION_ID, id.as_str())
                .with(attr::QUEUE, "Inbound"),
        ),
    ]
}

fn mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed");
    g.throughput(Throughput::Elements(8));
    for (name, agents, interactions) in [("empty", 1usize, 0usize), ("populated", 10_000, 100_000)]
    {
        let mut b = populated(agents, interactions);
        let stats = b.engine.stats();
        assert_eq!(stats.subscriptions, agents * 5);
        assert_eq!(stats.interactions, interactions);
        let cycle = mixed_cycle(&mut b);
        g.bench_function(name, |bench| {
            bench.iter(|| {
                for (conn, m) in &cycle {
                    b.out.clear();
                    b.engine.handle(NOW, ConnId(*conn), m, &mut b.out);
                    debug_assert_ne!(b.out[0].message().unwrap().id, MessageId::EVENT_ERROR);
                }
                black_box(&b.out);
            })
        });
        for (conn, m) in &cycle {
            b.out.clear();
            b.engine.handle(NOW, ConnId(*conn), m, &mut b.out);
            assert_ne!(
                b.out[0].message().unwrap().id,
                MessageId::EVENT_ERROR,
                "{m:?}"
            );
        }
    }
    g.finish();
}

/// Snapshots over 100,000 interactions (`IXN_BENCH_SNAPSHOT_N` to change) in the Drafts of 100
/// agents: a condition naming one agent's workbin, one that must read every interaction (both at
/// most 500, ordered), and a page of 100.
fn snapshot(c: &mut Criterion) {
    let n: usize = std::env::var("IXN_BENCH_SNAPSHOT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut b = populated(100, n);
    let mut g = c.benchmark_group(format!("snapshot_{}k", n / 1000));
    g.sample_size(20);
    for (name, condition) in [
        (
            "one_workbin",
            "WorkbinTypeId = 'Drafts' AND AgentId = 'agent7'",
        ),
        (
            "full_scan",
            "MediaType = 'email' AND UserData.Subject LIKE '%42' AND UserData.Priority >= 3",
        ),
    ] {
        g.bench_function(name, |bench| {
            bench.iter(|| {
                let take = b
                    .req(MessageId::REQUEST_TAKE_SNAPSHOT)
                    .with(attr::CONDITION, condition)
                    .with(attr::ORDER, "ReceivedAt DESC");
                let taken = b.send(MEDIA, take);
                let id = taken.attrs.get_str(attr::SNAPSHOT_ID).unwrap().clone();
                let release = b
                    .req(MessageId::REQUEST_RELEASE_SNAPSHOT)
                    .with(attr::SNAPSHOT_ID, id);
                black_box(b.send(MEDIA, release));
            });
        });
    }
    let take = b
        .req(MessageId::REQUEST_TAKE_SNAPSHOT)
        .with(attr::CONDITION, "MediaType = 'email'");
    let id = b
        .send(MEDIA, take)
        .attrs
        .get_str(attr::SNAPSHOT_ID)
        .unwrap()
        .clone();
    g.bench_function("page_of_100", |bench| {
        bench.iter(|| {
            let page = b
                .req(MessageId::REQUEST_GET_SNAPSHOT_INTERACTIONS)
                .with(attr::SNAPSHOT_ID, id.clone())
                .with(attr::START_FROM, 200)
                .with(attr::NUMBER_OF_INTERACTIONS, 100);
            black_box(b.send(MEDIA, page));
        });
    });
    g.finish();
}

criterion_group!(
    benches,
    login_subscribe,
    place_in_workbin,
    content_1000,
    mixed,
    snapshot
);
criterion_main!(benches);
