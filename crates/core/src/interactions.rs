//! Interactions: the model, their properties, and the requests that create, move, change and
//! end them (R11, R12).

use crate::engine::{Ctx, Engine, Login};
use crate::error::Error;
use crate::workbins::BinKey;
use ixn_codec::typed;
use ixn_codec::{
    ByteString, KvList, Message, MessageId, Value, WorkbinContentOperation, attr, detach_str,
};
use ixn_config::{AgentIdx, AppType, QueueIdx};
use std::time::SystemTime;

/// Where an interaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    Queued(QueueIdx),
    InWorkbin(BinKey),
    Handling(AgentIdx),
}

/// A stored interaction.
#[derive(Clone, Debug)]
pub(crate) struct Interaction {
    pub(crate) id: ByteString,
    pub(crate) tenant: i32,
    pub(crate) media_type: ByteString,
    pub(crate) interaction_type: ByteString,
    pub(crate) subtype: Option<ByteString>,
    pub(crate) loc: Location,
    pub(crate) submitted_by: ByteString,
    pub(crate) received_at: ByteString,
    pub(crate) user_data: KvList,
}

/// What an interaction's size counts besides its strings and UserData: its bookkeeping in
/// memory (the engine's entry and, when durable, the store's copy of its properties for
/// compaction: about 1.9 KB together measured, with the attribute names and location), so that
/// `max_stored_bytes` bounds resident memory whatever the interactions' sizes.
const PROPERTIES_OVERHEAD: usize = 1536;

/// The size of an interaction with these strings and UserData, as counted for
/// `max_interaction_bytes` and `max_stored_bytes`: about its properties' encoded size.
fn interaction_size(strings: &[&str], user_data: Option<&KvList>) -> usize {
    strings
        .iter()
        .fold(PROPERTIES_OVERHEAD, |n, s| n.saturating_add(s.len()))
        .saturating_add(user_data.map_or(4, ixn_codec::list_len))
}

impl Interaction {
    /// Its size (see [`interaction_size`]).
    pub(crate) fn size(&self) -> usize {
        self.size_with(&self.user_data)
    }

    /// Its size with `user_data` instead of its own.
    fn size_with(&self, user_data: &KvList) -> usize {
        interaction_size(
            &[
                &self.id,
                &self.media_type,
                &self.interaction_type,
                self.subtype.as_deref().unwrap_or(""),
                &self.submitted_by,
                &self.received_at,
            ],
            Some(user_data),
        )
    }
}

/// Longest client-supplied InteractionId accepted.
const MAX_SUPPLIED_ID: usize = 64;
/// The only ViewId RequestPull accepts.
const SYSTEM_VIEW: &str = "_system_";

/// Generates InteractionIds: 16 characters of `[0-9A-Za-z]`, a 6-character prefix from the
/// seed followed by a 10-character counter (62^10, about 8.4e17, ids before it wraps).
#[derive(Debug)]
pub(crate) struct IdGen {
    prefix: u64,
    counter: u64,
}

