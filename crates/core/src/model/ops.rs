//! The operations a sequence is made of: each indexes small pools of valid and invalid names
//! (the conformance configuration's, and a few that do not exist), so that random bytes or a
//! random strategy make requests that mean something.

pub(crate) const APPS: [(&str, &str); 3] = [
    ("desk", "AgentApplication"),
    ("emailsrv", "MediaServer"),
    ("rogue", "AgentApplication"),
];
pub(crate) const AGENTS: [&str; 5] = ["a1", "a2", "a3", "sup1", "ghost"];
pub(crate) const PLACES: [&str; 5] = ["p1", "p2", "p3", "p4", "nowhere"];
/// Pool of supplied interaction ids: pool entries 0..3 are supplied, 3 means "let the server
/// generate one"; ops that name an interaction pick among the supplied and generated ones.
pub(crate) const IX_POOL: u8 = 5;
/// Workbin selections: (type, owner key, owner).
pub(crate) const WBS: [(&str, Option<(&str, &str)>); 14] = [
    ("Drafts", Some(("WorkbinAgentId", "a1"))),
    ("Drafts", Some(("WorkbinAgentId", "a2"))),
    ("Drafts", Some(("WorkbinAgentId", "a3"))),
    ("Drafts", None),
    ("Team", Some(("WorkbinGroupId", "Sales"))),
    ("Team", Some(("WorkbinGroupId", "Support"))),
    ("Desk", Some(("WorkbinPlaceId", "p1"))),
    ("Desk", None),
    ("Floor", Some(("WorkbinPlaceGroupId", "Floor1"))),
    ("Nope", Some(("WorkbinAgentId", "a1"))),
    ("Drafts", Some(("WorkbinPlaceId", "p1"))),
    ("Drafts", Some(("WorkbinAgentId", "ghost"))),
    ("Team", None),
    ("Review", Some(("WorkbinAgentId", "a2"))),
];
pub(crate) const WB_POOL: u8 = WBS.len() as u8;

/// Connections in play.
pub const CONNS: u8 = 4;

/// One step of a sequence. Arguments index small pools of valid and invalid names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// RequestRegisterClient with application `app` (desk, emailsrv, rogue).
    Register { c: u8, app: u8 },
    /// RequestUnregisterClient.
    Unregister { c: u8 },
    /// RequestAgentLogin.
    Login { c: u8, agent: u8, place: u8 },
    /// RequestAgentLogout.
    Logout { c: u8 },
    /// RequestGetWorkbinContent.
    Content { c: u8, wb: u8 },
    /// RequestWorkbinNotifications.
    Subscribe { c: u8, wb: u8, props: bool },
    /// RequestCancelWorkbinNotifications.
    Cancel { c: u8, wb: u8 },
    /// RequestSubmit with a supplied id from the pool, or a generated one.
    Submit { c: u8, ix: u8 },
    /// RequestPlaceInWorkbin.
    Place { c: u8, ix: u8, wb: u8 },
    /// RequestPlaceInQueue.
    Queue { c: u8, ix: u8 },
    /// RequestPull.
    Pull { c: u8, ix: u8 },
    /// RequestStopProcessing.
    Stop { c: u8, ix: u8 },
    /// RequestChangeProperties.
    Change { c: u8, ix: u8 },
    /// RequestGetInteractionProperties.
    Props { c: u8, ix: u8 },
    /// Ping.
    Ping { c: u8 },
    /// A request without its required attribute, or an unknown message id.
    Bad { c: u8, unknown_id: bool },
    /// The client closes its connection.
    Disconnect { c: u8 },
    /// RequestTakeSnapshot: condition `a % 5` of [`CONDITIONS`] (the last does not parse), at
    /// most 2 interactions when `(a / 5) % 2 == 1`, locking them when `a >= 128`.
    Snap { c: u8, a: u8 },
    /// RequestGetSnapshotInteractions of the client's latest snapshot, from 0, 100 of them.
    Page { c: u8 },
    /// RequestReleaseSnapshot of the client's latest snapshot.
    Release { c: u8 },
    /// RequestLockInteraction, with the client's latest snapshot when `snap`.
    Lock { c: u8, ix: u8, snap: bool },
    /// RequestUnlockInteraction.
    Unlock { c: u8, ix: u8 },
    /// RequestMoveInteractions of the client's latest snapshot: to workbin selection `to`, or
    /// to the queue Inbound when `to` is [`WB_POOL`].
    MoveAll { c: u8, to: u8 },
}

