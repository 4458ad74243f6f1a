//! Interactions: the model, their sizes, their properties, and the store that holds them with
//! the InteractionId generator (R11, R12).

use crate::error::Error;
use crate::names::{Names, interaction_owner_key};
use crate::types::Location;
use foldhash::fast::FixedState;
use ixn_codec::{ByteString, KvList, attr};
use ixn_config::Limits;
use ixn_config::QueueIdx;
use std::collections::{HashMap, HashSet};

/// A stored interaction. Only [`Interactions`] changes one.
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
pub(crate) fn interaction_size(strings: &[&str], user_data: Option<&KvList>) -> usize {
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
    pub(crate) fn size_with(&self, user_data: &KvList) -> usize {
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

    /// Its properties (docs/protocol.md), names from `names`.
    pub(crate) fn properties(&self, names: &Names) -> KvList {
        let mut p = KvList::with_capacity(12);
        p.push(attr::INTERACTION_ID, self.id.clone());
        p.push(attr::TENANT_ID, self.tenant);
        p.push(attr::MEDIA_TYPE, self.media_type.clone());
        p.push(attr::INTERACTION_TYPE, self.interaction_type.clone());
        if let Some(s) = &self.subtype {
            p.push(attr::INTERACTION_SUBTYPE, s.clone());
        }
        push_location(&mut p, self.loc, names);
        p.push(attr::SUBMITTED_BY, self.submitted_by.clone());
        p.push(attr::RECEIVED_AT, self.received_at.clone());
        p.push(attr::USER_DATA, self.user_data.clone());
        p
    }
}

/// Appends a location's properties (InteractionState, then where: Queue, the workbin type and
/// its owner, or AssignedTo), as a Put or a Move change and EventInteractionProperties carry it.
pub(crate) fn push_location(p: &mut KvList, loc: Location, names: &Names) {
    match loc {
        Location::Queued(q) => {
            p.push(attr::INTERACTION_STATE, ByteString::from_static("Queued"));
            p.push(attr::QUEUE, names.queue(q).clone());
        }
        Location::InWorkbin(key) => {
            p.push(
                attr::INTERACTION_STATE,
                ByteString::from_static("InWorkbin"),
            );
            p.push(
                attr::INTERACTION_WORKBIN_TYPE_ID,
                names.workbin(key.ty).clone(),
            );
            p.push(
                interaction_owner_key(key.owner),
                names.owner(key.owner).clone(),
            );
        }
        Location::Handling(a) => {
            p.push(attr::INTERACTION_STATE, ByteString::from_static("Handling"));
            p.push(attr::ASSIGNED_TO, names.agent(a).clone());
        }
    }
}

/// The interactions held, by id, with the sum of their sizes and the id generator.
#[derive(Debug)]
pub(crate) struct Interactions {
    map: HashMap<ByteString, Interaction, FixedState>,
    /// The ids queued in each queue (a snapshot naming one queue reads only it).
    queued: HashMap<QueueIdx, HashSet<ByteString, FixedState>, FixedState>,
    /// The sum of the stored interactions' sizes ([`Interaction::size`]).
    stored_bytes: usize,
    ids: IdGen,
    hasher: FixedState,
}

impl Interactions {
    pub(crate) fn new(seed: u64, hasher: FixedState) -> Self {
        Self {
            map: HashMap::with_hasher(hasher.clone()),
            queued: HashMap::with_hasher(hasher.clone()),
            stored_bytes: 0,
            ids: IdGen::new(seed),
            hasher,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Interaction> {
        self.map.get(id)
    }

    /// The interaction, or UnknownInteraction.
    pub(crate) fn find(&self, id: &str) -> Result<&Interaction, Error> {
        self.map
            .get(id)
            .ok_or_else(|| Error::UnknownInteraction(id.to_owned()))
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn stored_bytes(&self) -> usize {
        self.stored_bytes
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Interaction> {
        self.map.values()
    }

    /// The interactions queued in `q`.
    pub(crate) fn in_queue(&self, q: QueueIdx) -> impl Iterator<Item = &Interaction> {
        self.queued
            .get(&q)
            .into_iter()
            .flatten()
            .filter_map(|id| self.map.get(id))
    }

    fn index(&mut self, id: &ByteString, loc: Location) {
        if let Location::Queued(q) = loc {
            self.queued
                .entry(q)
                .or_insert_with(|| HashSet::with_hasher(self.hasher.clone()))
                .insert(id.clone());
        }
    }

    fn unindex(&mut self, id: &str, loc: Location) {
        if let Location::Queued(q) = loc
            && let Some(ids) = self.queued.get_mut(&q)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.queued.remove(&q);
            }
        }
    }

    /// A generated id no interaction has.
    pub(crate) fn new_id(&mut self) -> ByteString {
        loop {
            let id = self.ids.next();
            if !self.map.contains_key(&id) {
                return id;
            }
        }
    }

    /// The id generator's state (prefix, counter).
    pub(crate) fn id_state(&self) -> (u64, u64) {
        self.ids.state()
    }

    pub(crate) fn set_id_state(&mut self, prefix: u64, counter: u64) {
        self.ids.set_state(prefix, counter);
    }

    /// Adds (or replaces) an interaction, counting its size.
    pub(crate) fn insert(&mut self, ix: Interaction) {
        self.stored_bytes = self.stored_bytes.saturating_add(ix.size());
        let (id, loc) = (ix.id.clone(), ix.loc);
        if let Some(old) = self.map.insert(ix.id.clone(), ix) {
            self.stored_bytes = self.stored_bytes.saturating_sub(old.size());
            self.unindex(&old.id, old.loc);
        }
        self.index(&id, loc);
    }

    /// Removes an interaction, uncounting its size.
    pub(crate) fn remove(&mut self, id: &str) -> Option<Interaction> {
        let ix = self.map.remove(id)?;
        self.stored_bytes = self.stored_bytes.saturating_sub(ix.size());
        self.unindex(id, ix.loc);
        Some(ix)
    }

    /// Moves an interaction; returns where it was.
    pub(crate) fn set_location(&mut self, id: &str, to: Location) -> Option<Location> {
        let ix = self.map.get_mut(id)?;
        let from = std::mem::replace(&mut ix.loc, to);
        // Only a queue is indexed here: most moves clone nothing.
        let key = matches!(to, Location::Queued(_)).then(|| ix.id.clone());
        self.unindex(id, from);
        if let Some(key) = key {
            self.index(&key, to);
        }
        Some(from)
    }

    /// Replaces an interaction's UserData, recounting its size.
    pub(crate) fn set_user_data(&mut self, id: &str, user_data: KvList) {
        if let Some(ix) = self.map.get_mut(id) {
            let (old, new) = (ix.size(), ix.size_with(&user_data));
            ix.user_data = user_data;
            self.stored_bytes = self.stored_bytes.saturating_sub(old).saturating_add(new);
        }
    }

    /// Checks that an interaction of `size` bytes, replacing one of `replaced` bytes, fits
    /// `max_interaction_bytes` and `max_stored_bytes`.
    pub(crate) fn check_size(
        &self,
        limits: &Limits,
        size: usize,
        replaced: usize,
    ) -> Result<(), Error> {
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
}

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

    pub(crate) fn next(&mut self) -> ByteString {
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
