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
//!
//! Session state (clients, logins, subscriptions) is not durable: after a restart clients
//! register again.

use crate::engine::Engine;
use crate::interactions::{Interaction, Location};
use crate::workbins::{BinKey, Owner};
use ixn_codec::{ByteString, Bytes, KvList, Message, MessageId, Value, attr, detach_str};
use ixn_config::OwnerKind;

/// Message id of a Put change.
pub const PUT: MessageId = MessageId(0xF001);
/// Message id of a Delete change.
pub const DELETE: MessageId = MessageId(0xF002);
/// Message id of an Ids change.
pub const IDS: MessageId = MessageId(0xF003);

const ID_PREFIX: &str = "IdPrefix";
const ID_COUNTER: &str = "IdCounter";

/// The latest stored state of every interaction, kept from the stream of changes alone (no
/// engine): what a store needs to compact itself while the server runs.
#[derive(Clone, Debug, Default)]
pub struct Shadow {
    ids: Option<Message>,
    puts: std::collections::HashMap<ByteString, Message>,
    bytes: usize,
}

impl Shadow {
    /// A shadow of a snapshot (see [`Engine::snapshot`]).
    pub fn new(snapshot: &[Message]) -> Self {
        let mut s = Self::default();
        for m in snapshot {
            s.apply(m);
        }
        s
    }

    /// Follows one change.
    pub fn apply(&mut self, change: &Message) {
        self.apply_owned(change.clone());
    }

    /// Follows one change, keeping it without a copy.
    pub fn apply_owned(&mut self, change: Message) {
        match change.id {
            IDS => self.ids = Some(change),
            PUT | DELETE => {
                let Some(id) = change.attrs.get_str(attr::INTERACTION_ID).cloned() else {
                    return;
                };
                let old = if change.id == PUT {
                    self.bytes += approx_size(&change);
                    self.puts.insert(id, change)
                } else {
                    self.puts.remove(&id)
                };
                if let Some(old) = old {
                    self.bytes = self.bytes.saturating_sub(approx_size(&old));
                }
            }
            _ => {}
        }
    }

    /// The state as changes (the Ids change first): what a compacted store holds.
    pub fn snapshot(&self) -> Vec<Message> {
        self.ids.iter().chain(self.puts.values()).cloned().collect()
    }

    /// Roughly how many bytes the state takes on disk.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }

    /// Interactions held.
    pub fn len(&self) -> usize {
        self.puts.len()
    }

    /// True when no interaction is held.
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
    }
}

/// Roughly the encoded size of a change (keys and values, plus a little framing).
pub fn approx_size(m: &Message) -> usize {
    fn list(l: &KvList) -> usize {
        l.iter()
            .map(|(k, v)| {
                7 + k.len()
                    + match v {
                        Value::Int(_) => 0,
                        Value::Str(s) => s.len(),
                        Value::Binary(b) => b.len(),
                        Value::List(l) => list(l),
                    }
            })
            .sum()
    }
    10 + list(&m.attrs)
}

/// What [`Engine::restore`] did.
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

impl Engine {
    /// Turns durable-change recording on or off (off by default: an ephemeral engine pays
    /// nothing for it). With it on, every request that changes interactions leaves its changes
    /// for [`Engine::drain_changes`].
    pub fn record_changes(&mut self, on: bool) {
        self.recording = on;
    }

    /// Moves the durable changes made since the last call into `out`, in order. Call it after
    /// every [`Engine::handle`]: the changes belong to that request and must be stored
    /// atomically, before any output that follows them is released.
    pub fn drain_changes(&mut self, out: &mut Vec<Message>) {
        out.append(&mut self.changes);
    }

    pub(crate) fn record_put(&mut self, id: &str) {
        if self.recording
            && let Some(ix) = self.interactions.get(id)
        {
            let props = self.properties(ix);
            self.changes.push(Message {
                id: PUT,
                attrs: props,
            });
        }
    }

    pub(crate) fn record_delete(&mut self, id: &ByteString) {
        if self.recording {
            self.changes
                .push(Message::new(DELETE).with(attr::INTERACTION_ID, id.clone()));
        }
    }

    pub(crate) fn record_ids(&mut self) {
        if self.recording {
            let (prefix, counter) = self.ids.state();
            self.changes.push(
                Message::new(IDS)
                    .with(ID_PREFIX, u64_value(prefix))
                    .with(ID_COUNTER, u64_value(counter)),
            );
        }
    }

    /// The whole durable state as changes (an Ids change, then a Put per interaction): what a
    /// compacted store holds.
    pub fn snapshot(&self) -> Vec<Message> {
        let (prefix, counter) = self.ids.state();
        let mut out = Vec::with_capacity(self.interactions.len() + 1);
        out.push(
            Message::new(IDS)
                .with(ID_PREFIX, u64_value(prefix))
                .with(ID_COUNTER, u64_value(counter)),
        );
        for ix in self.interactions.values() {
            out.push(Message {
                id: PUT,
                attrs: self.properties(ix),
            });
        }
        out
    }

    /// Rebuilds the interactions from stored changes, applied in order, before any connection
    /// exists. Locations are stored by name; an interaction whose workbin, agent or queue is no
    /// longer configured goes to the first queue of its tenant (or is dropped if the tenant has
    /// none), and a warning says so.
    pub fn restore(&mut self, changes: impl IntoIterator<Item = Message>) -> Restored {
        let mut r = Restored::default();
        for change in changes {
            self.restore_one(change, &mut r);
        }
        r.interactions = self.interactions.len();
        r
    }

