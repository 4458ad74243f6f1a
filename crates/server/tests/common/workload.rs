//! The crash and failover tests' workload: agents placing, queueing, changing, pulling and
//! stopping their own interactions while every acknowledged state is recorded, and the check
//! that a (re)started server holds every acknowledged state.

use ixn_client::Client;
use ixn_codec::{KvList, Message, MessageId, attr};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where an interaction is and its UserData version, as the test observes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) loc: String,
    pub(crate) v: i32,
}

/// One agent's record.
#[derive(Debug, Default)]
pub(crate) struct Track {
    /// Last acknowledged state (None: stopped).
    pub(crate) acked: HashMap<String, Option<State>>,
    /// The one request in flight: its interaction and the state it would leave.
    pub(crate) pending: Option<(String, Option<State>)>,
    pub(crate) next: usize,
    pub(crate) ops: usize,
}

/// xorshift: the same seed gives the same requests.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// RequestSubmit of an e-mail into Inbound with the given id and UserData version 0.
pub(crate) fn submit(id: impl Into<String>) -> Message {
    Message::new(MessageId::REQUEST_SUBMIT)
        .with(attr::TENANT_ID, 101)
        .with(attr::MEDIA_TYPE, "email")
        .with(attr::INTERACTION_TYPE, "Inbound")
        .with(attr::QUEUE, "Inbound")
        .with(attr::INTERACTION_ID, id.into())
        .with(attr::USER_DATA, KvList::new().with("v", 0))
}

/// The agent's Drafts workbin.
pub(crate) fn drafts(agent: &str) -> KvList {
    KvList::new()
        .with(attr::WORKBIN_TYPE_ID, "Drafts")
        .with(attr::WORKBIN_AGENT_ID, agent.to_owned())
}

/// The next request of an agent, its interaction, and the state it leaves if acknowledged.
pub(crate) fn next_request(
    t: &mut Track,
    agent: &str,
    rng: &mut Rng,
) -> (Message, String, Option<State>) {
    let live: Vec<(String, State)> = t
        .acked
        .iter()
        .filter_map(|(k, v)| v.clone().map(|s| (k.clone(), s)))
        .collect();
    if live.len() < 3 || rng.below(6) == 0 {
        t.next += 1;
        let id = format!("{agent}-{}", t.next);
        let state = State {
            loc: "queue".into(),
            v: 0,
        };
        return (submit(id.clone()), id, Some(state));
    }
    let (id, s) = live[rng.below(live.len() as u64) as usize].clone();
    let base = |m: MessageId| Message::new(m).with(attr::INTERACTION_ID, id.clone());
    let at = |loc: &str| {
        Some(State {
            loc: loc.into(),
            ..s.clone()
        })
    };
    match rng.below(5) {
        0 => (
            base(MessageId::REQUEST_PLACE_IN_WORKBIN).with(attr::WORKBIN, drafts(agent)),
            id.clone(),
            at("workbin"),
        ),
        1 => (
            base(MessageId::REQUEST_PLACE_IN_QUEUE).with(attr::QUEUE, "Inbound"),
            id.clone(),
            at("queue"),
        ),
        2 => (
            base(MessageId::REQUEST_CHANGE_PROPERTIES)
                .with(attr::ADDED_PROPERTIES, KvList::new().with("v", s.v + 1)),
            id.clone(),
            Some(State {
                v: s.v + 1,
                ..s.clone()
            }),
        ),
        3 => (
            Message::new(MessageId::REQUEST_PULL)
                .with(attr::VIEW_ID, "_system_")
                .with(
                    attr::PULL_PARAMETERS,
                    KvList::new().with(attr::PULL_ID, id.clone()),
                ),
            id.clone(),
            at("agent"),
        ),
        _ => (base(MessageId::REQUEST_STOP_PROCESSING), id, None),
    }
}

/// The state a server holds for `id` (None: no such interaction).
pub(crate) async fn observe(c: &Client, id: &str) -> Option<State> {
    let reply = c
        .request(
            Message::new(MessageId::REQUEST_GET_INTERACTION_PROPERTIES)
                .with(attr::INTERACTION_ID, id.to_owned()),
        )
        .await
        .unwrap();
    if reply.id == MessageId::EVENT_ERROR {
        assert_eq!(reply.attrs.get_int(attr::ERROR_CODE), Some(12), "{reply:?}");
        return None;
    }
    let p = reply.attrs.get_list(attr::INTERACTION).unwrap();
    let loc = match p.get_str(attr::INTERACTION_STATE).map(|s| &**s) {
        Some("Queued") => "queue",
        Some("InWorkbin") => "workbin",
        Some("Handling") => "agent",
        other => panic!("{id}: state {other:?}"),
    };
    let v = p
        .get_list(attr::USER_DATA)
        .and_then(|u| u.get_int("v"))
        .unwrap();
    Some(State { loc: loc.into(), v })
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// Interactions looked at.
    pub(crate) interactions: usize,
    /// Requests in flight at the crash that turned out applied.
    pub(crate) in_flight_applied: usize,
}

/// Checks every acknowledged state of `tracks` on the server `m` is connected to: each is
/// there, except that the one request in flight may or may not have happened (never half).
/// Records what the in-flight requests turned out to be; `context` goes in failure messages.
pub(crate) async fn check(m: &Client, tracks: &[Arc<Mutex<Track>>], context: &str) -> Checked {
    let mut found = Checked::default();
    for t in tracks {
        let (acked, pending) = {
            let t = t.lock().unwrap();
            (t.acked.clone(), t.pending.clone())
        };
        let mut settled = acked.clone();
        for (id, want) in &acked {
            let got = observe(m, id).await;
            found.interactions += 1;
            match &pending {
                Some((pid, after)) if pid == id && &got == after && &got != want => {
                    found.in_flight_applied += 1;
                    settled.insert(id.clone(), got);
                }
                _ => assert_eq!(&got, want, "{context}: {id} lost an acknowledged change"),
            }
        }
        // A submit in flight: either there, as submitted, or not at all.
        if let Some((pid, after)) = &pending
            && !acked.contains_key(pid)
        {
            let got = observe(m, pid).await;
            assert!(
                got.is_none() || &got == after,
                "{context}: {pid} half-submitted: {got:?}"
            );
            if got.is_some() {
                settled.insert(pid.clone(), got);
            }
        }
        let mut t = t.lock().unwrap();
        t.acked = settled;
        t.pending = None;
    }
    found
}
