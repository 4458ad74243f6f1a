//! Durable changes: what a store must keep so that no acknowledged interaction is lost, and how
//! an engine is rebuilt from them.
//!
//! Each change is a [`Message`] (so the codec's canonical binary form is the storage format):
//!
//! | message id | name | attributes |
//! |---|---|---|
//! | 0xF001 | Put | the interaction's properties, as in EventInteractionProperties (location by names) |
//! | 0xF002 | Delete | `InteractionId` |
//! | 0xF003 | Ids | `IdPrefix`, `IdCounter` (8-byte big-endian binaries): the id generator's state |
//! | 0xF004 | Move | `InteractionId` and the new location (`InteractionState`, then `Queue`, the workbin type and owner, or `AssignedTo`) |
//!
//! A Move is what a store that opts in ([`Engine::record_moves`](crate::Engine::record_moves))
//! gets instead of a Put when a request only moved an interaction: a fifth of the bytes. A store
//! that keeps whole interactions (one row each) leaves it off and always gets Puts.
//!
//! Session state (clients, logins, subscriptions) is not durable: after a restart clients
//! register again.

use crate::access;
use crate::interactions::Interaction;
use crate::names::Names;
use crate::types::{BinKey, Location};
use ixn_codec::{ByteString, Bytes, KvList, Message, MessageId, Value, attr, detach_str};
use ixn_config::{Config, OwnerKind};

/// Message id of a Put change.
pub const PUT: MessageId = MessageId(0xF001);
/// Message id of a Delete change.
pub const DELETE: MessageId = MessageId(0xF002);
/// Message id of an Ids change.
pub const IDS: MessageId = MessageId(0xF003);
/// Message id of a Move change.
pub const MOVE: MessageId = MessageId(0xF004);

/// The name of a change kind (`Put`, `Delete`, `Ids`, `Move`), for people (`ixn journal
/// dump`); `None` for a message id that is not a change.
pub fn kind_name(id: MessageId) -> Option<&'static str> {
    match id {
        PUT => Some("Put"),
        DELETE => Some("Delete"),
        IDS => Some("Ids"),
        MOVE => Some("Move"),
        _ => None,
    }
}

/// The keys of a location: what a Move replaces in a Put.
const LOCATION_KEYS: [&str; 8] = [
    attr::INTERACTION_STATE,
    attr::QUEUE,
    attr::INTERACTION_WORKBIN_TYPE_ID,
    attr::INTERACTION_AGENT_ID,
    attr::INTERACTION_PLACE_ID,
    attr::INTERACTION_AGENT_GROUP_ID,
    attr::INTERACTION_PLACE_GROUP_ID,
    attr::ASSIGNED_TO,
];

const ID_PREFIX: &str = "IdPrefix";
const ID_COUNTER: &str = "IdCounter";

/// The durable changes of the request being handled, when recording is on.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) recording: bool,
    /// Record a move as a Move change rather than a Put.
    pub(crate) moves: bool,
    list: Vec<Message>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn drain_into(&mut self, out: &mut Vec<Message>) {
        out.append(&mut self.list);
    }

    pub(crate) fn push(&mut self, change: Message) {
        if self.recording {
            self.list.push(change);
        }
    }
}

/// A Put change: the interaction's properties.
pub(crate) fn put_change(properties: KvList) -> Message {
    Message {
        id: PUT,
        attrs: properties,
    }
}

/// A Move change: `id` is now at `loc`.
pub(crate) fn move_change(id: &ByteString, loc: Location, names: &Names) -> Message {
    let mut attrs = KvList::with_capacity(4);
    attrs.push(attr::INTERACTION_ID, id.clone());
    crate::interactions::push_location(&mut attrs, loc, names);
    Message { id: MOVE, attrs }
}

/// A Put's properties with a Move applied: the location keys replaced by the Move's, where the
/// old ones stood (the order a Put of the moved interaction would have). For a store that keeps
/// the latest Put of each interaction and follows Moves without an engine.
pub fn apply_move(put: &KvList, mv: &KvList) -> KvList {
    let mut out = KvList::with_capacity(put.len() + 2);
    let mut placed = false;
    for (k, v) in put.iter() {
        if LOCATION_KEYS.contains(&&**k) {
            if !placed {
                placed = true;
                push_move_location(&mut out, mv);
            }
        } else {
            out.push(k.clone(), v.clone());
        }
    }
    if !placed {
        push_move_location(&mut out, mv);
    }
    out
}

fn push_move_location(out: &mut KvList, mv: &KvList) {
    for (k, v) in mv.iter().filter(|(k, _)| LOCATION_KEYS.contains(&&**k)) {
        out.push(k.clone(), v.clone());
    }
}

/// A Delete change.
pub(crate) fn delete_change(id: &ByteString) -> Message {
    Message::new(DELETE).with(attr::INTERACTION_ID, id.clone())
}