/// 62^6 prefixes and 62^10 counter values: both fit a u64.
const PREFIX_SPACE: u64 = 56_800_235_584;
const COUNTER_SPACE: u64 = 839_299_365_868_340_224;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl IdGen {
    pub(crate) fn new(seed: u64) -> Self {
        // Mix the seed so that nearby seeds give unrelated prefixes.
        let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        Self {
            prefix: mixed % PREFIX_SPACE,
            counter: 0,
        }
    }

    pub(crate) fn state(&self) -> (u64, u64) {
        (self.prefix, self.counter)
    }

    pub(crate) fn set_state(&mut self, prefix: u64, counter: u64) {
        self.prefix = prefix % PREFIX_SPACE;
        self.counter = counter % COUNTER_SPACE;
    }

    fn next(&mut self) -> ByteString {
        let mut buf = [b'0'; 16];
        let write = |mut n: u64, digits: &mut [u8]| {
            for d in digits.iter_mut().rev() {
                // `n % 62` is below 62, so the index is always in range.
                *d = BASE62.get((n % 62) as usize).copied().unwrap_or(b'0');
                n /= 62;
            }
        };
        let (head, tail) = buf.split_at_mut(6);
        write(self.prefix, head);
        write(self.counter, tail);
        self.counter = (self.counter + 1) % COUNTER_SPACE;
        // Only ASCII digits and letters were written.
        ByteString::from(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Who acts on interactions: an agent (spec section 5 rules) or a media server / routing
/// engine (any interaction, any workbin).
#[derive(Clone, Copy, Debug)]
enum Actor {
    Agent(Login),
    Service,
}

impl Engine {
    fn actor(&self, ctx: &Ctx) -> Result<Actor, Error> {
        let c = self.client(ctx)?;
        match (c.kind, c.login) {
            (AppType::MediaServer | AppType::RoutingEngine, _) => Ok(Actor::Service),
            (_, Some(l)) => Ok(Actor::Agent(l)),
            (_, None) => Err(Error::AgentNotLoggedIn(ctx.id)),
        }
    }

    fn interaction(&self, id: &str) -> Result<&Interaction, Error> {
        self.interactions
            .get(id)
            .ok_or_else(|| Error::UnknownInteraction(id.to_owned()))
    }

    /// May `actor` act on `ix` (place, move, pull, stop, change or read it)?
    fn check_may_act(&self, actor: Actor, ix: &Interaction) -> Result<(), Error> {
        let Actor::Agent(l) = actor else {
            return Ok(());
        };
        let ok = self.agent_tenant(l.agent) == ix.tenant
            && match ix.loc {
                Location::Queued(_) => true,
                Location::InWorkbin(key) => self.may_access(l, key),
                Location::Handling(a) => a == l.agent,
            };
        if ok {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "agent {:?} may not act on interaction {:?} ({})",
                &*self.agent_name(l.agent),
                &*ix.id,
                self.where_is(ix)
            )))
        }
    }

    fn where_is(&self, ix: &Interaction) -> String {
        match ix.loc {
            Location::Queued(q) => format!(
                "queued in {:?}",
                self.names.queues.get(q.get()).map_or("?", |s| s)
            ),
            Location::InWorkbin(k) => format!("in workbin {}", self.bin_label(k)),
            Location::Handling(a) => format!("handled by agent {:?}", &*self.agent_name(a)),
        }
    }

    /// The interaction's properties (spec section 2).
    pub(crate) fn properties(&self, ix: &Interaction) -> KvList {
        let mut p = KvList::with_capacity(12);
        p.push(attr::INTERACTION_ID, ix.id.clone());
        p.push(attr::TENANT_ID, ix.tenant);
        p.push(attr::MEDIA_TYPE, ix.media_type.clone());
        p.push(attr::INTERACTION_TYPE, ix.interaction_type.clone());
        if let Some(s) = &ix.subtype {
            p.push(attr::INTERACTION_SUBTYPE, s.clone());
        }
        match ix.loc {
            Location::Queued(q) => {
                p.push(attr::INTERACTION_STATE, ByteString::from_static("Queued"));
                p.push(
                    attr::QUEUE,
                    self.names.queues.get(q.get()).cloned().unwrap_or_default(),
                );
            }
            Location::InWorkbin(key) => {
                p.push(
                    attr::INTERACTION_STATE,
                    ByteString::from_static("InWorkbin"),
                );
                p.push(
                    attr::INTERACTION_WORKBIN_TYPE_ID,
                    self.names
                        .workbins
                        .get(key.ty.get())
                        .cloned()
                        .unwrap_or_default(),
                );
                let (k, v) = self.owner_attr(key.owner, true);
                p.push(k, v);
            }
            Location::Handling(a) => {
                p.push(attr::INTERACTION_STATE, ByteString::from_static("Handling"));
                p.push(attr::ASSIGNED_TO, self.agent_name(a));
            }
        }
        p.push(attr::SUBMITTED_BY, ix.submitted_by.clone());
        p.push(attr::RECEIVED_AT, ix.received_at.clone());
        p.push(attr::USER_DATA, ix.user_data.clone());
        p
    }

    fn props_of(&self, id: &str) -> KvList {
        self.interactions
            .get(id)
            .map(|ix| self.properties(ix))
            .unwrap_or_default()
    }

    /// Moves an interaction to `to`, queuing TakenOut (with its properties as they were) on
    /// the workbin it leaves and PlacedIn on the one it enters.
    fn relocate(&mut self, id: &ByteString, to: Location) {
        let Some(from) = self.interactions.get(id).map(|ix| ix.loc) else {
            return;
        };
        if let Location::InWorkbin(old) = from {
            // Built only if the old workbin has subscribers, and before anything moves.
            self.notify(old, WorkbinContentOperation::TakenOut, |e| e.props_of(id));
            if let Some(bin) = self.bins.get_mut(&old) {
                bin.items.swap_remove(id);
                if bin.is_empty() {
                    self.bins.remove(&old);
                }
            }
        }
        if let Some(ix) = self.interactions.get_mut(id) {
            ix.loc = to;
        }
        if let Location::InWorkbin(new) = to {
            self.bin_mut(new).items.insert(id.clone());
            let id = id.clone();
            self.notify(new, WorkbinContentOperation::PlacedIn, |e| e.props_of(&id));
        }
        self.record_put(id);
    }

    pub(crate) fn submit(
        &mut self,
        now: SystemTime,
        ctx: &Ctx,
        r: typed::RequestSubmit,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        if !self.cfg.tenants.contains_key(&r.tenant_id) {
            return Err(Error::UnknownTenant(r.tenant_id));
        }
        if let Actor::Agent(l) = actor
            && self.agent_tenant(l.agent) != r.tenant_id
        {
            return Err(Error::Forbidden(format!(
                "agent {:?} may not submit into tenant {}",
                &*self.agent_name(l.agent),
                r.tenant_id
            )));
        }
        let queue = self.queue_in(ctx.id, &r.queue, r.tenant_id)?;
        if let Some(id) = &r.interaction_id {
            if id.is_empty() || id.len() > MAX_SUPPLIED_ID || id.chars().any(char::is_control) {
                return Err(Error::invalid(
                    ctx.id,
                    attr::INTERACTION_ID,
                    format!("must be 1 to {MAX_SUPPLIED_ID} bytes without control characters"),
                ));
            }
            if self.interactions.contains_key(&**id) {
                return Err(Error::DuplicateInteraction(id.to_string()));
            }
        }
        let limit = self.cfg.limits.max_interactions;
        if self.interactions.len() >= limit {
            return Err(Error::LimitExceeded {
                limit: "max_interactions",
                value: limit,
                what: "the server holds as many interactions as it may".to_owned(),
            });
        }
        let submitted_by = self.client(ctx)?.name.clone();
        // A generated id and ReceivedAt have a fixed length: the size is known before either
        // is made (a refused request changes nothing, not even the id generator).
        let size = interaction_size(
            &[
                r.interaction_id.as_deref().unwrap_or("0123456789abcdef"),
                &r.media_type,
                &r.interaction_type,
                r.interaction_subtype.as_deref().unwrap_or(""),
                &submitted_by,
                "2000-01-01T00:00:00Z",
            ],
            r.user_data.as_ref(),
        );
        self.check_size(size, 0)?;
        // Everything stored is detached from the request's frame (see `Value::detached`).
        let generated = r.interaction_id.is_none();
        let id = match r.interaction_id {
            Some(id) => detach_str(&id),
            None => loop {
                let id = self.ids.next();
                if !self.interactions.contains_key(&id) {
                    break id;
                }
            },
        };
        let ix = Interaction {
            id: id.clone(),
            tenant: r.tenant_id,
            media_type: detach_str(&r.media_type),
            interaction_type: detach_str(&r.interaction_type),
            subtype: r.interaction_subtype.as_ref().map(detach_str),
            loc: Location::Queued(queue),
            submitted_by,
            received_at: ByteString::from(humantime::format_rfc3339_seconds(now).to_string()),
            user_data: r
                .user_data
                .as_ref()
                .map(KvList::detached)
                .unwrap_or_default(),
        };
        self.stored_bytes = self.stored_bytes.saturating_add(ix.size());
        self.interactions.insert(id.clone(), ix);
        if generated {
            self.record_ids();
        }
        self.record_put(&id);
        Ok(Message::new(MessageId::EVENT_ACK).with(attr::INTERACTION_ID, id))
    }

    /// Checks that an interaction of `size` bytes, replacing one of `replaced` bytes, fits
    /// `max_interaction_bytes` and `max_stored_bytes`.
    fn check_size(&self, size: usize, replaced: usize) -> Result<(), Error> {
        let limits = &self.cfg.limits;
        if size > limits.max_interaction_bytes {
            return Err(Error::LimitExceeded {
                limit: "max_interaction_bytes",
                value: limits.max_interaction_bytes,
                what: format!(
                    "the interaction would take {size} bytes; send less UserData, or raise [limits] max_interaction_bytes"
                ),
            });
        }
        let total = self
            .stored_bytes
            .saturating_sub(replaced)
            .saturating_add(size);
        if size > replaced && total > limits.max_stored_bytes {
            return Err(Error::LimitExceeded {
                limit: "max_stored_bytes",
                value: limits.max_stored_bytes,
                what: format!(
                    "the server stores {} bytes of interactions and this would add {}; end finished interactions (RequestStopProcessing), or raise [limits] max_stored_bytes",
                    self.stored_bytes,
                    size - replaced
                ),
            });
        }
        Ok(())
    }

    fn queue_in(&self, msg: MessageId, name: &str, tenant: i32) -> Result<QueueIdx, Error> {
        self.cfg
            .queue(name)
            .filter(|q| {
                self.cfg
                    .queues
                    .get(q.get())
                    .is_some_and(|q| q.tenant == tenant)
            })
            .ok_or_else(|| {
                Error::invalid(
                    msg,
                    attr::QUEUE,
                    format!("no queue {name:?} in tenant {tenant}"),
                )
            })
    }

    pub(crate) fn place_in_workbin(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestPlaceInWorkbin,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        let login = match actor {
            Actor::Agent(l) => Some(l),
            Actor::Service => None,
        };
        let key = self.resolve(ctx.id, &r.workbin, login)?;
        let ix = self.interaction(&r.interaction_id)?;
        self.check_may_act(actor, ix)?;
        let type_tenant = self
            .cfg
            .workbins
            .get(key.ty.get())
            .map_or(i32::MIN, |w| w.tenant);
        match actor {
            Actor::Agent(l) if !self.may_access(l, key) => return Err(self.forbidden_bin(l, key)),
            Actor::Service if type_tenant != ix.tenant => {
                return Err(Error::Forbidden(format!(
                    "interaction {:?} of tenant {} cannot go into workbin {} of tenant {type_tenant}",
                    &*ix.id,
                    ix.tenant,
                    self.bin_label(key)
                )));
            }
            _ => {}
        }
        if ix.loc == Location::InWorkbin(key) {
            return Ok(Message::new(MessageId::EVENT_ACK));
        }
        let limit = self.cfg.limits.max_interactions_per_workbin;
        if self.bins.get(&key).is_some_and(|b| b.items.len() >= limit) {
            return Err(Error::LimitExceeded {
                limit: "max_interactions_per_workbin",
                value: limit,
                what: format!("workbin {} is full", self.bin_label(key)),
            });
        }
        let id = ix.id.clone();
        self.relocate(&id, Location::InWorkbin(key));
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(crate) fn place_in_queue(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestPlaceInQueue,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        let ix = self.interaction(&r.interaction_id)?;
        let queue = self.queue_in(ctx.id, &r.queue, ix.tenant)?;
        self.check_may_act(actor, ix)?;
        if ix.loc != Location::Queued(queue) {
            let id = ix.id.clone();
            self.relocate(&id, Location::Queued(queue));
        }
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(crate) fn pull(&mut self, ctx: &Ctx, r: &typed::RequestPull) -> Result<Message, Error> {
        if &*r.view_id != SYSTEM_VIEW {
            return Err(Error::invalid(
                ctx.id,
                attr::VIEW_ID,
                format!("must be {SYSTEM_VIEW:?}"),
            ));
        }
        let id = match r.pull_parameters.get(attr::PULL_ID) {
            None => return Err(Error::missing(ctx.id, "PullParameters.id")),
            Some(Value::Str(id)) => id.clone(),
            Some(other) => {
                return Err(Error::invalid(
                    ctx.id,
                    "PullParameters.id",
                    format!("expected string, found {}", other.type_name()),
                ));
            }
        };
        let l = self.require_login(ctx)?;
        let ix = self.interaction(&id)?;
        self.check_may_act(Actor::Agent(l), ix)?;
        if ix.loc != Location::Handling(l.agent) {
            self.relocate(&id, Location::Handling(l.agent));
        }
        Ok(Message::new(MessageId::EVENT_PULLED_INTERACTIONS).with(
            attr::INTERACTIONS,
            KvList::new().with(id.clone(), self.props_of(&id)),
        ))
    }

    pub(crate) fn stop(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestStopProcessing,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        let ix = self.interaction(&r.interaction_id)?;
        self.check_may_act(actor, ix)?;
        if let Location::InWorkbin(key) = ix.loc {
            let id = r.interaction_id.clone();
            self.notify(key, WorkbinContentOperation::TakenOut, |e| e.props_of(&id));
            if let Some(bin) = self.bins.get_mut(&key) {
                bin.items.swap_remove(&*r.interaction_id);
                if bin.is_empty() {
                    self.bins.remove(&key);
                }
            }
        }
        if let Some(ix) = self.interactions.remove(&*r.interaction_id) {
            self.stored_bytes = self.stored_bytes.saturating_sub(ix.size());
            self.record_delete(&ix.id);
        }
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(crate) fn change_properties(
        &mut self,
        ctx: &Ctx,
        r: &typed::RequestChangeProperties,
    ) -> Result<Message, Error> {
        if r.changed_properties.is_none()
            && r.added_properties.is_none()
            && r.deleted_properties.is_none()
        {
            return Err(Error::missing(
                ctx.id,
                "ChangedProperties, AddedProperties or DeletedProperties (at least one)",
            ));
        }
        let actor = self.actor(ctx)?;
        let ix = self.interaction(&r.interaction_id)?;
        self.check_may_act(actor, ix)?;
        let loc = ix.loc;
        // The new UserData is built aside and measured: a change that would pass a size limit
        // is refused with nothing changed.
        let mut user_data = ix.user_data.clone();
        for list in [&r.added_properties, &r.changed_properties]
            .into_iter()
            .flatten()
        {
            for (k, v) in list {
                user_data.set(detach_str(k), v.detached());
            }
        }
        if let Some(deleted) = &r.deleted_properties {
            for (k, _) in deleted {
                user_data.remove(k);
            }
        }
        let (old, new) = (ix.size(), ix.size_with(&user_data));
        self.check_size(new, old)?;
        if let Some(ix) = self.interactions.get_mut(&*r.interaction_id) {
            ix.user_data = user_data;
            self.stored_bytes = self.stored_bytes.saturating_sub(old).saturating_add(new);
        }
        if let Location::InWorkbin(key) = loc {
            let id = r.interaction_id.clone();
            self.notify(key, WorkbinContentOperation::PropertiesChanged, |e| {
                e.props_of(&id)
            });
        }
        self.record_put(&r.interaction_id);
        Ok(Message::new(MessageId::EVENT_ACK))
    }

    pub(crate) fn get_properties(
        &self,
        ctx: &Ctx,
        r: &typed::RequestGetInteractionProperties,
    ) -> Result<Message, Error> {
        let actor = self.actor(ctx)?;
        let ix = self.interaction(&r.interaction_id)?;
        self.check_may_act(actor, ix)?;
        Ok(Message::new(MessageId::EVENT_INTERACTION_PROPERTIES)
            .with(attr::INTERACTION, self.properties(ix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sixteen_base62_characters_and_distinct() {
        let mut g = IdGen::new(42);
        let a = g.next();
        let b = g.next();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 16);
            assert!(id.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
        }
        assert_ne!(IdGen::new(1).next(), IdGen::new(2).next());
        assert_eq!(PREFIX_SPACE, 62u64.pow(6));
        assert_eq!(COUNTER_SPACE, 62u64.pow(10));
    }
}