/// The conditions snapshots are taken with: all, not queued, one queue (the queue index),
/// one workbin instance (the workbin's content), and one that does not parse.
pub(crate) const CONDITIONS: [&str; 5] = [
    "MediaType = 'email'",
    "InteractionState = 'InWorkbin' OR InteractionState = 'Handling'",
    "Queue = 'Inbound'",
    "WorkbinTypeId = 'Drafts' AND AgentId = 'a1'",
    "MediaType = ",
];

const KINDS: u8 = 23;

impl Op {
    /// Decodes ops from raw bytes (3 bytes each), for the fuzzer.
    pub fn from_bytes(data: &[u8]) -> Vec<Self> {
        data.chunks_exact(3)
            .map(|b| {
                let [k, c, a] = [b.first(), b.get(1), b.get(2)].map(|x| x.copied().unwrap_or(0));
                Self::from_parts(k, c, a)
            })
            .collect()
    }

    /// An op from a kind, a connection and an argument byte (all taken modulo their ranges).
    pub fn from_parts(kind: u8, c: u8, a: u8) -> Self {
        let c = c % CONNS;
        let ix = a % IX_POOL;
        let wb = a % WB_POOL;
        match kind % KINDS {
            0 => Self::Register { c, app: a % 3 },
            1 => Self::Unregister { c },
            2 => Self::Login {
                c,
                agent: a % 5,
                place: (a / 5) % 5,
            },
            3 => Self::Logout { c },
            4 => Self::Content { c, wb },
            5 => Self::Subscribe {
                c,
                wb,
                props: a >= 128,
            },
            6 => Self::Cancel { c, wb },
            7 => Self::Submit { c, ix },
            8 => Self::Place {
                c,
                ix: (a / WB_POOL) % IX_POOL,
                wb,
            },
            9 => Self::Queue { c, ix },
            10 => Self::Pull { c, ix },
            11 => Self::Stop { c, ix },
            12 => Self::Change { c, ix },
            13 => Self::Props { c, ix },
            14 => Self::Ping { c },
            15 => Self::Bad {
                c,
                unknown_id: a.is_multiple_of(2),
            },
            16 => Self::Disconnect { c },
            17 => Self::Snap { c, a },
            18 => Self::Page { c },
            19 => Self::Release { c },
            20 => Self::Lock {
                c,
                ix,
                snap: a >= 128,
            },
            21 => Self::Unlock { c, ix },
            _ => Self::MoveAll {
                c,
                to: a % (WB_POOL + 1),
            },
        }
    }

    pub(crate) fn conn(self) -> u8 {
        match self {
            Self::Register { c, .. }
            | Self::Unregister { c }
            | Self::Login { c, .. }
            | Self::Logout { c }
            | Self::Content { c, .. }
            | Self::Subscribe { c, .. }
            | Self::Cancel { c, .. }
            | Self::Submit { c, .. }
            | Self::Place { c, .. }
            | Self::Queue { c, .. }
            | Self::Pull { c, .. }
            | Self::Stop { c, .. }
            | Self::Change { c, .. }
            | Self::Props { c, .. }
            | Self::Ping { c }
            | Self::Bad { c, .. }
            | Self::Disconnect { c }
            | Self::Snap { c, .. }
            | Self::Page { c }
            | Self::Release { c }
            | Self::Lock { c, .. }
            | Self::Unlock { c, .. }
            | Self::MoveAll { c, .. } => c,
        }
    }
}

/// The configuration of the checks: the conformance suite's.
pub const CONFIG_JSON: &str = include_str!("../../../../conformance/config.json");

/// Operations weighted towards the requests that build state up and move it (register, log
/// in, subscribe, submit, place in a workbin, take a snapshot, lock), so that sequences get somewhere; the other
/// kinds (failures included) among them. The property tests of the engine and the stores'
/// differentials share it.
#[cfg(any(test, feature = "model"))]
pub fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let kind = prop_oneof![
        3 => Just(0u8),  // register
        3 => Just(2u8),  // login
        3 => Just(5u8),  // subscribe
        3 => Just(7u8),  // submit
        5 => Just(8u8),  // place in workbin
        2 => Just(17u8), // take a snapshot
        1 => Just(18u8), // read a page
        1 => Just(19u8), // release
        2 => Just(20u8), // lock
        1 => Just(22u8), // move a snapshot's interactions
        8 => 0u8..KINDS, // anything
    ];
    (kind, any::<u8>(), any::<u8>()).prop_map(|(k, c, a)| Op::from_parts(k, c, a))
}
