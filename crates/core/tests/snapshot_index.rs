//! A snapshot whose condition names one queue or one workbin instance reads only what that
//! queue or workbin holds (an index); it must select exactly what a scan of every interaction
//! selects. Interactions are moved about at random (queues, workbins, pulled, stopped) so that
//! the indexes follow every change, then each pinned condition is compared with the same
//! condition written so that nothing can be pinned (`NOT NOT (...)`), in every order a pinned
//! read may stop early in (none, ReceivedAt either way) and another, keeping few or many.
//! Interactions arrive twenty a second, so that ReceivedAt ties are broken by id.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use ixn_codec::{KvList, Message, MessageId, Value, attr};
use ixn_core::{ConnId, Engine, Output};
use std::sync::Arc;
use std::time::SystemTime;

struct T {
    engine: Engine,
    out: Vec<Output>,
    now: SystemTime,
}

impl T {
    fn send(&mut self, conn: u64, msg: Message) -> Message {
        self.out.clear();
        self.engine
            .handle(self.now, ConnId(conn), &msg, &mut self.out);
        self.out[0].message().unwrap().clone()
    }

    /// Every id the snapshot of `condition` in `order` (at most `max`) holds, in order.
    fn snapshot(&mut self, condition: &str, order: &str, max: i32) -> Vec<String> {
        let taken = self.send(
            1,
            Message::new(MessageId::REQUEST_TAKE_SNAPSHOT)
                .with(attr::CONDITION, condition)
                .with(attr::ORDER, order)
                .with(attr::SNAPSHOT_MAX_INTERACTIONS, max),
        );
        assert_eq!(taken.id, MessageId::EVENT_SNAPSHOT_TAKEN, "{taken:?}");
        let id = taken.attrs.get_str(attr::SNAPSHOT_ID).unwrap().clone();
        let page = self.send(
            1,
            Message::new(MessageId::REQUEST_GET_SNAPSHOT_INTERACTIONS)
                .with(attr::SNAPSHOT_ID, id.clone())
                .with(attr::START_FROM, 0)
                .with(attr::NUMBER_OF_INTERACTIONS, 500),
        );
        self.send(
            1,
            Message::new(MessageId::REQUEST_RELEASE_SNAPSHOT).with(attr::SNAPSHOT_ID, id),
        );
        match page.attrs.get(attr::INTERACTIONS) {
            Some(Value::List(l)) => l.iter().map(|(k, _)| k.to_string()).collect(),
            other => panic!("{other:?}"),
        }
    }
}

fn drafts(agent: &str) -> KvList {
    KvList::new()
        .with(attr::WORKBIN_TYPE_ID, "Drafts")
        .with(attr::WORKBIN_AGENT_ID, agent)
}

#[test]
fn pinned_snapshots_select_what_a_full_scan_selects() {
    let config =
        Arc::new(ixn_config::Config::from_toml_str(ixn_config::DEMO_TOML, "demo.toml").unwrap());
    let mut t = T {
        engine: Engine::new(config, 7),
        out: Vec::new(),
        now: SystemTime::UNIX_EPOCH,
    };
    t.send(
        1,
        Message::new(MessageId::REQUEST_REGISTER_CLIENT)
            .with(attr::CLIENT_NAME, "emailsrv")
            .with(attr::CLIENT_TYPE, 2),
    );
    // A small deterministic pseudo-random walk.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let queues = ["Inbound", "Outbound"];
    let agents = ["a1", "a2", "a3"];
    for i in 0..300u64 {
        // Twenty a second, ids not in arrival order: ties on ReceivedAt are broken by id.
        t.now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i / 20);
        let id = format!("IX-{:03}", (i * 7) % 300);
        let r = t.send(
            1,
            Message::new(MessageId::REQUEST_SUBMIT)
                .with(attr::TENANT_ID, 101)
                .with(attr::MEDIA_TYPE, if i % 3 == 0 { "chat" } else { "email" })
                .with(attr::INTERACTION_TYPE, "Inbound")
                .with(attr::QUEUE, queues[next(2) as usize])
                .with(attr::INTERACTION_ID, id.as_str()),
        );
        assert_eq!(r.id, MessageId::EVENT_ACK, "{r:?}");
    }
    for _ in 0..1000 {
        let id = format!("IX-{:03}", next(300));
        let msg = match next(10) {
            0..=4 => Message::new(MessageId::REQUEST_PLACE_IN_WORKBIN)
                .with(attr::INTERACTION_ID, id.as_str())
                .with(attr::WORKBIN, drafts(agents[next(3) as usize])),
            5..=8 => Message::new(MessageId::REQUEST_PLACE_IN_QUEUE)
                .with(attr::INTERACTION_ID, id.as_str())
                .with(attr::QUEUE, queues[next(2) as usize]),
            _ => Message::new(MessageId::REQUEST_STOP_PROCESSING)
                .with(attr::INTERACTION_ID, id.as_str()),
        };
        t.send(1, msg); // UnknownInteraction once stopped: fine
    }
    let mut seen = 0;
    for pinned in [
        "Queue = 'Inbound'".to_owned(),
        "'Outbound' = Queue AND MediaType = 'email'".to_owned(),
        "Queue = 'Nowhere'".to_owned(),
        "WorkbinTypeId = 'Drafts' AND AgentId = 'a1'".to_owned(),
        "MediaType = 'chat' AND AgentId = 'a2' AND WorkbinTypeId = 'Drafts'".to_owned(),
        "WorkbinTypeId = 'Drafts' AND AgentGroupId = 'Sales'".to_owned(),
        "WorkbinTypeId = 'Drafts' AND AgentId = 'nobody'".to_owned(),
    ] {
        let scanned = format!("NOT NOT ({pinned})");
        for order in ["", "ReceivedAt", "ReceivedAt DESC", "InteractionId DESC"] {
            for max in [1, 4, 500] {
                let a = t.snapshot(&pinned, order, max);
                let b = t.snapshot(&scanned, order, max);
                assert_eq!(a, b, "{pinned} ordered by {order:?}, at most {max}");
                if max == 500 {
                    seen += a.len();
                }
            }
        }
    }
    assert!(
        seen > 400,
        "the walk left interactions in queues and workbins: {seen}"
    );
}