/// An Ids change: the id generator's state.
pub(crate) fn ids_change((prefix, counter): (u64, u64)) -> Message {
    Message::new(IDS)
        .with(ID_PREFIX, u64_value(prefix))
        .with(ID_COUNTER, u64_value(counter))
}

/// The id generator's state in an Ids change: (prefix, counter).
pub fn ids_of(change: &Message) -> Option<(u64, u64)> {
    Some((
        u64_of(&change.attrs, ID_PREFIX)?,
        u64_of(&change.attrs, ID_COUNTER)?,
    ))
}

/// What [`Engine::restore`](crate::Engine::restore) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Changes applied.
    pub changes: usize,
    /// Interactions held at the end.
    pub interactions: usize,
    /// Interactions whose stored location no longer exists in the configuration; they were put
    /// in the first queue of their tenant (see [`Restored::warnings`]).
    pub relocated: usize,
    /// Interactions dropped because nothing in the configuration can hold them.
    pub dropped: usize,
    /// What was unusual, one line each (for the log).
    pub warnings: Vec<String>,
}

fn u64_value(v: u64) -> Value {
    Value::Binary(Bytes::copy_from_slice(&v.to_be_bytes()))
}

fn u64_of(list: &KvList, key: &str) -> Option<u64> {
    let b = list.get(key)?.as_binary()?;
    let arr: [u8; 8] = b.as_ref().try_into().ok()?;
    Some(u64::from_be_bytes(arr))
}

/// An interaction from its stored properties, resolving names against the configuration. An
/// interaction whose location no longer exists goes to the first queue of its tenant (counted
/// and explained in `r`); `None` when its tenant has no queue either.
pub(crate) fn interaction_from_properties(
    cfg: &Config,
    names: &Names,
    p: &KvList,
    r: &mut Restored,
) -> Option<Interaction> {
    let s = |k: &str| p.get_str(k).map(detach_str);
    let id = s(attr::INTERACTION_ID)?;
    let tenant = p.get_int(attr::TENANT_ID)?;
    let loc = stored_location(cfg, names, p, tenant, &id, r)?;
    Some(Interaction {
        id,
        tenant,
        media_type: s(attr::MEDIA_TYPE).unwrap_or_default(),
        interaction_type: s(attr::INTERACTION_TYPE).unwrap_or_default(),
        subtype: s(attr::INTERACTION_SUBTYPE),
        loc,
        submitted_by: s(attr::SUBMITTED_BY).unwrap_or_default(),
        received: crate::interactions::epoch_secs(p.get_str(attr::RECEIVED_AT).map_or("", |v| v)),
        received_at: s(attr::RECEIVED_AT).unwrap_or_default(),
        user_data: p
            .get_list(attr::USER_DATA)
            .map(KvList::detached)
            .unwrap_or_default(),
    })
}

/// Where an interaction of `tenant` goes from its stored location `p`: there, if everything it
/// names is still configured; else the first queue of its tenant (counted and explained in
/// `r`); `None` when the tenant has no queue either (explained in `r`).
pub(crate) fn stored_location(
    cfg: &Config,
    names: &Names,
    p: &KvList,
    tenant: i32,
    id: &str,
    r: &mut Restored,
) -> Option<Location> {
    if let Some(l) = location_of(cfg, p, tenant) {
        return Some(l);
    }
    if let Some((q, _)) = cfg.queues().find(|(_, q)| q.tenant == tenant) {
        r.relocated += 1;
        r.warnings.push(format!(
            "interaction {id:?}: its stored location no longer exists; put in queue {:?}",
            &**names.queue(q)
        ));
        Some(Location::Queued(q))
    } else {
        r.warnings.push(format!(
            "interaction {id:?}: its location no longer exists and tenant {tenant} has no queue; dropped"
        ));
        None
    }
}

/// A stored location (by names), if everything it names is still configured.
fn location_of(cfg: &Config, p: &KvList, tenant: i32) -> Option<Location> {
    match p.get_str(attr::INTERACTION_STATE).map(|s| &**s) {
        Some("Queued") => {
            let q = cfg.queue(p.get_str(attr::QUEUE)?)?;
            (cfg[q].tenant == tenant).then_some(Location::Queued(q))
        }
        Some("Handling") => Some(Location::Handling(
            cfg.agent(p.get_str(attr::ASSIGNED_TO)?)?,
        )),
        Some("InWorkbin") => {
            let ty = cfg.workbin(p.get_str(attr::INTERACTION_WORKBIN_TYPE_ID)?)?;
            let kind = cfg[ty].owner;
            let key = match kind {
                OwnerKind::Agent => attr::INTERACTION_AGENT_ID,
                OwnerKind::Place => attr::INTERACTION_PLACE_ID,
                OwnerKind::AgentGroup => attr::INTERACTION_AGENT_GROUP_ID,
                OwnerKind::PlaceGroup => attr::INTERACTION_PLACE_GROUP_ID,
            };
            let owner = access::owner_named(cfg, kind, p.get_str(key)?)?;
            Some(Location::InWorkbin(BinKey { ty, owner }))
        }
        _ => None,
    }
}