    /// Applies one stored change (see [`Engine::restore`]), counting into `r`; lets a store
    /// stream its changes instead of holding them all. `r.interactions` is left to the caller.
    pub fn restore_one(&mut self, change: Message, r: &mut Restored) {
        r.changes += 1;
        match change.id {
            IDS => {
                if let (Some(p), Some(c)) = (
                    u64_of(&change.attrs, ID_PREFIX),
                    u64_of(&change.attrs, ID_COUNTER),
                ) {
                    self.ids.set_state(p, c);
                }
            }
            DELETE => {
                if let Some(id) = change.attrs.get_str(attr::INTERACTION_ID) {
                    self.forget(id);
                }
            }
            PUT => match self.interaction_from_properties(&change.attrs, r) {
                Some(ix) => {
                    let id = ix.id.clone();
                    self.forget(&id);
                    if let Location::InWorkbin(key) = ix.loc {
                        self.bin_mut(key).items.insert(id.clone());
                    }
                    // Stored data is restored whatever the limits say now (they apply to
                    // what comes next).
                    self.stored_bytes = self.stored_bytes.saturating_add(ix.size());
                    self.interactions.insert(id, ix);
                }
                None => r.dropped += 1,
            },
            other => r.warnings.push(format!("unknown change {other}, ignored")),
        }
    }

    /// Interactions and workbin contents, canonical and sorted, for tests that compare a
    /// restored engine with the original. Not for production use (it walks everything).
    #[doc(hidden)]
    pub fn debug_interactions(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .interactions
            .values()
            .map(|ix| format!("{:?}", self.properties(ix)))
            .collect();
        for (key, bin) in &self.bins {
            let mut items: Vec<&str> = bin.items.iter().map(|s| &**s).collect();
            items.sort_unstable();
            if !items.is_empty() {
                lines.push(format!("bin {key:?} {items:?}"));
            }
        }
        lines.sort();
        lines
    }

    /// Removes an interaction and its workbin entry (restore only: no notifications).
    fn forget(&mut self, id: &str) {
        let Some(ix) = self.interactions.remove(id) else {
            return;
        };
        self.stored_bytes = self.stored_bytes.saturating_sub(ix.size());
        if let Location::InWorkbin(key) = ix.loc
            && let Some(bin) = self.bins.get_mut(&key)
        {
            bin.items.swap_remove(id);
            if bin.is_empty() {
                self.bins.remove(&key);
            }
        }
    }

    /// An interaction from its stored properties, resolving names against the configuration.
    fn interaction_from_properties(&self, p: &KvList, r: &mut Restored) -> Option<Interaction> {
        let s = |k: &str| p.get_str(k).map(detach_str);
        let id = s(attr::INTERACTION_ID)?;
        let tenant = p.get_int(attr::TENANT_ID)?;
        let loc = self.location_of(p, tenant);
        let loc = match loc {
            Some(l) => l,
            None => {
                let fallback = self.cfg.queues.iter().position(|q| q.tenant == tenant);
                match fallback {
                    Some(q) => {
                        r.relocated += 1;
                        r.warnings.push(format!(
                            "interaction {:?}: its stored location no longer exists; put in queue {:?}",
                            &*id,
                            self.names.queues.get(q).map_or("?", |n| n)
                        ));
                        Location::Queued(ixn_config::QueueIdx(u32::try_from(q).unwrap_or(u32::MAX)))
                    }
                    None => {
                        r.warnings.push(format!(
                            "interaction {:?}: its location no longer exists and tenant {tenant} has no queue; dropped",
                            &*id
                        ));
                        return None;
                    }
                }
            }
        };
        Some(Interaction {
            id,
            tenant,
            media_type: s(attr::MEDIA_TYPE).unwrap_or_default(),
            interaction_type: s(attr::INTERACTION_TYPE).unwrap_or_default(),
            subtype: s(attr::INTERACTION_SUBTYPE),
            loc,
            submitted_by: s(attr::SUBMITTED_BY).unwrap_or_default(),
            received_at: s(attr::RECEIVED_AT).unwrap_or_default(),
            user_data: p
                .get_list(attr::USER_DATA)
                .map(KvList::detached)
                .unwrap_or_default(),
        })
    }

    fn location_of(&self, p: &KvList, tenant: i32) -> Option<Location> {
        let cfg = &self.cfg;
        match p.get_str(attr::INTERACTION_STATE).map(|s| &**s) {
            Some("Queued") => {
                let q = cfg.queue(p.get_str(attr::QUEUE)?)?;
                (cfg.queues.get(q.get())?.tenant == tenant).then_some(Location::Queued(q))
            }
            Some("Handling") => Some(Location::Handling(
                cfg.agent(p.get_str(attr::ASSIGNED_TO)?)?,
            )),
            Some("InWorkbin") => {
                let ty = cfg.workbin(p.get_str(attr::INTERACTION_WORKBIN_TYPE_ID)?)?;
                let owner = match cfg.workbins.get(ty.get())?.owner {
                    OwnerKind::Agent => {
                        Owner::Agent(cfg.agent(p.get_str(attr::INTERACTION_AGENT_ID)?)?)
                    }
                    OwnerKind::Place => {
                        Owner::Place(cfg.place(p.get_str(attr::INTERACTION_PLACE_ID)?)?)
                    }
                    OwnerKind::AgentGroup => Owner::AgentGroup(
                        cfg.agent_group(p.get_str(attr::INTERACTION_AGENT_GROUP_ID)?)?,
                    ),
                    OwnerKind::PlaceGroup => Owner::PlaceGroup(
                        cfg.place_group(p.get_str(attr::INTERACTION_PLACE_GROUP_ID)?)?,
                    ),
                };
                Some(Location::InWorkbin(BinKey { ty, owner }))
            }
            _ => None,
        }
    }
}
